"""Demand history as regular, zero-filled buckets: what the forecasting models expect.

Pure functions over Arrow/pandas; the runner reads `gold.fact_demand` and hands it here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

Bucket = Literal["week", "month"]
FREQ = {"week": "W-MON", "month": "MS"}
SEASON_LENGTH = {"week": 52, "month": 12}
PERIOD_DAYS = {"week": 7, "month": 30}


ALL_SITES = "ALL"  # site_code of the item-level series (every site together)


def bucket_start(day: date, bucket: Bucket) -> date:
    """First day of the bucket holding `day` (weeks start on Monday, like DuckDB's)."""
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_bucket(start: date, bucket: Bucket) -> date:
    if bucket == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def whole_bucket_origin(last_day: date, bucket: Bucket) -> tuple[date, date | None]:
    """(last whole bucket, the partial bucket left out or None) for data ending on `last_day`.

    An export that ends mid-month holds part of that month's demand; fitted as a whole bucket
    it would read as a drop in demand right at the forecast origin. The bucket counts as whole
    when the data reaches its last working day (Monday to Friday): requisitions are booked on
    working days, so an export taken on a Saturday is complete for its week. Otherwise the
    bucket is left out of fitting and forecasting starts with it (its forecast is for the whole
    bucket); the next run, on data that reaches its end, includes it.
    """
    start = bucket_start(last_day, bucket)
    last_working = _next_bucket(start, bucket) - timedelta(days=1)
    while last_working.weekday() >= 5:
        last_working -= timedelta(days=1)
    if last_day >= last_working:
        return start, None
    previous = bucket_start(start - timedelta(days=1), bucket)
    return previous, start


def bucket_history(
    fact_demand: pa.Table,
    *,
    bucket: Bucket,
    by_site: bool = False,
    items: list[str] | None = None,
    min_nonzero_periods: int = 1,
    last_period: date | None = None,
) -> pd.DataFrame:
    """Long frame (series_id, item_code, site_code, period, y): one row per series and bucket,
    zero-filled from the series' first demand to the last bucket (`last_period`, default the
    last bucket of all data; later demand is left out), so that every series ends at the same
    forecast origin. Series without demand up to `last_period` are left out.

    `by_site`: one series per item and site, for items requested at two sites or more only: an
    item with a single site would get a site series identical to its item series.

    Each bucket's quantities are summed in ascending order, so y is a function of the rows and
    not of their order: gold promises no row order (two builds of the same data differ), and a
    float sum in another order can differ in its last bits, which the models then compare
    (selection ties) and bin (the Pooled model's level edges).
    """
    trunc = "week" if bucket == "week" else "month"
    site = "site_code" if by_site else f"'{ALL_SITES}'"
    conditions = []
    params: list[object] = []
    if items:
        conditions.append("item_code IN (SELECT unnest(?))")
        params.append(items)
    if last_period is not None:
        conditions.append(f"CAST(date_trunc('{trunc}', demand_date) AS DATE) <= ?")
        params.append(last_period)
    if by_site:
        conditions.append(
            "item_code IN (SELECT item_code FROM fact_demand GROUP BY item_code "
            "HAVING count(DISTINCT site_code) > 1)"
        )
    item_filter = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    last_sql = "(SELECT max(period) FROM bucketed)"
    if last_period is not None:
        last_sql = "CAST(? AS DATE)"
        params.append(last_period)
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
            last AS (SELECT {last_sql} AS last_period),
            grid AS (
                SELECT s.item_code, s.site_code, CAST(p AS DATE) AS period
                FROM spans AS s, last,
                     range(s.first_period, last.last_period + INTERVAL 1 DAY,
                           INTERVAL 1 {trunc}) AS t(p)
                WHERE s.nonzero >= {int(min_nonzero_periods)}
            )
            SELECT g.item_code
                       || CASE WHEN g.site_code = '{ALL_SITES}' THEN '' ELSE '|' || g.site_code END
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
