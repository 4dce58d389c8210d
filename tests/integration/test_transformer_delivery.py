"""How the transformer answers failed deliveries, on a real nats-server."""

from __future__ import annotations

import asyncio
import itertools
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError
from faststream.nats import NatsBroker
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType

from services.transformer import main as transformer_main
from services.transformer.builds import BuildResult
from services.transformer.main import (
    BuildLease,
    LeaseLostError,
    build_app,
    conflict_retry_delay_seconds,
    error_header,
    is_commit_conflict,
    retry_delay_seconds,
)
from shared.broker import connect, ensure_stream
from shared.events import BRONZE_INGESTED_ANY, BronzeIngested
from shared.settings import NovaSettings


def _event(dataset: str, bronze_path: str) -> BronzeIngested:
    return BronzeIngested(
        producer="test",
        correlation_id="c",
        dataset=dataset,
        bronze_path=bronze_path,
        content_sha256="cd" * 32,
        source_name="x.xlsx",
        row_count=1,
    )


@pytest.mark.parametrize(
    ("delivery", "delay"), [(1, 1.0), (2, 2.0), (4, 8.0), (7, 60.0), (30, 60.0), (0, 1.0)]
)
def test_retry_delay_doubles_up_to_a_minute(delivery, delay):
    assert retry_delay_seconds(delivery) == delay


def test_permanent_errors_are_terminated_and_lake_errors_retried_with_backoff(nats_url, tmp_path):
    settings = NovaSettings(var_dir=tmp_path, nats={"url": nats_url})

    async def scenario() -> tuple[object, object, float]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        app = build_app(settings)
        await app.broker.start()
        try:
            unknown = _event("no_such_dataset", "bronze/x/1.parquet")
            await js.publish(unknown.subject, unknown.to_bytes())
            missing = _event("erp_requisitions", "bronze/erp_requisitions/missing.parquet")
            await js.publish(missing.subject, missing.to_bytes())
            started = time.monotonic()
            # Second delivery of the failing event is due ~1 s after the first failure.
            deadline = started + 15
            info = await js.consumer_info(settings.nats.stream, "transformer")
            while info.num_redelivered < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                info = await js.consumer_info(settings.nats.stream, "transformer")
            redelivered_after = time.monotonic() - started
            await asyncio.sleep(0.3)
            final = await js.consumer_info(settings.nats.stream, "transformer")
        finally:
            await app.broker.stop()
            await nc.close()
        return info, final, redelivered_after

    info, final, redelivered_after = asyncio.run(scenario())
    assert info.num_redelivered == 1  # only the lake failure comes back, not the unknown dataset
    assert redelivered_after >= 0.9  # nacked with a delay, not at once
    assert final.num_ack_pending == 1  # the failing event is still owned, awaiting its retry
    assert final.delivered.stream_seq == 2


async def _first_event_acked(js, settings: NovaSettings, timeout: float):
    """The transformer consumer's info once it acked the stream's first event (or timed out)."""
    deadline = time.monotonic() + timeout
    info = await js.consumer_info(settings.nats.stream, "transformer")
    while info.ack_floor.stream_seq < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        info = await js.consumer_info(settings.nats.stream, "transformer")
    return info


def _real_commit_conflict(tmp_path) -> CommitFailedError:
    """What deltalake raises when another writer committed since this one read the table."""
    uri = str(tmp_path / "table")
    write_deltalake(uri, pa.table({"k": ["a", "b"]}))
    stale = DeltaTable(uri)
    write_deltalake(DeltaTable(uri), pa.table({"k": ["a"]}), mode="overwrite", predicate="k = 'a'")
    with pytest.raises(CommitFailedError) as caught:
        write_deltalake(stale, pa.table({"k": ["b"]}), mode="overwrite", predicate="k = 'b'")
    return caught.value


