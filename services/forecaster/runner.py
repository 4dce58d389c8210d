"""One forecast run: read gold, fit and select per series, derive inventory policy, publish.

A run writes `gold.fact_forecast`, `gold.forecast_accuracy` and `gold.inventory_policy`, then
appends one row to `gold.forecast_runs` naming the versions it wrote. That manifest row is the
commit point: readers take the tables at the versions of the latest manifest row (see
`shared.manifests`), so a run that fails or is interrupted before its manifest leaves the previous
forecasts live, however far it got.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from services.forecaster.history import FREQ, PERIOD_DAYS, SEASON_LENGTH, Bucket, bucket_history
from shared.logging import get_logger
from shared.manifests import FORECAST_RUNS
from shared.storage import Lake

if TYPE_CHECKING:
    from services.forecaster.models import ForecastResult

log = get_logger(__name__)
BASE_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OUTPUT_TABLES = ("fact_forecast", "forecast_accuracy", "inventory_policy")


def forecast_column(q: float) -> str:
    """Column of quantile q in `gold.fact_forecast`: 0.1 → p10; the service level → p_service."""
    return f"p{round(q * 100):02d}" if q in BASE_QUANTILES else "p_service"


@dataclass(frozen=True)
class ForecastOptions:
    bucket: Bucket = "week"
    horizon: int = 12
    service_level: float = 0.95
    jobs: int = 0  # 0: every core
    items: list[str] | None = None
    # Item × site series are added for pairs with at least this many buckets with demand
    # ("where history allows"); 0 forecasts materials only. Policy stays per material.
    site_min_nonzero_periods: int = 0
    backtest_origins: int = 3
    min_nonzero_periods: int = 2
    candidates: tuple[str, ...] | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The candidates to backtest. AutoARIMA is left out of weekly runs by default: it is by
        far the slowest fit on weekly series and was selected for 7 of 699 weekly demo series."""
        from services.forecaster.models import ALL_MODELS

        if self.candidates:
            return self.candidates
        return tuple(m for m in ALL_MODELS if not (self.bucket == "week" and m == "AutoARIMA"))

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(sorted({*BASE_QUANTILES, round(self.service_level, 4)}))

    @property
    def workers(self) -> int:
        return self.jobs or os.cpu_count() or 1


@dataclass(frozen=True)
class RunManifest:
    run_id: str
    started_at: datetime
    finished_at: datetime
    series: int
    items_with_policy: int
    table_versions: dict[str, int]
    data_versions: dict[str, int]
    selected_models: dict[str, int]
    options: ForecastOptions
    code_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class NoHistoryError(RuntimeError):
    """gold.fact_demand is empty or absent: there is nothing to forecast yet."""


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("nova-corrente-platform")
    except PackageNotFoundError:
        package = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return f"{package}+{commit}" if commit else package


def _forecast_table(
    result_forecasts: pd.DataFrame, options: ForecastOptions, run_id: str
) -> pa.Table:
    frame = result_forecasts.copy()
    parts = frame["series_id"].str.split("|", n=1, expand=True)
    frame["item_code"] = parts[0]
    frame["site_code"] = parts[1] if parts.shape[1] > 1 else None
    columns: dict[str, Any] = {
        "run_id": pa.array([run_id] * len(frame), pa.string()),
        "series_id": pa.array(frame["series_id"], pa.string()),
        "item_code": pa.array(frame["item_code"], pa.string()),
        "site_code": pa.array(
            frame["site_code"].where(frame["site_code"].notna(), None), pa.string()
        ),
        "period": pa.array(pd.to_datetime(frame["period"]).dt.date, pa.date32()),
        "step": pa.array(frame["step"].astype("int32"), pa.int32()),
        "model": pa.array(frame["model"], pa.string()),
    }
    # Imported here: readers of the forecast tables (`read_live`) must not pull in the models.
    from services.forecaster.models import quantile_column

    for name, q in (
        *((forecast_column(q), q) for q in BASE_QUANTILES),
        ("p_service", options.service_level),
    ):
        columns[name] = pa.array(frame[quantile_column(q)].astype(float), pa.float64())
    columns["service_level"] = pa.array([options.service_level] * len(frame), pa.float64())
    columns["mean"] = pa.array(frame["mean"].astype(float), pa.float64())
    return pa.table(columns)


def _accuracy_table(accuracy: pd.DataFrame, run_id: str) -> pa.Table:
    frame = accuracy.copy()
    parts = frame["series_id"].str.split("|", n=1, expand=True)
    return pa.table(
        {
            "run_id": pa.array([run_id] * len(frame), pa.string()),
            "series_id": pa.array(frame["series_id"], pa.string()),
            "item_code": pa.array(parts[0], pa.string()),
            "model": pa.array(frame["model"], pa.string()),
            "demand_class": pa.array(frame["demand_class"], pa.string()),
            "mase": pa.array(frame["mase"].astype(float), pa.float64()),
            "wql": pa.array(frame["wql"].astype(float), pa.float64()),
            "bias": pa.array(frame["bias"].astype(float), pa.float64()),
            "wape": pa.array(frame["wape"].astype(float), pa.float64()),
            "coverage_80": pa.array(frame["coverage_80"].astype(float), pa.float64()),
            "selected": pa.array(frame["selected"].astype(bool), pa.bool_()),
        }
    )


@dataclass(frozen=True)
class PreparedRun:
    """What a run reads before forecasting: its id, start, the input versions and the history."""

    run_id: str
    started_at: datetime
    began: float  # time.perf_counter() at the start
    data_versions: dict[str, int]
    history: pd.DataFrame  # bucket_history: series_id, item_code, site_code, period, y

    @property
    def series(self) -> int:
        return int(self.history["series_id"].nunique())


