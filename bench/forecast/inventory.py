"""Inventory simulation over the held-out year: our reorder points against the classic formula.

Our selected forecasts (the `forecast_panel` run of the benchmark, not refitted) set a
continuous-review (s, S) policy per series, which `simulate_policy` replays day by day over the
series' actual hold-out demand. Assumptions, since the car-parts panel has no lead times or
stock:

- Lead time: fixed, `LEAD_TIMES_DAYS` (30 and 60 days, i.e. 1 and 2 months of
  `PERIOD_DAYS` = 30), the same for every order (`lead_time_distribution` with no samples and
  a zero-std fallback).
- Daily demand: each held-out month's actual demand falls on one day of that month, drawn
  uniformly at random per series and month (numpy `default_rng(seed)`), which keeps the
  lumpiness of intermittent demand (spreading it evenly would turn 1 unit into 1/30 a day).
  The hold-out runs 2001-04-01..2002-03-31 (365 calendar days).
- Our policy: s = `policy_for_item(...).reorder_point`, the P1-quantile of lead-time demand
  drawn by Monte-Carlo from all forecast quantiles (q0.1..q0.9, q0.95) of steps 1.. at the
  origin; with a 30-day lead time that is the step-1 forecast's q0.9 (P1 = 0.90) or q0.95
  (P1 = 0.95). The classic formula: s = `classic_reorder_point` of the same `InventoryPolicy`,
  D·L + Φ⁻¹(P1)·σ_D·√L with D and σ_D from the forecast's mean and variance (normal
  approximation). Both are set once at the forecast origin and held for the year (no
  re-planning), and are not rounded to whole units.
- Order quantity Q = max(1, mean monthly forecast over the 12 steps) for both, S = s + Q.
- Initial stock = S, nothing on order; shortages are backordered (`simulate_policy`'s default).

Scored on every series with any demand in the hold-out (the others never order or run short).
Cycle service level (P1): mean over series of each series' share of replenishment cycles
without a stockout; fill rate (P2): total units served from the shelf on the day / total demand;
average stock: mean over series of the mean end-of-day on-hand, and its sum over series.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.forecast.carparts import Split
from services.forecaster.models import quantile_column
from services.forecaster.policy import (
    forecast_moments,
    lead_time_distribution,
    policy_for_item,
    simulate_policy,
)

LEAD_TIMES_DAYS = (30, 60)
SERVICE_LEVELS = (0.90, 0.95)
PERIOD_DAYS = 30
MIN_ORDER_QUANTITY = 1.0
POLICIES = ("ours", "classic")


@dataclass
class _Totals:
    """Sums over series of one policy at one lead time and service level."""

    series: int = 0
    reorder_point: float = 0.0
    cycle_service_level: float = 0.0
    served: float = 0.0
    demand: float = 0.0
    average_stock: float = 0.0
    stockout_days: int = 0
    orders: int = 0

    def as_dict(self) -> dict[str, Any]:
        n = max(self.series, 1)
        return {
            "mean_reorder_point": round(self.reorder_point / n, 4),
            "cycle_service_level": round(self.cycle_service_level / n, 4),
            "fill_rate": round(self.served / self.demand, 4) if self.demand > 0 else 1.0,
            "average_stock_per_series": round(self.average_stock / n, 4),
            "average_stock_total": round(self.average_stock, 1),
            "stockout_days": self.stockout_days,
            "orders": self.orders,
        }


def _forecast_cube(
    split: Split, forecasts: pd.DataFrame, quantiles: tuple[float, ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(series, step, quantile) forecast quantiles and (series, step) means, in split order."""
    horizon = len(split.test_months)
    index = pd.MultiIndex.from_product([list(split.ids), range(1, horizon + 1)])
    ordered = forecasts.set_index(["series_id", "step"]).sort_index().reindex(index)
    columns = [quantile_column(q) for q in quantiles]
    if ordered[[*columns, "mean"]].isna().to_numpy().any():
        raise ValueError("forecasts miss some series, steps or quantiles")
    shape = (len(split.ids), horizon)
    cube = ordered[columns].to_numpy(dtype=float).reshape(*shape, len(columns))
    return cube, ordered["mean"].to_numpy(dtype=float).reshape(shape)


