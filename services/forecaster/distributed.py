"""One forecast run shared by worker processes on several machines, committed once.

The coordinator (`run_distributed`) reads gold exactly as `run_forecast` does, writes the
bucketed history once to the lake (`forecast_work/<run_id>/history.parquet`) and publishes one
message per chunk of series ids on the work-queue stream `NOVA_FORECAST_WORK`. Workers (`work`,
`python -m services.forecaster --worker`) share the durable pull consumer `forecast-worker`:
each message is taken by one worker, which forecasts the chunk's series and writes
`chunk-<i>.forecasts.parquet` and `chunk-<i>.accuracy.parquet` atomically before acking. A
worker that dies mid-chunk never acks, so the chunk goes to another worker after `ACK_WAIT`;
writing the same files twice is harmless. Once every chunk's files exist the coordinator
concatenates them and commits through `runner.commit_run`, the same path as a single-process
run (tables, inventory policy, manifest row last). If chunks do not arrive in time, nothing is
committed and the previous forecasts stay live.

Models that pool across series (Pooled, PooledBlend, and the demand-class shrinkage of model
selection) pool within a chunk only, so results can differ slightly from a single-process run.
Chunks should therefore be large: hundreds of series each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import nats.errors
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from services.forecaster.history import FREQ, SEASON_LENGTH, Bucket
from services.forecaster.runner import (
    ForecastOptions,
    RunManifest,
    commit_run,
    prepare_run,
)
from shared.broker import connect
from shared.logging import get_logger
from shared.settings import NovaSettings
from shared.storage import Lake

log = get_logger(__name__)

WORK_STREAM = "NOVA_FORECAST_WORK"
WORK_SUBJECT_PREFIX = "nova.work.v1.forecast"  # outside nova.v1.>: streams cannot overlap
WORK_SUBJECTS = f"{WORK_SUBJECT_PREFIX}.>"
DURABLE = "forecast-worker"
ACK_WAIT_SECONDS = 600.0
MAX_DELIVER = 3
IN_PROGRESS_SECONDS = 30.0  # a worker busy on a long chunk tells JetStream it is alive
# Broker trouble (a leader election after a node is lost, a reconnect) is waited out: the
# worker backs off from 0.5 s up to 5 s and subscribes again, instead of exiting.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
ACK_ATTEMPTS = 3
PUBLISH_ATTEMPTS = 5
DECLARE_ATTEMPTS = 6  # with a 5 s API timeout each: about half a minute for a slow election
WORK_PREFIX = "forecast_work"
DEFAULT_TIMEOUT_SECONDS = 6 * 3600.0
POLL_SECONDS = 0.5
STATS_KEY = b"nova.forecast.stats"


class DistributedRunError(RuntimeError):
    """The chunks of a distributed run did not all arrive; nothing was committed."""


def work_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=WORK_STREAM,
        subjects=[WORK_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=3600.0,  # a re-published chunk (same Nats-Msg-Id) is dropped
        num_replicas=replicas,
    )


async def ensure_work_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the work stream, or bring an existing one to this shape (idempotent).

    On a fresh cluster the coordinator and every worker may declare it at once: while one
    creates it, the stream exists but has no leader yet, and asking about it gets no answer (a
    JetStream API timeout) rather than "not found". That is waited out and asked again.
    """
    config = work_stream_config(replicas)
    for attempt in range(1, DECLARE_ATTEMPTS + 1):
        try:
            await _declare_work_stream(js, config)
            return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
            if attempt == DECLARE_ATTEMPTS:
                raise
            delay = _retry_delay(attempt)
            log.warning("forecast_work_stream_not_ready", attempt=attempt, retry_in_seconds=delay)
            await asyncio.sleep(delay)


async def _declare_work_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(WORK_STREAM)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # another process created it between the two calls
            pass
    await js.update_stream(config)


def work_dir(run_id: str) -> str:
    return f"{WORK_PREFIX}/{run_id}"


def history_path(run_id: str) -> str:
    return f"{work_dir(run_id)}/history.parquet"


def chunk_paths(run_id: str, chunk: int) -> tuple[str, str]:
    base = f"{work_dir(run_id)}/chunk-{chunk}"
    return f"{base}.forecasts.parquet", f"{base}.accuracy.parquet"


def error_path(run_id: str, chunk: int) -> str:
    return f"{work_dir(run_id)}/chunk-{chunk}.error"


