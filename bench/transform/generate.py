"""Deterministic requisition history for the transform benchmark, written as the ingestor writes
bronze: one Parquet object per daily ERP export, typed by the `erp_requisitions` contract, with
the ingestor's `_source_row` and lineage columns (`with_lineage`) at its `bronze_path`.

Demand is intermittent the way spare parts are: item popularity is log-normal (a few items are
requested every day, most a few times a month, a long tail a few times a year), some items
appear late in the history or are discontinued, request sizes vary by item, weekends and
national holidays are quiet, and there is a mild seasonality and growth. Lines come in requests
of one to a few lines for one site; 2% are services bought without a request (no request number
and no dates), as in the ERP's real exports and the ingest benchmark.

Everything is drawn at once with NumPy and joined with Arrow kernels, then sliced into daily
objects: five million lines take well under a minute. The same sizes and seed always give the
same rows. The lake is generated into a temporary folder and renamed when complete, so an
interrupted run never leaves a lake that a later run would trust.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench import common
from bench.ingest.generate import FAMILIES, STATES, SUPPLIER_FORMS, SUPPLIER_KINDS, SUPPLIER_NAMES
from bench.transform.dataset import (
    DATASET,
    GENERATOR_VERSION,
    SEED,
    SOURCE_SHEET,
    Sizes,
    cached_lake,
    export_name,
)

EPOCH = date(1970, 1, 1)
FIRST_REQUEST_NUMBER = 1_000_000
MEAN_LINES_PER_REQUEST = 2.6
MAX_LEAD_DAYS = 180
# Fixed-date national holidays (and Bahia's 2 July): requests nearly stop on them.
HOLIDAYS_MMDD = {(1, 1), (4, 21), (5, 1), (7, 2), (9, 7), (10, 12), (11, 2), (11, 15), (12, 25)}
WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.0, 0.95, 0.9, 0.2, 0.05])  # Monday .. Sunday
DECIMAL_UNITS = {"MT", "KG", "M2", "M³", "LT"}
SUPPLIERS = 120


@dataclass(frozen=True)
class Pools:
    """Items, sites and suppliers, with the per-item shape of their demand."""

    item_codes: pa.Array
    item_descriptions: pa.Array
    item_families: pa.Array
    item_units: pa.Array
    item_weight: np.ndarray  # popularity, sums to 1
    item_first_day: np.ndarray  # day index the item appears (0: from the start)
    item_last_day: np.ndarray  # day index after which it is no longer requested
    item_size: np.ndarray  # typical quantity per line
    item_spread: np.ndarray  # log-normal sigma of the quantity
    item_decimals: np.ndarray  # quantities with two decimals (metres, kilos, litres)
    item_supplier: np.ndarray  # usual supplier
    site_codes: pa.Array
    site_weight: np.ndarray
    suppliers: pa.Array
    supplier_lead_days: np.ndarray  # mean lead time
    first_ordinal: int  # `toordinal()` of the history's first day: day index 0


def _site_codes(rng: np.random.Generator, count: int) -> list[str]:
    """Tower codes (BAJSS002-3) plus the warehouses the ERP also books to."""
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVXZ"))
    codes = ["ALMOX-BA", "ALMOX-PE", "GERBA", "GERPE"][: max(0, min(4, count // 50))]
    seen = set(codes)
    while len(codes) < count:
        state = STATES[int(rng.integers(len(STATES)))]
        code = (
            f"{state}{''.join(rng.choice(letters, 3))}"
            f"{int(rng.integers(1, 1000)):03d}-{int(rng.integers(1, 10))}"
        )
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return sorted(codes)


def build_pools(sizes: Sizes, seed: int = SEED) -> Pools:
    rng = np.random.default_rng([seed, 1])
    n = sizes.items
    codes = [f"{c:06d}" for c in np.sort(rng.choice(np.arange(1, 200_000), n, replace=False))]
    families = list(FAMILIES)
    family = rng.integers(0, len(families), n)
    descriptions, units = [], []
    for f in family.tolist():
        family_units, nouns, specs = FAMILIES[families[f]]
        descriptions.append(
            f"{nouns[int(rng.integers(len(nouns)))]} {specs[int(rng.integers(len(specs)))]}"
        )
        units.append(family_units[int(rng.integers(len(family_units)))])
    weight = rng.lognormal(0.0, 1.5, n)
    # 75% of items exist throughout; 15% appear later; 10% are discontinued.
    kind = rng.random(n)
    first = np.where(kind < 0.15, rng.integers(0, max(1, int(0.8 * sizes.days)), n), 0)
    last = np.where(
        kind > 0.90, rng.integers(max(1, int(0.2 * sizes.days)), sizes.days, n), 1 << 30
    )
    supplier_names = sorted(
        {
            f"{SUPPLIER_KINDS[int(rng.integers(len(SUPPLIER_KINDS)))]} "
            f"{SUPPLIER_NAMES[int(rng.integers(len(SUPPLIER_NAMES)))]} "
            f"{SUPPLIER_FORMS[int(rng.integers(len(SUPPLIER_FORMS)))]}"
            for _ in range(SUPPLIERS)
        }
    )
    sites = _site_codes(rng, sizes.sites)
    return Pools(
        item_codes=pa.array(codes),
        item_descriptions=pa.array(descriptions),
        item_families=pa.array([families[f] for f in family.tolist()]),
        item_units=pa.array(units),
        item_weight=weight / weight.sum(),
        item_first_day=first,
        item_last_day=last,
        item_size=np.exp(rng.normal(1.0, 1.0, n)),  # median ~3, a few items in hundreds
        item_spread=rng.uniform(0.2, 1.2, n),
        item_decimals=np.array([u in DECIMAL_UNITS for u in units]),
        item_supplier=rng.integers(0, len(supplier_names), n),
        site_codes=pa.array(sites),
        site_weight=(w := rng.lognormal(0.0, 1.0, len(sites))) / w.sum(),
        suppliers=pa.array(supplier_names),
        supplier_lead_days=rng.uniform(5, 40, len(supplier_names)),
        first_ordinal=sizes.first_day.toordinal(),
    )


def day_weights(first_day: date, days: int) -> np.ndarray:
    """Relative request volume per day: weekday, holidays, seasonality and growth."""
    dates = [first_day + timedelta(days=d) for d in range(days)]
    weekday = WEEKDAY_FACTOR[[d.weekday() for d in dates]]
    holiday = np.array([0.15 if (d.month, d.day) in HOLIDAYS_MMDD else 1.0 for d in dates])
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])
    season = 1 + 0.12 * np.sin(2 * np.pi * (day_of_year - 80) / 365.25)
    trend = 0.85 + 0.3 * np.arange(days) / max(1, days)
    weights = weekday * holiday * season * trend
    return weights / weights.sum()


def _take(pool: pa.Array, indices: np.ndarray) -> pa.Array:
    """`pool[indices]`; a negative index is a null."""
    return pool.take(pa.array(indices, mask=indices < 0))


def _dates(ordinals: np.ndarray, missing: np.ndarray) -> pa.Array:
    days = (ordinals - EPOCH.toordinal()).astype(np.int32)
    return pa.array(days, mask=missing).view(pa.date32())


def draw_lines(
    pools: Pools, day_ordinals: np.ndarray, first_request: int, rng: np.random.Generator
) -> tuple[pa.Table, int]:
    """Contract-typed rows for lines on the given days (sorted); returns them and the number
    of requests used. `day_ordinals` are `date.toordinal()` values; requests never span days."""
    n = len(day_ordinals)
    start = rng.random(n) < 1 / MEAN_LINES_PER_REQUEST
    if n:
        start[0] = True
        start[1:] |= day_ordinals[1:] != day_ordinals[:-1]
    request = np.cumsum(start) - 1
    requests = int(request[-1]) + 1 if n else 0

    # Sites per request; 1% of requests have no depot (N/A in the export).
    request_site = rng.choice(len(pools.site_weight), requests, p=pools.site_weight)
    request_site[rng.random(requests) < 0.01] = -1
    site = request_site[request]

    # Items by popularity, redrawn among always-available items outside an item's life.
    day_index = day_ordinals - pools.first_ordinal
    item = rng.choice(len(pools.item_weight), n, p=pools.item_weight)
    outside = (day_index < pools.item_first_day[item]) | (day_index > pools.item_last_day[item])
    evergreen = np.flatnonzero((pools.item_first_day == 0) & (pools.item_last_day >= 1 << 30))
    if outside.any() and len(evergreen):
        weights = pools.item_weight[evergreen] / pools.item_weight[evergreen].sum()
        item[outside] = rng.choice(evergreen, int(outside.sum()), p=weights)

    raw = pools.item_size[item] * rng.lognormal(0.0, pools.item_spread[item])
    quantity = np.where(pools.item_decimals[item], np.round(raw, 2), np.maximum(1.0, np.rint(raw)))
    quantity[rng.random(n) < 0.001] = 0.0  # cancelled lines: not demand

    supplier = np.where(
        rng.random(n) < 0.85, pools.item_supplier[item], rng.integers(0, len(pools.suppliers), n)
    )
    supplier[rng.random(n) < 0.01] = -1
    lead = np.minimum(rng.geometric(1 / pools.supplier_lead_days[np.maximum(supplier, 0)]), 180)
    lead = np.where(rng.random(n) < 0.002, -rng.integers(1, 6, n), lead)  # typed before request
    not_bought = rng.random(n) < 0.06
    unrequested = rng.random(n) < 0.02  # services bought without a request: no number, no dates
    required_offset = rng.integers(3, 31, n)
    has_required = rng.random(n) < 0.14

    numbers = pc.cast(pa.array(first_request + request), pa.string())
    columns: dict[str, pa.Array] = {
        "depot_code": _take(pools.site_codes, site),
        "item_code": _take(pools.item_codes, item),
        "item_description": _take(pools.item_descriptions, item),
        "item_family": _take(pools.item_families, item),
        "supplier_name": _take(pools.suppliers, supplier),
        "quantity": pa.array(quantity, pa.float64()),
        "unit": _take(pools.item_units, item),
        "required_date": _dates(day_ordinals + required_offset, ~has_required | unrequested),
        "request_number": pc.if_else(pa.array(unrequested), pa.scalar(None, pa.string()), numbers),
        "requested_date": _dates(day_ordinals, unrequested),
        "purchased_date": _dates(day_ordinals + lead, not_bought | unrequested),
    }
    return pa.table(columns), requests


def contract_table(lines: pa.Table) -> pa.Table:
    """The columns in the contract's order and types, then `_source_row` (added later)."""
    from services.ingestor.contracts import CONTRACTS
    from services.ingestor.parsing import ARROW_TYPES

    contract = CONTRACTS[DATASET]
    schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in contract.columns])
    return pa.table([lines.column(c.name) for c in contract.columns], schema=schema)


