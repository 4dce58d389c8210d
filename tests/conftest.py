"""Fixtures shared by the suite: free ports, a real nats-server, the real data folder."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.cli.runtime import nats_server_binary

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = REPO_ROOT.parent / "shared" / "data"
REAL_WORKBOOK = REAL_DATA / "erp" / "dadosSuprimentos.xlsx"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A real nats-server with JetStream, on a free port, storing under tmp_path."""
    port = free_port()
    with nats_server(
        port, "--jetstream", "--store_dir", str(tmp_path / "nats"), "--addr", "127.0.0.1"
    ) as url:
        yield url


@pytest.fixture
def real_workbook() -> Path:
    if not REAL_WORKBOOK.exists():
        pytest.skip(f"real ERP workbook not present at {REAL_WORKBOOK} (it lives outside the repo)")
    return REAL_WORKBOOK


@contextmanager
def nats_server(port: int, *arguments: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`nats-server --port <port> <arguments>` (env: its whole environment); its URL once it
    listens on 127.0.0.1, terminated on exit."""
    process = subprocess.Popen(
        [nats_server_binary(), "--port", str(port), *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def stop_process(
    process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0
) -> bool:
    """Send `sig` to a running `process` and wait for it to exit, SIGKILL after `timeout`;
    returns whether it had to be killed."""
    if process.poll() is not None:
        return False
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return True
    return False


def json_log_lines(path: Path) -> list[dict]:
    """The JSON lines of a service's log file; none when it does not exist yet. Lines that do
    not parse (cut by a SIGKILL, being written now, a library's own output) are left out."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


@pytest.fixture
def s3() -> Iterator[object]:
    """moto's S3 server, started for the test (tests/e2e/s3.py)."""
    from tests.e2e.s3 import MotoS3

    server = MotoS3()
    server.start()
    yield server
    server.stop()