def prepare_run(
    lake: Lake,
    options: ForecastOptions,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PreparedRun:
    """Read gold demand (recording the versions read) and bucket it into series histories."""
    started_at = clock()
    began = time.perf_counter()
    run_id = uuid.uuid4().hex
    demand_table = lake.delta_table("gold", "fact_demand")
    if demand_table is None:
        raise NoHistoryError("gold.fact_demand does not exist yet")
    data_versions = {"gold.fact_demand": demand_table.version()}
    for name in ("fact_lead_time", "dim_supplier", "fact_stock", "dim_item"):
        table = lake.delta_table("gold", name)
        if table is not None:
            data_versions[f"gold.{name}"] = table.version()
    demand = demand_table.to_pyarrow_table(
        columns=["demand_date", "item_code", "site_code", "quantity"]
    )
    history = bucket_history(
        demand,
        bucket=options.bucket,
        items=options.items,
        min_nonzero_periods=options.min_nonzero_periods,
    )
    if options.site_min_nonzero_periods and not history.empty:
        by_site = bucket_history(
            demand,
            bucket=options.bucket,
            by_site=True,
            items=options.items,
            min_nonzero_periods=options.site_min_nonzero_periods,
        )
        history = pd.concat([history, by_site], ignore_index=True)
    if history.empty:
        raise NoHistoryError("no series with enough demand history to forecast")
    return PreparedRun(run_id, started_at, began, data_versions, history)


def run_forecast(
    lake: Lake,
    options: ForecastOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    before_manifest: Callable[[], None] | None = None,
) -> RunManifest:
    """Forecast every series with history and commit the results (manifest last)."""
    from services.forecaster.models import forecast_panel

    prepared = prepare_run(lake, options, clock=clock)
    log.info("forecast_run_started", run_id=prepared.run_id, series=prepared.series,
             bucket=options.bucket, horizon=options.horizon, jobs=options.workers)  # fmt: skip
    result = forecast_panel(
        prepared.history[["series_id", "period", "y"]],
        horizon=options.horizon,
        freq=FREQ[options.bucket],
        season_length=SEASON_LENGTH[options.bucket],
        quantiles=options.quantiles,
        backtest_origins=options.backtest_origins,
        jobs=options.workers,
        progress=progress,
        candidates=options.models,
    )
    return commit_run(lake, options, prepared, result, clock=clock, before_manifest=before_manifest)


def commit_run(
    lake: Lake,
    options: ForecastOptions,
    prepared: PreparedRun,
    result: ForecastResult,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    before_manifest: Callable[[], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunManifest:
    """Write forecasts, accuracy and inventory policy, then the manifest row (the commit)."""
    from services.forecaster.policy_table import inventory_policy_table

    run_id = prepared.run_id
    series = prepared.series
    forecasts = _forecast_table(result.forecasts, options, run_id)
    accuracy = _accuracy_table(result.accuracy, run_id)
    policy = inventory_policy_table(
        lake,
        forecasts,
        run_id=run_id,
        service_level=options.service_level,
        period_days=PERIOD_DAYS[options.bucket],
        quantiles=options.quantiles,
    )
    metadata = {"run_id": run_id, "kind": "forecast"}
    versions: dict[str, int] = {}
    for name, table in (
        ("fact_forecast", forecasts),
        ("forecast_accuracy", accuracy),
        ("inventory_policy", policy),
    ):
        commit = lake.write_delta("gold", name, table, mode="overwrite", metadata=metadata)
        versions[name] = commit.version
    if before_manifest is not None:
        before_manifest()  # tests interrupt a run here
    finished_at = clock()
    selected = accuracy.filter(accuracy["selected"]).column("model").to_pylist()
    selected_models = {m: selected.count(m) for m in sorted(set(selected))}
    manifest = RunManifest(
        run_id=run_id,
        started_at=prepared.started_at,
        finished_at=finished_at,
        series=series,
        items_with_policy=policy.num_rows,
        table_versions=versions,
        data_versions=prepared.data_versions,
        selected_models=selected_models,
        options=options,
        code_version=code_version(),
        extra={"seconds": round(time.perf_counter() - prepared.began, 3), **(extra or {})},
    )
    lake.write_delta(
        "gold", FORECAST_RUNS, manifest_row(manifest), mode="append", metadata=metadata
    )
    log.info("forecast_run_committed", run_id=run_id, series=series, tables=versions,
             selected_models=selected_models, seconds=manifest.extra["seconds"])  # fmt: skip
    return manifest


def manifest_row(manifest: RunManifest) -> pa.Table:
    options = manifest.options
    parameters = {
        "bucket": options.bucket,
        "horizon": options.horizon,
        "service_level": options.service_level,
        "quantiles": list(options.quantiles),
        "backtest_origins": options.backtest_origins,
        "site_min_nonzero_periods": options.site_min_nonzero_periods,
        "items": options.items,
        "jobs": options.workers,
        "candidates": list(options.models),
    }
    return pa.table(
        {
            "run_id": [manifest.run_id],
            "started_at": pa.array([manifest.started_at], pa.timestamp("us", tz="UTC")),
            "finished_at": pa.array([manifest.finished_at], pa.timestamp("us", tz="UTC")),
            "duration_seconds": [manifest.duration_seconds],
            "series": pa.array([manifest.series], pa.int64()),
            "items_with_policy": pa.array([manifest.items_with_policy], pa.int64()),
            "table_versions": [json.dumps(manifest.table_versions, sort_keys=True)],
            "data_versions": [json.dumps(manifest.data_versions, sort_keys=True)],
            "selected_models": [json.dumps(manifest.selected_models, sort_keys=True)],
            "parameters": [json.dumps(parameters, sort_keys=True)],
            "code_version": [manifest.code_version],
        }
    )
