"""Crash the ingestor at every step, restart it, and count: one bronze object and one event
per distinct file. Real nats-server (stream and key-value ledger), real local lake."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.demo.erp_workbook import generate_demo_workbook
from services.ingestor.ledger import JetStreamLedger, LedgerEntry
from services.ingestor.main import JetStreamPublisher
from services.ingestor.service import IngestService
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested, Event
from shared.settings import NovaSettings
from shared.storage import Lake


class Crash(Exception):
    """Stands for the process dying: nothing after the raise runs in this attempt."""


class CrashingLake(Lake):
    crash_after_writes: int | None = None

    def write_parquet_batches(self, path, schema, batches):  # type: ignore[override]
        size = super().write_parquet_batches(path, schema, batches)
        if self.crash_after_writes is not None:
            self.crash_after_writes -= 1
            if self.crash_after_writes <= 0:
                raise Crash(f"after writing {path}")
        return size


class CrashingPublisher(JetStreamPublisher):
    crash_after_publishes: int | None = None

    async def publish(self, event: Event, message_id: str) -> None:
        await super().publish(event, message_id)
        if self.crash_after_publishes is not None:
            self.crash_after_publishes -= 1
            if self.crash_after_publishes <= 0:
                raise Crash(f"after publishing {message_id}")


class CrashingLedger:
    def __init__(self, inner: JetStreamLedger, crash_after_status: str | None) -> None:
        self._inner = inner
        self._crash_after_status = crash_after_status

    async def get(self, content_sha256: str) -> LedgerEntry | None:
        return await self._inner.get(content_sha256)

    async def put(self, entry: LedgerEntry) -> None:
        await self._inner.put(entry)
        if entry.status == self._crash_after_status:
            raise Crash(f"after ledger {entry.status}")


CRASH_POINTS = [
    "after_ledger_started",
    "after_first_bronze_write",
    "after_all_bronze_writes",
    "after_first_publish",
    "after_all_publishes",
    "after_ledger_published",
    "during_archive_move",
]


def _settings(tmp_path: Path, nats_url: str) -> NovaSettings:
    settings = NovaSettings(var_dir=tmp_path / "var")
    settings.nats.url = nats_url
    for folder in (settings.ingestor.inbox_dir, settings.ingestor.archive_dir):
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
    return settings


async def _count_events(js, stream: str) -> dict[str, int]:
    sub = await js.pull_subscribe(
        "nova.v1.bronze.ingested.>",
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    counts: dict[str, int] = {}
    try:
        while True:
            for message in await sub.fetch(100, timeout=1):
                event = BronzeIngested.model_validate_json(message.data)
                counts[event.dataset] = counts.get(event.dataset, 0) + 1
    except TimeoutError:
        pass
    await sub.unsubscribe()
    return counts


@pytest.fixture(scope="module")
def demo_workbook(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    return generate_demo_workbook(folder, seed=3, items=40, depots=10, days=60).path


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_a_crash_at_any_step_leaves_one_bronze_object_and_one_event_per_dataset(
    tmp_path, nats_url, demo_workbook, crash_point
):
    settings = _settings(tmp_path, nats_url)
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    dropped = inbox / "suprimentos.xlsx"
    shutil.copy(demo_workbook, dropped)
    day_one = datetime(2025, 3, 31, 23, 59, tzinfo=UTC)

    async def scenario() -> tuple[dict[str, int], list[str], LedgerEntry | None]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        ledger = await JetStreamLedger.open(js, settings.ingestor.ledger_bucket)

        lake = CrashingLake.from_settings(settings.storage)
        publisher = CrashingPublisher(js)
        crash_status = {
            "after_ledger_started": "started",
            "after_ledger_published": "published",
        }.get(crash_point)
        if crash_point == "after_first_bronze_write":
            lake.crash_after_writes = 1
        if crash_point == "after_all_bronze_writes":
            lake.crash_after_writes = 3  # the demo workbook feeds three datasets
        if crash_point == "after_first_publish":
            publisher.crash_after_publishes = 1
        if crash_point == "after_all_publishes":
            publisher.crash_after_publishes = 3
        first = IngestService(
            lake,
            publisher,
            CrashingLedger(ledger, crash_status),
            settings.ingestor,
            clock=lambda: day_one,
        )
        if crash_point == "during_archive_move":

            def crash_on_move(source: Path, target: Path) -> Path:
                raise Crash("during the move")

            first._move = crash_on_move  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await first.process(dropped)
        assert dropped.exists(), "a crash before the move leaves the file in the inbox"

        # The restart happens the next day: the bronze partition must not change with it.
        restarted = IngestService(
            Lake.from_settings(settings.storage),
            JetStreamPublisher(js),
            ledger,
            settings.ingestor,
            clock=lambda: day_one + timedelta(days=1),
        )
        outcome = await restarted.process(dropped)
        assert outcome.status in ("ingested", "duplicate")
        counts = await _count_events(js, settings.nats.stream)
        entry = await ledger.get(outcome.content_sha256)
        await nc.close()
        bronze = Lake.from_settings(settings.storage).list_files("bronze")
        return counts, bronze, entry

    counts, bronze, entry = asyncio.run(scenario())
    assert counts == {"erp_requisitions": 1, "erp_cost_summary": 1, "erp_sites": 1}
    assert len(bronze) == 3, bronze
    assert all("/year=2025/month=03/day=31/" in path for path in bronze), bronze
    assert entry is not None and entry.status == "published"
    assert not any(inbox.iterdir()), "the file left the inbox"
    archived = list((settings.ingestor.archive_dir or Path()).rglob("*suprimentos.xlsx"))
    assert len(archived) == 1
    assert archived[0].read_bytes() == demo_workbook.read_bytes()


def test_an_identical_file_dropped_again_after_the_duplicate_window_is_a_no_op(
    tmp_path, nats_url, demo_workbook
):
    """JetStream forgets message ids after its window; the ledger does not."""
    settings = _settings(tmp_path, nats_url)
    settings.nats.duplicate_window_seconds = 1
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None

    async def scenario() -> tuple[list[str], dict[str, int]]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        ledger = await JetStreamLedger.open(js, settings.ingestor.ledger_bucket)

        def service() -> IngestService:
            lake = Lake.from_settings(settings.storage)
            return IngestService(lake, JetStreamPublisher(js), ledger, settings.ingestor)

        statuses = []
        for name in ("first.xlsx", "copy-with-another-name.xlsx"):
            shutil.copy(demo_workbook, inbox / name)
            statuses.append((await service().process(inbox / name)).status)
            await asyncio.sleep(1.5)  # past the duplicate window
        counts = await _count_events(js, settings.nats.stream)
        await nc.close()
        return statuses, counts

    statuses, counts = asyncio.run(scenario())
    assert statuses == ["ingested", "duplicate"]
    assert counts == {"erp_requisitions": 1, "erp_cost_summary": 1, "erp_sites": 1}


def test_the_ledger_survives_a_nats_server_restart(tmp_path, demo_workbook):
    """The ledger lives in JetStream file storage: restart the server, the entry is still there."""
    import subprocess

    from services.cli.runtime import nats_server_binary
    from tests.conftest import free_port, wait_for_port

    port = free_port()
    command = [
        nats_server_binary(),
        "--jetstream",
        "--store_dir",
        str(tmp_path / "nats"),
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    settings = _settings(tmp_path, f"nats://127.0.0.1:{port}")
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None

    async def ingest(name: str) -> str:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        ledger = await JetStreamLedger.open(js, settings.ingestor.ledger_bucket)
        lake = Lake.from_settings(settings.storage)
        service = IngestService(lake, JetStreamPublisher(js), ledger, settings.ingestor)
        shutil.copy(demo_workbook, inbox / name)
        outcome = await service.process(inbox / name)
        await nc.close()
        return outcome.status

    statuses = []
    for name in ("a.xlsx", "b.xlsx"):
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            statuses.append(asyncio.run(ingest(name)))
        finally:
            server.terminate()
            server.wait(10)
    assert statuses == ["ingested", "duplicate"]
