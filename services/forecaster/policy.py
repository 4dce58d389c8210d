"""Inventory policy from demand history and forecasts: lead time, reorder point, alerts, simulation.

What "95%" promises (the service level, P1 = 0.95)
--------------------------------------------------
Order when the stock you have plus what is on order falls to the reorder point s or below
(ordering up to S = s + Q). Each order starts a race: the stock left at that moment has to last
until the order arrives. A 95% service level promises that the stock lasts — no customer is
left waiting — in about 95 of every 100 such replenishment cycles, counted over the long run
(a cycle runs from one delivery to the next). It is a promise about how often you run short,
not about how many units: a short cycle may miss one unit or ten. Because stock comes in whole
units, s is the whole number whose chance is nearest 95% and never more than 2 points below it
by the model. It covers both the demand during the lead time and the demand that triggered
the order: a customer who takes 5 of 6 units on the shelf leaves you well below s when you
order. It is estimated from the part's own history (how often it sells, in what lumps, and
whether busy months follow busy months), with the level moved to the forecast's when that
differs; a part with little history says so (`method`, `evidence_periods`).

Pure functions, no I/O: the forecaster feeds them the item's bucketed history, quantile
forecasts and lead-time samples read from gold (`gold.fact_lead_time.lead_time_days` per
request line, `gold.fact_stock.quantity_on_hand` for alerts) and writes what they return.

Notation (after Silver, Pyke & Peterson, *Inventory and Production Management in Supply Chains*):

    D, σ_D     mean and standard deviation of demand per day
    L̄, σ_L     mean and standard deviation of the replenishment lead time, in days
    x_L        demand over a lead time after an order (a random variable); x̂_L = E[x_L]
    U          undershoot: how far below s the inventory position is when an order is placed
    P1         target cycle service level: P(U + x_L ≤ s), the chance a replenishment cycle
               ends without a stockout
    k          safety factor; k = Φ⁻¹(P1) for the classic normal formulas (printed as z)
    s, S       reorder point and order-up-to level of an (s, S) policy
    SS         safety stock, s − x̂_L
    P2         fill rate: the fraction of demand served from the shelf on the day it occurs

The reorder point (`reorder_point`) is the P1-quantile of U + x_L, computed exactly on whole
units (no sampling) from a `DemandModel` of the part's history; the three causes of the
shortfall the former forecast Monte-Carlo had (0.838 for 0.90 in the benchmark) are each
modelled: the undershoot (`undershoot_pmf`), months that are not independent (two-state
occurrence chain, `_window_sum_pmfs`), fractional reorder points (whole units), and the few
lumps a part has seen (`_size_pmf`'s predictive tail, `_predictive_protection_pmf`). The
classic s = D·L̄ + k·σ_x (its D and σ from the forecast's moments, `forecast_moments`) and the
empirical-window quantile are kept beside it for comparison.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

LeadTimeSource = Literal["item", "fallback"]
AlertLevel = Literal["critical", "attention", "monitor", "ok"]

# Alert thresholds (see `stock_alert`): critical below half a lead time of cover, monitor up to
# 1.5 × the reorder point.
CRITICAL_COVER_FRACTION = 0.5
MONITOR_ROP_MULTIPLE = 1.5

# Midpoint grid used to integrate a period's quantile function into its mean and variance.
_MOMENT_GRID = 4096


@dataclass(frozen=True)
class LeadTime:
    """Replenishment lead time of one item, in days.

    `samples_days` holds the observations the Monte-Carlo resamples, in ascending order so that
    the draws of a seed do not depend on the order the samples were read in (empty on a
    fallback: the simulation then draws from a gamma with the same mean and std, or uses the
    mean when std is 0). `n_samples` is how many observations were used (0 on a fallback).
    """

    mean_days: float
    std_days: float
    p50_days: float
    p90_days: float
    n_samples: int
    source: LeadTimeSource
    samples_days: tuple[float, ...] = ()


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of a daily (s, S) simulation over a held-out demand series.

    `cycle_service_level` (P1) is comparable with the policy's target service level, which is
    a cycle service level; `fill_rate` (P2) is the share of units served from the shelf on the
    day they were demanded. `average_stock` is the mean end-of-day quantity on the shelf.
    `cycles` and `failed_cycles` are the raw counts behind P1 (see `simulate_policy` for what a
    cycle is), so that a reader can pool over parts: Σ(cycles − failed_cycles) / Σcycles. A run
    without any cycle (no order ever outstanding, no stockout) has P1 = 1.0 by convention: it
    promised nothing and failed nothing; pooling gives it no weight.
    """

    fill_rate: float
    cycle_service_level: float
    average_stock: float
    stockout_days: int
    orders: int
    cycles: int
    failed_cycles: int
    total_demand: float
    unmet_demand: float

    @property
    def achieved_service_level(self) -> float:
        """The cycle service level (P1): what the policy's `service_level` targets."""
        return self.cycle_service_level


# --- lead time ----------------------------------------------------------------------------


