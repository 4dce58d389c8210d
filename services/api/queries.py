"""What each endpoint computes, as functions of Arrow tables (no HTTP, no storage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.api import totals

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
        ("p10", pa.float64()),
        ("p50", pa.float64()),
        ("p90", pa.float64()),
    ]
)
SUMMARY_LEVELS = np.array([0.1, 0.5, 0.9])
BASE_LEVELS = tuple((column, int(column[1:]) / 100) for column in QUANTILE_COLUMNS)


def quantile_levels(service_level: float | None) -> list[tuple[str, float]]:
    """The stored quantile columns with their levels, ascending: p10..p90 and p_service
    (left out when the service level is unknown or equals a base level)."""
    levels = list(BASE_LEVELS)
    known = service_level is not None and 0 < service_level < 1
    if known and all(abs(service_level - level) > 1e-9 for _, level in levels):  # type: ignore[operator]
        levels.append(("p_service", service_level))
    return sorted(levels, key=lambda pair: pair[1])


def forecast_summary(
    forecasts: pa.Table, *, samples: int = totals.SAMPLES, seed: int = totals.SEED
) -> pa.Table:
    """Per period, over the item-level series (an item forecast both overall and per site is
    counted once): the mean of the total (the sum of the series' means) and the total's p10,
    p50 and p90 by Monte-Carlo, series drawn independently from the distributions their
    stored quantiles describe (`services.api.totals`). Deterministic: each period's draws are
    seeded with `seed` and the period, over the series in the order of their ids."""
    overall = forecasts.filter(pc.is_null(forecasts["site_code"]))
    if overall.num_rows == 0:
        return SUMMARY_SCHEMA.empty_table()
    overall = overall.sort_by([("period", "ascending"), ("series_id", "ascending")])
    service = (
        overall["service_level"][0].as_py() if "service_level" in overall.column_names else None
    )
    levels = quantile_levels(service)
    values = np.column_stack(
        [
            np.asarray(pc.fill_null(overall[c], np.nan).to_numpy(zero_copy_only=False), np.float64)
            for c, _ in levels
        ]
    )
    level_values = np.array([level for _, level in levels])
    means = np.asarray(
        pc.fill_null(overall["mean"], 0.0).to_numpy(zero_copy_only=False), np.float64
    )
    days = day_numbers(overall["period"])
    items = overall["item_code"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(days)]
    rows = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        block = values[a:b]
        known = ~np.isnan(block).any(axis=1)  # the forecaster never writes null quantiles
        quantiles = totals.total_quantiles(
            block[known], level_values, SUMMARY_LEVELS, samples=samples, seed=[seed, int(days[a])]
        )
        rows.append(
            (int(days[a]), b - a, len(set(items[a:b])), float(means[a:b].sum()), *quantiles)
        )
    columns = list(zip(*rows, strict=True))
    return pa.table(
        [
            pa.array(np.asarray(columns[0], np.int32), pa.date32()),
            *(
                pa.array(c, field.type)
                for c, field in zip(columns[1:], list(SUMMARY_SCHEMA)[1:], strict=True)
            ),
        ],
        schema=SUMMARY_SCHEMA,
    )


def between(table: pa.Table, column: str, date_from: date | None, date_to: date | None) -> pa.Table:
    """Rows with `column` in [date_from, date_to] (either bound optional)."""
    if date_from is not None:
        table = table.filter(pc.greater_equal(table[column], date_from))
    if date_to is not None:
        table = table.filter(pc.less_equal(table[column], date_to))
    return table


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
            {"item_code": chosen["item_code"], "_pos": pa.array(range(chosen.num_rows), pa.int64())}
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


CALIBRATION_TOLERANCE = 0.03  # a level is calibrated within this many points (issue 12)
MEAN_METRICS = ("mase", "wape", "bias")  # per series, averaged over a group's series
CALIBRATION_LEVELS = (*QUANTILE_COLUMNS, "p_service")  # what the forecaster counts


def calibration_columns(level: str) -> tuple[str, str, str]:
    return f"share_below_{level}", f"share_at_or_below_{level}", f"calibrated_{level}"


ACCURACY_SCHEMA = pa.schema(
    [
        ("group", pa.string()),
        ("series", pa.int64()),
        ("cells", pa.int64()),
        ("mase", pa.float64()),
        ("wql", pa.float64()),
        ("wape", pa.float64()),
        ("bias", pa.float64()),
        ("quantile_loss", pa.float64()),
        ("actual_total", pa.float64()),
        *(
            (name, pa.bool_() if name.startswith("calibrated") else pa.float64())
            for level in CALIBRATION_LEVELS
            for name in calibration_columns(level)
        ),
    ]
)


def _recorded(rows: pa.Table, names: Sequence[str]) -> bool:
    """Whether the columns exist and hold values (a table that gained them by a schema merge
    holds nulls in rows written before)."""
    present = set(rows.column_names)
    return all(n in present and rows[n].null_count < rows.num_rows for n in names)


def has_pooled_loss(accuracy_rows: pa.Table) -> bool:
    """Whether the run recorded Σ quantile loss and Σ|actual| per series (runs written
    before issue 12 did not: their WQL cannot be pooled)."""
    return _recorded(accuracy_rows, ("quantile_loss", "actual_total"))


def has_calibration(accuracy_rows: pa.Table) -> bool:
    """Whether the run recorded the calibration counts (cells, below_*, at_or_below_*)."""
    counts = [
        f"{kind}_{level}" for level in CALIBRATION_LEVELS for kind in ("below", "at_or_below")
    ]
    return _recorded(accuracy_rows, ("cells", *counts))


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64, null and NaN as 0 (a series without backtest cells)."""
    values = np.asarray(column.to_numpy(zero_copy_only=False), np.float64)
    return np.nan_to_num(values, nan=0.0)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> list[float | None]:
    return [float(t / b) if b > 0 else None for t, b in zip(top, bottom, strict=True)]


def accuracy(
    accuracy_rows: pa.Table,
    items: pa.Table | None,
    by: str | None,
    service_level: float | None = None,
) -> pa.Table:
    """Backtest accuracy of the selected model of each series, per group (`by`: a column,
    "family", or None: one group of every series).

    - MASE, WAPE, bias: means over the group's series (NaN, no usable backtest, skipped);
    - WQL pooled as the README defines it: Σ quantile_loss / Σ actual_total over the group's
      series (quantiles 0.1..0.9); null for runs that did not record those sums;
    - calibration of each served level τ (p10..p90, and p_service at `service_level`):
      share_below = Σ below / Σ cells, share_at_or_below = Σ at_or_below / Σ cells, and
      calibrated when share_below − 0.03 <= τ <= share_at_or_below + 0.03; null for runs
      that did not record the counts.
    """
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
        keys = chosen["item_family"]
    elif by is None:
        keys = pa.chunked_array([pa.array([None] * chosen.num_rows, pa.string())])
    else:
        keys = chosen[by]
    if chosen.num_rows == 0:
        return ACCURACY_SCHEMA.empty_table()
    keys = pc.cast(keys, pa.string())
    groups = pc.unique(keys)
    index = np.asarray(pc.index_in(keys, groups).to_numpy(zero_copy_only=False), np.int64)
    width = len(groups)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values, minlength=width)

    def mean(column: pa.ChunkedArray) -> list[float | None]:
        values = np.asarray(column.to_numpy(zero_copy_only=False), np.float64)
        usable = ~np.isnan(values)
        return _ratio(total(np.where(usable, values, 0.0)), total(usable.astype(np.float64)))

    columns: dict[str, Any] = {
        "group": groups,
        "series": np.bincount(index, minlength=width).astype(np.int64),
        "cells": [None] * width,
        **{m: mean(chosen[m]) for m in MEAN_METRICS},
        "wql": [None] * width,
        "quantile_loss": [None] * width,
        "actual_total": [None] * width,
    }
    if has_pooled_loss(chosen):
        loss, actual = (
            total(_numbers(chosen["quantile_loss"])),
            total(_numbers(chosen["actual_total"])),
        )
        columns.update(wql=_ratio(loss, actual), quantile_loss=loss, actual_total=actual)
    calibrated = has_calibration(chosen)
    cells = total(_numbers(chosen["cells"])) if calibrated else None
    if cells is not None:
        columns["cells"] = np.rint(cells).astype(np.int64)
    levels = dict(BASE_LEVELS)
    for level in CALIBRATION_LEVELS:
        below_name, at_name, flag_name = calibration_columns(level)
        tau = service_level if level == "p_service" else levels[level]
        if cells is None or tau is None:
            columns[below_name] = columns[at_name] = columns[flag_name] = [None] * width
            continue
        below = _ratio(total(_numbers(chosen[f"below_{level}"])), cells)
        at = _ratio(total(_numbers(chosen[f"at_or_below_{level}"])), cells)
        columns[below_name], columns[at_name] = below, at
        columns[flag_name] = [
            None if b is None or a is None else is_calibrated(tau, b, a)
            for b, a in zip(below, at, strict=True)
        ]
    table = pa.table(
        {
            name: pa.array(columns[name], ACCURACY_SCHEMA.field(name).type)
            for name in ACCURACY_SCHEMA.names
        },
        schema=ACCURACY_SCHEMA,
    )
    return table.sort_by([("series", "descending"), ("group", "ascending")])


def accuracy_records(table: pa.Table, service_level: float | None) -> list[dict[str, Any]]:
    """The rows of `accuracy` as JSON groups: the calibration columns as a list per level
    (empty when the run recorded no counts)."""
    taus = {**dict(BASE_LEVELS), "p_service": service_level}
    groups = []
    for row in records(table):
        calibration = []
        for level in CALIBRATION_LEVELS:
            below, at, flag = (row.pop(name) for name in calibration_columns(level))
            if taus[level] is not None and below is not None:
                calibration.append(
                    {
                        "level": level,
                        "tau": taus[level],
                        "share_below": below,
                        "share_at_or_below": at,
                        "calibrated": flag,
                    }
                )
        row.pop("quantile_loss")
        row.pop("actual_total")
        groups.append({**row, "calibration": calibration})
    return groups


def is_calibrated(tau: float, share_below: float, share_at_or_below: float) -> bool:
    """share(y < q) <= τ <= share(y <= q), within `CALIBRATION_TOLERANCE` (and float noise)."""
    slack = CALIBRATION_TOLERANCE + 1e-9
    return share_below - slack <= tau <= share_at_or_below + slack


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
