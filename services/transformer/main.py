"""Composition root of the transformer: `python -m services.transformer`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NoReturn

from deltalake.exceptions import CommitFailedError
from faststream import FastStream
from faststream.exceptions import NackMessage, RejectMessage
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from faststream.nats.security import NatsUserPassword
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import DeliverPolicy
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue
from pydantic import ValidationError

from services.transformer.builds import BuildResult, UnknownDatasetError, apply_bronze_event
from shared.broker import (
    connect,
    ensure_stream,
    error_callback,
    until_settled,
    without_credentials,
)
from shared.events import (
    BRONZE_INGESTED_ANY,
    DLQ_HEADER_DELIVERIES,
    DLQ_HEADER_ERROR,
    DLQ_HEADER_FAILED_AT,
    DLQ_HEADER_ORIGINAL_MSG_ID,
    DLQ_HEADER_ORIGINAL_STREAM_SEQ,
    DLQ_HEADER_ORIGINAL_SUBJECT,
    BronzeIngested,
    GoldUpdated,
    QualityFailed,
    QualityFailure,
    dlq_subject,
)
from shared.logging import bind_correlation_id, configure_logging, get_logger
from shared.settings import NatsSettings, NovaSettings
from shared.storage import Lake

PRODUCER = "transformer"
log = get_logger(__name__)
MAX_RETRY_DELAY_SECONDS = 60.0
# A commit conflict means another writer won the race for the same table version: the retry
# should come soon (the conflict is already over), jittered so that two losers do not collide
# again in lockstep.
CONFLICT_RETRY_SECONDS = (0.2, 1.0)
MAX_ERROR_HEADER_BYTES = 1024
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DLQ_PUBLISH_ATTEMPTS = 3
DLQ_PUBLISH_TIMEOUT_SECONDS = 5.0

# One build at a time across every replica, held as a key in a JetStream key-value bucket.
# A build reads tables and then overwrites them (silver months, gold), and each Delta write
# starts from the table as it is when writing, not as it was read: what a concurrent build
# committed in between is overwritten without any conflict raised (two replicas without this
# lost 6 of 90 silver rows in a run of tests/integration/test_transformer_replicas.py). The key
# expires after the TTL unless refreshed, so a replica that dies mid-build frees it on its own,
# 11 to 15 s after dying: about when its event is redelivered (13 to 20 s after, with the default
# 20 s ack wait), so the lease adds at most a couple of seconds to a recovery.
LEASE_BUCKET = "nova_transformer_lease"
LEASE_KEY = "build"
LEASE_TTL_SECONDS = 15.0
LEASE_REFRESH_SECONDS = 4.0
LEASE_RECHECK_SECONDS = 1.0  # an expired lease announces nothing: look again this often
# JetStream redelivers a message not acked within ack_wait; a build waiting for the lease or
# running long reports progress this often (or thrice per ack_wait) so that the other replica
# does not get it too. The ack wait itself is short (20 s by default): it is how long the event
# of a replica that crashed mid-build waits before another one builds it.
PROGRESS_SECONDS = 10.0
# While the lake does not answer, a failed build waits for it, looking again after 1 s, 2 s,
# 4 s ... at most this often, and is then built again in the same delivery.
STORAGE_RECHECK_MAX_SECONDS = 30.0


def retry_delay_seconds(delivery: int) -> float:
    """1 s after the first failed delivery, doubling up to a minute."""
    return min(2.0 ** (max(delivery, 1) - 1), MAX_RETRY_DELAY_SECONDS)


def conflict_retry_delay_seconds() -> float:
    return random.uniform(*CONFLICT_RETRY_SECONDS)


async def wait_for_storage(
    lake: Lake, first_seconds: float = 1.0, max_seconds: float = STORAGE_RECHECK_MAX_SECONDS
) -> float:
    """Return once the lake answers again, looking with exponential backoff; seconds waited."""
    started = time.monotonic()
    delay = first_seconds
    while True:
        await asyncio.sleep(delay)
        if await asyncio.to_thread(lake.reachable):
            return time.monotonic() - started
        log.warning(
            "storage_still_unavailable",
            waited_seconds=round(time.monotonic() - started, 1),
            next_look_in_seconds=min(delay * 2, max_seconds),
        )
        delay = min(delay * 2, max_seconds)


async def through_storage_outages(
    lake: Lake, build: Callable[[], Awaitable[BuildResult]], recheck_first_seconds: float = 1.0
) -> BuildResult:
    """`build()`, built again for as long as it fails because the lake is away.

    A storage outage is nobody's event's fault: counting it against the bounded deliveries would
    dead-letter every event in flight during an outage of a few minutes (10 deliveries with
    backoff doubling to a minute is about four). So a failure while the lake does not answer is
    waited out inside this delivery (the caller keeps reporting progress), and only failures
    with the lake answering (a missing object, bad data, a bug) use up deliveries.
    """
    while True:
        try:
            return await build()
        except Exception as exc:
            if isinstance(exc, UnknownDatasetError) or is_commit_conflict(exc):
                raise
            if await asyncio.to_thread(lake.reachable):
                raise
            log.warning("storage_unavailable", error=error_header(exc))
            waited = await wait_for_storage(lake, recheck_first_seconds)
            log.info("storage_available", waited_seconds=round(waited, 1))


class LeaseLostError(RuntimeError):
    """The build lease expired or was taken while this replica was building."""


def is_commit_conflict(exc: BaseException) -> bool:
    """Another writer got in the way: a concurrent Delta commit won (deltalake's
    CommitFailedError, however wrapped), or the build lease lapsed mid-build. Either is over by
    now, and building again soon settles it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CommitFailedError | LeaseLostError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def error_header(exc: BaseException) -> str:
    """`Class: message` on one line, at most 1 KB of UTF-8 (a header cannot hold a newline).

    deltalake colours the causes in its messages for a terminal; those escapes are dropped.
    """
    text = " ".join(ANSI_ESCAPE.sub("", f"{type(exc).__name__}: {exc}").split())
    return text.encode()[:MAX_ERROR_HEADER_BYTES].decode(errors="ignore")


