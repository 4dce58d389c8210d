"""Quantile forecasts of spare-part demand: candidates, rolling-origin backtest, selection.

Pure functions of a long history table; no I/O, no settings. `forecast_panel` is the entry
point the runner calls; `forecast_candidate` runs one candidate on every series (benchmarks).

Why quantiles: ~3/4 of spare-part periods have no demand, so a point forecast is either ~0
(useless for stocking) or an average nobody ever orders; the inventory policy needs the
service-level quantile of demand over the lead time. Every candidate therefore yields the
requested quantiles plus a mean, and candidates are compared on quantile loss.

Candidates:

- panel models, vectorised over all series in this process:
  - `Zero`: 0 everywhere (the baseline every other model must beat: its WQL is exactly 1).
  - `EmpiricalQuantile`: quantiles of the last 1.5 seasons of the series itself.
  - `Pooled`: quantiles of what happened next, pooled over every (series, origin) of the
    history with the same recent level (mean of the last season) and demand frequency
    (share of periods with demand), as multiples of that level. One sparse part has too little
    history to know its own distribution; thousands of parts with the same level and frequency
    do, and they also carry the panel's drift (parts ageing out of use) that per-series
    smoothers miss.
  - `PooledBlend`: a mixture of the `Pooled` distribution and the series' own recent values,
    which keeps per-part shapes (always ordered in pairs, in boxes of 10).
- local models, fitted per series in worker processes (`jobs`): statsforecast's
  CrostonOptimized, CrostonSBA, TSB, ADIDA, IMAPA, SeasonalNaive and HistoricAverage, and with
  two seasons of history AutoETS, AutoARIMA, AutoTheta and Prophet, on smooth and erratic
  series only (`LOCAL_MODEL_CLASSES`: where they paid for their cost on held-out data).
  They give point forecasts (the intermittent ones have no native intervals, and the native
  Gaussian intervals of ETS/ARIMA/Theta are symmetric and go below 0 on counts), so their
  quantiles come from a negative binomial around the point forecast, with the series' own
  dispersion shrunk toward the panel's (see `_count_quantiles`). Each model's memory-efficient
  `forecast(y, h)` is called per series and origin in our own process pool rather than through
  `StatsForecast(...).cross_validation`: origins depend on each series' length, one failed fit
  must only remove that candidate for that series, and Prophet shares the same pool.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from services.forecaster import metrics
from services.forecaster.selection import (
    BacktestPlan,
    complexity_rank,
    fallback_model,
    plan_backtest,
    select_models,
)
from shared.demand_classes import demand_class

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


PANEL_MODELS = ("Zero", "EmpiricalQuantile", "Pooled", "PooledBlend")
STATSFORECAST_MODELS = (
    "CrostonOptimized",
    "CrostonSBA",
    "TSB",
    "ADIDA",
    "IMAPA",
    "AutoETS",
    "AutoARIMA",
    "AutoTheta",
    "SeasonalNaive",
    "HistoricAverage",
)
LOCAL_MODELS = (*STATSFORECAST_MODELS, "Prophet")
ALL_MODELS = (*PANEL_MODELS, *LOCAL_MODELS)
# What a run backtests unless told otherwise. The four costly per-series models (AutoETS ~49 ms
# and AutoTheta ~8 ms per weekly fit, AutoARIMA and Prophet 1-2 s, against ~0.05 ms for
# Croston) added nothing on held-out data where they could run (car parts: WQL 0.8612 with or
# without them; README, "Which candidates run where") and made 40,000 weekly series miss 20
# minutes; they stay available by name (`NOVA_FORECASTER__CANDIDATES`).
OPT_IN_MODELS = ("AutoETS", "AutoTheta", "AutoARIMA", "Prophet")
DEFAULT_CANDIDATES = tuple(m for m in ALL_MODELS if m not in OPT_IN_MODELS)
# Where the per-series (local) models run. Measured on held-out data (README, "Which candidates
# run where"): on intermittent and lumpy parts, most of a spare-parts catalogue, every local
# model together moved WQL by at most 0.002 over the panel models alone (car parts, 2,636
# series: 0.8585 vs 0.8587 intermittent, 0.8673 vs 0.8657 lumpy) for 98% of the run time, so
# they run only on smooth and erratic series (a part requested in most periods), where a
# per-series level is the textbook model. The four costliest (AutoETS ~7 ms, AutoTheta ~2 ms,
# AutoARIMA ~1-2 s, Prophet ~1 s per monthly fit here, against ~0.1 ms for Croston) also need
# two seasons of history.
LOCAL_MODEL_CLASSES = ("smooth", "erratic")
RICH_HISTORY_MODELS = ("AutoETS", "AutoTheta", "AutoARIMA", "Prophet")
PROPHET_SEED = 20240601  # cmdstan's seed for Prophet's fits (see `_prophet_mean`)
MAX_ARIMA_SEASON = 24

FORECAST_KEYS = ("series_id", "period", "step", "model")
# The levels WQL averages over, as the README and the published benchmarks define it: the
# service-level quantile is forecast and calibrated too, but not part of WQL.
WQL_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SCORE_COLUMNS = ("mase", "wql", "bias", "wape", "quantile_loss", "actual_total", "cells")
ACCURACY_COLUMNS = ("series_id", "model", "demand_class", *SCORE_COLUMNS, "selected")


def calibration_columns(q: float) -> tuple[str, str]:
    """Accuracy columns counting backtest cells with y < q and with y <= q for level q."""
    return f"below_{quantile_column(q)}", f"at_or_below_{quantile_column(q)}"


ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ForecastResult:
    """`forecasts`: the selected model's forecast per series and step; `accuracy`: backtest
    scores of every candidate per series (see `forecast_panel`)."""

    forecasts: pd.DataFrame
    accuracy: pd.DataFrame
    # What operators see of the run: stage wall seconds ("backtest", "select", "final_fit"),
    # series per demand class, series per model with a failed fit (see `forecast_panel`).
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """Tuning of the candidates and of selection. Defaults scale with the season length."""

    season_length: int
    # EmpiricalQuantile and the own part of PooledBlend: 1.5 seasons (18 months, 78 weeks)
    # was the best window on the car-parts benchmark (12 misses slow parts, 24+ lags drift).
    empirical_window: int
    # Recent level and frequency of the Pooled model: one season, so a seasonal part's level
    # is not biased by where in the year the origin falls.
    level_window: int
    blend_weight: float = 0.25
    blend_half_life: float = 12.0
    level_bins: int = 10
    frequency_bins: int = 10
    min_bin_rows: int = 50
    grid_size: int = 100
    max_pooled_rows: int = 4_000_000
    # TSB needs fixed smoothing constants in statsforecast; 0.1/0.1 are the usual defaults
    # (Teunter et al. 2011; tsintermittent).
    tsb_alpha_d: float = 0.1
    tsb_alpha_p: float = 0.1
    dispersion_window: int = 24
    selection_prior: float = 1.0
    min_train: int = 13

    @classmethod
    def for_season(cls, season_length: int) -> ModelConfig:
        """Defaults for monthly (12) or weekly (52) buckets."""
        if season_length < 1:
            raise ValueError("season_length must be >= 1")
        return cls(
            season_length=season_length,
            empirical_window=max(4, round(1.5 * season_length)),
            level_window=season_length,
            blend_half_life=float(season_length),
            dispersion_window=2 * season_length,
            # MASE's seasonal-naive scale and a full level window need season + 1 periods.
            min_train=season_length + 1,
        )


def classify(y: Sequence[float] | FloatArray) -> tuple[float, float, str]:
    """(ADI, CV², demand class) of one series (`shared.demand_classes`, Syntetos–Boylan).

    ADI = periods / periods with demand (the mean inter-demand interval); CV² = squared
    coefficient of variation of the non-zero demand sizes (population variance; 0 for a single
    demand). A series without any demand is "no_demand" with ADI = inf and CV² = NaN. NaNs are
    ignored.
    """
    values = np.asarray(y, dtype=float)
    values = values[~np.isnan(values)]
    nonzero = values[values > 0]
    if nonzero.size == 0:
        return math.inf, math.nan, "no_demand"
    adi = values.size / nonzero.size
    cv2 = float((nonzero.std() / nonzero.mean()) ** 2)
    return float(adi), cv2, demand_class(adi, cv2)


def quantile_column(q: float) -> str:
    """Column name of quantile q in `ForecastResult.forecasts`: 0.1 → "q0.1", 0.95 → "q0.95"."""
    return f"q{q:g}"


# --------------------------------------------------------------------------------------------
# The panel: every series right-aligned in one matrix
# --------------------------------------------------------------------------------------------


def _period_ordinals(periods: pd.Series, freq: str) -> IntArray:
    """Consecutive integers for consecutive buckets (months for "MS", weeks for "W-MON")."""
    stamps = pd.to_datetime(periods)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    offset = pd.tseries.frequencies.to_offset(freq)
    # Month-start buckets are month periods; any other anchored bucket (weekly, daily) maps to
    # the pandas period that contains its start, which is consecutive for consecutive buckets.
    period_freq = "M" if offset.name in ("MS", "ME", "M") else offset.name
    return np.asarray(pd.PeriodIndex(stamps, freq=period_freq).asi8, dtype=np.int64)


@dataclass(frozen=True)
class _Panel:
    """Histories as one (series × time) matrix, each series ending in the last column.

    Right-aligning makes "the history as it was c periods ago" a column slice for every series
    at once, which is what the backtest and the pooled model need. Cells before a series' first
    period are NaN; gaps inside a series' span are zero demand.
    """

    ids: tuple[str, ...]
    values: FloatArray
    lengths: IntArray
    first_periods: tuple[pd.Timestamp, ...]
    last_periods: tuple[pd.Timestamp, ...]
    units: FloatArray

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    def series(self, i: int, cutoff: int = 0) -> FloatArray:
        """Series i without its last `cutoff` periods."""
        end = self.width - cutoff
        return self.values[i, self.width - int(self.lengths[i]) : end]

    @classmethod
    def from_long(cls, history: pd.DataFrame, freq: str) -> _Panel:
        missing = {"series_id", "period", "y"} - set(history.columns)
        if missing:
            raise ValueError(f"history lacks columns {sorted(missing)}")
        frame = pd.DataFrame(
            {
                "series_id": history["series_id"].astype(str).to_numpy(),
                "period": pd.to_datetime(history["period"]).to_numpy(),
                "y": pd.to_numeric(history["y"]).astype(float).to_numpy(),
            }
        )
        if frame.empty:
            empty = np.zeros((0, 0))
            return cls((), empty, np.zeros(0, dtype=np.int64), (), (), np.zeros(0))
        if frame["y"].isna().any() or (frame["y"] < 0).any():
            raise ValueError("y must be >= 0 and not missing (zero-fill empty buckets)")
        if frame.duplicated(["series_id", "period"]).any():
            raise ValueError("history has duplicate (series_id, period) rows")
        frame["ordinal"] = _period_ordinals(frame["period"], freq)
        frame = frame.sort_values(["series_id", "ordinal"], kind="stable")
        codes, ids = pd.factorize(frame["series_id"], sort=True)
        ordinal = frame["ordinal"].to_numpy()
        grouped = frame.groupby(codes, sort=True)
        first = grouped["ordinal"].min().to_numpy()
        last = grouped["ordinal"].max().to_numpy()
        lengths = (last - first + 1).astype(np.int64)
        width = int(lengths.max())
        values = np.full((len(ids), width), np.nan)
        starts = width - lengths
        for i in range(len(ids)):
            values[i, starts[i] :] = 0.0  # zero demand inside the span unless reported
        columns = width - 1 - (last[codes] - ordinal)
        values[codes, columns] = frame["y"].to_numpy()
        first_periods = tuple(pd.Timestamp(t) for t in grouped["period"].min())
        last_periods = tuple(pd.Timestamp(t) for t in grouped["period"].max())
        return cls(
            tuple(str(s) for s in ids),
            values,
            lengths,
            first_periods,
            last_periods,
            _units(values),
        )


def _units(values: FloatArray) -> FloatArray:
    """Per series, the size of one unit of demand: 1 for counts, else the smallest demand.

    Count distributions (and rounding of pooled quantiles) work in these units, so a part
    sold in metres (2.5, 7.5, 10) is treated as counts of 2.5 m rather than forced to integers.
    """
    present = np.where(np.isnan(values), 0.0, values)
    integral = np.all(np.isclose(present, np.round(present)), axis=1)
    positive = np.where(present > 0, present, np.inf).min(axis=1)
    smallest = np.where(np.isfinite(positive), positive, 1.0)
    return np.where(integral, 1.0, smallest)


# --------------------------------------------------------------------------------------------
# Distributions: weighted samples → quantiles, counts around a point forecast
# --------------------------------------------------------------------------------------------


def _weighted_quantiles(values: FloatArray, weights: FloatArray, levels: FloatArray) -> FloatArray:
    """Row-wise quantiles (inverted CDF) of weighted samples: (n, m) → (n, len(levels)).

    The inverted CDF returns values that occur in the samples, so integer demand gets integer
    quantiles: with discrete outcomes the pinball loss is piecewise linear between integers and
    an integer is always at least as good as anything between two of them.
    """
    order = np.argsort(values, axis=1, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=1)
    sorted_weights = np.take_along_axis(weights, order, axis=1)
    totals = sorted_weights.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(sorted_weights, axis=1) / np.where(totals > 0, totals, 1.0)
    index = (cumulative[:, None, :] < levels[None, :, None] - 1e-12).sum(axis=2)
    index = np.minimum(index, values.shape[1] - 1)
    result = np.take_along_axis(sorted_values, index, axis=1)
    return np.where(totals > 0, result, 0.0)


def _count_quantiles(
    mean: FloatArray, dispersion: FloatArray, unit: FloatArray, levels: FloatArray
) -> FloatArray:
    """Negative-binomial quantiles around point forecasts: (...) → (..., len(levels)).

    Demand in units is NB with the given mean and variance = dispersion · mean (Poisson when
    the dispersion is 1). `dispersion` and `unit` broadcast against `mean`. Distinct
    (mean, dispersion) pairs are evaluated once: most intermittent models forecast a flat line.
    """
    from scipy import stats

    mu = np.maximum(np.nan_to_num(mean / unit), 0.0)
    disp = np.broadcast_to(np.maximum(dispersion, 1.0), mu.shape)
    scale = np.broadcast_to(unit, mu.shape)
    pairs, inverse = np.unique(
        np.stack([np.round(mu.ravel(), 9), np.round(disp.ravel(), 6)], axis=1),
        axis=0,
        return_inverse=True,
    )
    out = np.zeros((len(pairs), levels.size))
    for_nb = (pairs[:, 0] > 0) & (pairs[:, 1] > 1.0 + 1e-6)
    for_poisson = (pairs[:, 0] > 0) & ~for_nb
    if for_nb.any():
        mu_nb, d_nb = pairs[for_nb, 0:1], pairs[for_nb, 1:2]
        # variance d·mu: n = mu / (d − 1) successes, success probability 1 / d
        out[for_nb] = stats.nbinom.ppf(levels[None, :], mu_nb / (d_nb - 1.0), 1.0 / d_nb)
    if for_poisson.any():
        out[for_poisson] = stats.poisson.ppf(levels[None, :], pairs[for_poisson, 0:1])
    result = out[inverse.ravel()].reshape(*mu.shape, levels.size)
    return np.nan_to_num(result) * scale[..., None]


def _dispersion(train: FloatArray, unit: FloatArray, window: int) -> FloatArray:
    """Index of dispersion (variance / mean, in units) per series, shrunk toward the panel's.

    From the last `window` periods; a series with few observations or no demand leans on the
    median of the series with a full window, so a part seen three times does not get a
    Poisson (or an absurd) spread from three numbers.
    """
    recent = train[:, -window:] / unit[:, None]
    counts = (~np.isnan(recent)).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(recent, axis=1)
        variances = np.nanvar(recent, axis=1, ddof=1)
    raw = np.where((means > 0) & (counts > 1), variances / np.where(means > 0, means, 1.0), np.nan)
    full = ~np.isnan(raw) & (counts >= min(window, train.shape[1]))
    pooled = float(np.median(raw[full])) if full.any() else 1.0
    if not np.isfinite(pooled):
        pooled = 1.0
    own = np.nan_to_num(raw, nan=pooled)
    weight = np.where(np.isnan(raw), 0.0, counts)
    shrunk = (weight * own + window * pooled) / (weight + window)
    return np.clip(shrunk, 1.0, 100.0)


# --------------------------------------------------------------------------------------------
# Panel models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Distribution:
    """Quantile forecasts (n, h, q) and means (n, h) of one model for every series."""

    quantiles: FloatArray
    mean: FloatArray


def _flat(quantiles: FloatArray, mean: FloatArray, horizon: int) -> _Distribution:
    """A distribution that is the same for every step of the horizon."""
    return _Distribution(
        np.repeat(quantiles[:, None, :], horizon, axis=1), np.repeat(mean[:, None], horizon, 1)
    )


def _recent_samples(
    train: FloatArray, window: int, half_life: float | None
) -> tuple[FloatArray, FloatArray]:
    """The last `window` observed values per series and their weights (0 for NaN cells)."""
    values = train[:, -window:]
    present = ~np.isnan(values)
    ages = np.arange(values.shape[1])[::-1]
    decay = np.ones(values.shape[1]) if half_life is None else 0.5 ** (ages / half_life)
    weights = np.where(present, decay[None, :], 0.0)
    return np.where(present, values, 0.0), weights


def _zero(train: FloatArray, horizon: int, levels: FloatArray) -> _Distribution:
    n = train.shape[0]
    return _flat(np.zeros((n, levels.size)), np.zeros(n), horizon)


def _empirical(
    train: FloatArray, horizon: int, levels: FloatArray, config: ModelConfig
) -> _Distribution:
    values, weights = _recent_samples(train, config.empirical_window, None)
    totals = weights.sum(axis=1)
    mean = (values * weights).sum(axis=1) / np.where(totals > 0, totals, 1.0)
    return _flat(_weighted_quantiles(values, weights, levels), mean, horizon)


@dataclass(frozen=True)
class _PooledTable:
    """Quantile grids of y / level by (level bin, frequency bin), with back-offs."""

    level_edges: FloatArray
    frequency_edges: FloatArray
    grids: dict[int, FloatArray]
    means: dict[int, float]
    level_grids: dict[int, FloatArray]
    level_means: dict[int, float]
    global_grid: FloatArray
    global_mean: float

    def key(self, level_bin: IntArray, frequency_bin: IntArray) -> IntArray:
        return level_bin * (len(self.frequency_edges) + 2) + frequency_bin

    def bins(self, level: FloatArray, frequency: FloatArray) -> tuple[IntArray, IntArray]:
        """Bin 0 holds exactly zero (no demand in the window); the rest split by quantiles."""
        level_bin = np.where(level > 0, 1 + np.searchsorted(self.level_edges, level, "right"), 0)
        frequency_bin = np.where(
            frequency > 0, 1 + np.searchsorted(self.frequency_edges, frequency, "right"), 0
        )
        return level_bin.astype(np.int64), frequency_bin.astype(np.int64)

    def lookup(self, level: FloatArray, frequency: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(grid of y / level, mean of y / level) per series, backing off to coarser cells."""
        level_bin, frequency_bin = self.bins(level, frequency)
        keys = self.key(level_bin, frequency_bin)
        grids = np.empty((level.size, self.global_grid.size))
        means = np.empty(level.size)
        for i, (key, lbin) in enumerate(zip(keys.tolist(), level_bin.tolist(), strict=True)):
            if key in self.grids:
                grids[i], means[i] = self.grids[key], self.means[key]
            elif lbin in self.level_grids:
                grids[i], means[i] = self.level_grids[lbin], self.level_means[lbin]
            else:
                grids[i], means[i] = self.global_grid, self.global_mean
        return grids, means


