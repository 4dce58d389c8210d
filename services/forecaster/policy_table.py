"""`gold.inventory_policy`: one row per material, from its forecast, its lead times and stock.

The adapter between the lake and the pure formulas of `policy.py`: reads `fact_lead_time` and
the latest `fact_stock` snapshot, and turns each item's forecast quantiles into a reorder point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from services.forecaster.policy import lead_time_distribution, policy_for_item, stock_alert
from shared.storage import Lake

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
    ]
)


def _seed(item_code: str) -> int:
    """Stable per item: the same forecast gives the same reorder point on every run."""
    return int.from_bytes(hashlib.sha256(item_code.encode()).digest()[:4], "big")


def _lead_time_samples(lake: Lake) -> tuple[dict[str, list[float]], float, float]:
    table = lake.delta_table("gold", "fact_lead_time")
    if table is None:
        return {}, 7.0, 0.0
    frame = table.to_pyarrow_table(columns=["item_code", "lead_time_days"]).to_pandas()
    frame = frame[frame["lead_time_days"].notna() & (frame["lead_time_days"] >= 0)]
    if frame.empty:
        return {}, 7.0, 0.0
    # Gold promises no row order (two builds of the same data differ): sorted, the samples and
    # the float sums of the spread are the same for the same rows.
    frame = frame.sort_values(["item_code", "lead_time_days"], ignore_index=True)
    by_item = frame.groupby("item_code")["lead_time_days"].apply(lambda s: s.astype(float).tolist())
    # Items bought too rarely to have their own lead time get the company-wide one.
    spread = float(frame["lead_time_days"].std())  # NaN with a single line
    median = float(frame["lead_time_days"].median())
    return by_item.to_dict(), median, spread if np.isfinite(spread) else 0.0


def _latest_stock(lake: Lake) -> pd.DataFrame:
    table = lake.delta_table("gold", "fact_stock")
    if table is None:
        return pd.DataFrame(columns=["item_code", "snapshot_date", "on_hand"])
    frame = table.to_pyarrow_table(
        columns=["snapshot_date", "item_code", "quantity_on_hand"]
    ).to_pandas()
    if frame.empty:
        return pd.DataFrame(columns=["item_code", "snapshot_date", "on_hand"])
    latest = frame[frame["snapshot_date"] == frame["snapshot_date"].max()]
    # Summed in a fixed order, so on-hand does not depend on the order of the rows read.
    latest = latest.sort_values(["item_code", "quantity_on_hand"], ignore_index=True)
    return (
        latest.groupby(["item_code", "snapshot_date"], as_index=False)["quantity_on_hand"]
        .sum()
        .rename(columns={"quantity_on_hand": "on_hand"})
    )


def inventory_policy_table(
    lake: Lake,
    forecasts: pa.Table,
    *,
    run_id: str,
    service_level: float,
    period_days: int,
    quantiles: Sequence[float],
) -> pa.Table:
    from services.forecaster.runner import forecast_column

    columns = [forecast_column(q) for q in quantiles]
    frame = forecasts.to_pandas()
    frame = frame[frame["site_code"].isna()].sort_values(["item_code", "step"])
    samples, fallback_days, fallback_std = _lead_time_samples(lake)
    stock = _latest_stock(lake).set_index("item_code")
    rows = []
    for item_code, item_rows in frame.groupby("item_code", sort=True):
        matrix = item_rows[columns].to_numpy(dtype=float)
        lead_time = lead_time_distribution(
            samples.get(item_code, []), fallback_days=fallback_days, fallback_std_days=fallback_std
        )
        policy = policy_for_item(
            item_code,
            matrix,
            quantiles,
            period_days,
            lead_time,
            service_level,
            seed=_seed(item_code),
        )
        snapshot_date, on_hand, cover, level = None, None, None, None
        if item_code in stock.index:
            snapshot_date = stock.at[item_code, "snapshot_date"]
            on_hand = float(stock.at[item_code, "on_hand"])
            cover, level = stock_alert(
                on_hand, policy.reorder_point, policy.mean_daily_demand, lead_time.mean_days
            )
        rows.append(
            {
                "run_id": run_id,
                "item_code": item_code,
                "service_level": service_level,
                "z": policy.z,
                "lead_time_mean_days": policy.lead_time_mean_days,
                "lead_time_std_days": policy.lead_time_std_days,
                "lead_time_source": str(policy.lead_time_source),
                "lead_time_samples": policy.lead_time_samples,
                "mean_daily_demand": policy.mean_daily_demand,
                "mean_lead_time_demand": policy.mean_lead_time_demand,
                "reorder_point": policy.reorder_point,
                "safety_stock": policy.safety_stock,
                "classic_safety_stock": policy.classic_safety_stock,
                "classic_reorder_point": policy.classic_reorder_point,
                "snapshot_date": snapshot_date,
                "on_hand": on_hand,
                "days_of_cover": None if cover is None or not np.isfinite(cover) else cover,
                "alert_level": level,
            }
        )
    return pa.Table.from_pylist(rows, schema=POLICY_SCHEMA)
