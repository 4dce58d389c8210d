"""The API as `python -m services.api` runs it (uvicorn over a socket, NATS with a password
in NOVA_NATS__URL): what only a real server shows (issue 13, items 7 and 9)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.broker import connect, ensure_stream
from shared.settings import NatsSettings
from tests.conftest import REPO_ROOT, free_port, json_log_lines, nats_server, stop_process

PASSWORD = "pw-never-in-a-log-7f3a"


def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def declare_stream(url: str) -> None:
    """The stream the ingestor declares in a real stack, so the API's feed can follow it."""

    async def declare() -> None:
        client = await connect(NatsSettings(url=url), "test")
        try:
            await ensure_stream(client.jetstream(), NatsSettings(url=url))
        finally:
            await client.close()

    asyncio.run(declare())


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The API process (empty lake) following a NATS that needs a user and password, given
    inside the URL; its base URL and its log file."""
    tmp = tmp_path_factory.mktemp("api_process")
    nats_port = free_port()
    with nats_server(
        nats_port, "--jetstream", "--store_dir", str(tmp / "nats"), "--addr", "127.0.0.1",
        "--user", "nova", "--pass", PASSWORD,
    ):  # fmt: skip
        nats_url = f"nats://nova:{PASSWORD}@127.0.0.1:{nats_port}"
        declare_stream(nats_url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
        env |= {
            "NOVA_VAR_DIR": str(tmp / "var"),
            "NOVA_API__HOST": "127.0.0.1",
            "NOVA_API__PORT": str(port),
            "NOVA_NATS__URL": nats_url,
            "NOVA_LOG__FORMAT": "json",
        }
        log = tmp / "api.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.api"],
                cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    return httpx.get(f"{url}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(healthy, what="the API answering /health")
            yield url, log
        finally:
            stop_process(process)


def test_the_nats_password_is_never_logged(api):
    """Item 7: the API logged NOVA_NATS__URL as given, password included
    (`event_feed_following`)."""
    _, log = api
    wait_until(
        lambda: any(e.get("event") == "event_feed_following" for e in json_log_lines(log)),
        what="the API following the event stream",
    )
    following = next(e for e in json_log_lines(log) if e.get("event") == "event_feed_following")
    assert following["url"].endswith("127.0.0.1:" + following["url"].rsplit(":", 1)[1])
    assert PASSWORD not in log.read_text(errors="replace")


def raw_get(url: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET `target` on a plain socket (httpx refuses a URL over 64 KiB before sending it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


def test_an_80_kb_query_answers_a_414_problem(api):
    """Item 9: a query longer than h11's 16 KiB head got uvicorn's plain-text 400; the
    gateway's 414 problem (what the document declares) now answers it."""
    url, _ = api
    status, headers, body = raw_get(url, "/api/v1/items?q=" + "x" * 80_000)
    assert status == 414, body[:200]
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 414
    spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
    assert (
        "application/problem+json"
        in (spec["paths"]["/api/v1/items"]["get"]["responses"]["414"]["content"])
    )


def test_trace_answers_405_with_allow_over_a_real_socket(api):
    """Item 9: TRACE got a 405 without `Allow`."""
    url, _ = api
    for path in ("/api/v1/items", "/health", "/static/app.js", "/no/such/path"):
        response = httpx.request("TRACE", f"{url}{path}", timeout=10)
        assert response.status_code == 405, path
        assert response.headers["allow"] == "GET, HEAD", path
        assert response.headers["content-type"] == "application/problem+json", path
