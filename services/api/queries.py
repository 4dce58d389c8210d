"""What each endpoint computes, as functions of Arrow tables (no HTTP, no storage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

QUANTILE_COLUMNS = ("p10", "p20", "p30", "p40", "p50", "p60", "p70", "p80", "p90")


class BadQuery(ValueError):
    """Parameters that are well-formed but make no sense together (from > to, ...)."""


def search(table: pa.Table, text: str | None, columns: Sequence[str]) -> pa.Table:
    """Rows where any of `columns` contains `text`, ignoring case."""
    if not text:
        return table
    needle = text.upper()
    mask = None
    for column in columns:
        hit = pc.fill_null(pc.match_substring(pc.utf8_upper(table[column]), needle), False)
        mask = hit if mask is None else pc.or_(mask, hit)
    return table.filter(mask)


def equals(table: pa.Table, column: str, value: str | None, *, upper: bool = False) -> pa.Table:
    if value is None or value == "":
        return table
    if upper:
        return table.filter(pc.equal(pc.utf8_upper(table[column]), value.upper()))
    return table.filter(pc.equal(table[column], value))


def sort(table: pa.Table, sort_by: str, tie_break: str) -> pa.Table:
    """`sort_by` is a column, descending with a leading '-'; ties keep a stable order."""
    column = sort_by.lstrip("-")
    order = "descending" if sort_by.startswith("-") else "ascending"
    keys = [(column, order)]
    if column != tie_break:
        keys.append((tie_break, "ascending"))
    return table.sort_by(keys) if table.num_rows else table


def rows(table: pa.Table, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    if limit is not None:
        table = table.slice(offset, limit)
    return table.to_pylist()


def period_start(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def next_period(day: date, grain: str) -> date:
    if grain == "week":
        return day + timedelta(days=7)
    if grain == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def check_range(date_from: date | None, date_to: date | None, max_days: int) -> None:
    if date_from is not None and date_to is not None:
        if date_from > date_to:
            raise BadQuery(f"from ({date_from}) is after to ({date_to})")
        if (date_to - date_from).days > max_days:
            raise BadQuery(f"from..to spans more than {max_days} days")


DEMAND_SCHEMA = pa.schema(
    [
        ("period", pa.date32()),
        ("quantity", pa.float64()),
        ("request_lines", pa.int64()),
        ("requests", pa.int64()),
    ]
)


def demand_history(
    demand: pa.Table,
    *,
    site: str | None,
    date_from: date | None,
    date_to: date | None,
    grain: str,
    max_days: int,
) -> pa.Table:
    """Demand per period, every period from `date_from` (or the first demand) to `date_to`
    (or the last) present, periods without demand as 0."""
    if site:
        demand = demand.filter(pc.equal(demand["site_code"], site))
    if date_from is not None:
        demand = demand.filter(pc.greater_equal(demand["demand_date"], date_from))
    if date_to is not None:
        demand = demand.filter(pc.less_equal(demand["demand_date"], date_to))
    days = demand["demand_date"]
    if demand.num_rows == 0 and (date_from is None or date_to is None):
        return DEMAND_SCHEMA.empty_table()
    first = date_from or pc.min(days).as_py()
    last = date_to or pc.max(days).as_py()
    if (last - first).days > max_days:
        # Without explicit bounds the history itself decides the range; cap it at the newest.
        first = last - timedelta(days=max_days)
        demand = demand.filter(pc.greater_equal(demand["demand_date"], first))
    if grain == "day":
        periods = demand["demand_date"]
    else:
        unit = "week" if grain == "week" else "month"
        # Arrow weeks start on Monday like ISO weeks (week_starts_monday is the default).
        periods = pc.cast(pc.floor_temporal(demand["demand_date"], unit=unit), pa.date32())
    grouped = (
        pa.table(
            {
                "period": periods,
                "quantity": demand["quantity"],
                "request_lines": pc.cast(demand["request_lines"], pa.int64()),
                "requests": pc.cast(demand["requests"], pa.int64()),
            }
        )
        .group_by("period")
        .aggregate([("quantity", "sum"), ("request_lines", "sum"), ("requests", "sum")])
    )
    sums = {
        row["period"]: row
        for row in grouped.rename_columns(
            ["period", "quantity", "request_lines", "requests"]
        ).to_pylist()
    }
    # Sums of the requests column double-count a request spanning two days; the SQL fact has
    # one row per day, so this is the number of request-days, documented as requests.
    out: dict[str, list[Any]] = {name: [] for name in DEMAND_SCHEMA.names}
    period = period_start(first, grain)
    end = period_start(last, grain)
    while period <= end:
        row = sums.get(period)
        out["period"].append(period)
        out["quantity"].append(float(row["quantity"]) if row else 0.0)
        out["request_lines"].append(int(row["request_lines"]) if row else 0)
        out["requests"].append(int(row["requests"]) if row else 0)
        period = next_period(period, grain)
    return pa.table(out, schema=DEMAND_SCHEMA)


def _period_sums(demand: pa.Table, grain: str, by_site: bool) -> dict[Any, dict[date, list[Any]]]:
    """{site: {period: [quantity, request_lines, requests]}}; site None when not `by_site`."""
    if demand.num_rows == 0:
        return {}
    keys = ["site_code", "period"] if by_site else ["period"]
    columns: dict[str, Any] = {
        "period": pc.cast(pc.floor_temporal(demand["demand_date"], unit=grain), pa.date32()),
        "quantity": demand["quantity"],
        "request_lines": pc.cast(demand["request_lines"], pa.int64()),
        "requests": pc.cast(demand["requests"], pa.int64()),
    }
    if by_site:
        columns["site_code"] = demand["site_code"]
    grouped = (
        pa.table(columns)
        .group_by(keys)
        .aggregate([("quantity", "sum"), ("request_lines", "sum"), ("requests", "sum")])
        .to_pydict()
    )
    sites = grouped["site_code"] if by_site else [None] * len(grouped["period"])
    sums: dict[Any, dict[date, list[Any]]] = {}
    for site, period, quantity, lines, requests in zip(
        sites, grouped["period"], grouped["quantity_sum"], grouped["request_lines_sum"],
        grouped["requests_sum"], strict=True,
    ):  # fmt: skip
        sums.setdefault(site, {})[period] = [quantity, lines, requests]
    return sums


NO_DEMAND = (0.0, 0, 0)
ALL_SITES = "*"


def _actual(
    observed: dict[date, list[Any]], period: date, grain: str, data_end: date | None
) -> float | None:
    """Demand of a period once gold holds all of it, else None."""
    if data_end is None or next_period(period, grain) - timedelta(days=1) > data_end:
        return None
    return float(observed.get(period, NO_DEMAND)[0])


def forecast_series(
    forecasts: pa.Table,
    demand: pa.Table,
    *,
    site: str | None,
    horizon: int | None,
    bucket: str,
    history_periods: int,
    data_end: date | None,
) -> list[dict[str, Any]]:
    """Forecast series of one item with their points, and the recent history at the same
    grain up to the forecast's start (0 where nothing was requested).

    `site` None: the item-level series (all sites together); a site code: that site's series;
    `ALL_SITES`: every series of the item.

    A point's `actual` is filled once gold holds the whole period (`data_end`, the last day
    of demand in gold, is at or past the period's last day).
    """
    if site is None:
        forecasts = forecasts.filter(pc.is_null(forecasts["site_code"]))
    elif site != ALL_SITES:
        forecasts = forecasts.filter(pc.equal(forecasts["site_code"], site))
    if horizon is not None:
        forecasts = forecasts.filter(pc.less_equal(forecasts["step"], horizon))
    forecasts = forecasts.sort_by([("series_id", "ascending"), ("step", "ascending")])
    by_series: dict[str, list[dict[str, Any]]] = {}
    for point in forecasts.to_pylist():
        by_series.setdefault(point["series_id"], []).append(point)
    if not by_series:
        return []
    # Only the periods shown are summed, once for all series (an item may have hundreds).
    period_days = 7 if bucket == "week" else 31
    start = min(points[0]["period"] for points in by_series.values())
    demand = demand.filter(
        pc.greater_equal(
            demand["demand_date"], start - timedelta(days=period_days * (history_periods + 1))
        )
    )
    sites = {points[0]["site_code"] for points in by_series.values()} - {None}
    sums = _period_sums(demand, bucket, by_site=False)
    if sites:
        at_sites = demand.filter(pc.is_in(demand["site_code"], pa.array(sorted(sites))))
        sums.update(_period_sums(at_sites, bucket, by_site=True))
    result = []
    for series_id, points in by_series.items():
        series_site = points[0]["site_code"]
        observed = sums.get(series_site, {})
        first = points[0]["period"]
        periods = [period_start(first - timedelta(days=1), bucket)]
        while len(periods) < history_periods:
            periods.append(period_start(periods[-1] - timedelta(days=1), bucket))
        history = [
            dict(zip(DEMAND_SCHEMA.names, [p, *observed.get(p, NO_DEMAND)], strict=True))
            for p in reversed(periods)
        ]

        result.append(
            {
                "series_id": series_id,
                "site_code": series_site,
                "model": points[0]["model"],
                "points": [
                    {
                        "period": p["period"],
                        "step": p["step"],
                        **{q: p.get(q) for q in (*QUANTILE_COLUMNS, "p_service", "mean")},
                        "actual": _actual(observed, p["period"], bucket, data_end),
                    }
                    for p in points
                ],
                "history": history,
            }
        )
    return result


SUMMARY_SCHEMA = pa.schema(
    [
        ("period", pa.date32()),
        ("series", pa.int64()),
        ("items", pa.int64()),
        ("mean", pa.float64()),
        ("p50", pa.float64()),
        ("p90", pa.float64()),
    ]
)


def forecast_summary(forecasts: pa.Table, date_from: date | None, date_to: date | None) -> pa.Table:
    """Totals over all series per period; series per item are the item-level ones only, so
    an item forecast both overall and per site is not counted twice."""
    overall = forecasts.filter(pc.is_null(forecasts["site_code"]))
    if date_from is not None:
        overall = overall.filter(pc.greater_equal(overall["period"], date_from))
    if date_to is not None:
        overall = overall.filter(pc.less_equal(overall["period"], date_to))
    if overall.num_rows == 0:
        return SUMMARY_SCHEMA.empty_table()
    grouped = overall.group_by("period").aggregate(
        [
            ("series_id", "count"),
            ("item_code", "count_distinct"),
            ("mean", "sum"),
            ("p50", "sum"),
            ("p90", "sum"),
        ]
    )
    table = pa.table(
        {
            "period": grouped["period"],
            "series": pc.cast(grouped["series_id_count"], pa.int64()),
            "items": pc.cast(grouped["item_code_count_distinct"], pa.int64()),
            "mean": grouped["mean_sum"],
            "p50": grouped["p50_sum"],
            "p90": grouped["p90_sum"],
        },
        schema=SUMMARY_SCHEMA,
    )
    return table.sort_by("period")


ALERT_ORDER = {"critical": 0, "attention": 1, "monitor": 2, "ok": 3}


def alerts(policy: pa.Table, items: pa.Table | None, levels: Sequence[str]) -> pa.Table:
    """Items at the given alert levels, most urgent first (level, then fewest days of cover)."""
    chosen = policy.filter(pc.is_in(policy["alert_level"], pa.array(list(levels), pa.string())))
    rank = pc.cast(
        pc.index_in(chosen["alert_level"], pa.array(list(ALERT_ORDER), pa.string())), pa.int32()
    )
    chosen = chosen.append_column("_rank", rank)
    chosen = chosen.sort_by(
        [("_rank", "ascending"), ("days_of_cover", "ascending"), ("item_code", "ascending")]
    ).drop_columns(["_rank"])
    if items is not None and items.num_rows:
        described = items.select(["item_code", "item_description"])
        order = pa.table(
            {"item_code": chosen["item_code"], "_pos": pa.array(range(chosen.num_rows))}
        )
        joined = order.join(described, "item_code", join_type="left outer").sort_by("_pos")
        description = joined["item_description"]
    else:
        description = pa.nulls(chosen.num_rows, pa.string())
    return pa.table(
        {
            "item_code": chosen["item_code"],
            "item_description": description,
            "alert_level": chosen["alert_level"],
            "on_hand": chosen["on_hand"],
            "reorder_point": chosen["reorder_point"],
            "safety_stock": chosen["safety_stock"],
            "days_of_cover": chosen["days_of_cover"],
            "lead_time_mean_days": chosen["lead_time_mean_days"],
            "snapshot_date": chosen["snapshot_date"],
        }
    )


ACCURACY_SCHEMA = pa.schema(
    [
        ("group", pa.string()),
        ("series", pa.int64()),
        ("mase", pa.float64()),
        ("wql", pa.float64()),
        ("wape", pa.float64()),
        ("bias", pa.float64()),
        ("coverage_80", pa.float64()),
    ]
)
METRICS = ("mase", "wql", "wape", "bias", "coverage_80")


def accuracy(accuracy_rows: pa.Table, items: pa.Table | None, by: str) -> pa.Table:
    """Backtest metrics of the selected model of each series, averaged per group."""
    chosen = accuracy_rows.filter(accuracy_rows["selected"])
    if by == "family":
        families = (
            items.select(["item_code", "item_family"])
            if items is not None
            else pa.table(
                {"item_code": pa.array([], pa.string()), "item_family": pa.array([], pa.string())}
            )
        )
        chosen = chosen.join(families, "item_code", join_type="left outer")
        column = "item_family"
    else:
        column = by
    if chosen.num_rows == 0:
        return ACCURACY_SCHEMA.empty_table()
    # NaN (a series with no usable backtest) would poison the means; nulls are skipped.
    cleaned = {
        m: pc.if_else(pc.is_nan(chosen[m]), pa.scalar(None, pa.float64()), chosen[m])
        for m in METRICS
    }
    table = pa.table({"group": chosen[column], "series_id": chosen["series_id"], **cleaned})
    grouped = table.group_by("group").aggregate(
        [("series_id", "count"), *((m, "mean") for m in METRICS)]
    )
    return pa.table(
        {
            "group": grouped["group"],
            "series": pc.cast(grouped["series_id_count"], pa.int64()),
            **{m: grouped[f"{m}_mean"] for m in METRICS},
        },
        schema=ACCURACY_SCHEMA,
    ).sort_by([("series", "descending"), ("group", "ascending")])


def latest_build_results(results: pa.Table) -> tuple[str | None, pa.Table]:
    """The data-quality results of the newest build that recorded any."""
    if results.num_rows == 0:
        return None, results
    newest = pc.max(results["evaluated_at"])
    build_id = results.filter(pc.equal(results["evaluated_at"], newest))["build_id"][0].as_py()
    chosen = results.filter(pc.equal(results["build_id"], build_id))
    return build_id, chosen.sort_by([("passed", "ascending"), ("check", "ascending")])


def quality_checks(results: pa.Table) -> list[dict[str, Any]]:
    checks = []
    for row in results.to_pylist():
        sample = json.loads(row.pop("sample_json") or "[]")
        row.pop("build_id", None)
        checks.append({**row, "sample": sample if isinstance(sample, list) else [sample]})
    return checks