def daily_demand(split: Split, rows: NDArray[np.intp], seed: int) -> NDArray[np.float64]:
    """(len(rows), days) daily demand: each month's total on one random day of the month."""
    starts = pd.DatetimeIndex(split.test_months)
    lengths = np.asarray(starts.days_in_month, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    monthly = np.nan_to_num(split.test[rows], nan=0.0)  # empty cells: discontinued, no demand
    rng = np.random.default_rng(seed)
    day = rng.integers(0, lengths, size=monthly.shape)  # one draw per series and month
    daily = np.zeros((len(rows), int(lengths.sum())))
    daily[np.arange(len(rows))[:, None], offsets + day] = monthly
    return daily


def simulate(
    split: Split, forecasts: pd.DataFrame, quantiles: tuple[float, ...], *, seed: int
) -> dict[str, Any]:
    """The inventory section of the benchmark results (see the module docstring)."""
    began = time.perf_counter()
    cube, means = _forecast_cube(split, forecasts, quantiles)
    observed = np.nansum(split.test, axis=1)
    rows = np.flatnonzero(observed > 0)
    demand = daily_demand(split, rows, seed)
    order_quantity = np.maximum(MIN_ORDER_QUANTITY, means[rows].mean(axis=1))
    lead_times = {
        lead: lead_time_distribution([], fallback_days=float(lead)) for lead in LEAD_TIMES_DAYS
    }
    totals = {
        (lead, level, policy): _Totals()
        for lead in LEAD_TIMES_DAYS
        for level in SERVICE_LEVELS
        for policy in POLICIES
    }
    windows = {lead: math.ceil(lead / PERIOD_DAYS) for lead in LEAD_TIMES_DAYS}
    for k, row in enumerate(rows.tolist()):
        # policy_for_item's own default for D and sigma_D (the forecast's moments over the
        # periods a lead time covers), computed once per series instead of once per call.
        moments = forecast_moments(cube[row][: max(windows.values())], quantiles)
        for lead in LEAD_TIMES_DAYS:
            period_means, period_variances = (m[: windows[lead]] for m in moments)
            for level in SERVICE_LEVELS:
                policy = policy_for_item(
                    split.ids[row],
                    cube[row],
                    quantiles,
                    PERIOD_DAYS,
                    lead_times[lead],
                    level,
                    seed=seed + row,  # the same draws for both levels: s grows with P1
                    mean_daily_demand=float(period_means.mean()) / PERIOD_DAYS,
                    sigma_daily_demand=math.sqrt(float(period_variances.mean()) / PERIOD_DAYS),
                )
                points = {"ours": policy.reorder_point, "classic": policy.classic_reorder_point}
                for name, reorder_point in points.items():
                    order_up_to = reorder_point + float(order_quantity[k])
                    outcome = simulate_policy(
                        demand[k], reorder_point, order_up_to, lead, order_up_to
                    )
                    total = totals[(lead, level, name)]
                    total.series += 1
                    total.reorder_point += reorder_point
                    total.cycle_service_level += float(outcome.cycle_service_level)
                    total.served += outcome.total_demand - float(outcome.unmet_demand)
                    total.demand += outcome.total_demand
                    total.average_stock += float(outcome.average_stock)
                    total.stockout_days += outcome.stockout_days
                    total.orders += outcome.orders
    results = []
    for lead in LEAD_TIMES_DAYS:
        for level in SERVICE_LEVELS:
            ours_totals, classic_totals = (totals[(lead, level, p)] for p in POLICIES)
            ours, classic = ours_totals.as_dict(), classic_totals.as_dict()
            base = classic_totals.average_stock
            results.append(
                {
                    "lead_time_days": lead,
                    "target_service_level": level,
                    "ours": ours,
                    "classic": classic,
                    "average_stock_ratio": round(ours_totals.average_stock / base, 4)
                    if base > 0
                    else None,
                }
            )
    return {
        "series": len(rows),
        "series_without_holdout_demand": len(split.ids) - len(rows),
        "holdout_demand": float(observed[rows].sum()),
        "days": int(demand.shape[1]),
        "first_day": split.test_months[0].date().isoformat(),
        "period_days": PERIOD_DAYS,
        "lead_times_days": list(LEAD_TIMES_DAYS),
        "service_levels": list(SERVICE_LEVELS),
        "order_quantity": "max(1, mean monthly forecast over the 12 steps); S = s + Q",
        "initial_stock": "S",
        "shortages": "backordered",
        "demand_spread": "each month's demand on one uniformly random day of the month",
        "seed": seed,
        "mean_order_quantity": round(float(order_quantity.mean()), 4) if len(rows) else None,
        "rows": results,
        "seconds": round(time.perf_counter() - began, 2),
    }


def render(section: dict[str, Any]) -> list[str]:
    """The inventory table, ours beside classic for each lead time and target."""
    lines = [
        f"inventory simulation over the held-out year ({section['days']} days from "
        f"{section['first_day']}), {section['series']:,} series with hold-out demand:",
        "  continuous-review (s, S) replayed daily (simulate_policy), fixed lead time, start at S,",
        f"  backorders; S = s + Q, Q = max(1, mean monthly forecast) (mean "
        f"{section['mean_order_quantity']});",
        "  each month's actual demand falls on one random day of the month (seeded).",
        "  ours: s = policy_for_item reorder point (Monte-Carlo quantile of lead-time demand from",
        "  the forecast quantiles); classic: s = D*L + z*sigma_D*sqrt(L) from the forecast's mean",
        "  and variance (classic_reorder_point). Cycle SL: mean over series; fill rate: pooled.",
    ]
    header = (
        f"{'lead':>5} {'target':>6} | {'cycle SL':^15} | {'fill rate':^15} | "
        f"{'avg stock per series':^22} | {'avg stock, total':^17} | {'stockout days':^15} | "
        f"{'orders':^15}"
    )
    sub = (
        f"{'':>5} {'':>6} | {'ours':>7}{'classic':>8} | {'ours':>7}{'classic':>8} | "
        f"{'ours':>7}{'classic':>8}{'ratio':>7} | {'ours':>8}{'classic':>9} | "
        f"{'ours':>7}{'classic':>8} | {'ours':>7}{'classic':>8}"
    )
    lines += [header, sub, "-" * len(header)]
    for row in section["rows"]:
        ours, classic = row["ours"], row["classic"]
        ratio = "n/a" if row["average_stock_ratio"] is None else f"{row['average_stock_ratio']:.3f}"
        lines.append(
            f"{row['lead_time_days']:>4}d {row['target_service_level']:>6.2f} | "
            f"{ours['cycle_service_level']:>7.3f}{classic['cycle_service_level']:>8.3f} | "
            f"{ours['fill_rate']:>7.3f}{classic['fill_rate']:>8.3f} | "
            f"{ours['average_stock_per_series']:>7.3f}{classic['average_stock_per_series']:>8.3f}"
            f"{ratio:>7} | "
            f"{ours['average_stock_total']:>8,.0f}{classic['average_stock_total']:>9,.0f} | "
            f"{ours['stockout_days']:>7,}{classic['stockout_days']:>8,} | "
            f"{ours['orders']:>7,}{classic['orders']:>8,}"
        )
    lines.append(f"  ({section['seconds']:.1f} s; ratio = ours / classic average stock)")
    return lines
