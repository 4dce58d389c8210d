"""The transformer while the lake is away: a build that fails because storage does not answer is
waited out and built again in the same delivery, so an outage never dead-letters an event."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.transformer import main as transformer_main
from services.transformer.builds import BuildResult, UnknownDatasetError
from services.transformer.main import build_app, error_header, through_storage_outages
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.integration.test_transformer_delivery import _real_commit_conflict

RESULT = BuildResult(build_id="b" * 32, tables=[])
S3_DOWN = OSError("Kernel error -> Generic S3 error: error sending request: connection refused")


class Storage:
    """What `Lake.reachable` answers: down for the first `down_for` looks, then up."""

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.looks = 0

    def reachable(self) -> bool:
        self.looks += 1
        return self.looks > self.down_for


class FailingBuild:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> BuildResult:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return RESULT


def test_a_build_failing_while_storage_is_away_is_built_again_once_it_answers():
    storage = Storage(down_for=3)  # the look after the failure, then two while waiting
    build = FailingBuild([S3_DOWN])
    result = asyncio.run(through_storage_outages(storage, build, recheck_first_seconds=0.01))
    assert result is RESULT
    assert build.calls == 2
    assert storage.looks == 4


def test_a_failure_with_storage_answering_is_the_events_own_and_raised():
    storage = Storage(down_for=0)
    missing = FileNotFoundError("bronze/erp_requisitions/x.parquet")
    build = FailingBuild([missing])
    with pytest.raises(FileNotFoundError):
        asyncio.run(through_storage_outages(storage, build, recheck_first_seconds=0.01))
    assert build.calls == 1


@pytest.mark.parametrize("kind", ["unknown dataset", "commit conflict"])
def test_permanent_errors_and_conflicts_are_raised_without_looking_at_storage(kind, tmp_path):
    error = (
        UnknownDatasetError("no silver transform")
        if kind == "unknown dataset"
        else _real_commit_conflict(tmp_path)
    )
    storage = Storage(down_for=100)
    with pytest.raises(type(error)):
        asyncio.run(through_storage_outages(storage, FailingBuild([error]), 0.01))
    assert storage.looks == 0


def test_error_header_drops_the_terminal_colours_of_deltalake_messages():
    coloured = OSError("Generic S3 error\n   \x1b[31m↳\x1b[0m Error performing GET http://x")
    assert error_header(coloured) == "OSError: Generic S3 error ↳ Error performing GET http://x"


def test_an_outage_uses_no_delivery_even_with_a_single_one_allowed(nats_url, tmp_path, monkeypatch):
    """On a real nats-server: with max_deliver=1 any failure counted as a delivery would
    dead-letter the event at once; an outage must not."""
    storage = {"up": False}
    builds: list[float] = []

    def build(lake, event) -> BuildResult:
        builds.append(time.monotonic())
        if not storage["up"]:
            raise S3_DOWN
        return RESULT

    monkeypatch.setattr(transformer_main, "apply_bronze_event", build)
    monkeypatch.setattr(Lake, "reachable", lambda self: storage["up"])
    settings = NovaSettings(
        var_dir=tmp_path, nats={"url": nats_url}, transformer={"max_deliver": 1}
    )

    async def scenario() -> tuple[object, object]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        app = build_app(settings)
        await app.broker.start()
        try:
            event = BronzeIngested(
                producer="test",
                correlation_id="c",
                dataset="erp_requisitions",
                bronze_path="bronze/erp_requisitions/x.parquet",
                content_sha256="cd" * 32,
                source_name="x.xlsx",
                row_count=1,
            )
            await js.publish(event.subject, event.to_bytes())
            deadline = time.monotonic() + 15
            while not builds and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.5)  # down for a while: looks at 1 s and 3 s after the failure
            storage["up"] = True
            # The next look is 3 s after the failure, or 7 s if a loaded machine delayed this
            # task past it: a deadline of its own, well beyond both.
            deadline = time.monotonic() + 30
            info = await js.consumer_info(settings.nats.stream, "transformer")
            while info.ack_floor.stream_seq < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                info = await js.consumer_info(settings.nats.stream, "transformer")
            dlq = await js.stream_info(settings.nats.dlq_stream)
        finally:
            await app.broker.stop()
            await nc.close()
        return info, dlq

    info, dlq = asyncio.run(scenario())
    assert info.ack_floor.stream_seq == 1 and info.num_ack_pending == 0  # built and acked
    assert info.num_redelivered == 0  # in its one and only delivery
    assert dlq.state.messages == 0
    assert len(builds) == 2  # failed while down, built once the lake answered
