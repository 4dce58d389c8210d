"""The NATS configs of deploy/nats/: parsed, checked by the real nats-server (`-t`), and started
(ports and store folders rewritten to temporary ones) as one server and as a 3-node cluster
that replicates a Nova stream x3."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.cli.runtime import nats_server_binary
from shared.broker import NatsAuthenticationError, connect, ensure_stream
from shared.settings import NatsSettings
from tests.conftest import free_port
from tests.deploy.compose_files import (
    NATS_CLUSTER_CONF,
    NATS_CONF,
    nats_block,
    nats_conf_value,
    nats_routes,
)

# What compose gives the NATS containers from deploy/.env (base64, as `openssl rand` makes it).
CREDENTIALS = {"NATS_USER": "nova", "NATS_PASSWORD": "q3+Vb/9zXk2Lr0Tw=="}
CLIENT = {"user": CREDENTIALS["NATS_USER"], "password": CREDENTIALS["NATS_PASSWORD"]}


def server_env(**env: str) -> dict[str, str]:
    """This environment without the variables the configs read, plus `env`."""
    read = ("NATS_SERVER_NAME", *CREDENTIALS)
    return {**{k: v for k, v in os.environ.items() if k not in read}, **env}


def config_check(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "-c", str(path), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        env=server_env(**env),
    )


def rewrite(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in the config any more: update this test"
        text = text.replace(old, new)
    return text


def http_json(url: str) -> tuple[int | None, Any]:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return None, None


def wait_healthy(http_port: int, query: str = "", timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_json(f"http://127.0.0.1:{http_port}/healthz{query}")[0] == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"nats-server on monitoring port {http_port} not healthy")


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        process.wait(10)


# --- static -------------------------------------------------------------------------------


def test_single_server_conf_enables_jetstream_on_a_volume_and_monitoring() -> None:
    text = NATS_CONF.read_text()
    jetstream = nats_block(text, "jetstream")
    assert nats_conf_value(jetstream, "store_dir") == "/data"
    assert nats_conf_value(text, "port") == "4222"
    assert nats_conf_value(text, "http_port") == "8222"
    assert "cluster" not in re.sub(r"#.*", "", text)


def test_cluster_conf_routes_list_three_nodes_and_name_comes_from_env() -> None:
    text = NATS_CLUSTER_CONF.read_text()
    assert nats_conf_value(text, "server_name") == "$NATS_SERVER_NAME"
    assert nats_conf_value(nats_block(text, "jetstream"), "store_dir") == "/data"
    cluster = nats_block(text, "cluster")
    assert nats_conf_value(cluster, "name") == "nova"
    assert nats_routes(text) == [f"nats-route://nats-{n}:6222" for n in (1, 2, 3)]


# --- the real nats-server -----------------------------------------------------------------


def test_nats_server_accepts_both_configs() -> None:
    single = config_check(NATS_CONF, **CREDENTIALS)
    assert single.returncode == 0, single.stderr
    node = config_check(NATS_CLUSTER_CONF, NATS_SERVER_NAME="nats-2", **CREDENTIALS)
    assert node.returncode == 0, node.stderr
    unnamed = config_check(NATS_CLUSTER_CONF, **CREDENTIALS)  # a node needs its name
    assert unnamed.returncode != 0 and "NATS_SERVER_NAME" in unnamed.stderr


@pytest.mark.parametrize("path", [NATS_CONF, NATS_CLUSTER_CONF], ids=["single", "cluster"])
@pytest.mark.parametrize("missing", list(CREDENTIALS))
def test_a_server_without_its_credentials_does_not_start(path: Path, missing: str) -> None:
    given = {k: v for k, v in CREDENTIALS.items() if k != missing}
    check = config_check(path, NATS_SERVER_NAME="nats-1", **given)
    assert check.returncode != 0 and missing in check.stderr


def test_both_configs_require_the_credentials_of_every_client() -> None:
    for path in (NATS_CONF, NATS_CLUSTER_CONF):
        authorization = nats_block(path.read_text(), "authorization")
        assert nats_conf_value(authorization, "user") == "$NATS_USER"
        assert nats_conf_value(authorization, "password") == "$NATS_PASSWORD"


def test_single_server_starts_with_jetstream_healthy(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    conf = tmp_path / "nats.conf"
    conf.write_text(
        rewrite(NATS_CONF.read_text(), {'store_dir: "/data"': f'store_dir: "{tmp_path}/js"'})
    )
    http_port = free_port()
    servers.append(
        subprocess.Popen(
            [
                *(nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1"),
                *("-p", str(free_port()), "-m", str(http_port)),
            ],
            env=server_env(**CREDENTIALS),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    # exactly the compose healthcheck's query: monitoring needs no credential
    wait_healthy(http_port, "?js-enabled-only=true")
    _, varz = http_json(f"http://127.0.0.1:{http_port}/varz")
    assert varz["server_name"] == "nova-nats-1"
    assert varz["jetstream"]["config"]["store_dir"].startswith(str(tmp_path))
    url = f"nats://127.0.0.1:{varz['port']}"

    async def declare() -> Any:
        nc = await connect(NatsSettings(url=url, **CLIENT), name="deploy-test")
        try:
            js = nc.jetstream()
            await ensure_stream(js, NatsSettings(url=url))
            return await js.stream_info("NOVA")
        finally:
            await nc.close()

    assert asyncio.run(declare()).config.name == "NOVA"
    with pytest.raises(NatsAuthenticationError, match="requires a user and password"):
        asyncio.run(connect(NatsSettings(url=url), name="anonymous"))


class NodeExited(RuntimeError):
    """A node stopped while starting (on a shared machine: a free port taken meanwhile)."""


def start_cluster(
    folder: Path, servers: list[subprocess.Popen[bytes]]
) -> tuple[list[int], list[int]]:
    """Three nodes from the cluster template; (client ports, monitoring ports) once healthy."""
    route_ports = [free_port() for _ in range(3)]
    client_ports = [free_port() for _ in range(3)]
    http_ports = [free_port() for _ in range(3)]
    template = NATS_CLUSTER_CONF.read_text()
    started = []
    for index in range(3):
        node = index + 1
        conf = folder / f"nats-{node}.conf"
        conf.write_text(
            rewrite(
                template,
                {
                    'store_dir: "/data"': f'store_dir: "{folder}/nats-{node}"',
                    **{f"nats-{n + 1}:6222": f"127.0.0.1:{route_ports[n]}" for n in range(3)},
                },
            )
        )
        with (folder / f"nats-{node}.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    *(nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1"),
                    *("-p", str(client_ports[index]), "-m", str(http_ports[index])),
                    *("--cluster", f"nats://127.0.0.1:{route_ports[index]}"),
                ],
                env=server_env(NATS_SERVER_NAME=f"nats-{node}", **CREDENTIALS),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        servers.append(process)
        started.append(process)
    deadline = time.monotonic() + 30
    for index, port in enumerate(http_ports):
        # full health: the JetStream meta group has a leader
        while http_json(f"http://127.0.0.1:{port}/healthz")[0] != 200:
            for n, process in enumerate(started):
                if process.poll() is not None:
                    log = (folder / f"nats-{n + 1}.log").read_text()[-800:]
                    raise NodeExited(f"nats-{n + 1} exited {process.returncode}:\n{log}")
            assert time.monotonic() < deadline, f"nats-{index + 1} never became healthy"
            time.sleep(0.1)
    return client_ports, http_ports


def test_three_nodes_form_a_cluster_and_replicate_streams_x3(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    for attempt in range(3):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        try:
            client_ports, http_ports = start_cluster(folder, servers)
            break
        except NodeExited:
            if attempt == 2:
                raise
            for process in servers:
                process.terminate()
                process.wait(10)
            servers.clear()
    deadline = time.monotonic() + 30
    while True:  # every peer caught up, as the meta leader sees it (slow on a busy machine)
        _, jsz = http_json(f"http://127.0.0.1:{http_ports[0]}/jsz")
        leader = (jsz or {}).get("meta_cluster", {}).get("leader") or "nats-1"
        _, jsz = http_json(f"http://127.0.0.1:{http_ports[int(leader[-1]) - 1]}/jsz")
        meta = (jsz or {}).get("meta_cluster", {})
        peers = meta.get("replicas") or []
        if meta.get("leader") == leader and len(peers) == 2 and all(p["current"] for p in peers):
            break
        assert time.monotonic() < deadline, f"meta group never caught up: {meta}"
        time.sleep(0.2)
    assert meta["name"] == "nova"
    assert meta["cluster_size"] == 3

    # The services' stream declaration with NOVA_NATS__REPLICAS=3 gets three copies.
    settings = NatsSettings(url=f"nats://127.0.0.1:{client_ports[1]}", replicas=3, **CLIENT)

    async def declare() -> Any:
        nc = await connect(settings, name="deploy-test")
        try:
            js = nc.jetstream(timeout=20)  # an R3 stream waits for its three peers
            await ensure_stream(js, settings)
            return await js.stream_info(settings.stream)
        finally:
            await nc.close()

    info = asyncio.run(declare())
    assert info.config.num_replicas == 3
    assert info.cluster is not None and info.cluster.leader
    members = {info.cluster.leader, *(r.name for r in info.cluster.replicas or [])}
    assert members == {"nats-1", "nats-2", "nats-3"}