def lead_time_distribution(
    samples_days: Sequence[float],
    *,
    fallback_days: float,
    fallback_std_days: float = 0.0,
    min_samples: int = 3,
) -> LeadTime:
    """Empirical lead time of an item, or the fallback when it has too few observations.

    Negative and non-finite samples are dropped: a purchase dated before its request is a
    data error (gold keeps it for the quality gate; `dim_supplier` drops it the same way).
    With n ≥ `min_samples` valid samples:

        L̄ = (1/n) Σ Lᵢ,   σ_L = √( Σ (Lᵢ − L̄)² / (n − 1) )   (0 when n = 1)
        p50, p90 = empirical quantiles with linear interpolation

    matching DuckDB's `avg`, `stddev_samp` and `quantile_cont` in `gold.dim_supplier`.
    Otherwise the lead time is the fallback (e.g. the supplier's or the global mean and std):
    L̄ = `fallback_days`, σ_L = `fallback_std_days`, and p50/p90 are those of a gamma with
    these moments (shape α = L̄²/σ_L², scale θ = σ_L²/L̄), by the Wilson–Hilferty
    approximation  F⁻¹(p) ≈ αθ·(1 − 1/(9α) + Φ⁻¹(p)·√(1/(9α)))³ — the same gamma the
    Monte-Carlo draws from.
    """
    if not math.isfinite(fallback_days) or fallback_days < 0:
        raise ValueError(f"fallback_days must be finite and >= 0, got {fallback_days}")
    if not math.isfinite(fallback_std_days) or fallback_std_days < 0:
        raise ValueError(f"fallback_std_days must be finite and >= 0, got {fallback_std_days}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")

    values = np.asarray(samples_days, dtype=float).ravel()
    # Sorted: the bootstrap draws by position, so samples in another order (gold promises no
    # row order) would give other draws, and another reorder point, for the same seed.
    valid = np.sort(values[np.isfinite(values) & (values >= 0)])
    if valid.size >= min_samples:
        std = float(np.std(valid, ddof=1)) if valid.size > 1 else 0.0
        return LeadTime(
            mean_days=float(np.mean(valid)),
            std_days=std,
            p50_days=float(np.quantile(valid, 0.5)),
            p90_days=float(np.quantile(valid, 0.9)),
            n_samples=int(valid.size),
            source="item",
            samples_days=tuple(float(v) for v in valid),
        )
    return LeadTime(
        mean_days=float(fallback_days),
        std_days=float(fallback_std_days),
        p50_days=_gamma_quantile(fallback_days, fallback_std_days, 0.5),
        p90_days=_gamma_quantile(fallback_days, fallback_std_days, 0.9),
        n_samples=0,
        source="fallback",
    )


def _gamma_quantile(mean: float, std: float, p: float) -> float:
    """Wilson–Hilferty quantile of the gamma with this mean and std (the mean when std = 0)."""
    if std <= 0 or mean <= 0:
        return float(mean)
    shape = (mean / std) ** 2
    c = 1.0 / (9.0 * shape)
    cube = 1.0 - c + NormalDist().inv_cdf(p) * math.sqrt(c)
    # The cube can go negative for very small shapes: the quantile is then ~0, not negative.
    return float(mean * max(cube, 0.0) ** 3)


# --- forecast quantiles → demand --------------------------------------------------------------


