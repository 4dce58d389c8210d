"""`gold.inventory_policy`: one row per material, from its history, forecast, lead times, stock.

The adapter between the tables the forecaster read (once, at one gold build) and the pure
formulas of `policy.py`. No I/O: the runner passes `fact_lead_time` and `fact_stock` as it read
them, and writes what `inventory_policy_table` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from services.forecaster.policy import (
    classic_safety_stock,
    empirical_window_reorder_point,
    forecast_moments,
    lead_time_distribution,
    reorder_point,
    reorder_point_classic,
    stock_alert,
    z_for_service_level,
)

POLICY_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("item_code", pa.string()),
        pa.field("service_level", pa.float64()),
        pa.field("z", pa.float64()),
        pa.field("lead_time_mean_days", pa.float64()),
        pa.field("lead_time_std_days", pa.float64()),
        pa.field("lead_time_source", pa.string()),
        pa.field("lead_time_samples", pa.int64()),
        pa.field("mean_daily_demand", pa.float64()),
        pa.field("mean_lead_time_demand", pa.float64()),
        pa.field("reorder_point", pa.float64()),
        pa.field("safety_stock", pa.float64()),
        pa.field("classic_safety_stock", pa.float64()),
        pa.field("classic_reorder_point", pa.float64()),
        pa.field("snapshot_date", pa.date32()),
        pa.field("on_hand", pa.float64()),
        pa.field("days_of_cover", pa.float64()),
        pa.field("alert_level", pa.string()),
        # How s was derived (see `policy.reorder_point`): "demand_history", "thin_history"
        # (fewer than 12 periods or 3 periods with demand), "forecast_only", "no_demand".
        pa.field("method", pa.string()),
        pa.field("evidence_periods", pa.int64()),
        pa.field("evidence_demand_periods", pa.int64()),
        # "history" (the part's own periods, level moved by the forecast when level_ratio ≠ 1)
        # or "forecast" (no history: the forecast's quantiles).
        pa.field("lead_time_demand_source", pa.string()),
        pa.field("level_ratio", pa.float64()),
        pa.field("undershoot_mean", pa.float64()),
        pa.field("order_quantity", pa.float64()),
        pa.field("order_up_to", pa.float64()),
        pa.field("empirical_window_reorder_point", pa.float64()),
        # The model's P(U + x_L ≤ s) for the printed s: the cycle service level this part's
        # reorder point promises. ≥ service_level, except where whole units leave the nearest
        # reachable level up to `ROUNDING_TOLERANCE` below it; above it where whole units or
        # the floor at the smallest lump give more (≈ 1: the target is not reachable any lower
        # in whole units). Null for "no_demand".
        pa.field("expected_service_level", pa.float64()),
    ]
)


DEFAULT_LEAD_TIME_DAYS = 7.0


def _lead_time_samples(
    lead_times: pa.Table | None,
) -> tuple[dict[str, list[float]], float, float]:
    """Per item its lead-time samples, and the company-wide median and std as the fallback."""
    if lead_times is None or lead_times.num_rows == 0:
        return {}, DEFAULT_LEAD_TIME_DAYS, 0.0
    frame = lead_times.select(["item_code", "lead_time_days"]).to_pandas()
    frame["lead_time_days"] = pd.to_numeric(frame["lead_time_days"], errors="coerce")
    frame = frame[frame["lead_time_days"].notna() & (frame["lead_time_days"] >= 0)]
    if frame.empty:
        return {}, DEFAULT_LEAD_TIME_DAYS, 0.0
    # Gold promises no row order (two builds of the same data differ): sorted, the samples and
    # the float sums of the spread are the same for the same rows.
    frame = frame.sort_values(["item_code", "lead_time_days"], ignore_index=True)
    by_item = frame.groupby("item_code")["lead_time_days"].apply(lambda s: s.astype(float).tolist())
    # Items bought too rarely to have their own lead time get the company-wide one.
    spread = float(frame["lead_time_days"].std())  # NaN with a single line
    median = float(frame["lead_time_days"].median())
    return by_item.to_dict(), median, spread if np.isfinite(spread) else 0.0


def _latest_stock(stock: pa.Table | None) -> pd.DataFrame:
    empty = pd.DataFrame(columns=["item_code", "snapshot_date", "on_hand"]).set_index("item_code")
    if stock is None or stock.num_rows == 0:
        return empty
    frame = stock.select(["snapshot_date", "item_code", "quantity_on_hand"]).to_pandas()
    frame = frame[frame["snapshot_date"].notna()]
    if frame.empty:
        return empty
    latest = frame[frame["snapshot_date"] == frame["snapshot_date"].max()]
    # Summed in a fixed order, so on-hand does not depend on the order of the rows read; an
    # item whose every line is null has no known on-hand (null, not 0).
    latest = latest.sort_values(["item_code", "quantity_on_hand"], ignore_index=True)
    grouped = latest.groupby(["item_code", "snapshot_date"], as_index=False)["quantity_on_hand"]
    summed = grouped.sum(min_count=1).rename(columns={"quantity_on_hand": "on_hand"})
    return summed.set_index("item_code")


def _histories(history: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per item its y in period order (rows in any order give the same arrays)."""
    if history is None or history.empty:
        return {}
    frame = history[["item_code", "period", "y"]].copy()
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce").fillna(0.0)
    # Several rows of one item and period (e.g. site rows passed by mistake) are summed.
    frame = frame.groupby(["item_code", "period"], as_index=False, sort=True)["y"].sum()
    return {
        str(item): group["y"].to_numpy(dtype=float)
        for item, group in frame.groupby("item_code", sort=True)
    }


