"""The product path, measured: what `nova forecast --bucket month --horizon 12` runs.

`run_forecast(lake, options_from(NovaSettings(), bucket="month", horizon=12))` on a lake built
by `bench.forecast.lake` (same function, same options: the defaults of `NovaSettings`, i.e. the
environment and `.env` a user's `nova forecast` would read; no candidate list of our own), timed
from the call to its return (read gold, bucket, backtest, select, final fit, policy, commit).
The CLI's NATS event after the commit is not part of it. The results are read back as a reader
of the lake sees them: `shared.manifests.read_live` (the latest committed run).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from services.forecaster.main import options_from
from services.forecaster.models import quantile_column
from services.forecaster.runner import (
    BASE_QUANTILES,
    ForecastOptions,
    forecast_column,
    run_forecast,
)
from shared.manifests import FORECAST_RUNS, read_live
from shared.settings import NovaSettings
from shared.storage import Lake

BUCKET = "month"
HORIZON = 12


def product_options(service_level: float | None = None, bucket: str = BUCKET) -> ForecastOptions:
    """The options `nova forecast --bucket month --horizon 12 [--service-level X]` runs with
    (`bucket="week"`: `nova forecast --bucket week --horizon 12`)."""
    return options_from(NovaSettings(), bucket=bucket, horizon=HORIZON, service_level=service_level)


def describe_options(options: ForecastOptions) -> dict[str, Any]:
    return {
        "bucket": options.bucket,
        "horizon": options.horizon,
        "service_level": options.service_level,
        "jobs": options.jobs,
        "workers": options.workers,
        "backtest_origins": options.backtest_origins,
        "site_min_nonzero_periods": options.site_min_nonzero_periods,
        "min_nonzero_periods": getattr(options, "min_nonzero_periods", None),
        "candidates": list(options.models),
    }


@dataclass
class ProductRun:
    """One committed run read back: item-level forecasts (benchmark columns), its policy."""

    seconds: float
    series: int  # series the run forecast (manifest), item x site ones included
    options: dict[str, Any]
    forecasts: pd.DataFrame  # series_id (= item), period, step, model, q0.1.., mean
    policy: pd.DataFrame  # gold.inventory_policy as read
    selected_models: dict[str, int]
    run_row: dict[str, Any] = field(default_factory=dict)  # gold.forecast_runs, JSON decoded
    classes: dict[str, str] = field(default_factory=dict)  # item -> demand class of the run

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "series_forecast": self.series,
            "items_forecast": int(self.forecasts["series_id"].nunique()),
            "items_with_policy": len(self.policy),
            "selected_models": self.selected_models,
            "options": self.options,
            "run": self.run_row,
        }


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


def _latest_run_row(lake: Lake, run_id: str) -> dict[str, Any]:
    table = lake.delta_table("gold", FORECAST_RUNS)
    if table is None:
        return {}
    runs = table.to_pyarrow_table().to_pylist()
    rows = [r for r in runs if r.get("run_id") == run_id]
    return _decoded(rows[-1]) if rows else {}


def item_forecasts(table: pd.DataFrame, service_level: float) -> pd.DataFrame:
    """gold.fact_forecast item rows (site_code null) in the benchmark's column names."""
    items = table[table["site_code"].isna()].copy()
    frame = pd.DataFrame(
        {
            "series_id": items["item_code"].astype(str).to_numpy(),
            "period": pd.to_datetime(items["period"]).to_numpy(),
            "step": items["step"].astype(int).to_numpy(),
            "model": items["model"].to_numpy(),
        }
    )
    for q in BASE_QUANTILES:
        frame[quantile_column(q)] = items[forecast_column(q)].astype(float).to_numpy()
    if round(service_level, 4) not in BASE_QUANTILES:
        frame[quantile_column(service_level)] = items["p_service"].astype(float).to_numpy()
    frame["mean"] = items["mean"].astype(float).to_numpy()
    return frame


def run_product(
    lake: Lake, *, service_level: float | None = None, bucket: str = BUCKET
) -> ProductRun:
    """One run of the product path on `lake`, timed, and its committed tables read back."""
    options = product_options(service_level, bucket)
    began = time.perf_counter()
    manifest = run_forecast(lake, options)
    seconds = time.perf_counter() - began
    forecasts = read_live(lake, "fact_forecast")
    policy = read_live(lake, "inventory_policy")
    if forecasts is None or policy is None:
        raise RuntimeError("the run committed no readable fact_forecast / inventory_policy")
    frame = forecasts.to_pandas()
    run_ids = set(frame["run_id"].unique())
    if run_ids != {manifest.run_id}:
        raise RuntimeError(f"read_live returned runs {run_ids}, not {manifest.run_id}")
    accuracy = read_live(lake, "forecast_accuracy")
    classes: dict[str, str] = {}
    if accuracy is not None:
        chosen = accuracy.to_pandas()
        chosen = chosen[chosen["selected"] & ~chosen["series_id"].str.contains("|", regex=False)]
        classes = dict(zip(chosen["series_id"], chosen["demand_class"], strict=True))
    return ProductRun(
        seconds=seconds,
        series=manifest.series,
        options=describe_options(options),
        forecasts=item_forecasts(frame, options.service_level),
        policy=policy.to_pandas(),
        selected_models=dict(manifest.selected_models),
        run_row=_latest_run_row(lake, manifest.run_id),
        classes=classes,
    )
