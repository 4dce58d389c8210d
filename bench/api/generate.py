"""Deterministic gold for the API benchmark, written with the lake's own Delta writer in the
schemas the transformer and the forecaster write.

- `gold.fact_demand`: date x item x site cells with demand (`GOLD["fact_demand"].schema`,
  partitioned by `business_month` like the transformer's), drawn directly: item popularity,
  item life, day weights (weekdays, holidays, season, growth) and the item and site pools are
  the transform benchmark's (`bench.transform.generate`); each item is requested mostly at a
  few "home" sites (more for popular items) and sometimes anywhere, so most item x site x day
  cells are empty and demand per series is intermittent and lumpy.
- `gold.dim_item`: every item with demand, with the transformer's demand class (ADI/CV2 on
  weekly buckets, the same SQL shape as `sql/gold/dim_item.sql`, run by DuckDB on the demand).
- `gold.builds`: one build manifest row naming the versions above (`build_id` in the commit).
- `gold.fact_forecast`, `gold.forecast_accuracy`, `gold.inventory_policy`, `gold.forecast_runs`:
  what one forecast run writes (`runner._forecast_table`, `_accuracy_table`, `POLICY_SCHEMA`,
  `manifest_row`): an item-level series for every item and an item x site series for pairs
  with demand in at least 12 weeks (the forecaster's default), 12 weekly steps. The values are
  SYNTHETIC, not fitted: quantiles of a zero-inflated log-normal around each series' recent
  weekly mean; fitting thousands of series would take far longer than the benchmark. Alert
  levels come from the forecaster's own `stock_alert` on a drawn stock snapshot.

Everything is drawn with NumPy (seeded) and built with Arrow; 5M demand rows take ~10 s. The
lake is generated into a temporary folder and renamed when complete, so an interrupted run
never leaves a lake a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench import common
from bench.api.dataset import GENERATOR_VERSION, SEED, Sizes, cached_lake
from bench.transform import dataset as transform_dataset
from bench.transform.generate import build_pools, day_weights
from shared import demand_classes

ITEMS = "items.json"  # every item with its demand rows and series: the benchmark picks URLs here
EPOCH = date(1970, 1, 1)
HOME_SHARE = 0.7  # share of an item's demand cells at its home sites
SITE_MIN_NONZERO_WEEKS = 12  # the forecaster's default (NOVA_FORECASTER__SITE_MIN_NONZERO_PERIODS)
HORIZON = 12
RECENT_WEEKS = 26
SERVICE_LEVEL = 0.95
BACKTEST_CELLS = 36  # 3 origins x 12 weeks
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Share of series each model is selected for, roughly as in the forecast benchmark.
MODELS = {
    "Pooled": 0.55,
    "PooledBlend": 0.2,
    "Zero": 0.06,
    "IMAPA": 0.05,
    "ADIDA": 0.04,
    "TSB": 0.03,
    "AutoTheta": 0.03,
    "AutoETS": 0.02,
    "CrostonOptimized": 0.01,
    "EmpiricalQuantile": 0.01,
}
DIM_ITEM_SQL = """
WITH weekly AS (
    SELECT item_code, date_trunc('week', demand_date) AS week, sum(quantity) AS quantity
    FROM fact_demand GROUP BY ALL
),
span AS (SELECT max(week) AS last_week FROM weekly),
shape AS (
    SELECT w.item_code,
           count(*) AS demand_weeks,
           date_diff('week', min(w.week), any_value(s.last_week)) + 1 AS weeks,
           avg(w.quantity) AS mean_size,
           stddev_pop(w.quantity) AS std_size
    FROM weekly AS w, span AS s GROUP BY w.item_code
),
classified AS (
    SELECT item_code, weeks / demand_weeks AS adi,
           coalesce(power(std_size / nullif(mean_size, 0), 2), 0) AS cv2
    FROM shape
),
activity AS (
    SELECT item_code, min(demand_date) AS first_seen, max(demand_date) AS last_seen,
           CAST(sum(request_lines) AS BIGINT) AS request_lines, sum(quantity) AS total_quantity
    FROM fact_demand GROUP BY item_code
)
SELECT p.item_code, p.item_description, p.item_family, p.unit,
       a.first_seen, a.last_seen, a.request_lines, a.total_quantity, c.adi, c.cv2,
       demand_class(c.adi, c.cv2) AS demand_class  -- macro: shared/demand_classes.py
