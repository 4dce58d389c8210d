"""Inventory policy from probabilistic forecasts: lead time, reorder point, alerts, simulation.

Pure functions, no I/O: the forecaster feeds them quantile forecasts and lead-time samples read
from gold (`gold.fact_lead_time.lead_time_days` per request line, `gold.dim_supplier` moments as
a fallback, `gold.fact_stock.quantity_on_hand` for alerts) and writes what they return.

Notation (after Silver, Pyke & Peterson, *Inventory and Production Management in Supply Chains*):

    D, σ_D     mean and standard deviation of demand per day
    L̄, σ_L     mean and standard deviation of the replenishment lead time, in days
    x_L        demand over a lead time (a random variable); x̂_L = E[x_L]
    P1         target cycle service level: P(x_L ≤ s), the chance a replenishment cycle
               ends without a stockout
    k          safety factor; k = Φ⁻¹(P1) for the classic normal formulas (printed as z)
    s, S       reorder point and order-up-to level of an (s, S) policy
    SS         safety stock, s − x̂_L
    P2         fill rate: the fraction of demand served from the shelf on the day it occurs

The forecast-driven reorder point is s = F⁻¹_{x_L}(P1), estimated by Monte-Carlo from the
forecast quantiles and the empirical lead time; the classic s = D·L̄ + k·σ_x is kept beside it
so the benchmark can compare both against a held-out simulation.
"""

from __future__ import annotations

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

# Uniform draws are kept off 0 and 1 so the logarithmic tails stay finite.
_U_EPS = 1e-12
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
class InventoryPolicy:
    """Reorder point and safety stock of one item at one service level, with the classic
    formula's numbers beside them for comparison. Quantities are in stock units."""

    item_code: str
    service_level: float
    z: float
    lead_time_mean_days: float
    lead_time_std_days: float
    lead_time_p50_days: float
    lead_time_p90_days: float
    lead_time_source: LeadTimeSource
    lead_time_samples: int
    mean_daily_demand: float
    sigma_daily_demand: float
    reorder_point: float
    mean_lead_time_demand: float
    safety_stock: float
    classic_safety_stock: float
    classic_reorder_point: float
    simulations: int


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of a daily (s, S) simulation over a held-out demand series.

    `cycle_service_level` (P1) is comparable with the policy's target service level, which is
    a cycle service level; `fill_rate` (P2) is the share of units served from the shelf on the
    day they were demanded. `average_stock` is the mean end-of-day quantity on the shelf.
    """

    fill_rate: float
    cycle_service_level: float
    average_stock: float
    stockout_days: int
    orders: int
    cycles: int
    total_demand: float
    unmet_demand: float

    @property
    def achieved_service_level(self) -> float:
        """The cycle service level (P1): what `InventoryPolicy.service_level` targets."""
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


def _draw_lead_times(lead_time: LeadTime, n: int, rng: np.random.Generator) -> np.ndarray:
    """n lead times in days: bootstrap the samples, else gamma(L̄, σ_L), else L̄ every time."""
    if lead_time.samples_days:
        return rng.choice(np.asarray(lead_time.samples_days, dtype=float), size=n)
    mean, std = lead_time.mean_days, lead_time.std_days
    if std > 0 and mean > 0:
        # Gamma rather than normal: lead times are positive and right-skewed.
        return rng.gamma(shape=(mean / std) ** 2, scale=std**2 / mean, size=n)
    return np.full(n, max(mean, 0.0))


def sample_lead_times(lead_time: LeadTime, n: int, *, seed: int) -> np.ndarray:
    """n whole-day lead times drawn like the Monte-Carlo draws them (rounded to the nearest
    day, ≥ 0), e.g. one per order for `simulate_policy`."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    draws = _draw_lead_times(lead_time, n, np.random.default_rng(seed))
    return np.maximum(np.rint(draws), 0).astype(int)


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


