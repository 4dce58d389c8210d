"""What each endpoint computes, as functions of Arrow tables (no HTTP, no storage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = date(1970, 1, 1)
EPOCH_ORDINAL = EPOCH.toordinal()
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0
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
    return records(table)


def records(table: pa.Table) -> list[dict[str, Any]]:
    """The rows as dicts, faster than `to_pylist` (which makes date objects slowly) for the
    columns answers hold: dates and numbers without nulls go through numpy."""
    columns: dict[str, list[Any]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if column.null_count:
            columns[name] = column.to_pylist()
        elif pa.types.is_date32(kind):
            columns[name] = dates(day_numbers(column))
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            columns[name] = column.to_numpy().tolist()
        else:
            columns[name] = column.to_pylist()
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


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


def day_numbers(days: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates as days since 1970-01-01 (int64)."""
    return np.asarray(pc.cast(days, pa.int32()).to_numpy(zero_copy_only=False), np.int64)


def period_keys(day_numbers_: np.ndarray, grain: str) -> np.ndarray:
    """The period of each day as an integer that counts periods: the day itself, its week's
    Monday (a day number, so weeks step by 7) or months since January 1970."""
    if grain == "week":
        return day_numbers_ - (day_numbers_ + EPOCH_WEEKDAY) % 7
    if grain == "month":
        return day_numbers_.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return day_numbers_


def period_key(day_number: int, grain: str) -> int:
    return int(period_keys(np.array([day_number], np.int64), grain)[0])


def period_first_days(keys: np.ndarray, grain: str) -> np.ndarray:
    """The day number of each period key's first day."""
    if grain == "month":
        return keys.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return keys


def key_dates(keys: np.ndarray, grain: str) -> pa.Array:
    """The first day of each period key, as date32."""
    return pa.array(period_first_days(keys, grain).astype(np.int32), pa.date32())


def dates(day_numbers_: np.ndarray) -> list[date]:
    """Day numbers as dates (this is many times faster than Arrow's `to_pylist`)."""
    return [date.fromordinal(d + EPOCH_ORDINAL) for d in day_numbers_.tolist()]