FROM pools AS p
JOIN activity AS a USING (item_code)
LEFT JOIN classified AS c USING (item_code)
ORDER BY p.item_code
"""


def _hex_id(seed: int, what: str) -> str:
    return hashlib.sha256(
        f"bench.api v{GENERATOR_VERSION} seed={seed} {what}".encode()
    ).hexdigest()[:32]


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (as `np.unique`, whose hash path is several times slower here)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]


def _dates(days: np.ndarray) -> pa.Array:
    """Days since the epoch as date32."""
    return pa.array(days.astype(np.int32)).view(pa.date32())


def draw_cells(sizes: Sizes, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Distinct (day, item, site) cells with demand, sorted by day, item, site."""
    pools = build_pools(
        transform_dataset.Sizes(sizes.days, sizes.items, sizes.sites, sizes.rows), seed
    )
    rng = np.random.default_rng([seed, 11])
    n_items, n_sites = sizes.items, sizes.sites
    weights = day_weights(sizes.first_day, sizes.days)
    expected = pools.item_weight * sizes.rows
    # Popular items are used at more sites: each home site busy on at most ~1 day in 4.
    homes = np.clip(np.ceil(HOME_SHARE * expected / (0.25 * sizes.days)), 2, n_sites).astype(
        np.int64
    )
    home_start = rng.integers(0, n_sites, n_items)
    home_stride = rng.integers(1, max(2, n_sites), n_items)
    home_stride[np.gcd(home_stride, n_sites) != 1] = 1  # a stride coprime with the sites
    site_weight = pools.site_weight
    keys = np.empty(0, np.int64)
    batch = int(sizes.rows * 1.25) + 1000
    while len(keys) < sizes.rows:
        item = rng.choice(n_items, batch, p=pools.item_weight)
        day = rng.choice(sizes.days, batch, p=weights)
        alive = (day >= pools.item_first_day[item]) & (day <= pools.item_last_day[item])
        item, day = item[alive], day[alive]
        n = len(item)
        slot = (rng.random(n) * homes[item]).astype(np.int64)
        home_site = (home_start[item] + slot * home_stride[item]) % n_sites
        anywhere = rng.choice(n_sites, n, p=site_weight)
        site = np.where(rng.random(n) < HOME_SHARE, home_site, anywhere)
        new = (day.astype(np.int64) * n_items + item) * n_sites + site
        keys = _distinct(np.concatenate([keys, new]))
        batch = max(100_000, int((sizes.rows - len(keys)) * 2))
    keys = np.sort(rng.choice(keys, sizes.rows, replace=False))
    site = keys % n_sites
    item = (keys // n_sites) % n_items
    day = keys // (n_sites * n_items)
    return day, item, site, pools


def fact_demand(sizes: Sizes, seed: int) -> tuple[pa.Table, dict[str, Any]]:
    from services.transformer.transforms import GOLD

    day, item, site, pools = draw_cells(sizes, seed)
    rng = np.random.default_rng([seed, 12])
    n = len(day)
    lines = 1 + rng.poisson(0.3, n)
    requests = 1 + rng.binomial(lines - 1, 0.4)
    raw = lines * pools.item_size[item] * rng.lognormal(0.0, pools.item_spread[item])
    decimals = pools.item_decimals[item]
    quantity = np.where(decimals, np.maximum(0.01, np.round(raw, 2)), np.maximum(1.0, np.rint(raw)))
    epoch_days = day + (sizes.first_day - EPOCH).days
    distinct, inverse = np.unique(epoch_days, return_inverse=True)
    first_of_month = np.array(
        [((EPOCH + timedelta(days=int(d))).replace(day=1) - EPOCH).days for d in distinct]
    )
    months = first_of_month[inverse]
    table = pa.table(
        {
            "demand_date": _dates(epoch_days),
            "item_code": pools.item_codes.take(pa.array(item)),
            "site_code": pools.site_codes.take(pa.array(site)),
            "quantity": pa.array(quantity, pa.float64()),
            "request_lines": pa.array(lines.astype(np.int32)),
            "requests": pa.array(requests.astype(np.int32)),
            "business_month": _dates(months),
        },
        schema=GOLD["fact_demand"].schema,
    )
    arrays = {"day": day, "item": item, "site": site, "quantity": quantity, "pools": pools}
    return table, arrays


def dim_item(demand: pa.Table, pools: Any) -> pa.Table:
    import duckdb

    from services.transformer.transforms import GOLD

    pool_table = pa.table(
        {
            "item_code": pools.item_codes,
            "item_description": pools.item_descriptions,
            "item_family": pools.item_families,
            "unit": pools.item_units,
        }
    )
    with duckdb.connect(":memory:") as con:
        con.execute("SET threads = 1")  # parallel float sums differ in the last bits between runs
        con.execute(demand_classes.SQL_MACRO)
        con.register("fact_demand", demand)
        con.register("pools", pool_table)
        rows = con.sql(DIM_ITEM_SQL).to_arrow_table()
    return rows.cast(GOLD["dim_item"].schema)


def _series(sizes: Sizes, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """Forecast series: every item, and item x site where demand fell in enough weeks; with
    each series' recent weekly mean and share of recent weeks without demand."""
    day, item, site, quantity = arrays["day"], arrays["item"], arrays["site"], arrays["quantity"]
    week = (day + sizes.first_day.weekday()) // 7
    weeks = int(week.max()) + 1
    recent = week >= weeks - RECENT_WEEKS
    n_sites = sizes.sites
    # Item x site pairs with demand in at least SITE_MIN_NONZERO_WEEKS weeks.
    pair = item * n_sites + site
    pair_weeks = _distinct(pair * weeks + week) // weeks
    pairs, counts = np.unique(pair_weeks, return_counts=True)
    pairs = pairs[counts >= SITE_MIN_NONZERO_WEEKS]
    items = _distinct(item)
    # Series ids: the item's own series first, then its sites (series_id "item|site").
    series_item = np.concatenate([items, pairs // n_sites])
    series_site = np.concatenate([np.full(len(items), -1), pairs % n_sites])
    order = np.lexsort((series_site, series_item))
    series_item, series_site = series_item[order], series_site[order]
    # Recent weekly sums per series (item level: all sites).
    item_sum = np.bincount(item[recent], quantity[recent], minlength=sizes.items)
    item_weeks = _distinct(item[recent] * weeks + week[recent]) // weeks
    item_active = np.bincount(item_weeks, minlength=sizes.items)
    # Recent sums of the qualifying pairs (a pair's index in `pairs`, -1 for the others).
    index = np.searchsorted(pairs, pair[recent])
    index = np.where(
        (index < len(pairs)) & (pairs[np.minimum(index, max(0, len(pairs) - 1))] == pair[recent])
        if len(pairs)
        else False,
        index,
        -1,
    )
    kept = index >= 0
    pair_sum = np.bincount(index[kept], quantity[recent][kept], minlength=len(pairs))
    pair_active = np.bincount(
        _distinct(index[kept] * weeks + week[recent][kept]) // weeks, minlength=len(pairs)
    )
    is_item = series_site < 0
    at = np.searchsorted(pairs, series_item * n_sites + np.maximum(series_site, 0))
    at = np.where(is_item, 0, at)
    total = np.where(is_item, item_sum[series_item], pair_sum[at] if len(pairs) else 0.0)
    active = np.where(is_item, item_active[series_item], pair_active[at] if len(pairs) else 0)
    return {
        "item": series_item,
        "site": series_site,
        "mean": total / RECENT_WEEKS,
        "zero_share": 1 - active / RECENT_WEEKS,
        "last_week_day": np.array([int(week.max()) * 7 - sizes.first_day.weekday()]),
    }


def forecast_tables(
    sizes: Sizes, arrays: dict[str, Any], items: pa.Table, run_id: str, seed: int
) -> tuple[pa.Table, pa.Table, pa.Table, int]:
    """fact_forecast, forecast_accuracy, inventory_policy (as the forecaster writes them) and
    the number of series."""
    from scipy.special import ndtri

    from services.forecaster.policy import stock_alert
    from services.forecaster.policy_table import POLICY_SCHEMA

    pools = arrays["pools"]
    series = _series(sizes, arrays)
    rng = np.random.default_rng([seed, 13])
    n = len(series["item"])
    item_codes = pools.item_codes.take(pa.array(series["item"]))
    site_codes = pools.site_codes.take(
        pa.array(np.maximum(series["site"], 0), mask=series["site"] < 0)
    )
    series_ids = pc.if_else(
        pc.is_null(site_codes),
        item_codes,
        pc.binary_join_element_wise(item_codes, site_codes, "|"),
    )
    names = list(MODELS)
    model = rng.choice(len(names), n, p=np.array(list(MODELS.values())) / sum(MODELS.values()))
    # Zero-inflated log-normal: P(no demand in a week) = zero share; sizes log-normal.
    zero = np.clip(series["zero_share"], 0.0, 0.98)
    mean = series["mean"]
    sigma = rng.uniform(0.5, 1.2, n)
    positive_mean = mean / np.maximum(1e-9, 1 - zero)
    levels = [*QUANTILES, SERVICE_LEVEL]
    quantile = {}
    for q in levels:
        inner = np.clip((q - zero) / np.maximum(1e-9, 1 - zero), 1e-6, 1 - 1e-6)
        value = positive_mean * np.exp(sigma * ndtri(inner) - sigma**2 / 2)
        quantile[q] = np.where((q <= zero) | (model == names.index("Zero")), 0.0, value)
    mean = np.where(model == names.index("Zero"), 0.0, mean)
    # Origin: the Monday after the last week of history; 12 weekly steps.
    first_period = (
        sizes.first_day + timedelta(days=int(series["last_week_day"][0]) + 7) - EPOCH
    ).days
    steps = np.tile(np.arange(1, HORIZON + 1, dtype=np.int32), n)
    rep = np.repeat(np.arange(n), HORIZON)
    drift = 1 + 0.002 * (steps - 1)  # nearly flat, as most selected forecasts are
    take = pa.array(rep)
    forecast = {
        "run_id": pa.array([run_id] * (n * HORIZON), pa.string()),
        "series_id": series_ids.take(take),
        "item_code": item_codes.take(take),
        "site_code": site_codes.take(take),
        "period": _dates(first_period + 7 * (steps.astype(np.int64) - 1)),
        "step": pa.array(steps, pa.int32()),
        "model": pa.array(np.array(names)[model][rep]),
    }
    for q in QUANTILES:
        forecast[f"p{round(q * 100):02d}"] = pa.array(np.round(quantile[q][rep] * drift, 4))
    forecast["p_service"] = pa.array(np.round(quantile[SERVICE_LEVEL][rep] * drift, 4))
    forecast["service_level"] = pa.array(np.full(n * HORIZON, SERVICE_LEVEL))
    forecast["mean"] = pa.array(np.round(mean[rep] * drift, 4))
    fact_forecast = pa.table(forecast)

    # Accuracy: the selected model and two other candidates per series.
    classes = dict(
        zip(items["item_code"].to_pylist(), items["demand_class"].to_pylist(), strict=True)
    )
    candidates = np.stack(
        [model, (model + 1 + rng.integers(0, len(names) - 1, n)) % len(names)], axis=1
    )
    third = (candidates[:, 1] + 1 + rng.integers(0, len(names) - 2, n)) % len(names)
    third = np.where(third == model, (third + 1) % len(names), third)
    candidates = np.concatenate([candidates, third[:, None]], axis=1).ravel()
    rows = np.repeat(np.arange(n), 3)
    m = len(rows)
    # Backtest figures shaped like the forecaster's (gold.forecast_accuracy): pooled WQL from
    # quantile_loss / actual_total, and cell counts below / at or below each served quantile,
    # with the mass at zero that intermittent demand has.
    wql = rng.lognormal(-0.15, 0.2, m)
    actual_total = rng.integers(1, 60, m).astype(float)
    zero_share = rng.uniform(0.4, 0.9, m)
    calibration: dict[str, pa.Array] = {}
    served = [(f"p{round(q * 100):02d}", q) for q in QUANTILES] + [("p_service", SERVICE_LEVEL)]
    for column, tau in served:
        at_or_below = rng.binomial(BACKTEST_CELLS, np.minimum(1.0, np.maximum(tau, zero_share)))
        below = rng.binomial(at_or_below, np.clip((tau - zero_share) / (1 - zero_share), 0, 1))
        calibration[f"below_{column}"] = pa.array(below.astype(np.int64))
        calibration[f"at_or_below_{column}"] = pa.array(at_or_below.astype(np.int64))
    accuracy = pa.table(
        {
            "run_id": pa.array([run_id] * m, pa.string()),
            "series_id": series_ids.take(pa.array(rows)),
            "item_code": item_codes.take(pa.array(rows)),
            "model": pa.array(np.array(names)[candidates]),
            "demand_class": pa.array(
                [classes.get(c) for c in item_codes.take(pa.array(rows)).to_pylist()]
            ),
            "mase": pa.array(np.round(rng.lognormal(-0.2, 0.3, m), 4)),
            "wql": pa.array(np.round(wql, 4)),
            "bias": pa.array(np.round(rng.normal(0.0, 0.3, m), 4)),
            "wape": pa.array(np.round(rng.lognormal(0.0, 0.3, m), 4)),
            "quantile_loss": pa.array(np.round(wql * actual_total, 4)),
            "actual_total": pa.array(actual_total),
            "cells": pa.array(np.full(m, BACKTEST_CELLS, np.int64)),
            **calibration,
            "selected": pa.array(np.tile([True, False, False], n)),
        }
    )

    # Policy per item (item-level series only), alerts by the forecaster's own rule.
    own = np.flatnonzero(series["site"] < 0)
    k = len(own)
    lead_mean = rng.uniform(5.0, 45.0, k)
    lead_std = lead_mean * rng.uniform(0.1, 0.6, k)
    source = np.where(rng.random(k) < 0.7, "item", "company")
    samples = np.where(source == "item", rng.integers(3, 200, k), 0)
    daily = mean[own] / 7
    lead_demand = daily * lead_mean
    spread_week = np.maximum(0.0, quantile[0.9][own] - quantile[0.1][own]) / 2.563
    safety = 1.645 * spread_week * np.sqrt(lead_mean / 7)
    reorder = np.round(lead_demand + safety, 4)
    on_hand = np.round(reorder * rng.lognormal(0.3, 0.6, k))
    on_hand[rng.random(k) < 0.05] = 0.0
    snapshot = (sizes.first_day + timedelta(days=sizes.days - 1) - EPOCH).days
    cover: list[float | None] = []
    level: list[str] = []
    for h, r, d, lt in zip(
        on_hand.tolist(), reorder.tolist(), daily.tolist(), lead_mean.tolist(), strict=True
    ):
        c, a = stock_alert(h, r, d, lt)
        cover.append(c if np.isfinite(c) else None)
        level.append(a)
    policy = pa.table(
        {
            "run_id": [run_id] * k,
            "item_code": item_codes.take(pa.array(own)),
            "service_level": np.full(k, SERVICE_LEVEL),
            "z": np.full(k, 1.6449),
            "lead_time_mean_days": np.round(lead_mean, 2),
            "lead_time_std_days": np.round(lead_std, 2),
            "lead_time_source": source,
            "lead_time_samples": samples.astype(np.int64),
            "mean_daily_demand": np.round(daily, 4),
            "mean_lead_time_demand": np.round(lead_demand, 4),
            "reorder_point": reorder,
            "safety_stock": np.round(reorder - lead_demand, 4),
            "classic_safety_stock": np.round(safety * 0.9, 4),
            "classic_reorder_point": np.round(lead_demand + safety * 0.9, 4),
            "snapshot_date": _dates(np.full(k, snapshot)),
            "on_hand": on_hand,
            "days_of_cover": pa.array(cover, pa.float64()),
            "alert_level": level,
            "method": np.where(samples > 0, "demand_history", "thin_history"),
            "evidence_periods": rng.integers(12, 156, k).astype(np.int64),
            "evidence_demand_periods": rng.integers(3, 60, k).astype(np.int64),
            "lead_time_demand_source": np.full(k, "history"),
            "level_ratio": np.ones(k),
            "undershoot_mean": np.round(daily * 7 * 0.3, 4),
            "order_quantity": np.round(np.maximum(1.0, daily * 7), 4),
            "order_up_to": np.round(reorder + np.maximum(1.0, daily * 7), 4),
            "empirical_window_reorder_point": np.round(reorder * rng.uniform(0.8, 1.1, k), 4),
            "expected_service_level": np.round(rng.uniform(SERVICE_LEVEL, 0.99, k), 4),
        },
        schema=POLICY_SCHEMA,
    )
    return fact_forecast, accuracy, policy, n


def run_manifest_row(
    run_id: str,
    accuracy: pa.Table,
    policies: int,
    versions: dict[str, int],
    finished: datetime,
) -> pa.Table:
    from services.forecaster.runner import ForecastOptions, RunManifest, manifest_row

    return manifest_row(
        RunManifest(
            run_id=run_id,
            started_at=finished - timedelta(minutes=20),
            finished_at=finished,
            series=len(pc.unique(accuracy["series_id"])),
            items_with_policy=policies,
            table_versions=versions,
            data_versions={"gold.fact_demand": 0, "gold.dim_item": 0},
            selected_models={
                c["values"]: c["counts"]
                for c in pc.value_counts(accuracy.filter(accuracy["selected"])["model"]).to_pylist()
            },
            options=ForecastOptions(
                site_min_nonzero_periods=SITE_MIN_NONZERO_WEEKS, candidates=tuple(MODELS)
            ),
            code_version=f"bench.api generator v{GENERATOR_VERSION} (synthetic forecasts)",
        )
    )


def write_item_list(path: Path, items: pa.Table, demand: pa.Table, forecast: pa.Table) -> None:
    """Item codes with their demand rows and forecast series, for the parent (standard
    library only) to draw URLs from."""
    counts = pc.value_counts(demand["item_code"]).flatten()
    rows_of = dict(zip(counts[0].to_pylist(), counts[1].to_pylist(), strict=True))
    series = forecast.group_by("item_code").aggregate([("series_id", "count_distinct")])
    per_item = dict(
        zip(
            series["item_code"].to_pylist(),
            series["series_id_count_distinct"].to_pylist(),
            strict=True,
        )
    )
    rows = [
        {
            "item_code": code,
            "demand_class": cls,
            "demand_rows": rows_of.get(code, 0),
            "series": per_item.get(code, 0),
        }
        for code, cls in zip(
            items["item_code"].to_pylist(), items["demand_class"].to_pylist(), strict=True
        )
    ]
    path.write_text(json.dumps(rows) + "\n")


def _lake(root: Path) -> Any:
    from shared.settings import StorageSettings
    from shared.storage import Lake

    return Lake.from_settings(StorageSettings(local_root=root))


def write_gold(root: Path, sizes: Sizes, seed: int = SEED) -> dict[str, Any]:
    """Gold for these sizes into the lake at `root`; returns the manifest."""
    from shared.manifests import FORECAST_RUNS, GOLD_BUILDS

    began = time.perf_counter()
    demand, arrays = fact_demand(sizes, seed)
    items = dim_item(demand, arrays["pools"])
    drawn_demand = time.perf_counter() - began
    build_id = _hex_id(seed, "build")
    run_id = _hex_id(seed, "run")
    forecast, accuracy, policy, series = forecast_tables(sizes, arrays, items, run_id, seed)
    drawn = time.perf_counter() - began

    lake = _lake(root)
    metadata = {"build_id": build_id, "correlation_id": build_id, "rebuild": "full"}
    versions: dict[str, int] = {}
    for name, table, partitions in (
        ("fact_demand", demand, ["business_month"]),
        ("dim_item", items, None),
    ):
        commit = lake.write_delta(
            "gold",
            name,
            table,
            mode="overwrite",
            partition_by=partitions,
            metadata={**metadata, "rows_written": table.num_rows},
        )
        versions[name] = commit.version
    built_at = datetime.combine(
        sizes.first_day + timedelta(days=sizes.days), datetime.min.time(), UTC
    ) + timedelta(hours=6, minutes=40)
    lake.write_delta(
        "gold",
        GOLD_BUILDS,
        pa.table(
            {
                "build_id": [build_id],
                "finished_at": pa.array([built_at], pa.timestamp("us", tz="UTC")),
                "table_versions": [json.dumps(versions, sort_keys=True)],
            }
        ),
        mode="append",
        metadata=metadata,
    )
    run_metadata = {"run_id": run_id, "kind": "forecast"}
    run_versions: dict[str, int] = {}
    for name, table in (
        ("fact_forecast", forecast),
        ("forecast_accuracy", accuracy),
        ("inventory_policy", policy),
    ):
        run_versions[name] = lake.write_delta(
            "gold", name, table, mode="overwrite", metadata=run_metadata
        ).version
    lake.write_delta(
        "gold",
        FORECAST_RUNS,
        run_manifest_row(
            run_id, accuracy, policy.num_rows, run_versions, built_at + timedelta(minutes=30)
        ),
        mode="append",
        metadata=run_metadata,
    )
    write_item_list(root / ITEMS, items, demand, forecast)
    rows_per_item = np.bincount(arrays["item"], minlength=sizes.items)
    rows_per_item = rows_per_item[rows_per_item > 0]
    classes = pc.value_counts(items["demand_class"]).to_pylist()
    alerts = pc.value_counts(policy["alert_level"]).to_pylist()
    return {
        "generator_version": GENERATOR_VERSION,
        "transform_generator_version": transform_dataset.GENERATOR_VERSION,
        "seed": seed,
        "sizes": sizes.as_dict(),
        "first_day": sizes.first_day.isoformat(),
        "last_day": (sizes.first_day + timedelta(days=sizes.days - 1)).isoformat(),
        "build_id": build_id,
        "run_id": run_id,
        "tables": {
            "fact_demand": demand.num_rows,
            "dim_item": items.num_rows,
            "fact_forecast": forecast.num_rows,
            "forecast_accuracy": accuracy.num_rows,
            "inventory_policy": policy.num_rows,
        },
        "series": series,
        "item_series": int(items.num_rows),
        "site_series": int(series - items.num_rows),
        "density": demand.num_rows / (sizes.days * sizes.items * sizes.sites),
        "demand_rows_per_item": {
            "median": int(np.median(rows_per_item)),
            "p90": int(np.percentile(rows_per_item, 90)),
            "max": int(rows_per_item.max()),
        },
        "demand_classes": {c["values"]: c["counts"] for c in classes},
        "alert_levels": {c["values"]: c["counts"] for c in alerts},
        "lake_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
        "draw_seconds": round(drawn, 2),
        "draw_demand_seconds": round(drawn_demand, 2),
        "generated_seconds": round(time.perf_counter() - began, 2),
    }


def cached(data_dir: Path, sizes: Sizes, seed: int = SEED) -> tuple[Path, dict[str, Any], bool]:
    """The generated lake for these sizes (generated unless cached): folder, manifest, and
    whether it was generated now."""
    root = cached_lake(data_dir, sizes, transform_dataset.GENERATOR_VERSION, seed)
    return common.cached_lake(root, ".tmp-api-", lambda at: write_gold(at, sizes, seed))


if __name__ == "__main__":
    # `python -m bench.api.generate DAYS ITEMS SITES ROWS DATA_DIR`: prints the manifest of the
    # cached lake (with its folder as `root`).
    sys.exit(common.print_cached_lake(sys.argv[1:], Sizes, cached))
