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
import pyarrow.compute as pc

from services.forecaster.history import (
    ALL_SITES,
    FREQ,
    PERIOD_DAYS,
    SEASON_LENGTH,
    Bucket,
    bucket_history,
    whole_bucket_origin,
)
from services.forecaster.telemetry import RunTelemetry
from shared.logging import get_logger
from shared.manifests import FORECAST_RUNS, live_gold_versions
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
    # Every part with demand before the origin gets a forecast and a policy, however thin its
    # history: a planner still has to decide whether to stock a part requested once.
    min_nonzero_periods: int = 1
    candidates: tuple[str, ...] | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The candidates to backtest: `candidates`, else the default set (`DEFAULT_CANDIDATES`:
        every model but the opt-in AutoARIMA and Prophet)."""
        from services.forecaster.models import DEFAULT_CANDIDATES

        return self.candidates or DEFAULT_CANDIDATES

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
    gold_build_id: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    series_by_class: dict[str, int] = field(default_factory=dict)
    failures_by_model: dict[str, int] = field(default_factory=dict)
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


def _accuracy_table(accuracy: pd.DataFrame, options: ForecastOptions, run_id: str) -> pa.Table:
    """`gold.forecast_accuracy`: backtest scores per (series, candidate) and, per served level
    (p10..p90, p_service), the counts of backtest cells with y < q and y <= q."""
    from services.forecaster.models import SCORE_COLUMNS, calibration_columns

    frame = accuracy.copy()
    parts = frame["series_id"].str.split("|", n=1, expand=True)
    columns: dict[str, pa.Array] = {
        "run_id": pa.array([run_id] * len(frame), pa.string()),
        "series_id": pa.array(frame["series_id"], pa.string()),
        "item_code": pa.array(parts[0] if len(frame) else [], pa.string()),
        "model": pa.array(frame["model"], pa.string()),
        "demand_class": pa.array(frame["demand_class"], pa.string()),
    }
    for name in SCORE_COLUMNS:
        if name == "cells":
            continue
        columns[name] = pa.array(frame[name].astype(float), pa.float64())
    columns["cells"] = _counts(frame["cells"])
    served = [(forecast_column(q), q) for q in BASE_QUANTILES]
    served.append(("p_service", options.service_level))
    for column, q in served:
        below, at_or_below = calibration_columns(q)
        columns[f"below_{column}"] = _counts(frame[below])
        columns[f"at_or_below_{column}"] = _counts(frame[at_or_below])
    columns["selected"] = pa.array(frame["selected"].astype(bool), pa.bool_())
    return pa.table(columns)


def _counts(values: pd.Series) -> pa.Array:
    """Cell counts as int64, null where the model has no score."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return pa.array(numbers.round().astype("Int64"), pa.int64())


@dataclass(frozen=True)
class GoldInputs:
    """Everything a run reads from gold, all at the versions one build named in `gold.builds`.

    Read once at the start: a build that commits while the models run cannot leak into the
    run's policy or manifest (the forecasts and the reorder points come from one build).
    """

    build_id: str
    versions: dict[str, int]  # "gold.<table>" -> version read
    demand: pa.Table  # demand_date, item_code, site_code, quantity
    lead_times: pa.Table | None
    stock: pa.Table | None


def read_gold_inputs(lake: Lake) -> GoldInputs:
    """The tables a run needs at the versions of the latest completed gold build."""
    live = live_gold_versions(lake)
    if live is None:
        raise NoHistoryError("no completed gold build yet (gold.builds is empty)")
    build_id, named = live
    versions: dict[str, int] = {}
    tables: dict[str, pa.Table | None] = {}
    for name, columns in GOLD_INPUTS.items():
        version = named.get(name)
        table = None if version is None else lake.delta_table("gold", name, version=version)
        if table is None:
            tables[name] = None
            continue
        versions[f"gold.{name}"] = int(version)  # type: ignore[arg-type]
        tables[name] = table.to_pyarrow_table(columns=list(columns))
    demand = tables["fact_demand"]
    if demand is None:
        raise NoHistoryError(f"gold build {build_id} has no fact_demand")
    return GoldInputs(build_id, versions, demand, tables["fact_lead_time"], tables["fact_stock"])


# Columns read from each gold table (the whole table, at the build's version).
GOLD_INPUTS: dict[str, tuple[str, ...]] = {
    "fact_demand": ("demand_date", "item_code", "site_code", "quantity"),
    "fact_lead_time": ("item_code", "lead_time_days"),
    "fact_stock": ("snapshot_date", "item_code", "quantity_on_hand"),
}


@dataclass(frozen=True)
class PreparedRun:
    """What a run reads before forecasting: its id, start, the gold inputs and the history."""

    run_id: str
    started_at: datetime
    began: float  # time.perf_counter() at the start
    inputs: GoldInputs
    history: pd.DataFrame  # bucket_history: series_id, item_code, site_code, period, y
    origin: pd.Timestamp  # the last whole bucket: forecasts start after it
    dropped_partial: pd.Timestamp | None  # the partial last bucket left out of fitting
    read_seconds: float

    @property
    def series(self) -> int:
        return int(self.history["series_id"].nunique())

    @property
    def data_versions(self) -> dict[str, int]:
        return self.inputs.versions

    @property
    def item_history(self) -> pd.DataFrame:
        """Item-level series (every site together): what the inventory policy reads."""
        frame = self.history[self.history["site_code"] == ALL_SITES]
        return frame[["item_code", "period", "y"]].reset_index(drop=True)