@dataclass(frozen=True)
class Export:
    """One daily export written to bronze: what a `BronzeIngested` event says about it."""

    day: date
    source_name: str
    content_sha256: str
    bronze_path: str
    rows: int
    ingested_at: datetime

    def event_fields(self) -> dict[str, Any]:
        return {
            "dataset": DATASET,
            "bronze_path": self.bronze_path,
            "content_sha256": self.content_sha256,
            "source_name": self.source_name,
            "row_count": self.rows,
        }


def write_export(lake: Any, day: date, rows: pa.Table, seed: int) -> Export:
    """One day's lines as the ingestor writes a CSV export to bronze."""
    from services.ingestor.service import bronze_path, with_lineage

    name = export_name(day)
    # The ingestor hashes the file's bytes; there is no file here, so the hash is derived from
    # what determines its content.
    sha = hashlib.sha256(
        f"bench.transform v{GENERATOR_VERSION} seed={seed} {name} rows={rows.num_rows}".encode()
    ).hexdigest()
    # Exports arrive overnight and are ingested early the next morning.
    ingested_at = datetime(day.year, day.month, day.day, 6, tzinfo=UTC) + timedelta(
        days=1, seconds=int(sha[:4], 16) % 1800
    )
    source_rows = pa.array(np.arange(2, rows.num_rows + 2, dtype=np.int32))  # CSV line numbers
    table = rows.append_column(pa.field("_source_row", pa.int32()), source_rows)
    table = with_lineage(table, name, SOURCE_SHEET, sha, ingested_at)
    path = bronze_path(DATASET, sha, ingested_at)
    lake.write_parquet(path, table)
    return Export(day, name, sha, path, rows.num_rows, ingested_at)


