"""Accuracy measures for quantile forecasts of (mostly intermittent) demand.

Every function ignores cells whose actual value is NaN, so a masked hold-out (discontinued
parts, periods outside a series' span, series that sit out a backtest origin) is scored the way
the published benchmarks score it. Quantile forecasts are arrays whose LAST axis runs over the
quantile levels; everything before it lines up with the actuals.

Definitions (y actual, ŷ_q the forecast of quantile q, sums over the evaluated cells):

- pinball loss        ρ_q(y, ŷ_q) = max(q·(y − ŷ_q), (q − 1)·(y − ŷ_q))
- weighted quantile loss (WQL; GIFT-Eval calls it "CRPS")
                      mean over q of 2·Σ ρ_q(y, ŷ_q) / Σ|y|
- MASE                mean |y − ŷ| / scale, scale = mean |y_t − y_{t−m}| over the in-sample
                      part (m = season length: the seasonal-naive error); undefined (NaN) when
                      the scale is 0 or cannot be formed, and such series are left out
- bias                Σ(ŷ_mean − y) / Σ y          (positive = over-forecast)
- WAPE                Σ|y − ŷ| / Σ|y|
- coverage            share of actuals inside [lower, upper] (the 80% interval is [q0.1, q0.9])

Each measure has a scalar form (one number over everything passed in) and a `*_by_row` form
that reduces every axis but the first, so per-series scores come out of one array operation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _rows(values: ArrayLike) -> FloatArray:
    """At least 1-D float array: a scalar becomes one row of one cell."""
    return np.atleast_1d(np.asarray(values, dtype=float))


def _observed(actual: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Actuals with NaN cells set to 0, and the mask of observed cells."""
    observed = ~np.isnan(actual)
    return np.where(observed, actual, 0.0), observed


def _sum_rows(values: NDArray[np.generic]) -> FloatArray:
    """Sum over every axis but the first."""
    return np.asarray(values, dtype=float).reshape(values.shape[0], -1).sum(axis=1)


def _divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator with NaN where the denominator is 0 (measure undefined)."""
    safe = np.where(denominator == 0.0, 1.0, denominator)
    return np.where(denominator == 0.0, np.nan, numerator / safe)


def pinball_loss(y: ArrayLike, forecast: ArrayLike, q: float) -> FloatArray:
    """Element-wise pinball (quantile) loss of the forecast of quantile `q`; NaN actuals give 0.

    Under-forecasting costs q per unit, over-forecasting 1 − q, so its expectation is minimised
    by the true q-quantile: that is why quantile forecasts are scored (and selected) with it.
    """
    actual, observed = _observed(np.asarray(y, dtype=float))
    diff = actual - np.asarray(forecast, dtype=float)
    loss = np.maximum(q * diff, (q - 1.0) * diff)
    return np.where(observed, loss, 0.0)


def quantile_loss_by_row(
    y: ArrayLike, quantile_forecasts: ArrayLike, quantiles: Sequence[float]
) -> FloatArray:
    """Per row: Σ over cells of the MEAN over q of 2·pinball (the WQL numerator).

    Not divided by Σ|y|, so it ranks models on a series whose hold-out has no demand at all
    (where the weighted loss is undefined), and it adds up across origins and series.
    """
    actual, observed = _observed(_rows(y))
    forecasts = np.asarray(quantile_forecasts, dtype=float).reshape(*actual.shape, -1)
    levels = np.asarray(quantiles, dtype=float)
    if forecasts.shape[-1] != levels.size:
        raise ValueError(f"last axis has {forecasts.shape[-1]} quantiles, expected {levels.size}")
    diff = actual[..., None] - forecasts
    loss = np.maximum(levels * diff, (levels - 1.0) * diff) * observed[..., None]
    return 2.0 * _sum_rows(loss) / levels.size


def quantile_loss(y: ArrayLike, quantile_forecasts: ArrayLike, quantiles: Sequence[float]) -> float:
    """Σ over all cells of mean_q 2·pinball_q (see `quantile_loss_by_row`)."""
    return float(quantile_loss_by_row(y, quantile_forecasts, quantiles).sum())


def weighted_quantile_loss_by_row(
    y: ArrayLike, quantile_forecasts: ArrayLike, quantiles: Sequence[float]
) -> FloatArray:
    """Per row: mean_q(2·Σ pinball_q) / Σ|y|; NaN for a row without demand."""
    actual, _ = _observed(_rows(y))
    losses = quantile_loss_by_row(y, quantile_forecasts, quantiles)
    return _divide(losses, _sum_rows(np.abs(actual)))


def weighted_quantile_loss(
    y: ArrayLike, quantile_forecasts: ArrayLike, quantiles: Sequence[float]
) -> float:
    """mean_q(2·Σ pinball_q) / Σ|y| over all observed cells; NaN when there is no demand.

    A forecast of 0 for every quantile scores exactly 2·mean(q) (1.0 for 0.1..0.9) whatever the
    data, which makes "beats zero" the floor any spare-parts model has to clear.
    """
    actual, _ = _observed(_rows(y))
    total = float(np.abs(actual).sum())
    if total == 0.0:
        return float("nan")
    return quantile_loss(y, quantile_forecasts, quantiles) / total


def mase_scale_by_row(insample: ArrayLike, season_length: int) -> FloatArray:
    """Per row of a (series × time) matrix: mean |y_t − y_{t−m}| over the non-NaN pairs.

    The seasonal-naive in-sample error of the Monash/GIFT-Eval protocol. NaN when a row has no
    pair m apart (fewer than m + 1 observations); 0 for a row that repeats itself every season.
    Callers leave both out of MASE rather than divide by zero.
    """
    history = np.atleast_2d(np.asarray(insample, dtype=float))
    if history.shape[1] <= season_length:
        return np.full(history.shape[0], np.nan)
    diffs = np.abs(history[:, season_length:] - history[:, :-season_length])
    present = ~np.isnan(diffs)
    counts = present.sum(axis=1)
    sums = np.where(present, diffs, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mase_scale(insample: ArrayLike, season_length: int) -> float:
    """mean |y_t − y_{t−m}| over one in-sample series (see `mase_scale_by_row`)."""
    return float(mase_scale_by_row(_rows(insample)[None, :], season_length)[0])


def mase_by_row(y: ArrayLike, point: ArrayLike, scale: ArrayLike) -> FloatArray:
    """Per row: mean |y − point| over observed cells / the row's scale (NaN if 0 or NaN)."""
    actual, observed = _observed(_rows(y))
    errors = _sum_rows(np.abs(actual - np.asarray(point, dtype=float)) * observed)
    counts = _sum_rows(observed)
    scales = np.asarray(scale, dtype=float).reshape(-1)
    usable = (counts > 0) & np.isfinite(scales) & (scales > 0)
    safe = np.where(usable, scales * np.maximum(counts, 1), 1.0)
    return np.where(usable, errors / safe, np.nan)


