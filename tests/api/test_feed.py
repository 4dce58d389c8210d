"""The API following a real nats-server: gold events switch versions at once, ingestion events
fill `/api/v1/ingestions`, and a broker that comes late is picked up."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.feed import EventFeed
from services.cli.runtime import nats_server_binary
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested, GoldUpdated, IngestRejected, TableVersion
from shared.settings import ApiSettings, NatsSettings, StorageSettings
from shared.storage import Lake
from tests.api.test_gold_switch import commit_build
from tests.conftest import free_port, nats_server, wait_for_port


def publish(url: str, *events) -> None:
    async def send() -> None:
        settings = NatsSettings(url=url)
        client = await connect(settings, "test")
        js = client.jetstream()
        await ensure_stream(js, settings)
        for event in events:
            await js.publish(event.subject, event.model_dump_json().encode())
        await client.drain()

    asyncio.run(send())


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def api(lake: Lake, url: str) -> TestClient:
    def feed(poke: Callable[[], None]) -> EventFeed:
        return EventFeed(NatsSettings(url=url, connect_timeout_seconds=1), poke, keep=3)

    # No periodic check within the test: only an event can make the API look at gold.
    return TestClient(create_app(ApiSettings(version_check_seconds=3600), lake, feed_factory=feed))


def test_events_switch_gold_and_list_ingestions(nats_url, tmp_path):
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    commit_build(lake, 1)
    publish(nats_url)  # the stream exists before the API subscribes, as in a running stack
    with api(lake, nats_url) as client:
        wait_until(lambda: client.get("/api/v1/ingestions").json()["events_connected"])
        assert client.get("/api/v1/items/000001").json()["request_lines"] == 1
        commit_build(lake, 2)
        time.sleep(0.3)
        assert client.get("/api/v1/items/000001").json()["request_lines"] == 1, "no event yet"
        ingested = [
            BronzeIngested(
                producer="test",
                correlation_id=f"c{n}",
                dataset="erp_requisitions",
                bronze_path=f"bronze/x/{n}.parquet",
                content_sha256="0" * 64,
                source_name=f"export-{n}.xlsx",
                row_count=10 + n,
            )
            for n in range(3)
        ]
        rejected = IngestRejected(
            producer="test", correlation_id="r", dataset="stock_movements",
            source_name="broken.csv", content_sha256="1" * 64, reason="no header row",
            column=None, row=None,
        )  # fmt: skip
        gold = GoldUpdated(
            producer="test", correlation_id="g", build_id="b",
            tables=[TableVersion(table="gold.dim_item", version=1, row_count=5)],
            source_events=[],
        )  # fmt: skip
        publish(nats_url, *ingested, rejected, gold)
        wait_until(lambda: client.get("/api/v1/items/000001").json()["request_lines"] == 2)
        wait_until(lambda: len(client.get("/api/v1/ingestions").json()["recent"]) == 3)
        recent = client.get("/api/v1/ingestions").json()["recent"]
        # keep=3: the oldest ingestion fell out; newest first
        assert [r["source_name"] for r in recent] == [
            "broken.csv",
            "export-2.xlsx",
            "export-1.xlsx",
        ]
        assert recent[0]["outcome"] == "rejected" and recent[0]["reason"] == "no header row"
        assert recent[1]["outcome"] == "ingested" and recent[1]["row_count"] == 12


def test_ingestions_published_before_the_api_started_are_listed(nats_url, tmp_path):
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    event = BronzeIngested(
        producer="test", correlation_id="c", dataset="selic", bronze_path="bronze/s.parquet",
        content_sha256="2" * 64, source_name="selic.json", row_count=5,
    )  # fmt: skip
    publish(nats_url, event)
    with api(lake, nats_url) as client:
        wait_until(lambda: client.get("/api/v1/ingestions").json()["recent"] != [])
        assert client.get("/api/v1/ingestions").json()["recent"][0]["source_name"] == "selic.json"


def test_a_broker_that_starts_late_is_followed(tmp_path):
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    commit_build(lake, 1)
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    with api(lake, url) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/items/000001").status_code == 200, "serves without NATS"
        assert client.get("/api/v1/ingestions").json()["events_connected"] is False
        server = subprocess.Popen(
            [nats_server_binary(), "--jetstream", "--store_dir", str(tmp_path / "nats"),
             "--addr", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port)
            wait_until(lambda: client.get("/api/v1/ingestions").json()["events_connected"], 30)
            commit_build(lake, 2)
            gold = GoldUpdated(
                producer="test", correlation_id="g", build_id="b", tables=[], source_events=[]
            )
            publish(url, gold)
            wait_until(lambda: client.get("/api/v1/items/000001").json()["request_lines"] == 2)
        finally:
            server.terminate()
            server.wait(10)


def test_a_refused_nats_login_is_reported_and_gold_still_served(tmp_path):
    """NATS refusing the API's credentials cannot be fixed by retrying: the feed stops, says
    why in /status and /ingestions, and gold stays readable through the periodic check."""
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    commit_build(lake, 1)
    with nats_server(free_port(), "--user", "nova", "--pass", "right-password") as url:

        def feed(poke: Callable[[], None]) -> EventFeed:
            settings = NatsSettings(url=url, user="nova", password="wrong-password")
            return EventFeed(settings, poke, keep=3)

        app = create_app(ApiSettings(version_check_seconds=0.05), lake, feed_factory=feed)
        with TestClient(app) as client:
            wait_until(lambda: client.get("/api/v1/status").json()["events_error"] is not None)
            status = client.get("/api/v1/status").json()
            assert "authentication failed" in status["events_error"]
            assert "wrong-password" not in status["events_error"]
            ingestions = client.get("/api/v1/ingestions").json()
            assert ingestions["events_connected"] is False
            assert ingestions["events_error"] == status["events_error"]
            wait_until(lambda: client.get("/ready").status_code == 200)  # events are optional
            commit_build(lake, 2)
            wait_until(lambda: client.get("/api/v1/items/000001").json()["request_lines"] == 2)