def inventory_policy_table(
    forecasts: pa.Table,
    history: pd.DataFrame,
    lead_times: pa.Table | None,
    stock: pa.Table | None,
    *,
    run_id: str,
    service_level: float,
    period_days: int,
    quantiles: Sequence[float],
) -> pa.Table:
    """One policy row per item with an item-level forecast (site_code null) in `forecasts`.

    `history`: item-level bucketed demand (item_code, period, y), zero-filled from the item's
    first demand to the forecast origin, partial last bucket removed. `lead_times`:
    `gold.fact_lead_time` (item_code, lead_time_days) or None; `stock`: `gold.fact_stock`
    (snapshot_date, item_code, quantity_on_hand) or None — both as the run read them.

    The reorder point is `policy.reorder_point` (see the module docstring of `policy.py` for
    what the service level promises); the classic normal formula and the empirical-window
    baseline are kept beside it for comparison. Same rows in any order → the same table.
    """
    from services.forecaster.runner import forecast_column

    columns = [forecast_column(q) for q in quantiles]
    frame = forecasts.to_pandas()
    frame = frame[frame["site_code"].isna()].sort_values(["item_code", "step"], kind="stable")
    histories = _histories(history)
    samples, fallback_days, fallback_std = _lead_time_samples(lead_times)
    on_hand_by_item = _latest_stock(stock)
    z = z_for_service_level(service_level)
    rows = []
    for item_code, item_rows in frame.groupby("item_code", sort=True):
        matrix = item_rows[columns].to_numpy(dtype=float)
        lead_time = lead_time_distribution(
            samples.get(item_code, []), fallback_days=fallback_days, fallback_std_days=fallback_std
        )
        # The forecast over the periods a mean lead time covers (at least one; the last period
        # repeated past the horizon): its mean level and, for the classic formula, its spread.
        window = max(1, math.ceil(lead_time.mean_days / period_days))
        steps = np.minimum(np.arange(window), matrix.shape[0] - 1)
        means, variances = forecast_moments(matrix[steps], quantiles)
        if "mean" in item_rows and item_rows["mean"].notna().all():
            means = item_rows["mean"].to_numpy(dtype=float)[steps]
        level = float(np.mean(np.maximum(means, 0.0)))
        y = histories.get(item_code, np.zeros(0))
        policy = reorder_point(
            y,
            lead_time,
            service_level,
            period_days,
            forecast_mean_per_period=level,
            forecast=(matrix, quantiles),
        )
        mean_daily = level / period_days
        sigma_daily = math.sqrt(float(np.mean(variances)) / period_days)
        classic_ss = classic_safety_stock(
            z,
            sigma_daily,
            lead_time.mean_days,
            sigma_lt_days=lead_time.std_days,
            mean_daily=mean_daily,
        )
        mean_ltd = mean_daily * lead_time.mean_days
        snapshot_date, on_hand, cover, alert = None, None, None, None
        if item_code in on_hand_by_item.index:
            snapshot_date = on_hand_by_item.at[item_code, "snapshot_date"]
            value = on_hand_by_item.at[item_code, "on_hand"]
            if pd.notna(value):
                on_hand = float(value)
                cover, alert = stock_alert(
                    on_hand, policy.reorder_point, mean_daily, lead_time.mean_days
                )
        rows.append(
            {
                "run_id": run_id,
                "item_code": item_code,
                "service_level": service_level,
                "z": z,
                "lead_time_mean_days": lead_time.mean_days,
                "lead_time_std_days": lead_time.std_days,
                "lead_time_source": str(lead_time.source),
                "lead_time_samples": lead_time.n_samples,
                "mean_daily_demand": mean_daily,
                "mean_lead_time_demand": mean_ltd,
                "reorder_point": policy.reorder_point,
                "safety_stock": max(0.0, policy.reorder_point - mean_ltd),
                "classic_safety_stock": classic_ss,
                "classic_reorder_point": reorder_point_classic(
                    mean_daily, lead_time.mean_days, classic_ss
                ),
                "snapshot_date": snapshot_date,
                "on_hand": on_hand,
                "days_of_cover": None if cover is None or not np.isfinite(cover) else cover,
                "alert_level": alert,
                "method": policy.method,
                "evidence_periods": policy.evidence_periods,
                "evidence_demand_periods": policy.evidence_demand_periods,
                "lead_time_demand_source": "forecast"
                if policy.method == "forecast_only"
                else "history",
                "level_ratio": policy.level_ratio,
                "undershoot_mean": policy.undershoot_mean,
                "order_quantity": policy.order_quantity,
                "order_up_to": policy.order_up_to,
                "empirical_window_reorder_point": empirical_window_reorder_point(
                    y, lead_time.mean_days / period_days, service_level
                )
                if y.size
                else None,
                "expected_service_level": policy.expected_service_level
                if math.isfinite(policy.expected_service_level)
                else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=POLICY_SCHEMA)
