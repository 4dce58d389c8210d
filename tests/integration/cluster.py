"""Real `nats-server` processes for the cluster and soak tests: nodes that can be killed and
restarted on the same ports and store, alone or as a JetStream cluster on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.cli.runtime import nats_server_binary
from tests.conftest import free_port, stop_process, wait_for_port

CLUSTER_NAME = "nova-test"


@dataclass
class NatsNode:
    """One nats-server with JetStream. Ports and store stay fixed across restarts, so a restarted
    node comes back as the same server with the same data."""

    name: str
    store_dir: Path
    log_path: Path
    client_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int | None = None  # None: a single server, no cluster
    routes: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def route_url(self) -> str:
        assert self.cluster_port is not None
        return f"nats://127.0.0.1:{self.cluster_port}"

    def command(self) -> list[str]:
        command = [
            nats_server_binary(),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--server_name",
            self.name,
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.client_port),
            "--http_port",
            str(self.monitor_port),
        ]
        if self.cluster_port is not None:
            command += [
                "--cluster_name",
                CLUSTER_NAME,
                "--cluster",
                self.route_url,
                "--routes",
                ",".join(self.routes),
            ]
        return command

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts} of {self.name} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.client_port, timeout=30)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send `sig` and wait for the process to exit; returns its exit code."""
        if self.process is None:
            return None
        stop_process(self.process, sig, timeout)
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def monitor(self, path: str, timeout: float = 2.0) -> tuple[int, dict]:
        """GET the monitoring endpoint `path`: (HTTP status, JSON body); (0, {}) when down."""
        url = f"http://127.0.0.1:{self.monitor_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read() or b"{}")
            except ValueError:
                body = {}
            return error.code, body
        except (OSError, ValueError):
            return 0, {}

    def healthy(self) -> bool:
        """JetStream is up here and, in a cluster, this node knows a meta leader."""
        status, body = self.monitor("/healthz?js-enabled-only=true")
        if status != 200 or body.get("status") != "ok":
            return False
        if self.cluster_port is None:
            return True
        return bool(self.meta_leader())

    def meta_leader(self) -> str | None:
        status, body = self.monitor("/jsz")
        if status != 200:
            return None
        return (body.get("meta_cluster") or {}).get("leader") or None

    def client_names(self, prefixes: tuple[str, ...] = ("",)) -> list[str]:
        """Names of the client connections open on this node that start with a prefix."""
        status, body = self.monitor("/connz?limit=1024")
        if status != 200:
            return []
        names = [c.get("name") or "" for c in body.get("connections") or []]
        return sorted(n for n in names if n.startswith(prefixes))

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.2,
) -> None:
    """Poll `condition` until it is true; fail naming `what` (or what it returns, for details
    only known at the time) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {detail}")
        time.sleep(interval)


class NatsCluster:
    """`size` nodes routed to each other (a single plain server when size is 1)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.nodes: list[NatsNode] = []
        cluster_ports = [free_port() for _ in range(size)] if size > 1 else []
        for index in range(size):
            node = NatsNode(
                name=f"n{index + 1}",
                store_dir=root / f"n{index + 1}" / "store",
                log_path=root / f"n{index + 1}.log",
            )
            if size > 1:
                node.cluster_port = cluster_ports[index]
                node.routes = [
                    f"nats://127.0.0.1:{port}"
                    for other, port in enumerate(cluster_ports)
                    if other != index
                ]
            self.nodes.append(node)

    def start(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every running node serves JetStream and agrees there is a meta leader."""
        wait_until(
            lambda: all(node.healthy() for node in self.nodes if node.running),
            timeout,
            lambda: (
                "a JetStream meta leader on every running node:\n"
                + "\n".join(f"--- {n.name}\n{n.log_tail(1500)}" for n in self.nodes)
            ),
        )

    def node(self, name: str) -> NatsNode:
        return next(node for node in self.nodes if node.name == name)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def running_urls(self) -> list[str]:
        return [node.url for node in self.nodes if node.running]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(signal.SIGTERM, timeout=15)