def period_last_days(keys: np.ndarray, grain: str) -> np.ndarray:
    """The day number of each period key's last day."""
    if grain == "week":
        return keys + 6
    if grain == "month":
        return (keys + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1
    return keys


def dense_keys(first: int, last: int, grain: str) -> np.ndarray:
    """Every period key from `first` to `last`, inclusive."""
    return np.arange(first, last + 1, 7 if grain == "week" else 1, dtype=np.int64)


def period_totals(
    demand: pa.Table,
    keys: np.ndarray,
    grain: str,
    *,
    days: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    n_groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantity, request lines and requests summed per period of `keys` (dense, ascending)
    and per group, as arrays of shape (n_groups, len(keys)).

    `days`: the rows' day numbers when the caller has them; `rows`: a mask of the rows to
    count; `groups`: each row's group number (None: one group). Rows outside the keys'
    periods are left out. Numpy throughout: a request sums one item's rows, where the fixed
    cost of an Arrow group-by would dominate."""
    width = len(keys)
    if demand.num_rows == 0 or width == 0:
        empty = np.zeros((n_groups, width))
        return empty, empty.astype(np.int64), empty.astype(np.int64)
    if days is None:
        days = day_numbers(demand["demand_date"])
    step = 7 if grain == "week" else 1
    position = (period_keys(days, grain) - keys[0]) // step
    inside = (position >= 0) & (position < width)
    if rows is not None:
        inside &= rows
    slot = (position if groups is None else groups * width + position)[inside]

    def total(column: str) -> np.ndarray:
        values = np.asarray(demand[column].to_numpy(zero_copy_only=False), np.float64)
        return np.bincount(
            slot, weights=np.nan_to_num(values[inside]), minlength=n_groups * width
        ).reshape(n_groups, width)

    return (
        total("quantity"),
        np.rint(total("request_lines")).astype(np.int64),
        np.rint(total("requests")).astype(np.int64),
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
    days = day_numbers(demand["demand_date"])
    first = (date_from - EPOCH).days if date_from is not None else None
    last = (date_to - EPOCH).days if date_to is not None else None
    inside = np.ones(len(days), bool)
    if first is not None:
        inside &= days >= first
    if last is not None:
        inside &= days <= last
    if not inside.any() and (first is None or last is None):
        return DEMAND_SCHEMA.empty_table()
    first = int(days[inside].min()) if first is None else first
    last = int(days[inside].max()) if last is None else last
    if last - first > max_days:
        # Without explicit bounds the history itself decides the range; cap it at the newest.
        first = last - max_days
    # Days before `first` in the first period are outside the range: left out.
    inside &= days >= first
    keys = dense_keys(period_key(first, grain), period_key(last, grain), grain)
    # Sums of the requests column double-count a request spanning two days; the SQL fact has
    # one row per day, so this is the number of request-days, documented as requests.
    quantity, lines, requests = period_totals(demand, keys, grain, days=days, rows=inside)
    return pa.table(
        [key_dates(keys, grain), quantity[0], lines[0], requests[0]], schema=DEMAND_SCHEMA
    )


ALL_SITES = "*"
POINT_COLUMNS = ("period", "step", *QUANTILE_COLUMNS, "p_service", "mean")


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
    if forecasts.num_rows == 0:
        return []
    forecasts = forecasts.sort_by([("series_id", "ascending"), ("step", "ascending")])
    columns = forecasts.select([*POINT_COLUMNS, "series_id", "site_code", "model"]).to_pydict()
    step = 7 if bucket == "week" else 1
    point_keys = period_keys(day_numbers(forecasts["period"]), bucket).tolist()
    # Series are runs of equal series_id in the sorted rows.
    ids = columns["series_id"]
    starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
    bounds = list(zip(starts, [*starts[1:], len(ids)], strict=True))
    first_keys = [point_keys[a] for a, _ in bounds]
    keys = dense_keys(min(first_keys) - history_periods * step, max(point_keys), bucket)
    origin = int(keys[0])
    # Group 0 sums every site (item-level series); group g > 0 sums the g-th series site.
    sites = sorted({columns["site_code"][a] for a, _ in bounds} - {None})
    totals = period_totals(demand, keys, bucket)
    if sites:
        at = pc.index_in(demand["site_code"], pa.array(sites, pa.string()))
        chosen = pc.is_valid(at)
        groups = np.asarray(at.filter(chosen).to_numpy(zero_copy_only=False), np.int64) + 1
        by_site = period_totals(
            demand.filter(chosen), keys, bucket, groups=groups, n_groups=len(sites) + 1
        )
        totals = tuple(
            np.vstack([overall[:1], per_site[1:]])
            for overall, per_site in zip(totals, by_site, strict=True)
        )
    periods = dates(period_first_days(keys, bucket))
    quantities, line_counts, request_counts = (t.tolist() for t in totals)
    # A period's actual is known once gold holds its last day.
    known = 0
    if data_end is not None:
        known = int((period_last_days(keys, bucket) <= (data_end - EPOCH).days).sum())
    result = []
    for (a, b), first_key in zip(bounds, first_keys, strict=True):
        series_site = columns["site_code"][a]
        group = 0 if series_site is None else sites.index(series_site) + 1
        first = (first_key - origin) // step
        history = [
            {
                "period": periods[i],
                "quantity": quantities[group][i],
                "request_lines": line_counts[group][i],
                "requests": request_counts[group][i],
            }
            for i in range(first - history_periods, first)
        ]
        points = []
        for row in range(a, b):
            point = {name: columns[name][row] for name in POINT_COLUMNS}
            i = (point_keys[row] - origin) // step
            point["actual"] = quantities[group][i] if i < known else None
            points.append(point)
        result.append(
            {
                "series_id": ids[a],
                "site_code": series_site,
                "model": columns["model"][a],
                "points": points,
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