def test_commit_conflicts_are_recognised_also_when_wrapped(tmp_path):
    conflict = _real_commit_conflict(tmp_path)
    assert is_commit_conflict(conflict)
    try:
        raise RuntimeError("gold build failed") from conflict
    except RuntimeError as wrapped:
        assert is_commit_conflict(wrapped)
    assert not is_commit_conflict(FileNotFoundError("bronze/x.parquet"))
    delays = {conflict_retry_delay_seconds() for _ in range(50)}
    assert all(0.2 <= d <= 1.0 for d in delays) and len(delays) > 1  # short, and jittered


def test_error_header_is_one_line_of_at_most_1_kb():
    assert error_header(ValueError("bad\r\nvalue\tthere")) == "ValueError: bad value there"
    long = error_header(ValueError("ç" * 2000))  # two bytes each: cut on a character boundary
    assert long.startswith("ValueError: ççç")
    assert 1020 < len(long.encode()) <= 1024


def test_streams_are_declared_with_a_dead_letter_stream_beside_the_events(nats_url):
    settings = NovaSettings(nats={"url": nats_url, "dlq_max_age_days": 90})

    async def scenario() -> tuple[object, object]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        await ensure_stream(js, settings.nats)  # idempotent
        events, dlq = await js.stream_info("NOVA"), await js.stream_info("NOVA_DLQ")
        await nc.close()
        return events.config, dlq.config

    events, dlq = asyncio.run(scenario())
    assert events.subjects == ["nova.v1.>"]
    assert dlq.subjects == ["nova.dlq.v1.>"]
    assert dlq.storage == StorageType.FILE
    assert dlq.max_age == 90 * 24 * 3600


def test_build_lease_is_held_by_one_replica_at_a_time(nats_url, monkeypatch):
    # The waiting replica also looks again every LEASE_RECHECK_SECONDS (1 s) on its own. With
    # that look pushed out of reach, only the release can wake it in time, so the wait below
    # can be generous (a loaded machine) and still tell a wake-up from a poll.
    monkeypatch.setattr(transformer_main, "LEASE_RECHECK_SECONDS", 120.0)

    async def scenario() -> None:
        brokers = [NatsBroker(nats_url), NatsBroker(nats_url)]
        for broker in brokers:
            await broker.connect()
        first, second = BuildLease(brokers[0]), BuildLease(brokers[1])
        try:
            held = await first.acquire()
            waiting = asyncio.create_task(second.acquire())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the other replica waits for it
            held = await first.refresh(held)
            await first.release(held)
            taken = await asyncio.wait_for(waiting, 20)  # woken by the release, not a poll
            # Expired (here: removed) while the first still thought it held it: it finds out.
            kv = await brokers[0].key_value("nova_transformer_lease")
            await kv.purge("build")
            again = await first.acquire()
            with pytest.raises(LeaseLostError):
                await second.refresh(taken)
            await first.release(again)
        finally:
            for broker in brokers:
                await broker.stop()

    asyncio.run(scenario())