def _check_forecast(
    period_quantiles: np.ndarray, quantiles: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (levels, values): values clamped at 0 and made non-decreasing per period."""
    levels = np.asarray(quantiles, dtype=float).ravel()
    values = np.asarray(period_quantiles, dtype=float)
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"period_quantiles must be horizon × quantiles, got {values.shape}")
    if values.shape[1] != levels.size or levels.size < 1:
        raise ValueError(
            f"period_quantiles has {values.shape[1]} columns for {levels.size} quantile levels"
        )
    if np.any((levels <= 0) | (levels >= 1)) or np.any(np.diff(levels) <= 0):
        raise ValueError(f"quantile levels must be strictly increasing in (0, 1), got {levels}")
    if not np.all(np.isfinite(values)):
        raise ValueError("period_quantiles must be finite")
    # Demand is never negative, and models sometimes emit crossing quantiles: sorting along the
    # row is the standard repair (Chernozhukov et al., "rearrangement").
    values = np.sort(np.maximum(values, 0.0), axis=1)
    return levels, values


def _inverse_cdf(u: np.ndarray, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Quantile function of one period's forecast, evaluated at probabilities u.

    Between the given levels τ₁ < … < τ_K it interpolates linearly. Outside it continues with
    exponential tails through the two outermost quantiles on each side,

        u > τ_K:  Q(u) = q_K + β_U·ln((1 − τ_K)/(1 − u)),
                  β_U = (q_K − q_{K−1}) / ln((1 − τ_{K−1})/(1 − τ_K))
        u < τ₁:   Q(u) = q₁ − β_L·ln(τ₁/u),
                  β_L = (q₂ − q₁) / ln(τ₂/τ₁)

    clamped at 0 — exact when the tail really is exponential, unbounded above like demand,
    and flat when the outer quantiles are equal. One level only: Q(u) = q₁.
    """
    q = np.interp(u, levels, values)
    if levels.size < 2:
        return np.maximum(q, 0.0)
    upper = u > levels[-1]
    if np.any(upper):
        beta_u = (values[-1] - values[-2]) / math.log((1 - levels[-2]) / (1 - levels[-1]))
        q[upper] = values[-1] + beta_u * np.log((1 - levels[-1]) / (1 - u[upper]))
    lower = u < levels[0]
    if np.any(lower):
        beta_l = (values[1] - values[0]) / math.log(levels[1] / levels[0])
        q[lower] = values[0] - beta_l * np.log(levels[0] / u[lower])
    return np.maximum(q, 0.0)


def forecast_moments(
    period_quantiles: np.ndarray, quantiles: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each period's demand implied by its quantiles.

    With Q the quantile function of `_inverse_cdf`, E[x] = ∫₀¹ Q(u) du and
    Var[x] = ∫₀¹ Q(u)² du − E[x]², integrated on a midpoint grid (deterministic, no sampling).
    """
    levels, values = _check_forecast(period_quantiles, quantiles)
    grid = (np.arange(_MOMENT_GRID) + 0.5) / _MOMENT_GRID
    means = np.empty(values.shape[0])
    variances = np.empty(values.shape[0])
    for t, row in enumerate(values):
        q = _inverse_cdf(grid, levels, row)
        means[t] = q.mean()
        variances[t] = max(float(np.mean(q**2) - means[t] ** 2), 0.0)
    return means, variances


def _check_service_level(service_level: float) -> None:
    if not 0 < service_level < 1:
        raise ValueError(f"service_level must be in (0, 1), got {service_level}")


# --- classic formulas ---------------------------------------------------------------------


def z_for_service_level(service_level: float) -> float:
    """k = Φ⁻¹(P1), the standard-normal safety factor for a cycle service level."""
    _check_service_level(service_level)
    return NormalDist().inv_cdf(service_level)


def classic_safety_stock(
    z: float,
    sigma_daily: float,
    mean_lt_days: float,
    sigma_lt_days: float | None = None,
    mean_daily: float | None = None,
) -> float:
    """Textbook safety stock, assuming normal lead-time demand and i.i.d. daily demand.

    Fixed lead time:        SS = k·σ_D·√L̄
    Variable lead time:     SS = k·σ_x,   σ_x = √( L̄·σ_D² + D²·σ_L² )

    The second form is used when `sigma_lt_days` is given and positive; it then needs
    `mean_daily` (D). Example: k = 1.645, σ_D = 2, L̄ = 9 → SS = 1.645·2·3 = 9.87; with
    σ_L = 2 and D = 5 → SS = 1.645·√(9·4 + 25·4) ≈ 19.18.
    """
    if sigma_daily < 0 or mean_lt_days < 0:
        raise ValueError("sigma_daily and mean_lt_days must be >= 0")
    if sigma_lt_days is None or sigma_lt_days == 0:
        return z * sigma_daily * math.sqrt(mean_lt_days)
    if sigma_lt_days < 0:
        raise ValueError(f"sigma_lt_days must be >= 0, got {sigma_lt_days}")
    if mean_daily is None:
        raise ValueError("mean_daily is needed when sigma_lt_days is given")
    return z * math.sqrt(mean_lt_days * sigma_daily**2 + mean_daily**2 * sigma_lt_days**2)


def reorder_point_classic(mean_daily: float, mean_lt_days: float, safety_stock: float) -> float:
    """Classic reorder point  s = D·L̄ + SS  (expected lead-time demand plus safety stock)."""
    return mean_daily * mean_lt_days + safety_stock


# --- policy per item ----------------------------------------------------------------------


# --- reorder point from the part's demand history (what the product uses) ----------------------


# Size distributions wider than this many bins are put on a coarser grid (a whole number of
# units per bin for count data) so the convolutions stay small; s is then a multiple of the bin.
MAX_SIZE_BINS = 128
# Prior weight (in months) pulling the month-to-month occurrence probabilities towards the
# part's overall share of months with demand: with few transitions observed, months are taken
# as independent; with many, their correlation comes from the history.
OCCURRENCE_PRIOR_MONTHS = 2.0
# The forecast moves the history's level only when it differs by more than this factor (noise
# otherwise), and by at most `LEVEL_RATIO_LIMIT` either way: a Zero forecast does not make a
# part with demand in its history free of risk.
LEVEL_RATIO_BAND = 1.25
LEVEL_RATIO_LIMIT = 3.0
# Share (in logs) of a change of level that goes into the lump sizes, the rest into how often
# the part sells (see `scale_demand_model`): evenly, not tuned (on car parts, from the training
# history to the held-out year, the lumps took about a third of the fall, the share of months
# with demand the rest; all of it into the share of months overshot the target).
LEVEL_SIZE_SHARE = 0.5
# History needed for `method == "demand_history"`; below it the method is "thin_history".
MIN_EVIDENCE_PERIODS = 12
MIN_EVIDENCE_DEMAND_PERIODS = 3
# Weight (in lumps) of the predictive tail on lump sizes, see `_size_pmf`: 1 is the
# exchangeable 1/(n + 1) of a continuous size; whole-unit sizes tie, so less. Chosen on the
# tests' generator at seeds 101-104 (960 parts; the tests use seed 12), 30 / 60 days x 0.90 /
# 0.95, as the weight whose mean achieved cycle service is nearest the mean expected service
# level in the worst of the four cells (0.15: within 0.008; 0.05 / 0.25: 0.012 / 0.013).
SIZE_PRIOR_WEIGHT = 0.15
TAIL_MIN_EXCESS = 1.0
# The level estimated from n periods with demand is uncertain by about 1/√n: the lead-time
# demand is mixed over this many levels of its posterior (see `reorder_point`).
LEVEL_UNCERTAINTY_POINTS = 5
# Whole units make P1 jump from one s to the next: s is the one whose P1 is nearest the
# target, never more than this below it (see `pmf_quantile`).
ROUNDING_TOLERANCE = 0.02
# Points of a gamma lead time (moments only) the lead-time demand is mixed over.
GAMMA_LEAD_TIME_POINTS = 16

PolicyMethod = Literal["demand_history", "thin_history", "forecast_only", "no_demand"]


@dataclass(frozen=True)
class DemandModel:
    """A part's demand per period as the reorder point sees it, on a grid of `unit`.

    A period with demand brings one lump (one order of the period's total, at a random time of
    the period); whether a period has demand depends on whether the previous one had
    (a two-state Markov chain: p01 = P(demand | none before), p11 = P(demand | demand before));
    lump sizes are drawn from `sizes`, the pmf of the part's non-zero period totals in units of
    `unit` (`sizes[k]` = P(Z = k·unit), `sizes[0]` = 0).
    """

    unit: float
    count_data: bool
    sizes: np.ndarray
    p01: float
    p11: float
    periods: int
    demand_periods: int
    smallest_size: float

    @property
    def occurrence(self) -> float:
        """Long-run share of periods with demand, p01 / (p01 + 1 − p11)."""
        denominator = self.p01 + 1.0 - self.p11
        return 1.0 if denominator <= 0 else self.p01 / denominator

    @property
    def mean_size(self) -> float:
        return float(np.arange(self.sizes.size) @ self.sizes) * self.unit

    @property
    def mean_per_period(self) -> float:
        return self.occurrence * self.mean_size


def _grid_unit(values: np.ndarray, count_data: bool) -> float:
    largest = float(values.max())
    if count_data:
        return float(max(1, math.ceil(largest / MAX_SIZE_BINS)))
    # Continuous quantities (kg, m): bins a quarter of the smallest lump, at most MAX_SIZE_BINS.
    return max(float(values.min()) / 4.0, largest / MAX_SIZE_BINS)


def _size_pmf(values: np.ndarray, unit: float, prior_weight: float = 0.0) -> np.ndarray:
    """pmf of lump sizes on the grid (index = size in units of `unit`).

    With `prior_weight` α > 0, the predictive of the next lump rather than the observed
    frequencies: of n exchangeable lumps, the next one exceeds all of them with probability
    1/(n + 1), which the observed frequencies put at 0 — so the quantiles of sums of lumps
    came out too low for parts with few lumps. The pmf is (n·observed + α·T)/(n + α), T a
    geometric tail above the largest lump seen, with the lumps' mean excess over their
    smallest as its mean excess (memoryless, the least informative tail with that mean).
    """
    bins = np.maximum(np.rint(values / unit).astype(np.int64), 1)
    pmf = np.bincount(bins).astype(float)
    smallest, largest, mean = int(bins.min()), int(bins.max()), float(bins.mean())
    if prior_weight > 0:
        theta = 1.0 / (1.0 + max(mean - smallest, TAIL_MIN_EXCESS))
        # Up to where the tail holds all but 1e-4 of its mass.
        length = 1 + math.ceil(math.log(1e-4) / math.log1p(-theta))
        tail = theta * (1 - theta) ** np.arange(length)
        merged = np.zeros(largest + 1 + length)
        merged[: pmf.size] = pmf
        merged[largest + 1 :] += prior_weight * tail / tail.sum()
        pmf = merged
    return pmf / pmf.sum()


def demand_model(history: Sequence[float] | np.ndarray) -> DemandModel | None:
    """The `DemandModel` of a part's history (periods in time order, oldest first, zero-filled
    from its first demand); None when the history holds no demand.

    Occurrence: with n_ab the transitions from a period in state a to one in state b (1 = has
    demand) and p̄ the share of periods with demand,

        p11 = (n11 + c·p̄) / (n10 + n11 + c),   p01 = (n01 + c·p̄) / (n00 + n01 + c),

    c = `OCCURRENCE_PRIOR_MONTHS`. Count data (every value a whole number) stays in whole
    units unless its largest lump exceeds `MAX_SIZE_BINS` units.
    """
    y = np.asarray(history, dtype=float).ravel()
    y = np.where(np.isfinite(y) & (y > 0), y, 0.0)
    positive = y[y > 0]
    if positive.size == 0:
        return None
    count_data = bool(np.all(np.abs(positive - np.rint(positive)) < 1e-9))
    unit = _grid_unit(positive, count_data)
    occurs = y > 0
    share = float(occurs.mean())
    before, after = occurs[:-1], occurs[1:]
    n11 = float(np.sum(before & after))
    n10 = float(np.sum(before & ~after))
    n01 = float(np.sum(~before & after))
    n00 = float(np.sum(~before & ~after))
    c = OCCURRENCE_PRIOR_MONTHS
    return DemandModel(
        unit=unit,
        count_data=count_data,
        sizes=_size_pmf(positive, unit, SIZE_PRIOR_WEIGHT),
        p01=(n01 + c * share) / (n00 + n01 + c),
        p11=(n11 + c * share) / (n10 + n11 + c),
        periods=int(y.size),
        demand_periods=int(positive.size),
        smallest_size=float(positive.min()),
    )


def forecast_demand_model(
    period_quantiles: np.ndarray, quantiles: Sequence[float], *, points: int = 200
) -> DemandModel | None:
    """A `DemandModel` for a part without history: periods independent, each drawn from the
    first forecast period's quantile function (evaluated on a midpoint grid of `points`)."""
    levels, values = _check_forecast(period_quantiles, quantiles)
    grid = (np.arange(points) + 0.5) / points
    draws = _inverse_cdf(grid, levels, values[0])
    positive = draws[draws > 0]
    if positive.size == 0:
        return None
    count_data = bool(np.all(np.abs(values - np.rint(values)) < 1e-9))
    if count_data:
        positive = np.maximum(np.rint(positive), 1.0)
    unit = _grid_unit(positive, count_data)
    share = positive.size / points
    return DemandModel(
        unit=unit,
        count_data=count_data,
        sizes=_size_pmf(positive, unit),
        p01=share,
        p11=share,
        periods=0,
        demand_periods=0,
        smallest_size=float(positive.min()),
    )


def _rescale_sizes(sizes: np.ndarray, factor: float) -> np.ndarray:
    """The lump-size pmf with every lump `factor` times as large, on the same grid: a lump of
    k·factor units is split between the two whole units around it so that its mean is exactly
    k·factor — except that no lump falls below one unit (a part's smallest sale stays a sale),
    so below 1 the mean may fall by less than `factor`."""
    values = np.flatnonzero(sizes) * factor
    weights = sizes[sizes > 0]
    low = np.maximum(np.floor(values), 1.0)
    up = np.clip(values - low, 0.0, 1.0)  # share on low + 1 (0 where the lump stays at 1 unit)
    rescaled = np.zeros(int(low.max()) + 2)
    np.add.at(rescaled, low.astype(np.int64), weights * (1.0 - up))
    np.add.at(rescaled, low.astype(np.int64) + 1, weights * up)
    rescaled = np.trim_zeros(rescaled, "b")
    return rescaled / rescaled.sum()


def _with_occurrence(model: DemandModel, target: float) -> DemandModel:
    """The model whose long-run share of periods with demand is `target` (at most what p01 = 1
    allows), with p11 — how long a run of demand lasts — kept: demand spells start less (or
    more) often. Long-run share p01/(p01 + 1 − p11) = target ⇔ p01 = target·(1 − p11)/(1 − target).
    """
    p01 = 1.0
    if target < 1.0:
        p01 = min(1.0, max(target, 0.0) * (1.0 - model.p11) / (1.0 - target))
    return DemandModel(**{**model.__dict__, "p01": p01})


def scale_demand_model(
    model: DemandModel, ratio: float, *, size_share: float | None = None
) -> DemandModel:
    """The model at exactly `ratio` times its level (mean per period).

    A level that moves moves both how often the part sells and how much it sells at a time:
    lumps are scaled by ratio^`LEVEL_SIZE_SHARE` (`_rescale_sizes`: mean-preserving, never
    below one unit) and the long-run share of periods with demand takes the rest exactly
    (`_with_occurrence`: p01 moves, p11 is kept). What the occurrence cannot take (it cannot
    pass p01 = 1) goes into larger lumps. On car parts, from the training history to the
    held-out year the mean lump fell from 2.32 to 1.87 units while the share of months with
    demand fell too; putting the whole change into how often the part sells kept the lumps of
    the busier past (fewer, larger lumps than the future brings: s too high for the service it
    gives). `size_share` = 0 moves only the occurrence (a rate: the level's uncertainty in
    `_predictive_protection_pmf`).
    """
    if ratio <= 0 or not math.isfinite(ratio):
        raise ValueError(f"ratio must be finite and > 0, got {ratio}")
    if abs(ratio - 1.0) < 1e-12:
        return model
    share = LEVEL_SIZE_SHARE if size_share is None else size_share
    mean_size = model.mean_size
    sizes = _rescale_sizes(model.sizes, ratio**share) if share > 0 else model.sizes
    resized = DemandModel(**{**model.__dict__, "sizes": sizes})
    size_factor = resized.mean_size / mean_size
    scaled = _with_occurrence(resized, model.occurrence * ratio / size_factor)
    rest = ratio * model.mean_per_period / scaled.mean_per_period
    if rest <= 1.0 + 1e-9:
        return scaled
    return DemandModel(**{**scaled.__dict__, "sizes": _rescale_sizes(scaled.sizes, rest)})


def window_length_weights(lead_periods: float) -> dict[int, float]:
    """How many whole periods after the ordering period a lead time of `lead_periods` periods
    catches the lump of, as {number of periods: probability}.

    An order is triggered by a lump at a uniformly random point φ of its period m; the lump of
    period m + j lies at j + V_j, V_j ~ U(0, 1). With ℓ = k + f (k whole, 0 ≤ f < 1) the lead
    time covers periods m+1 … m+k−1 always, period m+k when V ≤ φ + f and period m+k+1 when
    V ≤ φ + f − 1; over φ:

        k − 1 periods: (1 − f)²/2,   k periods: 1/2 + f − f²,   k + 1 periods: f²/2

    (k = 0: none with 1 − f²/2, one with f²/2). The mean, ℓ − 1/2, is half a period short of
    ℓ: the rest of the ordering period has no further lump.
    """
    if lead_periods < 0 or not math.isfinite(lead_periods):
        raise ValueError(f"lead_periods must be finite and >= 0, got {lead_periods}")
    k = math.floor(lead_periods)
    f = lead_periods - k
    if k == 0:
        weights = {0: 1.0 - f * f / 2.0, 1: f * f / 2.0}
    else:
        weights = {k - 1: (1.0 - f) ** 2 / 2.0, k: 0.5 + f - f * f, k + 1: f * f / 2.0}
    return {n: w for n, w in weights.items() if w > 0}


def _window_sum_pmfs(model: DemandModel, lengths: Sequence[int]) -> dict[int, np.ndarray]:
    """pmf (on the model's grid) of the demand in the n periods after a period with demand,
    for each n in `lengths`: exact, by stepping the two-state chain and convolving lumps."""
    wanted = set(lengths)
    longest = max(wanted)
    size = longest * (model.sizes.size - 1) + 1
    result: dict[int, np.ndarray] = {}
    # The ordering period had demand. Fixed-size buffers: the sum of n periods needs at most
    # n·(largest lump) + 1 cells.
    with_demand, without = np.zeros(size), np.zeros(size)
    with_demand[0] = 1.0
    p01, p11 = model.p01, model.p11
    for n in range(longest + 1):
        if n in wanted:
            result[n] = with_demand + without
        if n == longest:
            break
        active = n * (model.sizes.size - 1) + 1  # cells a sum of n periods can reach
        occurs = np.zeros(size)
        reached = np.convolve(p11 * with_demand[:active] + p01 * without[:active], model.sizes)
        occurs[: reached.size] = reached
        without = (1.0 - p11) * with_demand + (1.0 - p01) * without
        with_demand = occurs
    return result


def undershoot_pmf(sizes: np.ndarray, order_quantity: int) -> np.ndarray:
    """pmf of the undershoot U: how far below s the inventory position is when an order is
    triggered, for lumps with pmf `sizes` and S − s = `order_quantity` (grid units, ≥ 1).

    After an order the position is S; lumps Z₁, Z₂, … take it down until it is at or below s,
    i.e. until W = Z₁ + … + Zₙ ≥ Q, and U = W − Q. With u(w) the chance that the partial sums
    hit w (u(0) = 1, u(w) = Σⱼ P(Z = j)·u(w − j)):

        P(U = x) = Σ_{w=0}^{Q−1} u(w)·P(Z = Q − w + x)

    For Q = 1 that is Z − 1; for large Q it tends to the renewal limit P(Z > x)/E[Z].
    """
    q = max(1, int(order_quantity))
    g = np.asarray(sizes, dtype=float)
    hits = np.zeros(q)
    hits[0] = 1.0
    for w in range(1, q):
        top = min(w, g.size - 1)
        hits[w] = float(g[1 : top + 1] @ hits[w - 1 :: -1][:top]) if top >= 1 else 0.0
    under = np.zeros(g.size)
    for w in range(q):
        start = q - w  # P(Z = start + x)
        if start < g.size:
            under[: g.size - start] += hits[w] * g[start:]
    return under / under.sum()


def _lead_time_points(lead_time: LeadTime) -> tuple[np.ndarray, np.ndarray]:
    """(days, weights) the lead-time demand is mixed over: the item's samples with equal weight,
    else gamma quantiles at midpoints, else the mean."""
    if lead_time.samples_days:
        days, counts = np.unique(
            np.asarray(lead_time.samples_days, dtype=float), return_counts=True
        )
        return days, counts / counts.sum()
    mean, std = lead_time.mean_days, lead_time.std_days
    if std > 0 and mean > 0:
        n = GAMMA_LEAD_TIME_POINTS
        days = np.array([_gamma_quantile(mean, std, (i + 0.5) / n) for i in range(n)])
        return days, np.full(n, 1.0 / n)
    return np.array([max(mean, 0.0)]), np.array([1.0])


def protection_pmf(
    model: DemandModel,
    lead_time: LeadTime,
    period_days: int,
    order_quantity: float,
) -> np.ndarray:
    """pmf of U + x_L on the model's grid: the undershoot at the order plus the demand over the
    lead time after it, mixed over the lead time. P1 = P(U + x_L ≤ s), so s is its quantile."""
    if period_days < 1:
        raise ValueError(f"period_days must be >= 1, got {period_days}")
    days, day_weights = _lead_time_points(lead_time)
    mixture: dict[int, float] = {}
    for d, w in zip(days, day_weights, strict=True):
        for n, v in window_length_weights(float(d) / period_days).items():
            mixture[n] = mixture.get(n, 0.0) + float(w) * v
    windows = _window_sum_pmfs(model, sorted(mixture))
    lead_demand = np.zeros(max(p.size for p in windows.values()))
    for n, w in mixture.items():
        lead_demand[: windows[n].size] += w * windows[n]
    q = max(1, round(order_quantity / model.unit))
    return np.convolve(undershoot_pmf(model.sizes, q), lead_demand)


def _predictive_protection_pmf(
    model: DemandModel, lead_time: LeadTime, period_days: int, order_quantity: float
) -> np.ndarray:
    """`protection_pmf` averaged over the uncertainty of the level: with n periods with demand
    observed, the level is known up to a factor λ ~ Gamma(n + ½, n + ½) (mean 1, CV 1/√(n + ½),
    the posterior of a rate seen n times); the pmf is mixed over `LEVEL_UNCERTAINTY_POINTS`
    midpoint quantiles of λ, each moving exactly the share of periods with demand
    (`scale_demand_model` with `size_share` 0: the lumps' own uncertainty is `_size_pmf`'s
    predictive tail)."""
    # Correlated periods carry less information about the level: n_eff = n·(1 − r)/(1 + r),
    # r = p11 − p01 the lag-1 correlation of the occurrence chain (as for the mean of an AR(1)).
    r = min(max(model.p11 - model.p01, 0.0), 0.95)
    n = model.demand_periods * (1 - r) / (1 + r)
    points = LEVEL_UNCERTAINTY_POINTS
    if model.demand_periods <= 0 or points <= 1:
        return protection_pmf(model, lead_time, period_days, order_quantity)
    cv = 1.0 / math.sqrt(n + 0.5)
    mixed: np.ndarray | None = None
    for i in range(points):
        factor = _gamma_quantile(1.0, cv, (i + 0.5) / points)
        scaled = scale_demand_model(model, factor, size_share=0.0) if factor > 0 else model
        pmf = protection_pmf(scaled, lead_time, period_days, order_quantity) / points
        if mixed is None:
            mixed = pmf
        else:
            size = max(mixed.size, pmf.size)
            mixed = np.pad(mixed, (0, size - mixed.size)) + np.pad(pmf, (0, size - pmf.size))
    assert mixed is not None
    return mixed


def pmf_quantile(pmf: np.ndarray, level: float, *, tolerance: float = 0.0) -> int:
    """The whole number k of grid units whose P(X ≤ k) is closest to `level` without falling
    more than `tolerance` below it: the smallest k with P(X ≤ k) ≥ level, or k − 1 when its
    probability is within `tolerance` below the level and nearer to it. tolerance = 0 gives
    the plain quantile (smallest k with P(X ≤ k) ≥ level)."""
    cdf = np.cumsum(pmf) / float(np.sum(pmf))
    # A hair of slack: a CDF that reaches the level exactly must not miss it by rounding.
    k = int(min(np.searchsorted(cdf, level - 1e-12), pmf.size - 1))
    if tolerance > 0 and k > 0:
        below = float(cdf[k - 1])
        if below >= level - tolerance and level - below < float(cdf[k]) - level:
            return k - 1
    return k


def pmf_cdf_at(pmf: np.ndarray, units: float) -> float:
    """P(X ≤ x) for X with `pmf` on the grid 0, 1, 2, … and x in grid units (any x ≥ 0)."""
    k = math.floor(units + 1e-9)
    total = float(np.sum(pmf))
    return 1.0 if k >= pmf.size - 1 else float(np.sum(pmf[: k + 1])) / total


@dataclass(frozen=True)
class ReorderPoint:
    """Reorder point s of one part and how it was derived (quantities in stock units).

    `lead_time_demand_mean` is the mean of the lead-time demand (after an order), `undershoot_mean`
    the mean shortfall below s at the moment an order is triggered; `level_ratio` is the factor
    the forecast applied to the history's level (1 when it agreed within `LEVEL_RATIO_BAND`).
    `expected_service_level` is the model's P(U + x_L ≤ s) for this s: the cycle service level
    the part's reorder point promises (≥ the target, except where whole units leave the
    nearest level up to `ROUNDING_TOLERANCE` below it; up to ≈ 1 where whole units or the floor
    at the smallest lump give more); `floor_binds` says the floor at the smallest lump raised s.
    NaN for "no_demand".
    """

    reorder_point: float
    order_quantity: float
    order_up_to: float
    method: PolicyMethod
    evidence_periods: int
    evidence_demand_periods: int
    level_ratio: float
    lead_time_demand_mean: float
    undershoot_mean: float
    smallest_size: float
    unit: float
    expected_service_level: float = math.nan
    floor_binds: bool = False


def default_order_quantity(model: DemandModel, mean_per_period: float) -> float:
    """Q = one period's mean demand, in whole grid units, at least the smallest lump."""
    units = max(1, round(mean_per_period / model.unit))
    return max(units * model.unit, model.smallest_size)


def reorder_point(
    history: Sequence[float] | np.ndarray,
    lead_time: LeadTime,
    service_level: float,
    period_days: int,
    *,
    forecast_mean_per_period: float | None = None,
    forecast: tuple[np.ndarray, Sequence[float]] | None = None,
    order_quantity: float | None = None,
) -> ReorderPoint:
    """The reorder point that keeps the cycle-service promise (see the module docstring).

    s = the smallest whole number of grid units with P(U + x_L ≤ s) ≥ P1 (`protection_pmf`), at
    least the part's smallest lump when it has demand and the lead time is positive. The
    demand model comes from `history`; `forecast_mean_per_period` (the forecast's mean over
    the lead time) moves its level when the two differ by more than `LEVEL_RATIO_BAND`; without
    history, `forecast` (quantiles, levels) gives the model. The order quantity defaults to
    `default_order_quantity` at the level used; S = s + Q.
    """
    _check_service_level(service_level)
    model = demand_model(history)
    method: PolicyMethod
    if model is not None:
        thin = (
            model.periods < MIN_EVIDENCE_PERIODS
            or model.demand_periods < MIN_EVIDENCE_DEMAND_PERIODS
        )
        method = "thin_history" if thin else "demand_history"
    elif forecast is not None:
        model = forecast_demand_model(*forecast)
        method = "forecast_only"
    if model is None:
        quantity = float(order_quantity or 0.0)
        return ReorderPoint(
            0.0, quantity, quantity, "no_demand", int(np.size(history)), 0, 1.0, 0.0, 0.0, 0.0, 1.0
        )
    ratio = 1.0
    if method != "forecast_only" and forecast_mean_per_period is not None:
        level = model.mean_per_period
        if level > 0 and math.isfinite(forecast_mean_per_period):
            raw = max(forecast_mean_per_period, 0.0) / level
            if not 1 / LEVEL_RATIO_BAND <= raw <= LEVEL_RATIO_BAND:
                ratio = min(max(raw, 1 / LEVEL_RATIO_LIMIT), LEVEL_RATIO_LIMIT)
                model = scale_demand_model(model, ratio)
    quantity = (
        float(order_quantity)
        if order_quantity is not None
        else default_order_quantity(model, model.mean_per_period)
    )
    pmf = _predictive_protection_pmf(model, lead_time, period_days, quantity)
    s = pmf_quantile(pmf, service_level, tolerance=ROUNDING_TOLERANCE) * model.unit
    floor_binds = lead_time.mean_days > 0 and s < model.smallest_size
    if floor_binds:
        s = model.smallest_size
    q_units = max(1, round(quantity / model.unit))
    under = undershoot_pmf(model.sizes, q_units)
    grid = np.arange(pmf.size) * model.unit
    under_mean = float(np.arange(under.size) @ under) * model.unit
    return ReorderPoint(
        reorder_point=float(s),
        order_quantity=quantity,
        order_up_to=float(s + quantity),
        method=method,
        evidence_periods=model.periods,
        evidence_demand_periods=model.demand_periods,
        level_ratio=ratio,
        lead_time_demand_mean=float(grid @ pmf) - under_mean,
        undershoot_mean=under_mean,
        smallest_size=model.smallest_size,
        unit=model.unit,
        expected_service_level=pmf_cdf_at(pmf, s / model.unit),
        floor_binds=floor_binds,
    )


def empirical_window_reorder_point(
    history: Sequence[float] | np.ndarray, lead_periods: float, service_level: float
) -> float:
    """The baseline: the P1-quantile (smallest observed value reaching it) of the part's demand
    summed over every overlapping window of round(ℓ) periods (at least 1) of its history; the
    whole history's sum when it is shorter than a window."""
    _check_service_level(service_level)
    y = np.nan_to_num(np.asarray(history, dtype=float).ravel(), nan=0.0)
    if y.size == 0:
        return 0.0
    n = min(max(1, round(lead_periods)), y.size)
    sums = np.convolve(y, np.ones(n), mode="valid")
    return float(np.quantile(sums, service_level, method="inverted_cdf"))


# --- alerts -------------------------------------------------------------------------------


def stock_alert(
    on_hand: float,
    reorder_point: float,
    mean_daily_demand: float,
    lead_time_days: float,
) -> tuple[float, AlertLevel]:
    """Days of cover and alert level for a stock snapshot (`gold.fact_stock`).

    Days of cover = on_hand / D (∞ when D = 0; 0 when on_hand ≤ 0, since a negative balance
    is a booking lag, not negative cover). Levels, first match wins:

        critical   on_hand ≤ 0, or cover < L̄/2 (`CRITICAL_COVER_FRACTION`): a replenishment
                   ordered now arrives well after the shelf is empty
        attention  on_hand ≤ s: at or below the reorder point, an order is due
        monitor    on_hand ≤ 1.5·s (`MONITOR_ROP_MULTIPLE`): approaching the reorder point
        ok         otherwise
    """
    if mean_daily_demand < 0 or lead_time_days < 0:
        raise ValueError("mean_daily_demand and lead_time_days must be >= 0")
    if on_hand <= 0:
        return 0.0, "critical"
    cover = math.inf if mean_daily_demand == 0 else on_hand / mean_daily_demand
    if cover < CRITICAL_COVER_FRACTION * lead_time_days:
        return cover, "critical"
    if on_hand <= reorder_point:
        return cover, "attention"
    if on_hand <= MONITOR_ROP_MULTIPLE * reorder_point:
        return cover, "monitor"
    return cover, "ok"


# --- simulation ---------------------------------------------------------------------------


def simulate_policy(
    actual_daily_demand: np.ndarray,
    reorder_point: float,
    order_up_to: float,
    lead_time_days: int | Sequence[int] | np.ndarray,
    initial_stock: float,
    *,
    lost_sales: bool = False,
) -> SimulationResult:
    """Replay a continuous-review (s, S) policy day by day over held-out demand.

    Each day t: demand d_t is served from the shelf (what is short is a stockout: backordered,
    or lost when `lost_sales`); then the inventory position IP = on hand − backorders +
    on order is reviewed and, if IP ≤ s, S − IP is ordered; an order placed on day t with lead
    time L is received at the end of day t + L, so it covers demand from day t + L + 1 on —
    exactly the L days of demand the reorder point has to cover. Receipts clear backorders first.

    `lead_time_days` is one whole number of days for every order, or one per order in the
    order they are placed (`len(actual_daily_demand)` values always
    suffice, since at most one order is placed a day). Orders may cross.

        P2 (fill rate)        = Σ served from the shelf on the day / Σ d_t
        P1 (cycle service)    = share of replenishment cycles without a stockout day
        average_stock         = mean end-of-day quantity on the shelf
        stockout_days         = days with demand not served from the shelf

    A replenishment cycle is a stretch of days that ends with a receipt (the day after the
    previous receipt, or day 0, up to and including the receipt day): an order was outstanding
    during it, and the question P1 asks — did the stock last until the order arrived? — has an
    answer. The days after the last receipt are a cycle only when that answer is still pending
    or already known: when an order is outstanding at the end of the horizon (an open cycle,
    failed if it already had a stockout day), or when a stockout happened in them (a failed
    cycle, even with nothing on order: a stockout is never a free success). Days after the last
    receipt with nothing on order and no stockout are not a cycle: nothing could run short there
    for want of replenishment, and counting them as a success would credit every part with one
    free cycle a year. Without any cycle `cycle_service_level` is 1.0 (see `SimulationResult`).
    """
    demand = np.asarray(actual_daily_demand, dtype=float).ravel()
    if demand.size == 0:
        raise ValueError("actual_daily_demand is empty")
    if not np.all(np.isfinite(demand)) or np.any(demand < 0):
        raise ValueError("actual_daily_demand must be finite and >= 0")
    if order_up_to < reorder_point:
        raise ValueError(f"order_up_to {order_up_to} is below reorder_point {reorder_point}")
    if initial_stock < 0:
        raise ValueError(f"initial_stock must be >= 0, got {initial_stock}")
    per_order: np.ndarray | None = None
    fixed_lead = 0
    if np.ndim(lead_time_days) == 0:
        scalar = float(np.asarray(lead_time_days))
        if scalar < 0 or scalar != round(scalar):
            raise ValueError(f"lead_time_days must be whole days >= 0, got {lead_time_days}")
        fixed_lead = int(scalar)
    else:
        per_order = np.asarray(lead_time_days, dtype=float).ravel()
        if np.any(per_order < 0) or np.any(per_order != np.round(per_order)):
            raise ValueError("lead_time_days must be whole days >= 0")

    net = float(initial_stock)  # on hand − backorders
    on_order = 0.0
    arrivals: dict[int, float] = {}
    pending: list[int] = []  # heap of arrival days
    served_total = 0.0
    stockout_days = 0
    orders = 0
    stock_sum = 0.0
    cycles = 0
    failed_cycles = 0
    cycle_had_stockout = False
    last_receipt = -1
    horizon = demand.size
    # Only day 0, days with demand and days with a receipt change anything: the position only
    # falls with demand, so a quiet day never triggers an order. The days between are counted
    # at the stock they hold.
    demand_days = np.flatnonzero(demand > 0).tolist()
    next_demand = 0
    previous = -1
    day = 0
    while day < horizon:
        stock_sum += max(net, 0.0) * (day - previous - 1)  # quiet days since the last event
        d = float(demand[day])
        shelf = max(net, 0.0)
        served = min(shelf, d)
        served_total += served
        if d > served:
            stockout_days += 1
            cycle_had_stockout = True
        # A lost sale is gone (stock stays >= 0); a backorder is carried as negative stock.
        net = shelf - served if lost_sales else net - d

        position = net + on_order
        if position <= reorder_point and order_up_to - position > 0:
            if per_order is None:
                lead = fixed_lead
            else:
                if orders >= per_order.size:
                    raise ValueError(
                        f"lead_time_days has {per_order.size} values: too few for order "
                        f"{orders + 1}"
                    )
                lead = int(per_order[orders])
            quantity = order_up_to - position
            if day + lead not in arrivals:
                heapq.heappush(pending, day + lead)
            arrivals[day + lead] = arrivals.get(day + lead, 0.0) + quantity
            on_order += quantity
            orders += 1

        received = arrivals.pop(day, 0.0)
        if pending and pending[0] == day:
            heapq.heappop(pending)
        if received:
            net += received
            on_order -= received
            # A receipt closes the replenishment cycle it ends.
            cycles += 1
            failed_cycles += cycle_had_stockout
            last_receipt = day
            cycle_had_stockout = False
        stock_sum += max(net, 0.0)
        previous = day
        while next_demand < len(demand_days) and demand_days[next_demand] <= day:
            next_demand += 1
        day = min(
            demand_days[next_demand] if next_demand < len(demand_days) else horizon,
            pending[0] if pending else horizon,
        )
    stock_sum += max(net, 0.0) * (horizon - previous - 1)

    # The days after the last receipt are a cycle only with an order outstanding at the end (an
    # open cycle) or with a stockout in them (a failed one); see the docstring.
    if last_receipt < horizon - 1 and (on_order > 1e-9 or cycle_had_stockout):
        cycles += 1
        failed_cycles += cycle_had_stockout

    total = float(demand.sum())
    return SimulationResult(
        fill_rate=served_total / total if total > 0 else 1.0,
        cycle_service_level=1.0 - failed_cycles / cycles if cycles else 1.0,
        average_stock=stock_sum / demand.size,
        stockout_days=stockout_days,
        orders=orders,
        cycles=cycles,
        failed_cycles=int(failed_cycles),
        total_demand=total,
        unmet_demand=total - served_total,
    )
