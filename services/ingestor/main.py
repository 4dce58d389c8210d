"""Composition root of the ingestor: `python -m services.ingestor`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from nats.js import JetStreamContext
from prometheus_client import start_http_server

from services.ingestor.files import NotARegularFileError
from services.ingestor.ledger import JetStreamLedger
from services.ingestor.metrics import IngestMetrics
from services.ingestor.retention import prune_bronze
from services.ingestor.service import FileBusyError, FileChangedError, IngestService
from services.ingestor.watcher import StabilityTracker, scan_existing, start_observer
from shared.broker import connect, ensure_stream
from shared.events import Event
from shared.logging import configure_logging, get_logger
from shared.quarantine import printable
from shared.settings import IngestorSettings, NovaSettings
from shared.storage import Lake

log = get_logger(__name__)
TICK_SECONDS = 0.2
PRUNE_EVERY_SECONDS = 3600.0


class RetryPolicy:
    """Per-file exponential backoff: 1 s, 2 s, 4 s ... capped at a minute."""

    def __init__(self, first_seconds: float = 1.0, max_seconds: float = 60.0) -> None:
        self._first = first_seconds
        self._max = max_seconds
        self._failures: dict[Path, int] = {}

    def failed(self, path: Path) -> float:
        count = self._failures.get(path, 0)
        self._failures[path] = count + 1
        return min(self._max, self._first * 2**count)

    def succeeded(self, path: Path) -> None:
        self._failures.pop(path, None)


class StorageOutage:
    """While the lake does not answer, nothing is read: every file waits in the inbox.

    Without it each waiting file would be read, hashed and parsed again at every retry of its
    own backoff, one stack trace each, and would then sit out the rest of that backoff (up to a
    minute) after the lake is back. Instead the lake is looked at after 1 s, 2 s, 4 s ... at
    most every `max_seconds`, and all files go on the moment it answers.
    """

    def __init__(self, first_seconds: float = 1.0, max_seconds: float = 30.0) -> None:
        self._first = first_seconds
        self._max = max_seconds
        self._delay = first_seconds
        self.since: float | None = None
        self.next_look = 0.0

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, now: float) -> None:
        if self.since is None:
            self.since = now
            self._delay = self._first
        self.next_look = now + self._delay

    def still_down(self, now: float) -> float:
        """The lake did not answer again; returns seconds until the next look."""
        self._delay = min(self._max, self._delay * 2)
        self.next_look = now + self._delay
        return self._delay

    def end(self, now: float) -> float:
        """The lake answers; returns how long it was away."""
        assert self.since is not None
        lasted = now - self.since
        self.since = None
        return lasted


async def ingest_ready(
    paths: list[Path],
    service: IngestService,
    lake: Lake,
    tracker: StabilityTracker,
    retry: RetryPolicy,
    outage: StorageOutage,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Ingest the files that are ready, one by one; whatever fails stays in the inbox, and
    each such outcome is logged and counted in `nova_ingest_deferred` or `_abandoned`."""
    deferred = service.metrics.deferred
    for index, path in enumerate(paths):
        name = printable(str(path))
        if stop.is_set() or outage.active:  # leave the rest for the next start, or the lake
            for waiting in paths[index:]:
                tracker.notice(waiting)
            return
        try:
            await service.process(path)
            retry.succeeded(path)
        except FileBusyError:
            tracker.notice(path)  # logged and counted once per wait by the service
        except (FileChangedError, NotARegularFileError):  # e.g. replaced by a link meanwhile
            log.info("file_changed_while_read", file=name)
            deferred.labels("changed_while_read").inc()
            tracker.notice(path)
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) and not os.path.lexists(path):
                log.info("file_vanished", file=name)
                service.metrics.abandoned.labels("vanished").inc()
                continue
            # The file stays in the inbox untouched and is tried again later; never quarantined
            # for trouble that is not its own.
            if not await asyncio.to_thread(lake.reachable):
                outage.begin(clock())
                log.error(
                    "storage_unavailable",
                    file=name,
                    error=" ".join(f"{type(exc).__name__}: {exc}".split())[:1024],
                    next_look_in_seconds=round(outage.next_look - clock(), 1),
                )
                deferred.labels("storage_unavailable").inc()
                tracker.notice(path)
                continue
            # Broker trouble, or the lake failing on this file only: back off per file, so a
            # long outage is not a busy loop.
            delay = retry.failed(path)
            log.exception("file_failed", file=name, retry_in_seconds=delay)
            deferred.labels("failed").inc()
            tracker.notice(path, not_before=clock() + delay)