def test_commit_conflicts_are_retried_soon_and_then_acked(nats_url, tmp_path, monkeypatch):
    conflict = _real_commit_conflict(tmp_path)
    deliveries: list[float] = []
    delays: list[float] = []  # what the transformer chose for each nak (random, 0.2 to 1 s)
    choose_delay = transformer_main.conflict_retry_delay_seconds

    def recorded_delay() -> float:
        delays.append(choose_delay())
        return delays[-1]

    def conflicting_build(lake, event) -> BuildResult:
        deliveries.append(time.monotonic())
        if len(deliveries) <= 3:
            raise conflict  # another replica committed first, three times in a row
        return BuildResult(build_id="b" * 32, tables=[])

    # Only the build is replaced: the broker, the consumer and the retries are real.
    monkeypatch.setattr(transformer_main, "apply_bronze_event", conflicting_build)
    monkeypatch.setattr(transformer_main, "conflict_retry_delay_seconds", recorded_delay)
    settings = NovaSettings(var_dir=tmp_path, nats={"url": nats_url})

    async def scenario() -> object:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        app = build_app(settings)
        await app.broker.start()
        try:
            event = _event("erp_requisitions", "bronze/erp_requisitions/x.parquet")
            await js.publish(event.subject, event.to_bytes())
            info = await _first_event_acked(js, settings, timeout=15)
        finally:
            await app.broker.stop()
            await nc.close()
        return info

    info = asyncio.run(scenario())
    assert len(deliveries) == 4
    assert info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0
    gaps = [b - a for a, b in itertools.pairwise(deliveries)]
    assert len(delays) == 3 and all(0.2 <= d <= 1.0 for d in delays), delays
    # Each retry waited out its nak delay (JetStream honoured it), so never came back at once.
    assert all(gap >= delay - 0.05 for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)
    # The generic backoff would wait 1 + 2 + 4 s; conflicts come back within about a second.
    # The bounds leave ~1 s per retry for a loaded machine (redelivery, lease round trips, a
    # descheduled process) and still sit below the generic backoff from the second retry on.
    assert all(gap < 2.0 for gap in gaps), (gaps, delays)
    assert sum(gaps) < 6.0, (gaps, delays)


def test_an_existing_consumer_is_brought_to_the_configured_ack_wait(nats_url, tmp_path):
    # Imported here so that the rest of this file still runs against a transformer without it.
    from services.transformer.main import update_consumer

    settings = NovaSettings(var_dir=tmp_path, nats={"url": nats_url})
    assert settings.transformer.ack_wait_seconds <= 20  # a crashed build is redelivered soon

    async def scenario() -> tuple[bool, float, int, bool]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        try:
            # As an older release left it: created by FastStream with a five-minute ack wait.
            old = ConsumerConfig(
                name="transformer",
                durable_name="transformer",
                filter_subject=BRONZE_INGESTED_ANY,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=4,
                ack_wait=300.0,
            )
            await js.add_consumer(settings.nats.stream, config=old)
            changed = await update_consumer(js, settings)
            app = build_app(settings)
            await app.broker.start()  # binds to the updated consumer as it is
            await app.broker.stop()
            info = await js.consumer_info(settings.nats.stream, "transformer")
            again = await update_consumer(js, settings)
        finally:
            await nc.close()
        return changed, info.config.ack_wait, info.config.max_deliver, again

    changed, ack_wait, max_deliver, again = asyncio.run(scenario())
    assert changed and not again
    assert ack_wait == settings.transformer.ack_wait_seconds
    assert max_deliver == settings.transformer.max_deliver


@pytest.mark.slow
def test_a_build_longer_than_the_ack_wait_is_delivered_once(nats_url, tmp_path, monkeypatch):
    """Progress reports keep a long build's event with its replica: the other replica, pulling
    from the same consumer all along, never gets it, and it is built once."""
    ack_wait = 2.0
    builds: list[str] = []

    def long_build(lake, event) -> BuildResult:
        builds.append(event.event_id)
        time.sleep(2.5 * ack_wait)  # in the build thread, as a real build's work is
        return BuildResult(build_id="c" * 32, tables=[])

    monkeypatch.setattr(transformer_main, "apply_bronze_event", long_build)
    settings = NovaSettings(
        var_dir=tmp_path, nats={"url": nats_url}, transformer={"ack_wait_seconds": ack_wait}
    )

    async def scenario() -> object:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        replicas = [build_app(settings), build_app(settings)]
        for app in replicas:
            await app.broker.start()
        try:
            event = _event("erp_requisitions", "bronze/erp_requisitions/x.parquet")
            await js.publish(event.subject, event.to_bytes())
            info = await _first_event_acked(js, settings, timeout=30)
        finally:
            for app in replicas:
                await app.broker.stop()
            await nc.close()
        return info

    info = asyncio.run(scenario())
    assert info.ack_floor.stream_seq == 1, info
    assert len(builds) == 1, builds
    assert info.num_redelivered == 0 and info.delivered.consumer_seq == 1, info
