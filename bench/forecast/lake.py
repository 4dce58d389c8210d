"""A throw-away lake holding the gold a forecast run reads, built from a monthly panel.

What the transformer would leave after a build of an ERP export covering the panel:

- `gold.fact_demand` (the transformer's gold schema): one row per series and month with demand,
  item_code = the series id, one depot (`SITE`), dated on the **last day of the month**. Not the
  1st or the 15th: the forecaster takes an export whose last date falls inside a bucket as a
  partial last bucket (issue 12), and a panel dated mid-month would end on a half month. The
  monthly sums, all the forecaster buckets, do not depend on the day.
- `gold.fact_lead_time` (its gold schema), when a lead time is given: `LEAD_TIME_ROWS` request
  lines per item, all with the same lead time, so the policy uses each item's own (fixed) lead
  time (it takes an item's own samples from 3 on).
- no `gold.fact_stock` (the panel has none), no dimensions.
- one `gold.builds` row naming the versions written, in the transformer's format (the commit
  metadata carries the build id; `tests/api/conftest.py::record_build` writes the same row).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from services.transformer.transforms import GOLD
from shared.manifests import GOLD_BUILDS
from shared.settings import StorageSettings
from shared.storage import Lake

SITE = "D01"
LEAD_TIME_ROWS = 3


def _month_ends(periods: pd.Series) -> pd.Series:
    return (pd.to_datetime(periods) + pd.offsets.MonthEnd(0)).dt.date


def _table(columns: dict[str, object], name: str) -> pa.Table:
    schema = GOLD[name].schema
    missing = [f.name for f in schema if f.name not in columns]
    count = len(next(iter(columns.values())))  # type: ignore[arg-type]
    return pa.table(
        {
            f.name: pa.array(columns[f.name] if f.name not in missing else [None] * count, f.type)
            for f in schema
        }
    )


def demand_table(history: pd.DataFrame) -> pa.Table:
    """gold.fact_demand rows of a long monthly panel (series_id, period = month start, y)."""
    rows = history[history["y"] > 0]
    months = pd.to_datetime(rows["period"])
    return _table(
        {
            "demand_date": _month_ends(months).tolist(),
            "item_code": rows["series_id"].astype(str).tolist(),
            "site_code": [SITE] * len(rows),
            "quantity": rows["y"].astype(float).tolist(),
            "request_lines": np.ones(len(rows), dtype=np.int32),
            "requests": np.ones(len(rows), dtype=np.int32),
            "business_month": months.dt.date.tolist(),
        },
        "fact_demand",
    )


def lead_time_table(items: list[str], lead_time_days: int, first_day: pd.Timestamp) -> pa.Table:
    """`LEAD_TIME_ROWS` request lines per item, each bought `lead_time_days` after its request."""
    n = len(items)
    requested = [
        (first_day + pd.DateOffset(months=k)).date()
        for _ in range(n)
        for k in range(LEAD_TIME_ROWS)
    ]
    purchased = [d + timedelta(days=lead_time_days) for d in requested]
    return _table(
        {
            "item_code": [i for i in items for _ in range(LEAD_TIME_ROWS)],
            "site_code": [SITE] * (n * LEAD_TIME_ROWS),
            "supplier_name": ["BENCH SUPPLIER"] * (n * LEAD_TIME_ROWS),
            "request_number": [f"R{k:08d}" for k in range(n * LEAD_TIME_ROWS)],
            "line_number": np.ones(n * LEAD_TIME_ROWS, dtype=np.int32),
            "requested_date": requested,
            "purchased_date": purchased,
            "lead_time_days": np.full(n * LEAD_TIME_ROWS, lead_time_days, dtype=np.int32),
            "quantity": np.ones(n * LEAD_TIME_ROWS),
            "business_month": [d.replace(day=1) for d in requested],
        },
        "fact_lead_time",
    )


def gold_lake(
    root: Path,
    history: pd.DataFrame | None,
    lead_time_days: int | None,
    *,
    demand: pa.Table | None = None,
) -> Lake:
    """A local lake at `root` with the gold of `history` (or the given gold.fact_demand rows)
    and its build row (see the module)."""
    lake = Lake.from_settings(StorageSettings(backend="local", local_root=root))
    build_id = uuid.uuid4().hex
    metadata = {"build_id": build_id, "correlation_id": build_id, "source": "bench.forecast"}
    if demand is None:
        assert history is not None
        demand = demand_table(history)
    versions = {
        "fact_demand": lake.write_delta(
            "gold", "fact_demand", demand, mode="overwrite", metadata=metadata
        ).version
    }
    if lead_time_days is not None:
        items = sorted(set(demand.column("item_code").to_pylist()))
        first = pd.Timestamp(pc.min(demand.column("demand_date")).as_py())
        versions["fact_lead_time"] = lake.write_delta(
            "gold",
            "fact_lead_time",
            lead_time_table(items, lead_time_days, first),
            mode="overwrite",
            metadata=metadata,
        ).version
    row = pa.table(
        {
            "build_id": [build_id],
            "finished_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
            "table_versions": [json.dumps(versions, sort_keys=True)],
        }
    )
    lake.write_delta("gold", GOLD_BUILDS, row, mode="append", metadata=metadata)
    return lake
