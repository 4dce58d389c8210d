"""Composition root of the transformer: `python -m services.transformer`."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream
from faststream.exceptions import NackMessage, RejectMessage
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import DeliverPolicy

from services.transformer.builds import UnknownDatasetError, apply_bronze_event
from shared.broker import connect, ensure_stream
from shared.events import BRONZE_INGESTED_ANY, BronzeIngested, GoldUpdated
from shared.logging import bind_correlation_id, configure_logging, get_logger
from shared.settings import NovaSettings
from shared.storage import Lake

PRODUCER = "transformer"
log = get_logger(__name__)
MAX_RETRY_DELAY_SECONDS = 60.0


def retry_delay_seconds(delivery: int) -> float:
    """1 s after the first failed delivery, doubling up to a minute."""
    return min(2.0 ** (max(delivery, 1) - 1), MAX_RETRY_DELAY_SECONDS)


def build_app(settings: NovaSettings) -> FastStream:
    lake = Lake.from_settings(settings.storage)
    broker = NatsBroker(
        settings.nats.url,
        name=PRODUCER,
        connect_timeout=int(settings.nats.connect_timeout_seconds),
        max_reconnect_attempts=-1,
        logger=logging.getLogger("faststream.broker"),
        graceful_timeout=10.0,  # below nova up's stop grace, so a build in flight can finish
    )
    # The stream is declared by shared.broker.ensure_stream, the one definition of its shape.
    stream = JStream(settings.nats.stream, declare=False)

    @broker.subscriber(
        BRONZE_INGESTED_ANY,
        stream=stream,
        durable=settings.transformer.durable_name,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=ConsumerConfig(
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=settings.transformer.max_deliver,
            ack_wait=settings.transformer.ack_wait_seconds,
        ),
        # Ack only once silver and gold are committed; failures nack or reject explicitly.
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_bronze_ingested(event: BronzeIngested, message: NatsMessage) -> None:
        delivery = message.raw_message.metadata.num_delivered or 1
        with bind_correlation_id(event.correlation_id, dataset=event.dataset):
            log.info(
                "bronze_event_received",
                event_id=event.event_id,
                path=event.bronze_path,
                delivery=delivery,
            )
            try:
                result = await asyncio.to_thread(apply_bronze_event, lake, event)
            except UnknownDatasetError:
                # Retrying cannot help; terminate so it does not block the consumer.
                log.exception("bronze_event_rejected")
                raise RejectMessage() from None
            except Exception:
                # Lake or disk trouble is usually brief: back off instead of burning the
                # bounded number of deliveries within seconds.
                delay = retry_delay_seconds(delivery)
                log.exception("bronze_event_failed", retry_in_seconds=delay)
                raise NackMessage(delay=delay) from None
            updated = GoldUpdated(
                producer=PRODUCER,
                correlation_id=event.correlation_id,
                build_id=result.build_id,
                tables=result.tables,
                source_events=[event.event_id],
            )
            await broker.publish(
                updated.model_dump(mode="json"),
                updated.subject,
                headers={"Nats-Msg-Id": updated.build_id},
                stream=settings.nats.stream,
            )
            log.info(
                "gold_updated_published",
                build_id=result.build_id,
                tables={t.table: t.version for t in result.tables},
            )

    return FastStream(broker, logger=logging.getLogger("faststream.app"))


async def serve(settings: NovaSettings) -> None:
    # The durable consumer needs its stream; the ingestor may not have declared it yet.
    nc = await connect(settings.nats, name=f"{PRODUCER}-setup")
    try:
        await ensure_stream(nc.jetstream(), settings.nats)
    finally:
        await nc.close()
    log.info(
        "transformer_started",
        stream=settings.nats.stream,
        durable=settings.transformer.durable_name,
    )
    await build_app(settings).run()
    log.info("transformer_stopped")


def main() -> None:
    settings = NovaSettings()
    configure_logging("transformer", settings.log)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