class BuildLease:
    """The cross-replica build lock: create the key to take it, delete it to give it back."""

    def __init__(self, broker: NatsBroker, replicas: int = 1) -> None:
        self._broker = broker
        self._replicas = replicas
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()

    async def _bucket(self) -> KeyValue:
        try:  # FastStream caches the bucket handle after the first call
            return await self._broker.key_value(
                LEASE_BUCKET, ttl=LEASE_TTL_SECONDS, replicas=self._replicas
            )
        except BadRequestError:  # declared earlier with another TTL: use it as it is
            return await self._broker.key_value(LEASE_BUCKET, declare=False)

    async def _try_take(self, kv: KeyValue) -> int | None:
        try:
            return await kv.create(LEASE_KEY, self._owner)
        except KeyWrongLastSequenceError:  # held by another replica
            return None
        except KeyNotFoundError:  # it expired while nats-py looked at the old delete marker
            return None

    async def acquire(self) -> int:
        """Wait for the lease; returns the revision that proves holding it."""
        kv = await self._bucket()
        if (revision := await self._try_take(kv)) is not None:
            return revision
        # Watching the key wakes this replica the moment the holder releases, before the
        # holder fetches its next message: replicas take turns instead of one hogging it.
        watcher = await kv.watch(LEASE_KEY)
        try:
            while (revision := await self._try_take(kv)) is None:
                with contextlib.suppress(TimeoutError):
                    await watcher.updates(timeout=LEASE_RECHECK_SECONDS)
            return revision
        finally:
            await watcher.stop()

    async def refresh(self, revision: int) -> int:
        kv = await self._bucket()
        try:
            return await kv.update(LEASE_KEY, self._owner, last=revision)
        except KeyWrongLastSequenceError as exc:
            raise LeaseLostError("the build lease expired while building") from exc

    async def release(self, revision: int) -> None:
        try:
            kv = await self._bucket()
            await kv.delete(LEASE_KEY, last=revision)
        except Exception as exc:
            # Expired and maybe taken already (a stale revision), or NATS unreachable: either
            # way the TTL frees it, and the build itself is committed.
            log.warning("build_lease_release_failed", error=error_header(exc))