def _lake(root: Path) -> Any:
    from shared.settings import StorageSettings
    from shared.storage import Lake

    return Lake.from_settings(StorageSettings(local_root=root))


def write_history(root: Path, sizes: Sizes, seed: int = SEED) -> dict[str, Any]:
    """The whole history into the lake at `root`; returns the manifest."""
    began = time.perf_counter()
    pools = build_pools(sizes, seed)
    rng = np.random.default_rng([seed, 2])
    per_day = rng.multinomial(sizes.lines, day_weights(sizes.first_day, sizes.days))
    ordinals = np.repeat(sizes.first_day.toordinal() + np.arange(sizes.days), per_day)
    lines, requests = draw_lines(pools, ordinals, FIRST_REQUEST_NUMBER, rng)
    lines = contract_table(lines).combine_chunks()
    drawn = time.perf_counter() - began
    lake = _lake(root)
    offset = 0
    exports = 0
    for index, count in enumerate(per_day.tolist()):
        if count == 0:
            continue  # no export on a day without requests
        day = sizes.first_day + timedelta(days=index)
        write_export(lake, day, lines.slice(offset, count), seed)
        offset += count
        exports += 1
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "sizes": sizes.as_dict(),
        "first_day": sizes.first_day.isoformat(),
        "last_day": (sizes.first_day + timedelta(days=sizes.days - 1)).isoformat(),
        "lines": int(per_day.sum()),
        "objects": exports,
        "requests": requests,
        "next_request_number": FIRST_REQUEST_NUMBER + requests,
        "bronze_bytes": sum(p.stat().st_size for p in (root / "bronze").rglob("*.parquet")),
        "draw_seconds": round(drawn, 2),
        "generated_seconds": round(time.perf_counter() - began, 2),
    }


def write_new_day(root: Path, manifest: dict[str, Any]) -> Export:
    """The incremental export: the day after the history, an average day's lines."""
    sizes = Sizes(**manifest["sizes"])
    seed = int(manifest["seed"])
    pools = build_pools(sizes, seed)
    rng = np.random.default_rng([seed, 3])
    ordinals = np.full(sizes.new_day_lines, sizes.new_day.toordinal())
    lines, _ = draw_lines(pools, ordinals, int(manifest["next_request_number"]), rng)
    return write_export(_lake(root), sizes.new_day, contract_table(lines), seed)


def cached(data_dir: Path, sizes: Sizes, seed: int = SEED) -> tuple[Path, dict[str, Any], bool]:
    """The generated lake for these sizes (generated unless cached): folder, manifest, and
    whether it was generated now."""
    root = cached_lake(data_dir, sizes, seed)
    return common.cached_lake(root, ".tmp-transform-", lambda at: write_history(at, sizes, seed))


if __name__ == "__main__":
    # `python -m bench.transform.generate DAYS ITEMS SITES LINES DATA_DIR`: prints the manifest
    # of the cached lake (with its folder as `root`).
    sys.exit(common.print_cached_lake(sys.argv[1:], Sizes, cached))
