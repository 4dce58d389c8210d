"""The event stream on a real nats-server: declaration and duplicate suppression."""

from __future__ import annotations

import asyncio

from nats.js.api import ConsumerConfig, DeliverPolicy

from services.ingestor.main import JetStreamPublisher
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested
from shared.settings import NatsSettings


def _event(correlation_id: str = "c1") -> BronzeIngested:
    return BronzeIngested(
        producer="test",
        correlation_id=correlation_id,
        dataset="erp_requisitions",
        bronze_path="bronze/erp_requisitions/x.parquet",
        content_sha256="ab" * 32,
        source_name="x.xlsx",
        row_count=3,
    )


def test_stream_is_declared_idempotently_and_drops_republished_events(nats_url):
    settings = NatsSettings(url=nats_url)

    async def scenario() -> list[bytes]:
        nc = await connect(settings, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings)
        await ensure_stream(js, settings)  # a second service starting must not fail
        publisher = JetStreamPublisher(js)
        first = _event("first")
        await publisher.publish(first, "same-content-hash")
        await publisher.publish(_event("retry"), "same-content-hash")  # a retry after a crash
        await publisher.publish(_event("other"), "other-content-hash")
        info = await js.stream_info(settings.stream)
        sub = await js.pull_subscribe(
            "nova.v1.>",
            stream=settings.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        messages = await sub.fetch(10, timeout=2)
        await nc.close()
        assert info.state.messages == 2
        return [m.data for m in messages]

    payloads = asyncio.run(scenario())
    correlation_ids = [BronzeIngested.model_validate_json(p).correlation_id for p in payloads]
    assert correlation_ids == ["first", "other"]
