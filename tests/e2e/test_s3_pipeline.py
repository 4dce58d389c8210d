"""The whole pipeline with the lake on an S3-protocol server: exactly the code path MinIO uses.

moto's S3 server runs in the test process; `nova up` starts nats-server, the ingestor, the
transformer and the API with `NOVA_STORAGE__BACKEND=s3` pointing at it; the forecaster runs
as its own process. Bronze Parquet objects, Delta tables and their conditional commits all go
over HTTP to the server, and nothing is written to a local lake folder.

The second test stops the server in the middle of a burst of files and starts it again: the API
reports not-ready with the storage error meanwhile, the ingestor and the transformer wait for
the lake instead of quarantining files or dead-lettering events, and afterwards silver and gold
equal a clean rebuild of the same bronze.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from services.demo.erp_workbook import REQUISITIONS_SHEET
from services.demo.sources import generate_demo_sources
from services.ingestor.contracts import CONTRACTS
from services.transformer.builds import rebuild_all
from shared.settings import StorageSettings
from shared.storage import Lake
from tests.demo_lake import build_demo_gold
from tests.e2e.s3 import (
    PREFIX,
    MotoS3,
    S3Stack,
    copy_bronze,
    differences,
    read_tables,
    run_forecaster,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SEED, ITEMS, DEPOTS, DAYS = 11, 30, 8, 420  # small: the pipeline's shape, not its volume
SETTLE_TIMEOUT = 180.0


@pytest.fixture
def stack(s3: MotoS3, tmp_path: Path) -> Iterator[S3Stack]:
    running = S3Stack.create(s3, tmp_path)
    running.start()
    yield running
    running.stop()


def workbook_item_codes(path: Path) -> set[str]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = workbook[REQUISITIONS_SHEET].iter_rows(min_row=2, max_col=2, values_only=True)
    codes = {code for _, code in rows if code is not None}
    workbook.close()
    return codes


def test_drop_to_forecast_through_the_api_with_the_lake_on_s3(
    stack: S3Stack, s3: MotoS3, tmp_path: Path
):
    sources = generate_demo_sources(
        tmp_path / "sources", seed=SEED, items=ITEMS, depots=DEPOTS, days=DAYS
    )
    codes = workbook_item_codes(sources.paths[0])
    stack.drop(sources.paths)

    # drop -> bronze -> silver/gold -> API
    wait_for(
        lambda: stack.archived_names() == sorted(p.name for p in sources.paths),
        SETTLE_TIMEOUT,
        "every file to be archived",
        detail=stack.logs_tail,
    )
    wait_for(stack.pipeline_settled, SETTLE_TIMEOUT, "the transformer to settle",
             detail=stack.logs_tail)  # fmt: skip
    wait_for(lambda: stack.get("/ready").status_code == 200, 30, "/ready", detail=stack.logs_tail)
    wait_for(lambda: stack.item_total() == len(codes), 30, "every item in the API")
    assert sorted(stack.all_item_codes()) == sorted(codes)
    assert stack.files_in("quarantine") == []
    assert stack.transformer_state()["dead_letters"] == 0

    # The lake is in the bucket, under the prefix, and nowhere on disk.
    assert not (stack.var_dir / "lake").exists()
    keys = s3.keys(stack.bucket)
    assert keys and all(k.startswith(f"{PREFIX}/") for k in keys)
    bronze = [k for k in keys if k.startswith(f"{PREFIX}/bronze/") and k.endswith(".parquet")]
    assert sorted({k.split("/")[2] for k in bronze}) == sorted(CONTRACTS)
    published = stack.events("ingestor", "event_published")
    assert len(bronze) == len(published) == len({e["event_id"] for e in published})
    for table in ("silver/erp_requisitions", "gold/dim_item", "gold/fact_demand", "gold/builds"):
        assert any(k.startswith(f"{PREFIX}/{table}/_delta_log/0000") for k in keys), table
    # pyarrow keeps empty `dir/` marker keys; no staged object may be left.
    assert [k for k in keys if "/_staging/" in k and not k.endswith("/")] == []

    # forecast: its own process, reading gold from S3 and committing its tables there.
    forecast_env = {
        **stack.env,
        "NOVA_FORECASTER__BACKTEST_ORIGINS": "1",
        "NOVA_FORECASTER__HORIZON": "8",
        "NOVA_FORECASTER__JOBS": "2",
        "NOVA_FORECASTER__SITE_MIN_NONZERO_PERIODS": "0",
    }
    log_path = stack.var_dir / "log" / "forecaster.log"
    code = run_forecaster(forecast_env, log_path, timeout=300)
    assert code == 0, log_path.read_text(errors="replace")[-3000:]
    keys = s3.keys(stack.bucket, f"{PREFIX}/gold/")
    for table in ("fact_forecast", "inventory_policy", "forecast_accuracy", "forecast_runs"):
        assert any(k.startswith(f"{PREFIX}/gold/{table}/_delta_log/") for k in keys), table

    # The API switches to the run (forecast.published) and serves forecasts and policy.
    item = sorted(codes)[0]
    forecast = wait_for(
        lambda: (r := stack.get("/api/v1/forecasts", item=item)).status_code == 200 and r.json(),
        30,
        f"a forecast of {item}",
    )
    assert forecast["run_id"] and forecast["series"]
    assert forecast["series"][0]["points"]
    policy = stack.get("/api/v1/inventory/policy", limit=500).json()
    assert policy["total"] > 0
    assert {p["item_code"] for p in policy["policies"]} <= codes
    ready = stack.get("/ready").json()
    assert ready["ready"] and ready["run_id"] == forecast["run_id"]

    # The same files through the same code on a local folder give the same tables.
    local = build_demo_gold(tmp_path / "local", seed=SEED, items=ITEMS, depots=DEPOTS, days=DAYS)
    local_lake = Lake.from_settings(local.storage)
    on_s3 = read_tables(stack.lake)
    on_disk = read_tables(local_lake)
    forecast_tables = {"gold.fact_forecast", "gold.forecast_accuracy", "gold.inventory_policy"}
    on_s3 = {k: v for k, v in on_s3.items() if k not in forecast_tables}
    # _ingested_at is each ingestion's clock; everything else must be equal.
    assert differences(on_s3, on_disk, drop=["_ingested_at"]) == []
    assert "gold.dim_item" in on_s3 and on_s3["gold.dim_item"].num_rows == len(codes)


def copy_with_suffix(paths: list[Path], suffix: str, out: Path) -> list[Path]:
    """Other exports of the same kind: same contracts, other file names."""
    out.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(path, out / f"{path.stem}_{suffix}{path.suffix}")) for path in paths]


def test_s3_outage_mid_burst_is_retried_reported_and_loses_nothing(s3: MotoS3, tmp_path: Path):
    stack = S3Stack.create(
        s3,
        tmp_path,
        NOVA_API__VERSION_CHECK_SECONDS="0.3",
        # Few deliveries, so that an outage of seconds outlasts them all (at the default of 10
        # with backoff doubling to a minute, that takes minutes): storage being away must not
        # use them up.
        NOVA_TRANSFORMER__MAX_DELIVER="3",
    )
    stack.start()
    try:
        # First the ERP workbook alone, so that gold exists and the API is ready.
        first = generate_demo_sources(tmp_path / "first", seed=SEED, items=ITEMS, depots=DEPOTS,
                                      days=DAYS)  # fmt: skip
        workbook, *others = first.paths
        stack.drop([workbook])
        wait_for(lambda: stack.archived_names() == [workbook.name], SETTLE_TIMEOUT,
                 "the workbook to be archived", detail=stack.logs_tail)  # fmt: skip
        wait_for(stack.pipeline_settled, SETTLE_TIMEOUT, "the first build",
                 detail=stack.logs_tail)  # fmt: skip
        wait_for(lambda: stack.get("/ready").status_code == 200, 30, "/ready")

        # A burst: the other sources, and a branch's workbook and stock movements.
        second = generate_demo_sources(tmp_path / "second", seed=SEED + 1, items=ITEMS // 2,
                                       depots=DEPOTS, days=DAYS)  # fmt: skip
        branch = copy_with_suffix(second.paths[:2], "filial", tmp_path / "branch")
        burst = [*others, branch[0]]
        late = [branch[1]]
        codes = workbook_item_codes(workbook) | workbook_item_codes(branch[0])
        stack.drop(burst)
        # The outage starts once the burst is under way: files archived, builds queued.
        wait_for(lambda: len(stack.archived_names()) > 1, 60, "the burst to start", every=0.05)
        s3.stop()
        outage_started = time.monotonic()
        stack.drop(late)  # files keep arriving while the lake is away
        storage_error = wait_for(
            lambda: (r := stack.get("/ready")).status_code == 503 and r.json()["storage_error"],
            20,
            "/ready to report the storage failure",
            every=0.1,
        )
        assert "S3" in storage_error, storage_error  # the reason, for whoever looks
        assert "\x1b" not in storage_error and "\n" not in storage_error  # one plain line

        # Both writers met the outage and wait for the lake, for longer than several retries.
        def both_waiting() -> bool:
            return (
                bool(stack.events("ingestor", "storage_unavailable"))
                and bool(stack.events("transformer", "storage_unavailable"))
                and time.monotonic() - outage_started > 10
            )

        wait_for(both_waiting, 40, "the ingestor and the transformer to wait for the lake",
                 detail=stack.logs_tail)  # fmt: skip
        assert stack.get("/ready").status_code == 503
        assert stack.files_in("quarantine") == [], "a file was quarantined for a storage error"
        waiting = {p.name for p in stack.files_in("inbox")}
        assert {p.name for p in late} <= waiting, "files dropped during the outage left the inbox"
        assert stack.transformer_state()["dead_letters"] == 0
        stack.assert_alive()
        s3.start()

        every_name = sorted(p.name for p in [workbook, *burst, *late])
        wait_for(lambda: stack.archived_names() == every_name, SETTLE_TIMEOUT,
                 "every file to be archived", detail=stack.logs_tail)  # fmt: skip
        wait_for(stack.pipeline_settled, SETTLE_TIMEOUT, "the transformer to settle",
                 detail=stack.logs_tail)  # fmt: skip
        wait_for(lambda: stack.get("/ready").status_code == 200, 30, "/ready after the outage")
        wait_for(lambda: stack.item_total() == len(codes), 30, "every item in the API")
        stack.assert_alive()
        state = stack.transformer_state()
        assert state["dead_letters"] == 0, state
        assert stack.files_in("quarantine") == []
        assert stack.events("ingestor", "file_quarantined") == []
    finally:
        if not s3.running:
            s3.start()
        stack.stop()

    # Nothing lost, nothing duplicated: one bronze object per (dataset, content) published ...
    lake = stack.lake
    published = stack.events("ingestor", "event_published")
    bronze = [p for p in lake.list_files("bronze") if p.endswith(".parquet")]
    assert len(bronze) == len({e["event_id"] for e in published})
    # ... and silver and gold equal to a clean rebuild of that bronze on a fresh local lake.
    rebuilt = Lake.from_settings(StorageSettings(backend="local", local_root=tmp_path / "rebuilt"))
    copy_bronze(lake, rebuilt)
    rebuild_all(rebuilt)
    assert differences(read_tables(lake), read_tables(rebuilt)) == []