def _window_features(
    train: FloatArray, origins: IntArray, window: int
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Level (mean) and frequency (share > 0) of the `window` periods before each origin.

    (n, len(origins)) each, plus whether the series had started (observed at origin − 1).
    Cumulative sums make every origin O(1).
    """
    present = ~np.isnan(train)
    filled = np.where(present, train, 0.0)
    zeros = np.zeros((train.shape[0], 1))
    total = np.hstack([zeros, np.cumsum(filled, axis=1)])
    count = np.hstack([zeros, np.cumsum(present, axis=1)])
    demand = np.hstack([zeros, np.cumsum(filled > 0, axis=1)])
    lower = np.maximum(origins - window, 0)
    n_obs = count[:, origins] - count[:, lower]
    safe = np.where(n_obs > 0, n_obs, 1.0)
    level = (total[:, origins] - total[:, lower]) / safe
    frequency = (demand[:, origins] - demand[:, lower]) / safe
    started = present[:, origins - 1] & (n_obs > 0)
    return level, frequency, started


def _grid_of(sorted_ratios: FloatArray, grid_levels: FloatArray) -> FloatArray:
    """Inverted-CDF quantiles of already sorted values at the grid levels."""
    index = np.ceil(grid_levels * sorted_ratios.size - 1e-9).astype(np.int64) - 1
    return sorted_ratios[np.clip(index, 0, sorted_ratios.size - 1)]


def _group_grids(
    groups: IntArray, ratio: FloatArray, grid_levels: FloatArray, min_rows: int
) -> tuple[dict[int, FloatArray], dict[int, float]]:
    """Quantile grid and mean of `ratio` per group with at least `min_rows` rows."""
    order = np.lexsort((ratio, groups))
    sorted_groups, sorted_ratio = groups[order], ratio[order]
    unique, starts, counts = np.unique(sorted_groups, return_index=True, return_counts=True)
    grids: dict[int, FloatArray] = {}
    means: dict[int, float] = {}
    for key, start, count in zip(unique.tolist(), starts, counts, strict=True):
        if count < min_rows:
            continue
        chunk = sorted_ratio[start : start + count]
        grids[key] = _grid_of(chunk, grid_levels)
        means[key] = float(chunk.mean())
    return grids, means


def _fit_pooled(train: FloatArray, horizon: int, config: ModelConfig) -> _PooledTable:
    """Learn what followed each (level, frequency) situation in the whole panel's history.

    Every series and every origin t of the history contributes its level and frequency over
    the window before t and the next `horizon` values (all steps pooled: per-step tables were
    noisier and no better on the benchmark). Targets are stored as multiples of the level, so
    a wide top bin (levels 2..50) still scales to each series; in the no-demand bin they stay
    absolute.
    """
    n, width = train.shape
    window = config.level_window
    first = max(1, min(window, width - horizon))
    origins = np.arange(first, width, dtype=np.int64)
    # Bound memory on long weekly panels: keep every k-th origin, newest first.
    stride = max(1, math.ceil(n * origins.size * horizon / config.max_pooled_rows))
    origins = origins[::-1][::stride][::-1]
    level, frequency, started = _window_features(train, origins, window)
    levels_list: list[FloatArray] = []
    freqs_list: list[FloatArray] = []
    targets_list: list[FloatArray] = []
    for step in range(horizon):
        columns = origins + step
        inside = columns < width
        if not inside.any():
            continue
        target = train[:, columns[inside]]
        ok = started[:, inside] & ~np.isnan(target)
        levels_list.append(level[:, inside][ok])
        freqs_list.append(frequency[:, inside][ok])
        targets_list.append(target[ok])
    grid_levels = (np.arange(config.grid_size) + 0.5) / config.grid_size
    if not targets_list or sum(t.size for t in targets_list) == 0:
        zeros = np.zeros(config.grid_size)
        return _PooledTable(np.zeros(0), np.zeros(0), {}, {}, {}, {}, zeros, 0.0)
    lv = np.concatenate(levels_list)
    fq = np.concatenate(freqs_list)
    y = np.concatenate(targets_list)
    ratio = np.where(lv > 0, y / np.where(lv > 0, lv, 1.0), y)
    cut = np.linspace(0, 1, config.level_bins + 1)[1:-1]
    level_edges = np.unique(np.quantile(lv[lv > 0], cut)) if (lv > 0).any() else np.zeros(0)
    cut = np.linspace(0, 1, config.frequency_bins + 1)[1:-1]
    frequency_edges = np.unique(np.quantile(fq[fq > 0], cut)) if (fq > 0).any() else np.zeros(0)
    table = _PooledTable(level_edges, frequency_edges, {}, {}, {}, {}, np.zeros(0), 0.0)
    level_bin, frequency_bin = table.bins(lv, fq)
    keys = table.key(level_bin, frequency_bin)
    grids, means = _group_grids(keys, ratio, grid_levels, config.min_bin_rows)
    level_grids, level_means = _group_grids(level_bin, ratio, grid_levels, config.min_bin_rows)
    return _PooledTable(
        level_edges,
        frequency_edges,
        grids,
        means,
        level_grids,
        level_means,
        _grid_of(np.sort(ratio), grid_levels),
        float(ratio.mean()),
    )


def _pooled_samples(
    train: FloatArray, units: FloatArray, horizon: int, config: ModelConfig
) -> tuple[FloatArray, FloatArray]:
    """Per series: (n, grid) equally likely next-period values and their mean."""
    table = _fit_pooled(train, horizon, config)
    width = train.shape[1]
    level, frequency, _ = _window_features(
        train, np.array([width], dtype=np.int64), config.level_window
    )
    level, frequency = level[:, 0], frequency[:, 0]
    grids, ratio_means = table.lookup(level, frequency)
    scale = np.where(level > 0, level, 1.0)
    samples = grids * scale[:, None]
    # Round to whole units: quantiles of count demand should be counts (see _weighted_quantiles).
    samples = np.round(samples / units[:, None]) * units[:, None]
    return samples, ratio_means * scale


def _pooled(
    train: FloatArray, units: FloatArray, horizon: int, levels: FloatArray, config: ModelConfig
) -> _Distribution:
    samples, mean = _pooled_samples(train, units, horizon, config)
    weights = np.ones_like(samples)
    return _flat(_weighted_quantiles(samples, weights, levels), mean, horizon)


def _pooled_blend(
    train: FloatArray, units: FloatArray, horizon: int, levels: FloatArray, config: ModelConfig
) -> _Distribution:
    """Mixture: (1 − w) · Pooled + w · the series' own recent values (recency-weighted).

    w shrinks with missing history (a part with 4 of 18 periods gets 4/18 of the weight), so a
    new part leans on the pool.
    """
    pooled, pooled_mean = _pooled_samples(train, units, horizon, config)
    own, own_weights = _recent_samples(train, config.empirical_window, config.blend_half_life)
    own_total = own_weights.sum(axis=1)
    coverage = (~np.isnan(train[:, -config.empirical_window :])).sum(axis=1)
    weight = config.blend_weight * coverage / config.empirical_window
    own_share = np.where(own_total > 0, weight / np.where(own_total > 0, own_total, 1.0), 0.0)
    pooled_share = (1.0 - np.where(own_total > 0, weight, 0.0)) / pooled.shape[1]
    values = np.hstack([pooled, own])
    weights = np.hstack(
        [np.repeat(pooled_share[:, None], pooled.shape[1], 1), own_weights * own_share[:, None]]
    )
    own_mean = (own * own_weights).sum(axis=1) * own_share
    mean = pooled_mean * pooled_share * pooled.shape[1] + own_mean
    return _flat(_weighted_quantiles(values, weights, levels), mean, horizon)


def _panel_model(
    name: str,
    train: FloatArray,
    units: FloatArray,
    horizon: int,
    levels: FloatArray,
    config: ModelConfig,
) -> _Distribution:
    if name == "Zero":
        return _zero(train, horizon, levels)
    if name == "EmpiricalQuantile":
        return _empirical(train, horizon, levels, config)
    if name == "Pooled":
        return _pooled(train, units, horizon, levels, config)
    if name == "PooledBlend":
        return _pooled_blend(train, units, horizon, levels, config)
    raise ValueError(f"unknown panel model {name!r}")


# --------------------------------------------------------------------------------------------
# Local models (statsforecast, Prophet), run in worker processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LocalParams:
    horizon: int
    season_length: int
    freq: str
    tsb_alpha_d: float
    tsb_alpha_p: float


@dataclass(frozen=True)
class _SeriesWork:
    """Point forecasts one series needs: (model, cutoff) pairs; cutoff 0 is the final fit."""

    index: int
    y: FloatArray
    start: pd.Timestamp
    tasks: tuple[tuple[str, int], ...]


def _statsforecast_model(name: str, params: _LocalParams) -> Any:
    from statsforecast import models as sf

    m = params.season_length
    factories: dict[str, Callable[[], Any]] = {
        "CrostonOptimized": sf.CrostonOptimized,
        "CrostonSBA": sf.CrostonSBA,
        "TSB": lambda: sf.TSB(alpha_d=params.tsb_alpha_d, alpha_p=params.tsb_alpha_p),
        "ADIDA": sf.ADIDA,
        "IMAPA": sf.IMAPA,
        "AutoETS": lambda: sf.AutoETS(season_length=m),
        # A seasonal ARIMA with a 52-week season on 2-3 years of weekly history is barely
        # identifiable and took ~7 s per fit (non-seasonal: ~0.2 s); like statsforecast's own
        # ETS (no seasonal models above 24), seasonal terms only for short seasons.
        "AutoARIMA": lambda: sf.AutoARIMA(season_length=m, seasonal=m <= MAX_ARIMA_SEASON),
        "AutoTheta": lambda: sf.AutoTheta(season_length=m),
        "SeasonalNaive": lambda: sf.SeasonalNaive(season_length=m),
        "HistoricAverage": sf.HistoricAverage,
    }
    return factories[name]()


def _prophet_mean(y: FloatArray, start: pd.Timestamp, params: _LocalParams) -> FloatArray:
    # Prophet warns about plotly when imported without it; only our call sites import it.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    from cmdstanpy import disable_logging
    from prophet import Prophet

    dates = pd.date_range(start, periods=y.size, freq=params.freq)
    future = pd.date_range(dates[-1], periods=params.horizon + 1, freq=params.freq)[1:]
    model = Prophet(
        # "auto" fits the yearly terms only with two years of data: on the shorter backtest
        # histories a 10-term Fourier series on 20 points is both garbage and 10-40x slower.
        yearly_seasonality="auto",
        weekly_seasonality=False,
        daily_seasonality=False,
        uncertainty_samples=0,  # we only use yhat: the NB around it gives the quantiles
    )
    with disable_logging():  # cmdstanpy logs two INFO lines per fit otherwise
        # The MAP fit starts from Prophet's own initial values for every parameter, so the
        # optimiser never draws; cmdstanpy would still pick a random seed per fit, pinned here
        # so that nothing in a run's numbers depends on one.
        model.fit(pd.DataFrame({"ds": dates, "y": y}), seed=PROPHET_SEED)
    return np.asarray(model.predict(pd.DataFrame({"ds": future}))["yhat"], dtype=float)


def _point_forecast(
    name: str, y: FloatArray, start: pd.Timestamp, params: _LocalParams
) -> FloatArray | None:
    """Mean forecast of one local model, clipped at 0; None when the model cannot fit."""
    if y.size < 2 or (name == "SeasonalNaive" and y.size < params.season_length):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "Prophet":
                mean = _prophet_mean(y, start, params)
            else:
                model = _statsforecast_model(name, params)
                mean = np.asarray(model.forecast(y=y, h=params.horizon)["mean"], dtype=float)
    except Exception:  # a failed fit only removes this candidate for this series
        return None
    if mean.shape != (params.horizon,) or not np.all(np.isfinite(mean)):
        return None
    return np.maximum(mean, 0.0)


_TaskResult = tuple[int, str, int, FloatArray | None]


def _run_chunk(chunk: list[_SeriesWork], params: _LocalParams) -> list[_TaskResult]:
    """Worker entry point: every task of every series in the chunk."""
    results: list[_TaskResult] = []
    for work in chunk:
        for name, cutoff in work.tasks:
            y = work.y[: work.y.size - cutoff]
            results.append((work.index, name, cutoff, _point_forecast(name, y, work.start, params)))
    return results


def _chunks(work: list[_SeriesWork], jobs: int) -> Iterator[list[_SeriesWork]]:
    """Chunks by task count, several per worker so a slow chunk does not idle the others."""
    total = sum(len(w.tasks) for w in work)
    target = max(1, min(2000, math.ceil(total / max(1, jobs * 6))))
    chunk: list[_SeriesWork] = []
    size = 0
    for item in work:
        chunk.append(item)
        size += len(item.tasks)
        if size >= target:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _Workers:
    """The run's worker processes, started on first use and shared by the backtest and the
    final fits: a worker's start costs seconds (statsforecast imports statsmodels and compiles
    with numba), paid once per run instead of once per stage."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            # Never fork: the runner may hold threads (event loop, clients) that fork would
            # copy mid-lock.
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _run_local(
    work: list[_SeriesWork],
    params: _LocalParams,
    workers: _Workers,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[tuple[int, str, int], FloatArray | None]:
    """Point forecasts of every task; in the worker processes when there are several.

    Results do not depend on the number of workers: every task is a pure function of its
    series.
    """
    results: dict[tuple[int, str, int], FloatArray | None] = {}
    chunks = list(_chunks([w for w in work if w.tasks], workers.jobs))
    if not chunks:
        return results

    def collect(chunk: list[_SeriesWork], out: list[_TaskResult]) -> None:
        for index, name, cutoff, mean in out:
            results[(index, name, cutoff)] = mean
        if on_chunk is not None:
            on_chunk(len(chunk))

    if workers.jobs <= 1 or len(chunks) == 1:
        for chunk in chunks:
            collect(chunk, _run_chunk(chunk, params))
        return results
    pool = workers.pool()
    futures = [pool.submit(_run_chunk, chunk, params) for chunk in chunks]
    for chunk, future in zip(chunks, futures, strict=True):
        collect(chunk, future.result())
    return results


# --------------------------------------------------------------------------------------------
# Backtest, scores, selection, output
# --------------------------------------------------------------------------------------------


MEASURES = ("loss", *SCORE_COLUMNS)


@dataclass(frozen=True)
class _Scores:
    """Per (series, model) backtest measures (`MEASURES`); NaN where the model has no score.

    `applicable[i, m]`: model m is a candidate for series i at all (Prophet only for smooth or
    erratic series with two seasons of history).
    """

    values: dict[str, FloatArray]
    applicable: BoolArray
    demand: FloatArray  # per series: Σ|y| over its backtest cells (same for every model)
    # (series, model, level): backtest cells with y < q and with y <= q (NaN: no score)
    below: FloatArray
    at_or_below: FloatArray
    failures: BoolArray  # (series, model): a fit the series needed failed


def _validate(
    horizon: int, season_length: int, quantiles: Sequence[float], candidates: Sequence[str] | None
) -> tuple[FloatArray, tuple[str, ...]]:
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    if season_length < 1:
        raise ValueError("season_length must be >= 1")
    levels = np.unique(np.asarray(list(quantiles), dtype=float))
    if levels.size == 0 or levels.min() <= 0 or levels.max() >= 1:
        raise ValueError("quantiles must lie strictly between 0 and 1")
    names = ALL_MODELS if candidates is None else tuple(dict.fromkeys(candidates))
    unknown = [name for name in names if name not in ALL_MODELS]
    if unknown or not names:
        raise ValueError(f"unknown or no candidates {unknown}; known: {list(ALL_MODELS)}")
    return levels, names


def _eligible(name: str, demand_class: str, length: int, season_length: int) -> bool:
    """Whether `name` is a candidate for a series of this class and length: panel models
    everywhere, local models on `LOCAL_MODEL_CLASSES`, `RICH_HISTORY_MODELS` with two seasons."""
    if name in PANEL_MODELS:
        return True
    if demand_class not in LOCAL_MODEL_CLASSES:
        return False
    return name not in RICH_HISTORY_MODELS or length >= 2 * season_length


@dataclass(frozen=True)
class _ModelScores:
    """One model's backtest measures per series (`MEASURES`) and its calibration counts."""

    values: dict[str, FloatArray]
    below: FloatArray  # (n, levels): cells with y < q
    at_or_below: FloatArray  # (n, levels): cells with y <= q


def _wql_levels(levels: FloatArray) -> BoolArray:
    """Which of the forecast levels WQL averages over (`WQL_LEVELS`; all when none is one)."""
    inside = np.isclose(levels[:, None], np.asarray(WQL_LEVELS)[None, :]).any(axis=1)
    return inside if inside.any() else np.ones(levels.size, dtype=bool)


def _score(
    actual: FloatArray,
    dist: _Distribution,
    levels: FloatArray,
    scales: FloatArray,
) -> _ModelScores:
    """Per-series backtest measures of one model over all its origins: (n, origins, h) cells.

    `loss` (what selection ranks) covers every forecast level, the service level included,
    since the policy consumes all of them; `wql` and `quantile_loss` cover `WQL_LEVELS` only.
    """
    loss = metrics.quantile_loss_by_row(actual, dist.quantiles, levels)
    wql_mask = _wql_levels(levels)
    wql_loss = metrics.quantile_loss_by_row(actual, dist.quantiles[..., wql_mask], levels[wql_mask])
    observed = ~np.isnan(actual)
    demand = np.where(observed, np.abs(actual), 0.0).reshape(actual.shape[0], -1).sum(1)
    wql = np.where(demand > 0, wql_loss / np.where(demand > 0, demand, 1.0), np.nan)
    # The L1-optimal point forecast is the median; GIFT-Eval's MASE[0.5] scores the same.
    median = np.flatnonzero(np.isclose(levels, 0.5))
    point = dist.quantiles[..., median[0]] if median.size else dist.mean
    per_origin = np.stack(
        [
            metrics.mase_by_row(actual[:, j], point[:, j], scales[:, j])
            for j in range(actual.shape[1])
        ],
        axis=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mase = np.nanmean(per_origin, axis=1)
    n = actual.shape[0]
    cells = observed.reshape(n, -1).sum(axis=1).astype(float)
    # Demand is discrete with mass at 0: a calibrated q has share(y < q) <= tau <= share(y <= q),
    # so both counts are kept (the API and the benchmark pool them over series).
    y = np.where(observed, actual, np.nan)[..., None]
    below = ((y < dist.quantiles) & observed[..., None]).reshape(n, -1, levels.size).sum(axis=1)
    at_or_below = (
        ((y <= dist.quantiles) & observed[..., None]).reshape(n, -1, levels.size).sum(axis=1)
    )
    values = {
        "loss": loss,
        "mase": mase,
        "wql": wql,
        "bias": metrics.bias_by_row(actual, dist.mean),
        "wape": metrics.wape_by_row(actual, point),
        "quantile_loss": wql_loss,
        "actual_total": demand,
        "cells": cells,
    }
    return _ModelScores(values, below.astype(float), at_or_below.astype(float))


def _finish(dist: _Distribution) -> _Distribution:
    """Non-negative, quantiles non-decreasing in q, NaN-free."""
    quantiles = np.maximum(np.nan_to_num(dist.quantiles), 0.0)
    quantiles = np.maximum.accumulate(quantiles, axis=-1)
    return _Distribution(quantiles, np.maximum(np.nan_to_num(dist.mean), 0.0))


def _local_distribution(
    means: FloatArray,
    train_matrix: FloatArray,
    units: FloatArray,
    levels: FloatArray,
    config: ModelConfig,
) -> _Distribution:
    """NB quantiles around local point forecasts (n, h); NaN rows stay NaN."""
    dispersion = _dispersion(train_matrix, units, config.dispersion_window)
    quantiles = _count_quantiles(np.nan_to_num(means), dispersion[:, None], units[:, None], levels)
    quantiles[np.isnan(means)] = np.nan
    return _Distribution(quantiles, means)


def _backtest_actuals(
    panel: _Panel, plan: BacktestPlan, takes_part: BoolArray, season_length: int
) -> tuple[FloatArray, FloatArray]:
    """Hold-out values (n, origins, h), NaN where a series sits out, and MASE scales."""
    n, width, horizon = len(panel.ids), panel.width, plan.horizon
    actual = np.full((n, len(plan.cutoffs), horizon), np.nan)
    scales = np.full((n, len(plan.cutoffs)), np.nan)
    for j, cut in enumerate(plan.cutoffs):
        window = panel.values[:, width - cut : width - cut + horizon]
        actual[:, j, : window.shape[1]] = np.where(takes_part[:, j, None], window, np.nan)
        scales[:, j] = metrics.mase_scale_by_row(panel.values[:, : width - cut], season_length)
    return actual, scales


def _backtest(
    panel: _Panel,
    plan: BacktestPlan,
    names: tuple[str, ...],
    classes: list[str],
    levels: FloatArray,
    config: ModelConfig,
    params: _LocalParams,
    workers: _Workers,
    progress: ProgressCallback | None,
) -> _Scores:
    """Every candidate at every origin; scores per (series, model)."""
    n, width, horizon = len(panel.ids), panel.width, plan.horizon
    origins = len(plan.cutoffs)
    applicable = np.array(
        [
            [
                _eligible(name, classes[i], int(panel.lengths[i]), config.season_length)
                for name in names
            ]
            for i in range(n)
        ],
        dtype=bool,
    ).reshape(n, len(names))
    values = {key: np.full((n, len(names)), np.nan) for key in MEASURES}
    below = np.full((n, len(names), levels.size), np.nan)
    at_or_below = np.full((n, len(names), levels.size), np.nan)
    failures = np.zeros((n, len(names)), dtype=bool)
    takes_part = plan.takes_part(panel.lengths)
    if origins == 0 or not takes_part.any():
        return _Scores(values, applicable, np.zeros(n), below, at_or_below, failures)
    actual, scales = _backtest_actuals(panel, plan, takes_part, config.season_length)
    demand = np.where(np.isnan(actual), 0.0, np.abs(actual)).reshape(n, -1).sum(axis=1)
    scores = _Scores(values, applicable, demand, below, at_or_below, failures)
    scored = takes_part.any(axis=1)

    def record(m: int, dist: _Distribution, failed: BoolArray) -> None:
        model_scores = _score(actual, _finish(dist), levels, scales)
        # A model that could not forecast an origin a series takes part in is not comparable
        # with the others on that series: it gets no score there (and cannot be selected).
        usable = scored & applicable[:, m] & ~failed
        scores.failures[:, m] = failed & applicable[:, m]
        for key in MEASURES:
            scores.values[key][:, m] = np.where(usable, model_scores.values[key], np.nan)
        scores.below[:, m] = np.where(usable[:, None], model_scores.below, np.nan)
        scores.at_or_below[:, m] = np.where(usable[:, None], model_scores.at_or_below, np.nan)

    for m, name in enumerate(names):
        if name not in PANEL_MODELS:
            continue
        q = np.zeros((n, origins, horizon, levels.size))
        mean = np.zeros((n, origins, horizon))
        for j, cut in enumerate(plan.cutoffs):
            train = panel.values[:, : width - cut]
            dist = _panel_model(name, train, panel.units, horizon, levels, config)
            q[:, j], mean[:, j] = dist.quantiles, dist.mean
        record(m, _Distribution(q, mean), np.zeros(n, dtype=bool))

    local = [name for name in names if name in LOCAL_MODELS]
    work = [
        _SeriesWork(
            i,
            panel.series(i),
            panel.first_periods[i],
            tuple(
                (name, cut)
                for name in local
                if applicable[i, names.index(name)]
                for j, cut in enumerate(plan.cutoffs)
                if takes_part[i, j]
            ),
        )
        for i in range(n)
    ]
    done = sum(1 for w in work if not w.tasks)
    if progress is not None:
        progress(done, n)

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, n)

    results = _run_local(work, params, workers, advance)
    for name in local:
        m = names.index(name)
        means = np.full((n, origins, horizon), np.nan)
        q = np.zeros((n, origins, horizon, levels.size))
        failed = np.zeros(n, dtype=bool)
        for j, cut in enumerate(plan.cutoffs):
            expected = takes_part[:, j] & applicable[:, m]
            for i in np.flatnonzero(expected):
                mean = results.get((int(i), name, cut))
                if mean is None:
                    failed[i] = True
                else:
                    means[i, j] = mean
            train = panel.values[:, : width - cut]
            q[:, j] = _local_distribution(means[:, j], train, panel.units, levels, config).quantiles
        record(m, _Distribution(q, means), failed)
    return scores


def _final_forecasts(
    panel: _Panel,
    chosen: list[str],
    names: tuple[str, ...],
    levels: FloatArray,
    config: ModelConfig,
    params: _LocalParams,
    workers: _Workers,
) -> tuple[_Distribution, list[str]]:
    """Each series' chosen model fitted on its whole history.

    A local model that fails on the full history (it had succeeded on the shorter backtest
    histories, or the series had no backtest) is replaced by the fallback panel model
    (`fallback_model`, or EmpiricalQuantile when no panel model is a candidate); the returned
    names say which model produced each series' numbers.
    """
    n, horizon = len(panel.ids), params.horizon
    fallback = fallback_model(names)
    safety = fallback if fallback in PANEL_MODELS else "EmpiricalQuantile"
    used = list(chosen)
    quantiles = np.zeros((n, horizon, levels.size))
    mean = np.zeros((n, horizon))
    work = [
        _SeriesWork(i, panel.series(i), panel.first_periods[i], ((chosen[i], 0),))
        for i in range(n)
        if chosen[i] in LOCAL_MODELS
    ]
    results = _run_local(work, params, workers)
    if work:
        means = np.full((n, horizon), np.nan)
        for item in work:
            forecast = results.get((item.index, chosen[item.index], 0))
            if forecast is None:
                used[item.index] = safety
            else:
                means[item.index] = forecast
        rows = np.flatnonzero(~np.isnan(means[:, 0]))
        dist = _local_distribution(means, panel.values, panel.units, levels, config)
        quantiles[rows], mean[rows] = dist.quantiles[rows], dist.mean[rows]
    for name in sorted(set(used) & set(PANEL_MODELS)):
        rows = np.flatnonzero(np.array([u == name for u in used]))
        dist = _panel_model(name, panel.values, panel.units, horizon, levels, config)
        quantiles[rows], mean[rows] = dist.quantiles[rows], dist.mean[rows]
    return _finish(_Distribution(quantiles, mean)), used


def _future_periods(last: tuple[pd.Timestamp, ...], horizon: int, freq: str) -> list[pd.Timestamp]:
    """Bucket starts after each series' last one, flattened series-major."""
    offset = pd.tseries.frequencies.to_offset(freq)
    cache: dict[pd.Timestamp, list[pd.Timestamp]] = {}
    out: list[pd.Timestamp] = []
    for stamp in last:
        if stamp not in cache:
            cache[stamp] = [stamp + k * offset for k in range(1, horizon + 1)]
        out.extend(cache[stamp])
    return out


def _forecast_frame(
    panel: _Panel, dist: _Distribution, used: list[str], levels: FloatArray, freq: str
) -> pd.DataFrame:
    n, horizon = dist.mean.shape
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(panel.ids, dtype=object), horizon),
            "period": pd.DatetimeIndex(_future_periods(panel.last_periods, horizon, freq)),
            "step": np.tile(np.arange(1, horizon + 1, dtype=np.int64), n),
            "model": np.repeat(np.asarray(used, dtype=object), horizon),
        }
    )
    for k, q in enumerate(levels):
        frame[quantile_column(float(q))] = dist.quantiles[:, :, k].ravel()
    frame["mean"] = dist.mean.ravel()
    return frame


