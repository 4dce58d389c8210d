"""A forecast run shared by two real worker processes through a real JetStream work queue."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from services.forecaster.distributed import (
    WORK_STREAM,
    DistributedRunError,
    ensure_work_stream,
    run_distributed,
)
from services.forecaster.history import bucket_history, whole_bucket_origin
from services.forecaster.runner import ForecastOptions
from shared.broker import connect
from shared.manifests import FORECAST_RUNS as MANIFEST
from shared.manifests import live_forecast_versions as live_versions
from shared.manifests import read_live
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

HORIZON = 6
CHUNK_SIZE = 5


def _options() -> ForecastOptions:
    return ForecastOptions(horizon=HORIZON, jobs=1, backtest_origins=2)


def _log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a stray non-JSON line from a library
    return lines


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def workers(demo_var: Path, nats_url: str, tmp_path: Path) -> Iterator[list[Path]]:
    """Two `python -m services.forecaster --worker` processes; yields their log files."""
    env = {
        **os.environ,
        "NOVA_VAR_DIR": str(demo_var),
        "NOVA_NATS__URL": nats_url,
        "NOVA_LOG__FORMAT": "json",
        "NOVA_FORECASTER__JOBS": "1",
    }
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    processes = []
    try:
        for log in logs:
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.forecaster", "--worker"],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for log, process in zip(logs, processes, strict=True):
            _wait_for(
                lambda log=log, process=process: (
                    process.poll() is not None
                    or any(e.get("event") == "forecast_worker_ready" for e in _log_lines(log))
                ),
                timeout=120,  # a worker imports the forecasting stack first: slow when loaded
                what=f"worker ready ({log})",
            )
            assert process.poll() is None, log.read_text()
        yield logs
        # SIGTERM stops an idle worker cleanly.
        for process in processes:
            process.terminate()
        for log, process in zip(logs, processes, strict=True):
            assert process.wait(15) == 0, log.read_text()
            assert any(e.get("event") == "forecast_worker_stopped" for e in _log_lines(log))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_two_workers_share_a_run_that_is_committed_once(demo_var, nats_url, workers):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    manifests = lake.delta_table("gold", MANIFEST)
    runs_before = 0 if manifests is None else manifests.to_pyarrow_table().num_rows
    progress: list[tuple[int, int]] = []

    async def coordinate():
        nc = await connect(NovaSettings(nats={"url": nats_url}).nats, name="test-coordinator")
        try:
            js = nc.jetstream()
            manifest = await run_distributed(
                lake,
                js,
                _options(),
                chunk_size=CHUNK_SIZE,
                timeout_seconds=45,
                progress=lambda d, t: progress.append((d, t)),
            )
            # Acks follow the result files, so give the last ack a moment to land (generous:
            # a worker on a loaded machine may be descheduled between the two).
            deadline = time.monotonic() + 30
            while (await js.stream_info(WORK_STREAM)).state.messages and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(0.1)
            return manifest, (await js.stream_info(WORK_STREAM)).state.messages
        finally:
            await nc.close()

    manifest, left_in_stream = asyncio.run(coordinate())

    # Every series with enough history forecast exactly once, HORIZON steps, in this run.
    demand = lake.delta_table("gold", "fact_demand").to_pyarrow_table()
    origin, _ = whole_bucket_origin(pc.max(demand["demand_date"]).as_py(), "week")
    expected = set(bucket_history(demand, bucket="week", last_period=origin)["series_id"])
    assert len(expected) > 2 * CHUNK_SIZE, "the demo data must make several chunks"
    forecasts = read_live(lake, "fact_forecast").to_pandas()
    assert set(forecasts["series_id"]) == expected
    assert manifest.series == len(expected)
    assert not forecasts.duplicated(["series_id", "step"]).any()
    assert forecasts.groupby("series_id")["step"].count().eq(HORIZON).all()
    assert set(forecasts["run_id"]) == {manifest.run_id}
    accuracy = read_live(lake, "forecast_accuracy").to_pandas()
    assert accuracy.groupby("series_id")["selected"].sum().eq(1).all()
    assert set(accuracy["series_id"]) == expected
    policy = read_live(lake, "inventory_policy").to_pandas()
    assert set(policy["item_code"]) == set(forecasts["item_code"])

    # Committed once: one manifest row added, and it is the live one.
    runs = lake.delta_table("gold", MANIFEST).to_pyarrow_table()
    assert runs.num_rows == runs_before + 1
    assert runs.column("run_id").to_pylist().count(manifest.run_id) == 1
    assert live_versions(lake) == manifest.table_versions
    assert progress and progress[-1] == (len(expected), len(expected))

    # Both workers took part, every chunk was done, the queue is drained, scratch removed.
    chunks = -(-len(expected) // CHUNK_SIZE)
    done = [
        [e for e in _log_lines(log) if e.get("event") == "forecast_chunk_done"] for log in workers
    ]
    assert all(done), [len(d) for d in done]
    assert {(e["run_id"], e["chunk"]) for d in done for e in d} == {
        (manifest.run_id, i) for i in range(chunks)
    }
    assert left_in_stream == 0
    assert lake.list_files(f"forecast_work/{manifest.run_id}") == []


def test_without_workers_the_coordinator_times_out_and_commits_nothing(demo_var, nats_url):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    before = live_versions(lake)
    runs = lake.delta_table("gold", MANIFEST)
    runs_before = 0 if runs is None else runs.to_pyarrow_table().num_rows

    async def coordinate() -> int:
        nc = await connect(NovaSettings(nats={"url": nats_url}).nats, name="test-coordinator")
        try:
            js = nc.jetstream()
            await ensure_work_stream(js)
            await ensure_work_stream(js)  # idempotent
            with pytest.raises(DistributedRunError, match="did not arrive"):
                await run_distributed(lake, js, _options(), chunk_size=50, timeout_seconds=1)
            return (await js.stream_info(WORK_STREAM)).state.messages
        finally:
            await nc.close()

    assert asyncio.run(coordinate()) == 0, "the abandoned run's chunks are purged"
    assert live_versions(lake) == before
    runs = lake.delta_table("gold", MANIFEST)
    assert (0 if runs is None else runs.to_pyarrow_table().num_rows) == runs_before
    assert lake.list_files("forecast_work") == []
