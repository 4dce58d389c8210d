"""Demand history as regular, zero-filled buckets: what the forecasting models expect.

Pure functions over Arrow/pandas; the runner reads `gold.fact_demand` and hands it here.
"""

from __future__ import annotations

from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

Bucket = Literal["week", "month"]
FREQ = {"week": "W-MON", "month": "MS"}
SEASON_LENGTH = {"week": 52, "month": 12}
PERIOD_DAYS = {"week": 7, "month": 30}


def bucket_history(
    fact_demand: pa.Table,
    *,
    bucket: Bucket,
    by_site: bool = False,
    items: list[str] | None = None,
    min_nonzero_periods: int = 1,
) -> pd.DataFrame:
    """Long frame (series_id, item_code, site_code, period, y): one row per series and bucket,
    zero-filled from the series' first demand to the last bucket of all data, so that every
    series ends at the same forecast origin.

    Each bucket's quantities are summed in ascending order, so y is a function of the rows and
    not of their order: gold promises no row order (two builds of the same data differ), and a
    float sum in another order can differ in its last bits, which the models then compare
    (selection ties) and bin (the Pooled model's level edges).
    """
    trunc = "week" if bucket == "week" else "month"
    site = "site_code" if by_site else "'ALL'"
    item_filter = ""
    params: list[object] = []
    if items:
        item_filter = "WHERE item_code IN (SELECT unnest(?))"
        params.append(items)
    with duckdb.connect(":memory:") as con:
        con.register("fact_demand", fact_demand)
        frame = con.execute(
            f"""
            WITH bucketed AS (
                SELECT item_code, {site} AS site_code,
                       CAST(date_trunc('{trunc}', demand_date) AS DATE) AS period,
                       sum(quantity ORDER BY quantity) AS y
                FROM fact_demand {item_filter}
                GROUP BY ALL
            ),
            spans AS (
                SELECT item_code, site_code, min(period) AS first_period, count(*) AS nonzero
                FROM bucketed GROUP BY ALL
            ),
            last AS (SELECT max(period) AS last_period FROM bucketed),
            grid AS (
                SELECT s.item_code, s.site_code, CAST(p AS DATE) AS period
                FROM spans AS s, last,
                     range(s.first_period, last.last_period + INTERVAL 1 DAY,
                           INTERVAL 1 {trunc}) AS t(p)
                WHERE s.nonzero >= {int(min_nonzero_periods)}
            )
            SELECT g.item_code || CASE WHEN g.site_code = 'ALL' THEN '' ELSE '|' || g.site_code END
                       AS series_id,
                   g.item_code, g.site_code, g.period, coalesce(b.y, 0.0) AS y
            FROM grid AS g
            LEFT JOIN bucketed AS b USING (item_code, site_code, period)
            ORDER BY series_id, period
            """,
            params,
        ).df()
    frame["period"] = pd.to_datetime(frame["period"])
    return frame
