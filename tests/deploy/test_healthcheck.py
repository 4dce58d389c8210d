"""deploy/healthcheck.py, the images' healthcheck, against real sockets and HTTP servers."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT, free_port

SCRIPT = REPO_ROOT / "deploy" / "healthcheck.py"


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nova_healthcheck", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load_healthcheck()


class Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path in ("/health", "/metrics") else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_api_is_healthy_when_health_answers_200(http_port: int) -> None:
    ok, detail = healthcheck.check("api", {"NOVA_API__PORT": str(http_port)})
    assert ok, detail
    down, detail = healthcheck.check("api", {"NOVA_API__PORT": str(free_port())})
    assert not down and "/health" in detail


def test_api_is_unhealthy_on_a_server_error(http_port: int, monkeypatch) -> None:
    monkeypatch.setattr(Handler, "status", 503)
    ok, _ = healthcheck.check("api", {"NOVA_API__PORT": str(http_port)})
    assert not ok


def test_ingestor_checks_its_metrics_endpoint_or_nats(http_port: int, listening_port: int) -> None:
    assert healthcheck.check("ingestor", {"NOVA_INGESTOR__METRICS_PORT": str(http_port)})[0]
    assert not healthcheck.check("ingestor", {"NOVA_INGESTOR__METRICS_PORT": str(free_port())})[0]
    metrics_off = {
        "NOVA_INGESTOR__METRICS_PORT": "0",
        "NOVA_NATS__URL": f"nats://127.0.0.1:{listening_port}",
    }
    assert healthcheck.check("ingestor", metrics_off)[0]


def test_transformer_and_forecaster_need_any_nats_server_of_the_list(
    listening_port: int,
) -> None:
    dead = free_port()
    cluster = f"nats://127.0.0.1:{dead},nats://127.0.0.1:{listening_port}"
    for service in ("transformer", "forecaster"):
        ok, detail = healthcheck.check(service, {"NOVA_NATS__URL": cluster})
        assert ok, detail
    ok, detail = healthcheck.check("transformer", {"NOVA_NATS__URL": f"nats://127.0.0.1:{dead}"})
    assert not ok and f"127.0.0.1:{dead}" in detail
    assert not healthcheck.check("", {})[0]


def test_script_exit_code(http_port: int) -> None:
    def run(port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT)],
            env={"SERVICE": "api", "NOVA_API__PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=20,
        )

    healthy = run(http_port)
    assert healthy.returncode == 0 and healthy.stdout.startswith("healthy")
    sick = run(free_port())
    assert sick.returncode == 1 and sick.stdout.startswith("unhealthy")