@dataclass(frozen=True)
class ChunkJob:
    """One message on the work stream: what a worker needs to forecast a chunk."""

    run_id: str
    chunk: int
    series_ids: list[str]
    bucket: Bucket
    horizon: int
    quantiles: list[float]
    backtest_origins: int
    candidates: list[str]

    @classmethod
    def of(
        cls, run_id: str, chunk: int, series_ids: list[str], options: ForecastOptions
    ) -> ChunkJob:
        return cls(
            run_id=run_id,
            chunk=chunk,
            series_ids=series_ids,
            bucket=options.bucket,
            horizon=options.horizon,
            quantiles=list(options.quantiles),
            backtest_origins=options.backtest_origins,
            candidates=list(options.models),
        )

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ChunkJob:
        return cls(**json.loads(data))


def _chunks(series_ids: list[str], size: int) -> list[list[str]]:
    return [series_ids[i : i + size] for i in range(0, len(series_ids), size)]


def _cleanup(lake: Lake, run_id: str) -> None:
    for path in lake.list_files(work_dir(run_id)):
        lake.delete_file(path)


async def run_distributed(
    lake: Lake,
    js: JetStreamContext,
    options: ForecastOptions,
    *,
    chunk_size: int,
    timeout_seconds: float,
    progress: Callable[[int, int], None] | None = None,
    replicas: int = 1,
) -> RunManifest:
    """Coordinate one run over the workers; commit it once every chunk's result exists.

    Raises `DistributedRunError` (nothing committed, the run's pending chunks purged) when the
    chunks do not all arrive within `timeout_seconds` or a chunk failed on its last delivery.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    await ensure_work_stream(js, replicas)
    prepared = await asyncio.to_thread(prepare_run, lake, options)
    run_id = prepared.run_id
    history = prepared.history
    series_ids = sorted(history["series_id"].unique().tolist())
    chunks = _chunks(series_ids, chunk_size)
    snapshot = pa.Table.from_pandas(history[["series_id", "period", "y"]], preserve_index=False)
    await asyncio.to_thread(lake.write_parquet, history_path(run_id), snapshot)
    log.info("forecast_distributed_started", run_id=run_id, series=len(series_ids),
             chunks=len(chunks), chunk_size=chunk_size)  # fmt: skip
    subject = f"{WORK_SUBJECT_PREFIX}.{run_id}"
    for index, ids in enumerate(chunks):
        job = ChunkJob.of(run_id, index, ids, options)
        await _publish_chunk(js, subject, job, f"{run_id}.{index}")

    chunks_began = time.monotonic()
    deadline = chunks_began + timeout_seconds
    done: set[int] = set()
    try:
        while len(done) < len(chunks):
            present = set(await asyncio.to_thread(lake.list_files, work_dir(run_id)))
            for index in range(len(chunks)):
                if index in done:
                    continue
                if error_path(run_id, index) in present:
                    reason = await asyncio.to_thread(lake.read_bytes, error_path(run_id, index))
                    raise DistributedRunError(
                        f"run {run_id}: chunk {index} failed on its last delivery: "
                        f"{reason.decode(errors='replace')}"
                    )
                if all(p in present for p in chunk_paths(run_id, index)):
                    done.add(index)
                    if progress is not None:
                        progress(sum(len(chunks[i]) for i in done), len(series_ids))
            if len(done) == len(chunks):
                break
            if time.monotonic() >= deadline:
                raise DistributedRunError(
                    f"run {run_id}: {len(chunks) - len(done)} of {len(chunks)} chunks did not "
                    f"arrive within {timeout_seconds:g} s; are workers running "
                    f"(`python -m services.forecaster --worker`)? Nothing was committed."
                )
            await asyncio.sleep(POLL_SECONDS)
    except Exception:
        # Workers must not pick up chunks of a run nobody will commit.
        try:
            await js.purge_stream(WORK_STREAM, subject=subject)
        except Exception as error:  # the original error matters more
            log.warning("forecast_work_purge_failed", run_id=run_id, error=str(error))
        await asyncio.to_thread(_cleanup, lake, run_id)
        raise

    def combine() -> RunManifest:
        from services.forecaster.models import ForecastResult

        forecasts, accuracy = [], []
        stats: list[dict[str, Any]] = []
        for index in range(len(chunks)):
            forecast_file, accuracy_file = chunk_paths(run_id, index)
            forecasts.append(lake.read_parquet(forecast_file).to_pandas())
            table = lake.read_parquet(accuracy_file)
            stats.append(json.loads((table.schema.metadata or {}).get(STATS_KEY, b"{}")))
            accuracy.append(table.to_pandas())
        result = ForecastResult(
            forecasts=pd.concat(forecasts, ignore_index=True).sort_values(
                ["series_id", "step"], ignore_index=True
            ),
            accuracy=pd.concat(accuracy, ignore_index=True),
            stats={
                "stage_seconds": {"chunks": round(time.monotonic() - chunks_began, 3)},
                "series_by_class": _sum_counts(s.get("series_by_class", {}) for s in stats),
                "failures_by_model": _sum_counts(s.get("failures_by_model", {}) for s in stats),
            },
        )
        manifest = commit_run(
            lake,
            options,
            prepared,
            result,
            extra={"distributed": {"chunks": len(chunks), "chunk_size": chunk_size}},
        )
        _cleanup(lake, run_id)
        return manifest

    return await asyncio.to_thread(combine)


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + int(value)
    return dict(sorted(total.items()))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _retry_delay(failures: int) -> float:
    return min(RETRY_FIRST_SECONDS * 2 ** max(failures - 1, 0), RETRY_MAX_SECONDS)


async def _publish_chunk(js: JetStreamContext, subject: str, job: ChunkJob, msg_id: str) -> None:
    """Publish one chunk, again on broker trouble: the message id makes a repeat a no-op."""
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await js.publish(subject, job.to_bytes(), headers={"Nats-Msg-Id": msg_id})
            return
        except nats.errors.Error as error:
            if attempt == PUBLISH_ATTEMPTS:
                raise
            delay = _retry_delay(attempt)
            log.warning(
                "forecast_chunk_publish_failed",
                run_id=job.run_id,
                chunk=job.chunk,
                error=_describe(error),
                retry_in_seconds=delay,
            )
            await asyncio.sleep(delay)


async def _keep_alive(msg: Msg) -> None:
    while True:
        await asyncio.sleep(IN_PROGRESS_SECONDS)
        try:
            await msg.in_progress()
        except nats.errors.Error as error:  # at worst the chunk is redelivered after ACK_WAIT
            log.warning("forecast_chunk_in_progress_failed", error=_describe(error))


async def _settle(msg: Msg, how: str, job: ChunkJob, **kwargs: float) -> None:
    """Ack, nak or term the chunk's message, tried a few times; if the broker stays away the
    message is redelivered after ACK_WAIT, which is harmless (see `work`), so never raise."""
    for attempt in range(1, ACK_ATTEMPTS + 1):
        try:
            if how == "ack":
                await msg.ack_sync()
            elif how == "nak":
                await msg.nak(**kwargs)
            else:
                await msg.term()
            return
        except nats.errors.Error as error:
            log.warning(
                "forecast_chunk_settle_failed",
                run_id=job.run_id,
                chunk=job.chunk,
                action=how,
                attempt=attempt,
                error=_describe(error),
            )
            if attempt < ACK_ATTEMPTS:
                await asyncio.sleep(_retry_delay(attempt))


def _forecast_chunk(lake: Lake, job: ChunkJob, jobs: int) -> None:
    from services.forecaster.models import forecast_panel

    snapshot = lake.read_parquet(history_path(job.run_id))
    selected = snapshot.filter(pc.is_in(snapshot["series_id"], pa.array(job.series_ids)))
    result = forecast_panel(
        selected.to_pandas(),
        horizon=job.horizon,
        freq=FREQ[job.bucket],
        season_length=SEASON_LENGTH[job.bucket],
        quantiles=job.quantiles,
        backtest_origins=job.backtest_origins,
        jobs=jobs,
        candidates=job.candidates,
    )
    forecast_file, accuracy_file = chunk_paths(job.run_id, job.chunk)
    lake.write_parquet(forecast_file, pa.Table.from_pandas(result.forecasts, preserve_index=False))
    accuracy = pa.Table.from_pandas(result.accuracy, preserve_index=False)
    # The chunk's run stats ride in the accuracy file's metadata: written in the same atomic
    # write, so a chunk's files are complete or absent together.
    metadata = {**(accuracy.schema.metadata or {}), STATS_KEY: json.dumps(result.stats).encode()}
    lake.write_parquet(accuracy_file, accuracy.replace_schema_metadata(metadata))


async def _handle(lake: Lake, msg: Msg, jobs: int) -> None:
    job = ChunkJob.from_bytes(msg.data)
    delivered = msg.metadata.num_delivered
    if not await asyncio.to_thread(lake.exists, history_path(job.run_id)):
        # The coordinator gave up (or cleaned up) already: nobody will commit this chunk.
        log.warning("forecast_chunk_orphaned", run_id=job.run_id, chunk=job.chunk)
        await _settle(msg, "term", job)
        return
    began = time.perf_counter()
    alive = asyncio.create_task(_keep_alive(msg))
    try:
        await asyncio.to_thread(_forecast_chunk, lake, job, jobs)
    except Exception as error:
        log.exception("forecast_chunk_failed", run_id=job.run_id, chunk=job.chunk,
                      delivered=delivered)  # fmt: skip
        if delivered >= MAX_DELIVER:
            # Last try: tell the coordinator at once rather than letting it wait to time out.
            message = f"{type(error).__name__}: {error}".encode()
            await asyncio.to_thread(lake.write_bytes, error_path(job.run_id, job.chunk), message)
            await _settle(msg, "term", job)
        else:
            await _settle(msg, "nak", job, delay=5)
        return
    finally:
        alive.cancel()
    await _settle(msg, "ack", job)
    log.info("forecast_chunk_done", run_id=job.run_id, chunk=job.chunk,
             series=len(job.series_ids), delivered=delivered, pid=os.getpid(),
             seconds=round(time.perf_counter() - began, 3))  # fmt: skip


async def _subscribe(js: JetStreamContext) -> JetStreamContext.PullSubscription:
    return await js.pull_subscribe(
        WORK_SUBJECTS,
        durable=DURABLE,
        stream=WORK_STREAM,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            max_deliver=MAX_DELIVER,
        ),
    )


async def work(
    lake: Lake, js: JetStreamContext, *, stop: asyncio.Event, jobs: int, replicas: int = 1
) -> None:
    """Forecast chunks from the work stream until `stop` is set (one chunk at a time).

    A chunk under way when `stop` is set is finished first; a worker killed outright leaves
    its chunk unacked, and JetStream hands it to another worker after `ACK_WAIT_SECONDS`.
    Broker trouble while subscribing or waiting for work (no meta or consumer leader during an
    election after a node is lost, a reconnect, the consumer gone) is logged and waited out with
    backoff, subscribing again, so that the worker outlives it.
    """
    await ensure_work_stream(js, replicas)
    subscription: JetStreamContext.PullSubscription | None = None
    ready = False
    failures = 0
    while not stop.is_set():
        try:
            if subscription is None:
                # Creating or binding the durable consumer goes through the cluster's meta
                # leader: right after a node is lost it may time out, and is tried again.
                subscription = await _subscribe(js)
                if not ready:
                    ready = True
                    log.info("forecast_worker_ready", stream=WORK_STREAM, durable=DURABLE,
                             pid=os.getpid())  # fmt: skip
            messages = await subscription.fetch(1, timeout=1.0)
        except nats.errors.TimeoutError:
            failures = 0
            continue
        except nats.errors.Error as error:
            failures += 1
            delay = _retry_delay(failures)
            log.warning(
                "forecast_fetch_failed",
                error=_describe(error),
                failures=failures,
                retry_in_seconds=delay,
            )
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
                subscription = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        failures = 0
        for msg in messages:
            await _handle(lake, msg, jobs)
    if subscription is not None:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    log.info("forecast_worker_stopped", pid=os.getpid())


def run_distributed_once(
    settings: NovaSettings,
    options: ForecastOptions,
    *,
    chunk_size: int,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> RunManifest | None:
    """`run_once` over the workers: coordinate, commit, publish. None when gold has no demand."""
    from services.forecaster.main import PRODUCER, publish_or_warn, published_event
    from services.forecaster.runner import NoHistoryError

    lake = Lake.from_settings(settings.storage)

    async def coordinate() -> RunManifest:
        nc = await connect(settings.nats, name=f"{PRODUCER}-coordinator")
        try:
            return await run_distributed(
                lake,
                nc.jetstream(),
                options,
                chunk_size=chunk_size,
                timeout_seconds=timeout_seconds,
                progress=progress,
                replicas=settings.nats.replicas,
            )
        finally:
            await nc.close()

    try:
        manifest = asyncio.run(coordinate())
    except NoHistoryError as reason:
        log.warning("forecast_skipped", reason=str(reason))
        return None
    publish_or_warn(settings, published_event(manifest, lake))
    return manifest


async def run_worker(settings: NovaSettings) -> None:
    """`python -m services.forecaster --worker`: take chunks until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    lake = Lake.from_settings(settings.storage)
    nc = await connect(settings.nats, name="forecaster-worker")
    try:
        await work(
            lake,
            nc.jetstream(),
            stop=stop,
            jobs=settings.forecaster.jobs,
            replicas=settings.nats.replicas,
        )
    finally:
        await nc.close()
