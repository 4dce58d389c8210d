"""`nova up` over a real lake (issue 13, items 1 and 7): its own API calls carry the key, a
refusal is an error and never "no items", the demo goes only into an empty lake, the embedded
NATS demands the configured user and password, and the banner shows what is really bound and
never a password."""

from __future__ import annotations

import asyncio
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import nats
import pytest
from nats.errors import Error as NatsError

from services.cli.runtime import RuntimeFailure, Stack, demo_refusal
from services.demo.erp_workbook import generate_demo_workbook
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.cli.test_supervision import UpProcess
from tests.conftest import free_port
from tests.demo_lake import build_demo_gold

PASSWORD = "pw-never-printed"


class _Refusing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "application/problem+json")
        self.end_headers()
        self.wfile.write(b'{"title": "API key required"}')

    def log_message(self, *args) -> None:
        pass


def test_a_refusing_api_is_an_error_never_zero_items(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = NovaSettings(var_dir=tmp_path, api={"port": server.server_address[1]})
        with pytest.raises(RuntimeFailure, match=r"refused nova up's request \(401\)"):
            Stack(settings).item_count()
    finally:
        server.shutdown()
        server.server_close()


def test_only_an_empty_lake_takes_the_demo(tmp_path):
    settings = NovaSettings(var_dir=tmp_path / "var")
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    inbox.mkdir(parents=True)
    (inbox / "~$planilha.xlsx").write_bytes(b"lock")  # left alone by the ingestor: no data
    assert demo_refusal(settings) is None
    archived = tmp_path / "var" / "archive" / "2026" / "abc-real.xlsx"
    archived.parent.mkdir(parents=True)
    archived.write_bytes(b"real")
    refusal = demo_refusal(settings)
    assert refusal is not None
    assert "1 files in the archive" in refusal
    assert "--force-demo" in refusal


async def _nats_connects(url: str, **credentials: str) -> bool:
    try:
        client = await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5, **credentials
        )
    except NatsError as error:
        assert "authorization violation" in str(error).lower(), error
        return False
    await client.close()
    return True


@pytest.mark.slow
def test_nova_up_with_keys_over_a_lake_with_data_drops_no_demo_and_counts_right(tmp_path):
    settings = build_demo_gold(tmp_path / "var", seed=3, items=12, depots=4, days=60)
    lake = Lake.from_settings(settings.storage)
    expected_items = lake.delta_table("gold", "dim_item").to_pyarrow_table().num_rows
    archived = sorted(p.name for p in (tmp_path / "var" / "archive").rglob("*") if p.is_file())
    inbox = tmp_path / "var" / "inbox"
    ignored = {".hidden.csv", "~$planilha.xlsx", "export.csv.part"}
    for name in ignored:  # none of these may hold the forecast's start back
        (inbox / name).write_text("x")
    nats_port, metrics_port = free_port(), free_port()
    # Something else holds the metrics port on 127.0.0.1: the check looks at the metrics host.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", metrics_port))
        holder.listen()
        up = UpProcess.start(
            tmp_path,
            env={
                "NOVA_NATS__URL": f"nats://127.0.0.1:{nats_port}",
                "NOVA_NATS__USER": "nova",
                "NOVA_NATS__PASSWORD": PASSWORD,
                "NOVA_INGESTOR__METRICS_HOST": "127.0.0.2",
                "NOVA_INGESTOR__METRICS_PORT": str(metrics_port),
                "NOVA_FORECASTER__JOBS": "1",
                "NOVA_FORECASTER__METRICS_PORT": "0",
            },
            api_key="key-1,key-2",
        )
        try:
            banner = up.wait_until_up()
            assert "demo not dropped: the lake already holds data" in up.text
            assert f"  items now  {expected_items}\n" in banner
            assert up.item_total() == expected_items
            assert httpx.get(f"{up.api}/api/v1/items", timeout=5).status_code == 401
            assert {p.name for p in inbox.iterdir()} == ignored
            now_archived = (p.name for p in (up.var_dir / "archive").rglob("*") if p.is_file())
            assert sorted(now_archived) == archived
            assert "  forecast   running in the background" in banner

            # The banner shows what is bound, and no password.
            assert PASSWORD not in up.text
            assert f"  NATS       nats://127.0.0.1:{nats_port}   (user nova, password req" in banner
            metrics = f"http://127.0.0.2:{metrics_port}/metrics"
            assert f"  metrics    {metrics}   " in banner
            assert httpx.get(metrics, timeout=5).status_code == 200

            # The embedded NATS demands the credentials; they never show in a process list.
            url = f"nats://127.0.0.1:{nats_port}"
            assert not asyncio.run(_nats_connects(url))
            assert not asyncio.run(_nats_connects(url, user="nova", password="wrong"))
            assert asyncio.run(_nats_connects(url, user="nova", password=PASSWORD))
            nats_pid = up.child_pid("nats-server")
            assert nats_pid is not None
            assert PASSWORD.encode() not in Path(f"/proc/{nats_pid}/cmdline").read_bytes()
            # nor in its environment: nova up hands nats-server no NOVA_ setting
            assert PASSWORD.encode() not in Path(f"/proc/{nats_pid}/environ").read_bytes()
            config = up.var_dir / "nats-server.conf"
            assert stat.S_IMODE(config.stat().st_mode) == 0o600
        finally:
            code, output = up.stop()
    assert code == 0, output


@pytest.mark.slow
def test_nova_up_with_keys_over_an_empty_lake_loads_the_demo(tmp_path):
    up = UpProcess.start(tmp_path, "--no-forecast", api_key="key-1")
    try:
        banner = up.wait_until_up()
        assert "dropped dadosSuprimentos_demo.xlsx" in up.text
        shown = int(banner.split("  items now  ")[1].split("\n")[0])
        assert 0 < shown <= up.item_total()
    finally:
        code, output = up.stop()
    assert code == 0, output


@pytest.mark.slow
def test_exports_already_in_the_inbox_of_an_empty_lake_are_waited_for_and_forecast(tmp_path):
    """No demo: the planner's own exports were in the inbox before the first start. The banner
    counts their materials and the forecast starts, instead of `items now 0` and no forecast."""
    inbox = tmp_path / "var" / "inbox"
    inbox.mkdir(parents=True)
    workbook = generate_demo_workbook(tmp_path / "exports", items=6, depots=3, days=60, seed=4)
    workbook.path.replace(inbox / workbook.path.name)
    up = UpProcess.start(
        tmp_path,
        "--no-demo",
        env={"NOVA_FORECASTER__JOBS": "1", "NOVA_FORECASTER__METRICS_PORT": "0"},
    )
    try:
        banner = up.wait_until_up()
        assert int(banner.split("  items now  ")[1].split("\n")[0]) == workbook.items
        assert "forecast   running in the background" in banner
    finally:
        code, output = up.stop()
    assert code == 0, output
