"""Inventory simulation over the held-out year: the product's reorder points, the classic
formula and the issue's empirical baseline, replayed on the parts' actual demand.

For each lead time (`LEAD_TIMES_DAYS`) the product path runs on a lake whose
`gold.fact_lead_time` gives every item that one fixed lead time (3 rows each, so the policy
uses the item's own samples; std 0), once per target (`SERVICE_LEVELS`, the run's
`service_level` option). From each run's `gold.inventory_policy` and `gold.fact_forecast`:

- ours: s = `reorder_point`; classic: s = `classic_reorder_point` (D·L + Φ⁻¹(P1)·σ_x, normal
  approximation); baseline (issue 12, point 4): s = the empirical P1-quantile of the part's
  demand summed over every overlapping lead-time window (ceil(L / 30) months) of its training
  history from its first demand (numpy's `inverted_cdf`: the smallest observed window sum with
  a share >= P1 at or below it; whole units). Computed here, independently of the product.
- Order quantity Q = the policy's own `order_quantity` (the product computes s for the Q it
  recommends: the undershoot below s depends on S − s), or, for a policy table without that
  column, max(1, mean monthly forecast over the 12 steps); the same Q for the three reorder
  points; S = s + Q; initial stock S, nothing on order; shortages backordered.
- Daily demand: each held-out month's actual demand falls on one day of that month drawn
  uniformly at random per series and month (`numpy.random.default_rng(seed)`), which keeps the
  lumps of intermittent demand; 2001-04-01..2002-03-31 = 365 days.
- Replayed day by day by `services.forecaster.policy.simulate_policy` (continuous review; an
  order placed on day t arrives at the end of day t + L). s is held for the year (no
  re-planning) and not rounded.

Scored on every series with hold-out demand and a policy row. Cycle service level (P1, what the
target promises): share of all replenishment cycles of all parts without a stockout day (the
mean of each part's own share is in the JSON and printed below the table: a part has ~3
cycles a year, so its own share is coarse).
Fill rate (P2): units served from the shelf on the day / units demanded, pooled. Average stock:
mean end-of-day on-hand, summed over series (and per series).

"At the same achieved service": the classic formula is also replayed on a grid of targets
(`FRONTIER_LEVELS`, s = D·L + Φ⁻¹(τ')·σ_x from the same columns), and its average stock is
interpolated at the cycle service level ours achieved. Ours passes when its stock is at most
that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.forecast.carparts import Split
from services.forecaster.policy import simulate_policy

LEAD_TIMES_DAYS = (30, 60)
SERVICE_LEVELS = (0.90, 0.95)
PERIOD_DAYS = 30
MIN_ORDER_QUANTITY = 1.0
POLICIES = ("ours", "classic", "baseline")
TARGET_TOLERANCE = 0.02
# Targets of the classic curve; the top ones (z up to 4.75) reach what ours over-delivers.
FRONTIER_LEVELS = (
    0.75, 0.80, 0.85, 0.90, 0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999, 0.99999, 0.999999
)  # fmt: skip


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
    cycles: int = 0
    failed_cycles: float = 0.0
    zero_reorder_points: int = 0  # parts with hold-out (hence some) demand and s = 0

    def add(self, reorder_point: float, outcome: Any) -> None:
        self.series += 1
        self.reorder_point += reorder_point
        self.zero_reorder_points += reorder_point <= 0
        self.cycle_service_level += float(outcome.cycle_service_level)
        self.served += outcome.total_demand - float(outcome.unmet_demand)
        self.demand += outcome.total_demand
        self.average_stock += float(outcome.average_stock)
        self.stockout_days += outcome.stockout_days
        self.orders += outcome.orders
        self.cycles += outcome.cycles
        self.failed_cycles += (1.0 - float(outcome.cycle_service_level)) * outcome.cycles

    def as_dict(self) -> dict[str, Any]:
        n = max(self.series, 1)
        return {
            "mean_reorder_point": round(self.reorder_point / n, 4),
            # the promise: the share of all replenishment cycles (of all parts) without a
            # stockout day; a part with a few cycles has a noisy share of its own
            "cycle_service_level": round(1.0 - self.failed_cycles / self.cycles, 4)
            if self.cycles
            else 1.0,
            "cycle_service_level_mean_over_parts": round(self.cycle_service_level / n, 4),
            "cycles": self.cycles,
            "zero_reorder_points": self.zero_reorder_points,
            "fill_rate": round(self.served / self.demand, 4) if self.demand > 0 else 1.0,
            "average_stock_per_series": round(self.average_stock / n, 4),
            "average_stock_total": round(self.average_stock, 1),
            "stockout_days": self.stockout_days,
            "orders": self.orders,
        }


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


def window_quantile(train: NDArray[np.float64], months: int, level: float) -> float:
    """The empirical `level`-quantile of the demand summed over every overlapping window of
    `months` months of one series' training history, from its first demand (the history a
    lake holds; empty cells left out)."""
    values = train[np.isfinite(train)]
    demand = np.flatnonzero(values > 0)
    if demand.size == 0:
        return 0.0
    values = values[demand[0] :]
    if values.size < months:
        return float(values.sum())
    sums = np.convolve(values, np.ones(months), mode="valid")
    return float(np.quantile(sums, level, method="inverted_cdf"))


def _interpolate_stock(curve: list[tuple[float, float]], service: float) -> float | None:
    """The least average stock at which classic reaches `service`, interpolated between the
    efficient points of its (service, stock) curve (a point is efficient when no point with
    less stock reaches more service); None outside the curve's range. Cycle service is not
    monotone in s point by point (a larger s also changes the number of cycles)."""
    efficient: list[tuple[float, float]] = []
    for service_level, stock in sorted(curve, key=lambda p: (p[1], -p[0])):
        if not efficient or service_level > efficient[-1][0]:
            efficient.append((service_level, stock))
    services = np.array([p[0] for p in efficient])
    stocks = np.array([p[1] for p in efficient])
    if not efficient or service < services[0] - 1e-9 or service > services[-1] + 1e-9:
        return None
    return float(np.interp(service, services, stocks))


def _classic_beyond(curve: list[tuple[float, float]], service: float) -> float | None:
    """When `service` is above every point of classic's curve: the stock of its best point
    (classic needs more than that to reach `service`, if it can at all); else None."""
    if not curve or service <= max(p[0] for p in curve) + 1e-9:
        return None
    best = max(curve, key=lambda p: (p[0], -p[1]))
    return best[1]


def order_quantity(
    policy: pd.DataFrame, item: str, mean_forecast: float, source: str = "policy"
) -> float:
    """Q of an item: with `source` "policy", the policy's own `order_quantity` when it has one
    (its reorder point is computed for that Q: the undershoot depends on S − s); otherwise, or
    with "forecast", max(1, mean monthly forecast)."""
    if source == "policy" and "order_quantity" in policy.columns:
        value = float(policy.at[item, "order_quantity"])
        if np.isfinite(value) and value > 0:
            return value
    return max(MIN_ORDER_QUANTITY, mean_forecast)


def simulate(
    split: Split,
    runs: Mapping[tuple[int, float], tuple[pd.DataFrame, pd.DataFrame]],
    *,
    seed: int,
    quantity_source: str = "policy",
) -> dict[str, Any]:
    """The inventory section. `runs[(lead_days, target)]` = (aligned item forecasts, policy)
    of the product run at that lead time and target (see the module docstring)."""
    began = time.perf_counter()
    observed = np.nansum(split.test, axis=1)
    with_demand = np.flatnonzero(observed > 0)
    demand = daily_demand(split, with_demand, seed)
    position = {int(r): k for k, r in enumerate(with_demand)}
    ids = np.asarray(split.ids, dtype=object)
    results = []
    frontier: dict[int, list[dict[str, float]]] = {}
    excluded: dict[str, int] = {}
    for (lead, level), (forecasts, policy_frame) in sorted(runs.items()):
        policy = policy_frame.set_index("item_code")
        means = forecasts.groupby("series_id")["mean"].mean()
        rows = [r for r in with_demand.tolist() if ids[r] in policy.index and ids[r] in means]
        excluded[f"{lead}d {level:.2f}"] = len(with_demand) - len(rows)
        totals = {p: _Totals() for p in POLICIES}
        quantities: list[float] = []
        windows = max(1, math.ceil(lead / PERIOD_DAYS))
        for row in rows:
            item = ids[row]
            q = order_quantity(policy, item, float(means[item]), quantity_source)
            quantities.append(q)
            points = {
                "ours": float(policy.at[item, "reorder_point"]),
                "classic": float(policy.at[item, "classic_reorder_point"]),
                "baseline": window_quantile(split.train[row], windows, level),
            }
            daily = demand[position[row]]
            for name, s in points.items():
                s = max(s, 0.0)
                totals[name].add(s, simulate_policy(daily, s, s + q, lead, s + q))
        entry: dict[str, Any] = {
            "lead_time_days": lead,
            "target_service_level": level,
            "series": len(rows),
            "mean_order_quantity": round(float(np.mean(quantities)), 4) if quantities else None,
            **{name: totals[name].as_dict() for name in POLICIES},
        }
        base = totals["classic"].average_stock
        entry["average_stock_ratio"] = (
            round(totals["ours"].average_stock / base, 4) if base else None
        )
        results.append(entry)
        if lead not in frontier and level == max(lv for ld, lv in runs if ld == lead):
            frontier[lead] = _classic_frontier(
                split, rows, policy, means, demand, position, lead, quantity_source
            )
    for entry in results:
        _judge(entry, frontier.get(entry["lead_time_days"], []))
    return {
        "series_with_holdout_demand": len(with_demand),
        "series_without_holdout_demand": len(split.ids) - len(with_demand),
        "left_out_without_policy": excluded,
        "holdout_demand": float(observed[with_demand].sum()),
        "days": int(demand.shape[1]),
        "first_day": split.test_months[0].date().isoformat(),
        "period_days": PERIOD_DAYS,
        "lead_times_days": sorted({lead for lead, _ in runs}),
        "service_levels": sorted({level for _, level in runs}),
        "order_quantity": "the policy's order_quantity (else max(1, mean monthly forecast)), "
        "the same for the three; S = s + Q"
        if quantity_source == "policy"
        else "max(1, mean monthly forecast over the 12 steps), the same for the three; S = s + Q",
        "order_quantity_source": quantity_source,
        "initial_stock": "S",
        "shortages": "backordered",
        "demand_spread": "each month's demand on one uniformly random day of the month",
        "baseline": "empirical P1-quantile (inverted_cdf) of the training history's demand "
        "(from the first demand) summed over every overlapping window of ceil(L/30) months",
        "seed": seed,
        "rows": results,
        "classic_frontier": {str(k): v for k, v in frontier.items()},
        "seconds": round(time.perf_counter() - began, 2),
    }


def _classic_frontier(
    split: Split,
    rows: list[int],
    policy: pd.DataFrame,
    means: pd.Series,
    demand: NDArray[np.float64],
    position: dict[int, int],
    lead: int,
    quantity_source: str,
) -> list[dict[str, float]]:
    """The classic formula replayed at every level of `FRONTIER_LEVELS` (same D, σ_x, Q)."""
    ids = split.ids
    curve = []
    for tau in FRONTIER_LEVELS:
        z_new = NormalDist().inv_cdf(tau)
        total = _Totals()
        for row in rows:
            item = ids[row]
            z = float(policy.at[item, "z"])
            safety = float(policy.at[item, "classic_safety_stock"])
            mean_ltd = float(policy.at[item, "classic_reorder_point"]) - safety
            spread = safety / z if z > 0 else 0.0
            s = max(0.0, mean_ltd + z_new * spread)
            q = order_quantity(policy, item, float(means[item]), quantity_source)
            total.add(s, simulate_policy(demand[position[row]], s, s + q, lead, s + q))
        result = total.as_dict()
        curve.append(
            {
                "level": tau,
                "cycle_service_level": result["cycle_service_level"],
                "fill_rate": result["fill_rate"],
                "average_stock_total": result["average_stock_total"],
            }
        )
    return curve


def _judge(entry: dict[str, Any], curve: list[dict[str, float]]) -> None:
    """PASS/MISS of ours against the target and against classic at the same service."""
    ours, classic = entry["ours"], entry["classic"]
    target = entry["target_service_level"]
    achieved = ours["cycle_service_level"]
    entry["target_status"] = "PASS" if abs(achieved - target) <= TARGET_TOLERANCE else "MISS"
    points = [(p["cycle_service_level"], p["average_stock_total"]) for p in curve]
    at_same = _interpolate_stock(points, achieved) if curve else None
    beyond = _classic_beyond(points, achieved)
    entry["classic_stock_at_ours_service"] = None if at_same is None else round(at_same, 1)
    # Ours above every classic point: classic needs more than its best point's stock there.
    entry["classic_stock_beyond_curve"] = None if beyond is None else round(beyond, 1)
    entry["classic_best_service"] = max((p[0] for p in points), default=None)
    if at_same is None:
        passed = beyond is not None and ours["average_stock_total"] <= beyond
        entry["stock_status"] = "PASS" if passed else "n/a"
    else:
        entry["stock_status"] = "PASS" if ours["average_stock_total"] <= at_same else "MISS"
    entry["trade_off"] = {
        "ours_minus_classic_service": round(achieved - classic["cycle_service_level"], 4),
        "ours_over_classic_stock": entry["average_stock_ratio"],
        "ours_over_classic_stock_at_same_service": None
        if not at_same
        else round(ours["average_stock_total"] / at_same, 4),
        # ours above classic's whole curve: ours' stock / the stock of classic's best point
        "ours_over_classic_best_stock": None
        if not beyond
        else round(ours["average_stock_total"] / beyond, 4),
    }


def render(section: dict[str, Any]) -> list[str]:
    """The inventory table: ours, classic and the baseline for each lead time and target."""
    lines = [
        f"inventory simulation over the held-out year ({section['days']} days from "
        f"{section['first_day']}), {section['series_with_holdout_demand']:,} series with "
        "hold-out demand; product path run per lead time (fixed lead-time rows) and target:",
        "  (s, S) replayed daily by simulate_policy, fixed lead time, start at S, backorders;",
        "  S = s + Q, Q = "
        + (
            "the policy's order_quantity"
            if section.get("order_quantity_source", "policy") == "policy"
            else "max(1, mean monthly forecast)"
        )
        + " for all three;",
        "  each month's demand on one random day of the month.",
        "  ours = inventory_policy.reorder_point; classic = classic_reorder_point (normal);",
        "  baseline = empirical P1-quantile of training demand over every overlapping",
        "  lead-time window. Cycle SL: share of all replenishment cycles (every part) without a",
        "  stockout day; fill rate: pooled; stock: summed over parts.",
    ]
    header = (
        f"{'lead':>4} {'target':>6} {'series':>6} | {'cycle service level':^23} | "
        f"{'fill rate':^23} | {'average stock (total)':^26} | {'stockout days':^23}"
    )
    sub = (
        f"{'':>4} {'':>6} {'':>6} | "
        + " | ".join([f"{'ours':>7}{'classic':>8}{'base':>8}"] * 2)
        + f" | {'ours':>8}{'classic':>9}{'base':>9} | {'ours':>7}{'classic':>8}{'base':>8}"
    )
    lines += [header, sub, "-" * len(header)]
    for row in section["rows"]:
        o, c, b = (row[p] for p in POLICIES)
        lines.append(
            f"{row['lead_time_days']:>3}d {row['target_service_level']:>6.2f} "
            f"{row['series']:>6,} | "
            f"{o['cycle_service_level']:>7.3f}{c['cycle_service_level']:>8.3f}"
            f"{b['cycle_service_level']:>8.3f} | "
            f"{o['fill_rate']:>7.3f}{c['fill_rate']:>8.3f}{b['fill_rate']:>8.3f} | "
            f"{o['average_stock_total']:>8,.0f}{c['average_stock_total']:>9,.0f}"
            f"{b['average_stock_total']:>9,.0f} | "
            f"{o['stockout_days']:>7,}{c['stockout_days']:>8,}{b['stockout_days']:>8,}"
        )
    lines.append("")
    means = ", ".join(
        f"{r['lead_time_days']}d {r['target_service_level']:.2f}: "
        + "/".join(f"{r[p]['cycle_service_level_mean_over_parts']:.3f}" for p in POLICIES)
        for r in section["rows"]
    )
    lines.append(f"  cycle SL as the mean of each part's share (ours/classic/baseline): {means}")
    zeros = ", ".join(
        f"{r['lead_time_days']}d {r['target_service_level']:.2f}: "
        + "/".join(str(r[p].get("zero_reorder_points", "n/a")) for p in POLICIES)
        for r in section["rows"]
    )
    lines.append(f"  parts with s = 0 (ours/classic/baseline): {zeros}")
    for row in section["rows"]:
        o = row["ours"]
        same = row["classic_stock_at_ours_service"]
        beyond = row.get("classic_stock_beyond_curve")
        same_text = (
            f"classic reaches at most {row['classic_best_service']:.3f} (with {beyond:,.0f})"
            if same is None and beyond is not None
            else "outside the classic curve's range"
            if same is None
            else f"classic needs {same:,.0f} at that service (ours/classic "
            f"{row['trade_off']['ours_over_classic_stock_at_same_service']:.3f})"
        )
        lines.append(
            f"  {row['lead_time_days']}d {row['target_service_level']:.2f}: ours cycle SL "
            f"{o['cycle_service_level']:.3f} within ±{TARGET_TOLERANCE} of the target "
            f"{row['target_status']}; ours stock {o['average_stock_total']:,.0f}, {same_text}: "
            f"stock <= classic at the same service {row['stock_status']}"
        )
        if row["target_status"] != "PASS" or row["stock_status"] != "PASS":
            t = row["trade_off"]
            ratio = t["ours_over_classic_stock"]
            lines.append(
                f"      trade-off at the same target: ours {t['ours_minus_classic_service']:+.3f}"
                f" cycle SL vs classic for "
                + ("n/a" if ratio is None else f"{(ratio - 1) * 100:+.1f}%")
                + " stock"
            )
    for lead, curve in section["classic_frontier"].items():
        points = ", ".join(
            f"z {NormalDist().inv_cdf(p['level']):.2f}->{p['cycle_service_level']:.3f}/"
            f"{p['average_stock_total']:,.0f}"
            for p in curve
        )
        lines.append(f"  classic curve {lead}d (z -> cycle SL/stock): {points}")
    lines.append(f"  ({section['seconds']:.1f} s of simulation)")
    return lines