async def _every(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` every `seconds` until cancelled or until it raises."""
    while True:
        await asyncio.sleep(seconds)
        await action()


async def _report_progress(message: NatsMessage) -> None:
    try:
        await message.in_progress()
    except Exception as exc:  # at worst JetStream redelivers after ack_wait: not fatal
        log.warning("in_progress_failed", error=error_header(exc))


def quality_failed_event(result: BuildResult, event: BronzeIngested) -> QualityFailed:
    return QualityFailed(
        producer=PRODUCER,
        correlation_id=event.correlation_id,
        build_id=result.build_id,
        report_path=result.report_path,
        source_events=[event.event_id],
        failures=[
            QualityFailure(
                check=r.check,
                table=r.table,
                severity=r.severity,
                failing_rows=r.failing_rows,
                message=r.message,
                sample=r.sample,
            )
            for r in result.quality_failures
        ],
    )


def broker_security(settings: NatsSettings) -> NatsUserPassword | None:
    """The NATS credentials the way FastStream takes them (its NatsBroker has no `user=`)."""
    auth = settings.auth_options()
    return NatsUserPassword(auth["user"], auth["password"]) if auth else None


def consumer_config(settings: NovaSettings) -> ConsumerConfig:
    """The durable consumer the transformers share (FastStream adds its name and filter)."""
    return ConsumerConfig(
        ack_policy=JsAckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=settings.transformer.max_deliver,
        ack_wait=settings.transformer.ack_wait_seconds,
    )


async def update_consumer(js: JetStreamContext, settings: NovaSettings) -> bool:
    """Bring an existing durable consumer to the configured ack wait and deliveries; whether
    it had to change.

    FastStream (nats-py's pull_subscribe) creates the consumer when it is missing but binds to
    an existing one as it is: one created by an older release with a 300 s ack wait would keep
    the event of a crashed build for five minutes, whatever the settings say now. Only the
    fields set here are changed; the rest stays as whoever created it made it.
    """
    stream, durable = settings.nats.stream, settings.transformer.durable_name
    try:
        info = await until_settled(
            lambda: js.consumer_info(stream, durable), f"consumer {stream}.{durable}"
        )
    except NotFoundError:
        return False  # FastStream creates it from consumer_config
    wanted = consumer_config(settings)
    current = info.config
    if (current.ack_wait, current.max_deliver) == (wanted.ack_wait, wanted.max_deliver):
        return False
    updated = dataclasses.replace(current, ack_wait=wanted.ack_wait, max_deliver=wanted.max_deliver)
    # A create with the same name and an updatable difference is an update (nats-server >= 2.10).
    try:
        await until_settled(
            lambda: js.add_consumer(stream, config=updated), f"consumer {stream}.{durable}"
        )
    except BadRequestError as exc:
        # An older server that cannot update it: the transformer still works, only its
        # recovery after a crash takes the old ack wait, which this line says.
        log.warning(
            "transformer_consumer_update_refused",
            durable=durable,
            ack_wait_seconds=current.ack_wait,
            wanted_ack_wait_seconds=wanted.ack_wait,
            error=error_header(exc),
        )
        return False
    log.info(
        "transformer_consumer_updated",
        durable=durable,
        ack_wait_seconds=wanted.ack_wait,
        previous_ack_wait_seconds=current.ack_wait,
        max_deliver=wanted.max_deliver,
        previous_max_deliver=current.max_deliver,
    )
    return True


def build_app(settings: NovaSettings) -> FastStream:
    lake = Lake.from_settings(settings.storage)
    max_deliver = settings.transformer.max_deliver
    security = broker_security(settings.nats)
    broker = NatsBroker(
        # FastStream refuses a user in a URL beside `security`: NOVA_NATS__USER/PASSWORD win.
        [without_credentials(url) for url in settings.nats.servers]
        if security
        else settings.nats.servers,
        name=PRODUCER,
        connect_timeout=int(settings.nats.connect_timeout_seconds),
        max_reconnect_attempts=-1,
        # FastStream gives up on a refused credential itself (and logs other errors): this
        # only names that failure, as shared.broker.connect does.
        error_cb=error_callback(settings.nats, PRODUCER, quiet=True),
        security=security,
        logger=logging.getLogger("faststream.broker"),
        graceful_timeout=10.0,  # below nova up's stop grace, so a build in flight can finish
    )
    lease = BuildLease(broker, settings.nats.replicas)
    progress_every = min(PROGRESS_SECONDS, settings.transformer.ack_wait_seconds / 3)
    # The stream is declared by shared.broker.ensure_stream, the one definition of its shape.
    stream = JStream(settings.nats.stream, declare=False)

    async def build_under_lease(event: BronzeIngested) -> BuildResult:
        revision = await lease.acquire()
        lost: list[LeaseLostError] = []

        async def keep_lease() -> None:
            nonlocal revision
            try:
                revision = await lease.refresh(revision)
            except LeaseLostError as exc:
                lost.append(exc)
                raise
            except Exception as exc:  # NATS briefly away: the next tick tries again
                log.warning("build_lease_refresh_failed", error=error_header(exc))

        async def stop_keeping() -> None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLostError):
                await keeper

        keeper = asyncio.create_task(_every(LEASE_REFRESH_SECONDS, keep_lease))
        try:
            result = await asyncio.to_thread(apply_bronze_event, lake, event)
        except BaseException:
            await stop_keeping()
            if not lost:
                await lease.release(revision)
            raise
        await stop_keeping()
        if not lost:
            # The key still at our revision proves that no other replica held the lease at any
            # moment of this build, also when refreshes failed and it could have lapsed.
            try:
                revision = await lease.refresh(revision)
            except LeaseLostError as exc:
                lost.append(exc)
        if lost:
            # Another replica may have built meanwhile, so gold may lack its rows or ours:
            # building again under the lease is idempotent and settles it.
            raise lost[0]
        await lease.release(revision)
        return result

    async def dead_letter(message: NatsMessage, error: BaseException, delivery: int) -> None:
        """Keep the payload in the dead-letter stream; raises if that cannot be done."""
        raw = message.raw_message
        metadata = raw.metadata
        headers = {
            DLQ_HEADER_ORIGINAL_SUBJECT: raw.subject,
            DLQ_HEADER_ERROR: error_header(error),
            DLQ_HEADER_DELIVERIES: str(delivery),
            DLQ_HEADER_FAILED_AT: datetime.now(UTC).isoformat(),
            DLQ_HEADER_ORIGINAL_STREAM_SEQ: str(metadata.sequence.stream),
            # The same stored message always dead-letters under the same id, so a copy sent
            # again (crash between this publish and the terminate) is dropped by JetStream.
            "Nats-Msg-Id": f"dlq.{metadata.stream}.{metadata.sequence.stream}."
            f"{metadata.timestamp.isoformat()}",
        }
        if original_id := (raw.headers or {}).get("Nats-Msg-Id"):
            headers[DLQ_HEADER_ORIGINAL_MSG_ID] = original_id
        attempt = 0
        while True:
            try:
                ack = await broker.publish(
                    message.body,
                    dlq_subject(raw.subject),
                    headers=headers,
                    stream=settings.nats.dlq_stream,
                    timeout=DLQ_PUBLISH_TIMEOUT_SECONDS,
                )
                break
            except Exception:
                attempt += 1
                if attempt == DLQ_PUBLISH_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)  # NATS may be back in a moment
        log.error(
            "bronze_event_dead_lettered",
            subject=raw.subject,
            stream_seq=metadata.sequence.stream,
            dlq_stream=settings.nats.dlq_stream,
            dlq_seq=ack.seq,
            deliveries=delivery,
            error=headers[DLQ_HEADER_ERROR],
        )

    async def give_up(message: NatsMessage, error: BaseException, delivery: int) -> NoReturn:
        """Dead-letter, then terminate; never terminate what did not reach the DLQ."""
        try:
            await dead_letter(message, error, delivery)
        except Exception:
            delay = retry_delay_seconds(delivery)
            # With deliveries left JetStream brings it back and dead-lettering is tried again.
            # On the last one nothing will: this line (with the stream sequence) is the trace.
            log.exception(
                "bronze_event_dead_letter_failed",
                subject=message.raw_message.subject,
                stream_seq=message.raw_message.metadata.sequence.stream,
                deliveries=delivery,
                deliveries_left=max(max_deliver - delivery, 0),
                retry_in_seconds=delay,
            )
            raise NackMessage(delay=delay) from None
        raise RejectMessage()

    @broker.subscriber(
        BRONZE_INGESTED_ANY,
        stream=stream,
        durable=settings.transformer.durable_name,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=consumer_config(settings),
        # Ack only once silver and gold are committed; failures nack or reject explicitly.
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_bronze_ingested(message: NatsMessage) -> None:
        # The payload is parsed here rather than by FastStream, so that a malformed event is
        # dead-lettered like any other permanent failure instead of nacked until dropped.
        delivery = message.raw_message.metadata.num_delivered or 1
        try:
            event = BronzeIngested.model_validate_json(message.body)
        except ValidationError as exc:
            log.error("bronze_event_malformed", subject=message.raw_message.subject)
            await give_up(message, exc, delivery)
        with bind_correlation_id(event.correlation_id, dataset=event.dataset):
            log.info(
                "bronze_event_received",
                event_id=event.event_id,
                path=event.bronze_path,
                delivery=delivery,
            )
            progress = asyncio.create_task(
                _every(progress_every, lambda: _report_progress(message))
            )
            try:
                # Shielded: if the handler is cancelled (shutdown), the thread still finishes
                # its commits, and the lease is held until it has.
                result = await through_storage_outages(
                    lake, lambda: asyncio.shield(build_under_lease(event))
                )
                if result.quality_blocked:
                    failed = quality_failed_event(result, event)
                    await broker.publish(
                        failed.model_dump(mode="json"),
                        failed.subject,
                        headers={"Nats-Msg-Id": f"{result.build_id}.quality"},
                        stream=settings.nats.stream,
                        timeout=5.0,
                    )
                    log.warning(
                        "quality_failed_published",
                        build_id=result.build_id,
                        checks=[f.check for f in failed.failures],
                    )
                # Lists what was committed: on a blocked build, silver and dq_results only.
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
            except UnknownDatasetError as exc:
                # Retrying cannot help; dead-letter at once so it does not block the consumer.
                log.exception("bronze_event_rejected")
                await give_up(message, exc, delivery)
            except Exception as exc:
                if delivery >= max_deliver:
                    log.exception("bronze_event_failed", deliveries=delivery, final=True)
                    await give_up(message, exc, delivery)
                if is_commit_conflict(exc):
                    delay = conflict_retry_delay_seconds()
                    log.warning(
                        "bronze_event_commit_conflict",
                        error=error_header(exc),
                        retry_in_seconds=round(delay, 3),
                    )
                else:
                    # Lake or disk trouble is usually brief: back off instead of burning the
                    # bounded number of deliveries within seconds.
                    delay = retry_delay_seconds(delivery)
                    log.exception("bronze_event_failed", retry_in_seconds=delay)
                raise NackMessage(delay=delay) from None
            finally:
                progress.cancel()
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
        await update_consumer(nc.jetstream(), settings)
    finally:
        await nc.close()
    log.info(
        "transformer_started",
        stream=settings.nats.stream,
        dlq_stream=settings.nats.dlq_stream,
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