def mase(y: ArrayLike, point: ArrayLike, insample: ArrayLike, season_length: int) -> float:
    """Mean absolute scaled error of a point forecast; NaN when the scale is 0 or undefined."""
    scale = mase_scale(insample, season_length)
    return float(mase_by_row(_rows(y)[None, :], _rows(point)[None, :], [scale])[0])


def bias_by_row(y: ArrayLike, mean_forecast: ArrayLike) -> FloatArray:
    """Per row: Σ(mean − y) / Σy over observed cells; NaN for a row without demand."""
    actual, observed = _observed(_rows(y))
    errors = (np.asarray(mean_forecast, dtype=float) - actual) * observed
    return _divide(_sum_rows(errors), _sum_rows(actual))


def bias(y: ArrayLike, mean_forecast: ArrayLike) -> float:
    """Σ(mean − y) / Σy over all observed cells; NaN when there is no demand."""
    return float(bias_by_row(_rows(y).reshape(1, -1), _rows(mean_forecast).reshape(1, -1))[0])


def wape_by_row(y: ArrayLike, point: ArrayLike) -> FloatArray:
    """Per row: Σ|y − point| / Σ|y| over observed cells; NaN for a row without demand."""
    actual, observed = _observed(_rows(y))
    errors = np.abs(actual - np.asarray(point, dtype=float)) * observed
    return _divide(_sum_rows(errors), _sum_rows(np.abs(actual)))


def wape(y: ArrayLike, point: ArrayLike) -> float:
    """Σ|y − point| / Σ|y| over all observed cells; NaN when there is no demand."""
    return float(wape_by_row(_rows(y).reshape(1, -1), _rows(point).reshape(1, -1))[0])


def coverage_by_row(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> FloatArray:
    """Per row: share of observed actuals with lower ≤ y ≤ upper; NaN if nothing is observed.

    Inclusive on both ends because demand is discrete: a [0, 0] interval for a part that sells
    nothing does contain the 0.
    """
    actual, observed = _observed(_rows(y))
    inside = (actual >= np.asarray(lower, dtype=float)) & (actual <= np.asarray(upper, dtype=float))
    return _divide(_sum_rows(inside & observed), _sum_rows(observed))


def coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of all observed actuals inside [lower, upper]; NaN when nothing is observed."""
    rows = _rows(y).reshape(1, -1)
    return float(coverage_by_row(rows, _rows(lower).reshape(1, -1), _rows(upper).reshape(1, -1))[0])
