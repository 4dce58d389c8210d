"""How the transformer answers failed deliveries, on a real nats-server."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.transformer.main import build_app, retry_delay_seconds
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested
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