async def look_at_storage(lake: Lake, outage: StorageOutage, clock: Callable[[], float]) -> None:
    """During an outage, look at the lake when due; ends the outage once it answers."""
    if not outage.active or clock() < outage.next_look:
        return
    if await asyncio.to_thread(lake.reachable):
        lasted = outage.end(clock())
        log.info("storage_available", unavailable_seconds=round(lasted, 1))
    else:
        delay = outage.still_down(clock())
        log.warning("storage_still_unavailable", next_look_in_seconds=delay)


def serve_metrics(metrics: IngestMetrics, settings: IngestorSettings) -> WSGIServer:
    """The Prometheus endpoint, on `metrics_host` only: loopback unless the operator widens it."""
    server, _ = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry
    )
    log.info("metrics_listening", host=settings.metrics_host, port=server.server_address[1])
    return server


class JetStreamPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def publish(self, event: Event, message_id: str) -> None:
        ack = await self._js.publish(
            event.subject, event.to_bytes(), headers={"Nats-Msg-Id": message_id}
        )
        if ack.duplicate:
            log.info("event_duplicate_dropped", subject=event.subject, message_id=message_id)


async def run(settings: NovaSettings) -> None:
    ingestor = settings.ingestor
    assert ingestor.inbox_dir is not None
    for folder in (ingestor.inbox_dir, ingestor.archive_dir, ingestor.quarantine_dir):
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
    nc = await connect(settings.nats, name="ingestor")
    js = nc.jetstream()
    await ensure_stream(js, settings.nats)
    ledger = await JetStreamLedger.open(js, ingestor.ledger_bucket, settings.nats.replicas)
    metrics = IngestMetrics()
    metrics.watch_quarantine(ingestor.quarantine_dir)
    if ingestor.metrics_port:
        serve_metrics(metrics, ingestor)
    lake = Lake.from_settings(settings.storage)
    service = IngestService(lake, JetStreamPublisher(js), ledger, ingestor, metrics)
    retry = RetryPolicy()
    outage = StorageOutage()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tracker = StabilityTracker(
        ingestor.stable_seconds, on_vanished=lambda _: metrics.abandoned.labels("vanished").inc()
    )
    observer = start_observer(ingestor.inbox_dir, tracker, ingestor)
    scan_existing(ingestor.inbox_dir, tracker)
    log.info("ingestor_started", inbox=str(ingestor.inbox_dir), polling=ingestor.polling)
    next_prune = time.monotonic()
    try:
        while not stop.is_set():
            await look_at_storage(lake, outage, time.monotonic)
            if not outage.active:
                ready = tracker.ready(time.monotonic())
                await ingest_ready(ready, service, lake, tracker, retry, outage, stop)
            if time.monotonic() >= next_prune and not outage.active:
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                try:
                    await asyncio.to_thread(
                        prune_bronze, lake, datetime.now(UTC), ingestor.bronze_retention_days
                    )
                except Exception:
                    log.exception("bronze_prune_failed")  # retried at the next period
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
    finally:
        observer.stop()
        observer.join(timeout=5)
        await nc.drain()
        log.info("ingestor_stopped")


def main() -> None:
    settings = NovaSettings()
    configure_logging("ingestor", settings.log)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