def _empty_result(levels: FloatArray) -> ForecastResult:
    forecasts = pd.DataFrame(
        {
            "series_id": pd.Series(dtype=object),
            "period": pd.Series(dtype="datetime64[ns]"),
            "step": pd.Series(dtype=np.int64),
            "model": pd.Series(dtype=object),
            **{quantile_column(float(q)): pd.Series(dtype=float) for q in levels},
            "mean": pd.Series(dtype=float),
        }
    )
    counts = [c for q in levels for c in calibration_columns(float(q))]
    accuracy = pd.DataFrame({c: pd.Series(dtype=object) for c in (*ACCURACY_COLUMNS, *counts)})
    return ForecastResult(forecasts, accuracy)


def _resolve_jobs(jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if jobs < 1 else jobs


def forecast_panel(
    history: pd.DataFrame,
    *,
    horizon: int,
    freq: str,
    season_length: int,
    quantiles: Sequence[float],
    backtest_origins: int = 3,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    candidates: Sequence[str] | None = None,
) -> ForecastResult:
    """Backtest every candidate on every series, select per series, forecast with the winner.

    `history`: long table `series_id` (str), `period` (bucket start), `y` (>= 0); regular
    buckets of `freq` ("W-MON", "MS"), zero-filled inside each series' span (missing buckets
    inside the span are taken as 0). Each series is forecast for the `horizon` buckets after
    its own last bucket.

    Backtest: `backtest_origins` rolling origins whose `horizon`-long windows end at the end of
    the history, `horizon` apart when the history allows, closer when it does not (see
    `selection.plan_backtest`); a series takes part in an origin when it has at least
    season_length + 1 periods before it. Selection: lowest backtest quantile loss over all
    requested quantiles, shrunk toward the model's loss on the series' demand class, ties to
    the simpler model (`selection.select_models`). A series too short for any origin (or with
    `backtest_origins=0`) gets `selection.fallback_model`: "Pooled" when it is a candidate.

    Returns `ForecastResult`:
    - `forecasts`: series_id, period, step (1..horizon), model (the selected one), one column
      per quantile (`q0.1`, ..., `q0.95`) and `mean`; never negative, quantiles non-decreasing
      in q. Sorted by series_id, step.
    - `accuracy`: series_id, model, demand_class, mase, wql, bias, wape, quantile_loss,
      actual_total, cells, selected, and per level q `below_q…` / `at_or_below_q…` (cells with
      y < q and y <= q): the backtest scores of every candidate on every series it applies to
      (pooled over the origins; NaN where undefined: no demand in the windows, no MASE scale,
      no backtest, failed fit).
      MASE and WAPE score the median (q0.5, or the mean when 0.5 is not requested); bias
      scores the mean.

    `jobs`: processes for the per-series models (< 1: all cores); results do not depend on it.
    Workers start with "forkserver" (never "fork": the caller may hold threads), which imports
    the caller's main module again: a script calling this with jobs > 1 needs the usual
    `if __name__ == "__main__":` guard.
    `progress(done, total)` counts series whose backtest is complete.
    `candidates`: model names (`ALL_MODELS`); None runs all of them.
    """
    levels, names = _validate(horizon, season_length, quantiles, candidates)
    config = ModelConfig.for_season(season_length)
    panel = _Panel.from_long(history, freq)
    n = len(panel.ids)
    if n == 0:
        return _empty_result(levels)
    jobs = _resolve_jobs(jobs)
    classes = [classify(panel.series(i))[2] for i in range(n)]
    plan = plan_backtest(
        int(panel.lengths.max()),
        horizon=horizon,
        origins=backtest_origins,
        min_train=config.min_train,
    )
    params = _LocalParams(horizon, season_length, freq, config.tsb_alpha_d, config.tsb_alpha_p)
    began = time.perf_counter()
    workers = _Workers(jobs)
    try:
        scores = _backtest(panel, plan, names, classes, levels, config, params, workers, progress)
        backtested = time.perf_counter()
        chosen, selected = _select(scores, classes, names, config)
        dist, used = _final_forecasts(panel, chosen, names, levels, config, params, workers)
    finally:
        workers.close()
    if progress is not None:
        progress(n, n)
    accuracy = _accuracy_frame(panel, scores, names, classes, used, levels)
    failed = scores.failures.copy()
    for i, (wanted, got) in enumerate(zip(chosen, used, strict=True)):
        if wanted != got:  # the final fit of the chosen model failed: the fallback stood in
            failed[i, names.index(wanted)] = True
    stats = {
        "stage_seconds": {
            "backtest": round(backtested - began, 3),
            "select": round(selected - backtested, 3),
            "final_fit": round(time.perf_counter() - selected, 3),
        },
        "series_by_class": {c: classes.count(c) for c in sorted(set(classes))},
        "failures_by_model": {
            name: int(failed[:, m].sum()) for m, name in enumerate(names) if failed[:, m].any()
        },
    }
    return ForecastResult(_forecast_frame(panel, dist, used, levels, freq), accuracy, stats)


def _select(
    scores: _Scores, classes: list[str], names: tuple[str, ...], config: ModelConfig
) -> tuple[list[str], float]:
    """The model chosen per series (the fallback where no backtest exists), and when."""
    index = select_models(
        scores.values["loss"],
        scores.demand,
        classes,
        names,
        prior_weight=config.selection_prior,
    )
    fallback = fallback_model(names)
    return [names[k] if k >= 0 else fallback for k in index.tolist()], time.perf_counter()


def _accuracy_frame(
    panel: _Panel,
    scores: _Scores,
    names: tuple[str, ...],
    classes: list[str],
    used: list[str],
    levels: FloatArray,
) -> pd.DataFrame:
    """One row per (series, candidate that applies to it); `selected` marks the model whose
    forecast was published (a row with NaN scores is added if that model was not a candidate).
    """
    rows_i, rows_m = np.nonzero(scores.applicable)
    counts: dict[str, FloatArray] = {}
    for k, q in enumerate(levels):
        below, at_or_below = calibration_columns(float(q))
        counts[below] = scores.below[rows_i, rows_m, k]
        counts[at_or_below] = scores.at_or_below[rows_i, rows_m, k]
    frame = pd.DataFrame(
        {
            "series_id": np.asarray(panel.ids, dtype=object)[rows_i],
            "model": np.asarray(names, dtype=object)[rows_m],
            "demand_class": np.asarray(classes, dtype=object)[rows_i],
            **{key: scores.values[key][rows_i, rows_m] for key in SCORE_COLUMNS},
            **counts,
        }
    )
    frame["selected"] = frame["model"].to_numpy() == np.asarray(used, dtype=object)[rows_i]
    missing = [i for i, name in enumerate(used) if name not in names]
    if missing:
        extra = pd.DataFrame(
            {
                "series_id": [panel.ids[i] for i in missing],
                "model": [used[i] for i in missing],
                "demand_class": [classes[i] for i in missing],
                **{key: np.nan for key in (*SCORE_COLUMNS, *counts)},
                "selected": True,
            }
        )
        frame = pd.concat([frame, extra], ignore_index=True)
    order = frame["model"].map(complexity_rank)
    frame = frame.assign(_rank=order).sort_values(["series_id", "_rank"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)[[*ACCURACY_COLUMNS, *counts]]


def forecast_candidate(
    history: pd.DataFrame,
    *,
    model: str,
    horizon: int,
    freq: str,
    season_length: int,
    quantiles: Sequence[float],
    jobs: int = 1,
    everywhere: bool = False,
) -> pd.DataFrame:
    """One candidate's forecasts for every series, no backtest or selection (benchmarks).

    Same columns as `ForecastResult.forecasts`. Prophet runs only where `forecast_panel` would
    consider it unless `everywhere` is set; a series the model cannot fit gets the
    EmpiricalQuantile forecast and says so in `model`.
    """
    levels, names = _validate(horizon, season_length, quantiles, [model])
    config = ModelConfig.for_season(season_length)
    panel = _Panel.from_long(history, freq)
    n = len(panel.ids)
    if n == 0:
        return _empty_result(levels).forecasts
    chosen = [model] * n
    if model == "Prophet" and not everywhere:
        chosen = [
            model
            if _eligible(model, classify(panel.series(i))[2], int(panel.lengths[i]), season_length)
            else "EmpiricalQuantile"
            for i in range(n)
        ]
    params = _LocalParams(horizon, season_length, freq, config.tsb_alpha_d, config.tsb_alpha_p)
    workers = _Workers(_resolve_jobs(jobs))
    try:
        dist, used = _final_forecasts(panel, chosen, names, levels, config, params, workers)
    finally:
        workers.close()
    return _forecast_frame(panel, dist, used, levels, freq)