def simulate_lead_time_demand(
    period_quantiles: np.ndarray,
    quantiles: Sequence[float],
    period_days: int,
    lead_time: LeadTime,
    *,
    simulations: int = 5000,
    seed: int,
) -> np.ndarray:
    """Monte-Carlo draws of x_L, the demand over one lead time (`simulations` values).

    For each draw j:

        Lⱼ   ~ the lead-time distribution (bootstrap of the item's samples, or a gamma with
               mean L̄ and std σ_L when only moments are known, or L̄ when σ_L = 0)
        x_t  = Q_t(U_t), U_t ~ U(0, 1) i.i.d.  (inverse-CDF draw from period t's forecast)
        x_L  = Σ_t w_t·x_t,   w_t = min(1, max(0, Lⱼ/p − t))   (p = `period_days`, t = 0, 1, …)

    so the last, partly covered period counts pro rata (demand spread evenly within a period).
    Periods past the forecast horizon reuse the last period's quantiles. Periods are drawn
    independently: forecast errors correlated across periods would widen x_L, so the
    reorder point is optimistic for them. Same inputs and seed give the same draws.
    """
    levels, values = _check_forecast(period_quantiles, quantiles)
    if period_days < 1:
        raise ValueError(f"period_days must be >= 1, got {period_days}")
    if simulations < 1:
        raise ValueError(f"simulations must be >= 1, got {simulations}")
    rng = np.random.default_rng(seed)
    lead_periods = _draw_lead_times(lead_time, simulations, rng) / period_days
    n_periods = math.ceil(float(lead_periods.max()))
    demand = np.zeros(simulations)
    if n_periods == 0:
        return demand
    u = np.clip(rng.random((simulations, n_periods)), _U_EPS, 1 - _U_EPS)
    horizon = values.shape[0]
    for t in range(n_periods):
        weight = np.clip(lead_periods - t, 0.0, 1.0)
        row = values[min(t, horizon - 1)]
        demand += weight * _inverse_cdf(u[:, t], levels, row)
    return demand


def lead_time_demand_quantile(
    period_quantiles: np.ndarray,
    quantiles: Sequence[float],
    period_days: int,
    lead_time: LeadTime,
    service_level: float,
    *,
    simulations: int = 5000,
    seed: int,
) -> float:
    """The forecast-driven reorder point s = F⁻¹_{x_L}(P1).

    The empirical P1-quantile (linear interpolation) of the draws of
    `simulate_lead_time_demand`; see there for the model. Monotone in P1 for a fixed seed,
    0 for a zero forecast, deterministic for a seed.
    """
    _check_service_level(service_level)
    draws = simulate_lead_time_demand(
        period_quantiles,
        quantiles,
        period_days,
        lead_time,
        simulations=simulations,
        seed=seed,
    )
    return float(np.quantile(draws, service_level))


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


