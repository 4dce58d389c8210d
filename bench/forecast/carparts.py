"""The car-parts panel split and scored exactly as published_benchmarks.csv describes.

2,674 monthly series (1998-01..2002-03), the last 12 months held out. Empty cells (parts
discontinued) stay missing: they are dropped from the training history and masked in the
score. MASE: mean |y − median| over the observed hold-out / mean |y_t − y_{t−12}| over the
training part, series with a zero or undefined scale left out, averaged over series (GIFT-Eval's
MASE[0.5]). WQL: mean over q = 0.1..0.9 of 2·Σ pinball_q / Σ|y| over all series and steps.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from services.forecaster import metrics
from services.forecaster.models import quantile_column

HORIZON = 12
SEASON_LENGTH = 12
FREQ = "MS"
SCORED_QUANTILES = tuple(round(0.1 * k, 1) for k in range(1, 10))


@dataclass(frozen=True)
class Split:
    """Training history (long, as `forecast_panel` takes it) and the masked hold-out."""

    history: pd.DataFrame
    ids: tuple[str, ...]
    test: NDArray[np.float64]  # (series, HORIZON), NaN = empty cell
    train: NDArray[np.float64]  # (series, training months), NaN = empty cell
    months: int
    empty_cells: int
    test_months: tuple[pd.Timestamp, ...]  # first day of each held-out month

    def subset(self, ids: list[str]) -> Split:
        keep = set(ids)
        rows = [i for i, s in enumerate(self.ids) if s in keep]
        history = self.history[self.history["series_id"].isin(keep)].reset_index(drop=True)
        return Split(
            history,
            tuple(self.ids[i] for i in rows),
            self.test[rows],
            self.train[rows],
            self.months,
            int(np.isnan(self.test[rows]).sum() + np.isnan(self.train[rows]).sum()),
            self.test_months,
        )


def load(path: Path) -> Split:
    frame = pd.read_csv(path, dtype={"series_id": str})
    frame["month"] = pd.to_datetime(frame["month"])
    wide = frame.pivot(index="series_id", columns="month", values="demand").sort_index()
    months = wide.shape[1]
    cut = wide.columns[months - HORIZON]
    train_wide = wide.loc[:, wide.columns < cut]
    history = (
        frame[(frame["month"] < cut) & frame["demand"].notna()]
        .rename(columns={"month": "period", "demand": "y"})
        .reset_index(drop=True)
    )
    return Split(
        history=history[["series_id", "period", "y"]],
        ids=tuple(wide.index),
        test=wide.loc[:, wide.columns >= cut].to_numpy(dtype=float),
        train=train_wide.to_numpy(dtype=float),
        months=months,
        empty_cells=int(wide.isna().to_numpy().sum()),
        test_months=tuple(pd.Timestamp(m) for m in wide.columns[wide.columns >= cut]),
    )


@dataclass(frozen=True)
class Score:
    wql: float
    mase: float
    mase_series: int
    series: int


def score(split: Split, forecasts: pd.DataFrame) -> Score:
    """WQL and MASE of a `forecasts` frame (series_id, step, q0.1..q0.9) on the hold-out."""
    ordered = forecasts.set_index(["series_id", "step"]).sort_index()
    index = pd.MultiIndex.from_product([list(split.ids), range(1, HORIZON + 1)])
    ordered = ordered.reindex(index)
    if ordered[quantile_column(0.5)].isna().any():
        raise ValueError("forecasts miss some series or steps")
    shape = (len(split.ids), HORIZON)
    quantiles = np.stack(
        [ordered[quantile_column(q)].to_numpy().reshape(shape) for q in SCORED_QUANTILES], axis=-1
    )
    median = ordered[quantile_column(0.5)].to_numpy().reshape(shape)
    wql = metrics.weighted_quantile_loss(split.test, quantiles, SCORED_QUANTILES)
    scales = metrics.mase_scale_by_row(split.train, SEASON_LENGTH)
    per_series = metrics.mase_by_row(split.test, median, scales)
    usable = np.isfinite(per_series)
    mase = float(per_series[usable].mean()) if usable.any() else float("nan")
    return Score(wql, mase, int(usable.sum()), len(split.ids))


def zero_forecasts(split: Split, quantiles: tuple[float, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(split.ids, dtype=object), HORIZON),
            "step": np.tile(np.arange(1, HORIZON + 1), len(split.ids)),
        }
    )
    for q in quantiles:
        frame[quantile_column(q)] = 0.0
    frame["mean"] = 0.0
    return frame


def published(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def align(split: Split, forecasts: pd.DataFrame) -> pd.DataFrame:
    """`forecasts` of the series of `split` (series_id, period, q.., mean), indexed by step
    1..HORIZON over the held-out months; series the run did not forecast get the zero
    forecast (model "none"). ValueError when a run forecast other months than the hold-out."""
    frame = forecasts[forecasts["series_id"].isin(set(split.ids))].copy()
    months = {m: k + 1 for k, m in enumerate(split.test_months)}
    periods = pd.to_datetime(frame["period"])
    outside = ~periods.isin(list(months))
    if outside.any():
        first = periods.min().date().isoformat() if len(periods) else "none"
        raise ValueError(
            f"forecasts start {first}, not at the held-out {split.test_months[0].date()}: "
            "the run took another forecast origin"
        )
    frame["step"] = periods.map(months).astype(int)
    missing = sorted(set(split.ids) - set(frame["series_id"]))
    if missing:
        zeros = zero_forecasts(split.subset(missing), tuple(_quantiles_of(frame)))
        zeros["model"] = "none"
        zeros["period"] = [split.test_months[s - 1] for s in zeros["step"]]
        frame = pd.concat([frame, zeros], ignore_index=True)
    return frame


def _quantiles_of(frame: pd.DataFrame) -> list[float]:
    return [float(c[1:]) for c in frame.columns if c.startswith("q")]


def calibration(
    split: Split, forecasts: pd.DataFrame, levels: tuple[float, ...], tolerance: float
) -> list[dict[str, Any]]:
    """Per level τ, over every observed hold-out cell: share(y < q_τ) and share(y <= q_τ);
    calibrated (PASS) when share_below − tolerance <= τ <= share_at_or_below + tolerance
    (demand is discrete with mass at 0, so a calibrated q_τ has share_below <= τ <= share_at)."""
    ordered = forecasts.set_index(["series_id", "step"]).sort_index()
    index = pd.MultiIndex.from_product([list(split.ids), range(1, HORIZON + 1)])
    ordered = ordered.reindex(index)
    shape = (len(split.ids), HORIZON)
    observed = np.isfinite(split.test)
    y = split.test[observed]
    rows = []
    for tau in levels:
        q = ordered[quantile_column(tau)].to_numpy(dtype=float).reshape(shape)[observed]
        below = float(np.mean(y < q)) if y.size else float("nan")
        at = float(np.mean(y <= q)) if y.size else float("nan")
        ok = below - tolerance <= tau <= at + tolerance
        rows.append(
            {
                "level": tau,
                "cells": int(y.size),
                "share_below": round(below, 4),
                "share_at_or_below": round(at, 4),
                "status": "PASS" if ok else "MISS",
            }
        )
    return rows