def prepare_run(
    lake: Lake,
    options: ForecastOptions,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PreparedRun:
    """Read gold (one build) and bucket its demand into series histories."""
    started_at = clock()
    began = time.perf_counter()
    run_id = uuid.uuid4().hex
    inputs = read_gold_inputs(lake)
    demand = inputs.demand
    if demand.num_rows == 0:
        raise NoHistoryError("gold.fact_demand has no rows")
    last_day = pc.max(demand["demand_date"]).as_py()
    origin, partial = whole_bucket_origin(last_day, options.bucket)
    history = bucket_history(
        demand,
        bucket=options.bucket,
        items=options.items,
        min_nonzero_periods=options.min_nonzero_periods,
        last_period=origin,
    )
    if options.site_min_nonzero_periods and not history.empty:
        by_site = bucket_history(
            demand,
            bucket=options.bucket,
            by_site=True,
            items=options.items,
            min_nonzero_periods=options.site_min_nonzero_periods,
            last_period=origin,
        )
        history = pd.concat([history, by_site], ignore_index=True)
    if history.empty:
        raise NoHistoryError("no series with demand history before the last whole bucket")
    read_seconds = time.perf_counter() - began
    return PreparedRun(
        run_id,
        started_at,
        began,
        inputs,
        history,
        pd.Timestamp(origin),
        None if partial is None else pd.Timestamp(partial),
        read_seconds,
    )


def run_forecast(
    lake: Lake,
    options: ForecastOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    before_manifest: Callable[[], None] | None = None,
    telemetry: RunTelemetry | None = None,
) -> RunManifest:
    """Forecast every series with history and commit the results (manifest last)."""
    from services.forecaster.models import forecast_panel

    telemetry = telemetry or RunTelemetry()
    telemetry.stage("read")
    prepared = prepare_run(lake, options, clock=clock)
    log.info("forecast_run_started", run_id=prepared.run_id, series=prepared.series,
             bucket=options.bucket, horizon=options.horizon, jobs=options.workers,
             gold_build_id=prepared.inputs.build_id, origin=str(prepared.origin.date()),
             partial_bucket_left_out=None if prepared.dropped_partial is None
             else str(prepared.dropped_partial.date()))  # fmt: skip
    telemetry.stage("backtest")
    telemetry.started(prepared.series)

    def report(done: int, total: int) -> None:
        telemetry.progress(done, total)
        if progress is not None:
            progress(done, total)

    result = forecast_panel(
        prepared.history[["series_id", "period", "y"]],
        horizon=options.horizon,
        freq=FREQ[options.bucket],
        season_length=SEASON_LENGTH[options.bucket],
        quantiles=options.quantiles,
        backtest_origins=options.backtest_origins,
        jobs=options.workers,
        progress=report,
        candidates=options.models,
    )
    telemetry.failures(result.stats.get("failures_by_model", {}))
    return commit_run(
        lake,
        options,
        prepared,
        result,
        clock=clock,
        before_manifest=before_manifest,
        telemetry=telemetry,
    )


def commit_run(
    lake: Lake,
    options: ForecastOptions,
    prepared: PreparedRun,
    result: ForecastResult,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    before_manifest: Callable[[], None] | None = None,
    extra: dict[str, Any] | None = None,
    telemetry: RunTelemetry | None = None,
) -> RunManifest:
    """Write forecasts, accuracy and inventory policy, then the manifest row (the commit)."""
    from services.forecaster.policy_table import inventory_policy_table

    telemetry = telemetry or RunTelemetry()
    run_id = prepared.run_id
    series = prepared.series
    telemetry.stage("policy")
    policy_began = time.perf_counter()
    forecasts = _forecast_table(result.forecasts, options, run_id)
    accuracy = _accuracy_table(result.accuracy, options, run_id)
    policy = inventory_policy_table(
        forecasts,
        prepared.item_history,
        prepared.inputs.lead_times,
        prepared.inputs.stock,
        run_id=run_id,
        service_level=options.service_level,
        period_days=PERIOD_DAYS[options.bucket],
        quantiles=options.quantiles,
    )
    telemetry.stage("commit")
    commit_began = time.perf_counter()
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
    stage_seconds = {
        "read": round(prepared.read_seconds, 3),
        **result.stats.get("stage_seconds", {}),
        "policy": round(commit_began - policy_began, 3),
        "commit": round(time.perf_counter() - commit_began, 3),
    }
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
        gold_build_id=prepared.inputs.build_id,
        stage_seconds=stage_seconds,
        series_by_class=dict(result.stats.get("series_by_class", {})),
        failures_by_model=dict(result.stats.get("failures_by_model", {})),
        extra={"seconds": round(time.perf_counter() - prepared.began, 3), **(extra or {})},
    )
    lake.write_delta(
        "gold", FORECAST_RUNS, manifest_row(manifest), mode="append", metadata=metadata
    )
    telemetry.finished(manifest.duration_seconds)
    log.info("forecast_run_committed", run_id=run_id, series=series, tables=versions,
             selected_models=selected_models, seconds=manifest.extra["seconds"],
             stage_seconds=stage_seconds,
             failures_by_model=manifest.failures_by_model)  # fmt: skip
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
            "gold_build_id": [manifest.gold_build_id],
            "stage_seconds": [json.dumps(manifest.stage_seconds)],
            "series_by_class": [json.dumps(manifest.series_by_class, sort_keys=True)],
            "failures_by_model": [json.dumps(manifest.failures_by_model, sort_keys=True)],
        }
    )