def policy_for_item(
    item_code: str,
    period_quantiles: np.ndarray,
    quantiles: Sequence[float],
    period_days: int,
    lead_time: LeadTime,
    service_level: float,
    *,
    simulations: int = 5000,
    seed: int,
    mean_daily_demand: float | None = None,
    sigma_daily_demand: float | None = None,
) -> InventoryPolicy:
    """Reorder point and safety stock of one item from its forecast and lead time.

    Forecast-driven (one Monte-Carlo sample of x_L, see `simulate_lead_time_demand`):

        s   = F⁻¹_{x_L}(P1)                  `reorder_point`
        x̂_L = E[x_L]                         `mean_lead_time_demand`
        SS  = max(0, s − x̂_L)                `safety_stock`

    SS is floored at 0 for reporting: s < x̂_L happens for skewed, intermittent demand at
    moderate P1, where no buffer above the mean is needed; `reorder_point` stays the quantile.

    Classic, for comparison: k = Φ⁻¹(P1), SS_c = k·√(L̄·σ_D² + D²·σ_L²), s_c = D·L̄ + SS_c.
    D and σ_D default to the forecast over the periods covering L̄ (at least one, the last
    period repeated past the horizon): D = mean(E[x_t])/p, σ_D = √(mean(Var[x_t])/p), i.e.
    days inside a period taken as i.i.d.; pass `mean_daily_demand` / `sigma_daily_demand`
    (e.g. from history) to override.
    """
    draws = simulate_lead_time_demand(
        period_quantiles,
        quantiles,
        period_days,
        lead_time,
        simulations=simulations,
        seed=seed,
    )
    z = z_for_service_level(service_level)
    reorder_point = float(np.quantile(draws, service_level))
    mean_ltd = float(draws.mean())

    if mean_daily_demand is None or sigma_daily_demand is None:
        means, variances = forecast_moments(period_quantiles, quantiles)
        window = max(1, math.ceil(lead_time.mean_days / period_days))
        rows = np.minimum(np.arange(window), means.size - 1)
        if mean_daily_demand is None:
            mean_daily_demand = float(means[rows].mean()) / period_days
        if sigma_daily_demand is None:
            sigma_daily_demand = math.sqrt(float(variances[rows].mean()) / period_days)

    classic_ss = classic_safety_stock(
        z,
        sigma_daily_demand,
        lead_time.mean_days,
        sigma_lt_days=lead_time.std_days,
        mean_daily=mean_daily_demand,
    )
    return InventoryPolicy(
        item_code=item_code,
        service_level=service_level,
        z=z,
        lead_time_mean_days=lead_time.mean_days,
        lead_time_std_days=lead_time.std_days,
        lead_time_p50_days=lead_time.p50_days,
        lead_time_p90_days=lead_time.p90_days,
        lead_time_source=lead_time.source,
        lead_time_samples=lead_time.n_samples,
        mean_daily_demand=mean_daily_demand,
        sigma_daily_demand=sigma_daily_demand,
        reorder_point=reorder_point,
        mean_lead_time_demand=mean_ltd,
        safety_stock=max(0.0, reorder_point - mean_ltd),
        classic_safety_stock=classic_ss,
        classic_reorder_point=reorder_point_classic(
            mean_daily_demand, lead_time.mean_days, classic_ss
        ),
        simulations=simulations,
    )


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
    order they are placed (e.g. `sample_lead_times`; `len(actual_daily_demand)` values always
    suffice, since at most one order is placed a day). Orders may cross.

        P2 (fill rate)        = Σ served from the shelf on the day / Σ d_t
        P1 (cycle service)    = share of replenishment cycles without a stockout day, a cycle
                                being the days up to and including a receipt; the days before
                                the first and after the last receipt count as cycles too
        average_stock         = mean end-of-day quantity on the shelf
        stockout_days         = days with demand not served from the shelf
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
    served_total = 0.0
    stockout_days = 0
    orders = 0
    stock_sum = 0.0
    cycles = 0
    failed_cycles = 0
    cycle_days = 0
    cycle_had_stockout = False

    for day, d in enumerate(demand):
        cycle_days += 1
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
            arrivals[day + lead] = arrivals.get(day + lead, 0.0) + quantity
            on_order += quantity
            orders += 1

        received = arrivals.pop(day, 0.0)
        if received:
            net += received
            on_order -= received
            # A receipt closes the replenishment cycle it ends.
            cycles += 1
            failed_cycles += cycle_had_stockout
            cycle_days = 0
            cycle_had_stockout = False
        stock_sum += max(net, 0.0)

    # The days after the last receipt are an open cycle (or the only one, if nothing arrived).
    if cycle_days:
        cycles += 1
        failed_cycles += cycle_had_stockout

    total = float(demand.sum())
    return SimulationResult(
        fill_rate=served_total / total if total > 0 else 1.0,
        cycle_service_level=1.0 - failed_cycles / cycles,
        average_stock=stock_sum / demand.size,
        stockout_days=stockout_days,
        orders=orders,
        cycles=cycles,
        total_demand=total,
        unmet_demand=total - served_total,
    )
