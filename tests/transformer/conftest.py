"""Helpers for the transformer tests: Arrow tables shaped exactly as the ingestor writes bronze,
hand-made silver/gold inputs, bronze objects in a local lake, and table snapshots."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from services.ingestor.contracts import CONTRACTS
from services.ingestor.parsing import ARROW_TYPES
from services.ingestor.service import bronze_path, with_lineage
from services.transformer.transforms import GOLD, SILVER, SILVER_DERIVED
from shared.events import BronzeIngested, new_correlation_id
from shared.settings import StorageSettings
from shared.storage import Lake

T0 = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
SHA_A = "a" * 64


def bronze_table(
    dataset: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    file: str = "export.xlsx",
    sheet: str = "",
    sha: str = SHA_A,
    ingested_at: datetime = T0,
) -> pa.Table:
    """A bronze object's rows: every contract column (missing ones null), `_source_row` (the
    row's own or its position + 2, as under a header on row 1), then the lineage columns."""
    rows = [dict(r) for r in rows]
    contract = CONTRACTS[dataset]
    known = {c.name for c in contract.columns} | {"_source_row"}
    for row in rows:
        if unknown := set(row) - known:
            raise KeyError(f"{dataset} has no column(s) {sorted(unknown)}")
    columns = {
        c.name: pa.array([r.get(c.name) for r in rows], ARROW_TYPES[c.type])
        for c in contract.columns
    }
    columns["_source_row"] = pa.array(
        [r.get("_source_row", i + 2) for i, r in enumerate(rows)], pa.int32()
    )
    return with_lineage(pa.table(columns), file, sheet, sha, ingested_at)


def table_of(schema: pa.Schema, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """An Arrow table of `schema` from dicts; fields a row leaves out are null."""
    rows = [dict(r) for r in rows]
    for row in rows:
        if unknown := set(row) - set(schema.names):
            raise KeyError(f"schema has no field(s) {sorted(unknown)}")
    arrays = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}
    return pa.table(arrays, schema=schema)


def silver_schema(table: str) -> pa.Schema:
    if table in SILVER:
        return SILVER[table].schema
    return next(t.schema for t in SILVER_DERIVED.values() if t.table == table)


def gold_schema(table: str) -> pa.Schema:
    return GOLD[table].schema


def month_start(day: date | None) -> date | None:
    return None if day is None else day.replace(day=1)


# --- a local lake and bronze objects as the ingestor writes them ---------------------------


@pytest.fixture
def lake(tmp_path):
    return Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))


def content_sha(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def write_bronze(lake: Lake, dataset: str, table: pa.Table, source_name: str) -> BronzeIngested:
    """Write one bronze object (its path from its lineage columns) and return its event."""
    sha = table.column("_content_sha256")[0].as_py()
    ingested_at = table.column("_ingested_at")[0].as_py()
    path = bronze_path(dataset, sha, ingested_at)
    lake.write_parquet(path, table)
    return BronzeIngested(
        producer="ingestor",
        correlation_id=new_correlation_id(),
        dataset=dataset,
        bronze_path=path,
        content_sha256=sha,
        source_name=source_name,
        row_count=table.num_rows,
    )


def canonical(table: pa.Table) -> pa.Table:
    """Columns by name, rows sorted by the non-float columns first (a unique key in every
    silver and gold table), then the floats."""
    names = sorted(table.column_names)
    floats = [n for n in names if pa.types.is_floating(table.schema.field(n).type)]
    keys = [n for n in names if n not in floats] + floats
    return table.select(names).sort_by([(n, "ascending") for n in keys])


def snapshot(lake: Lake) -> dict[str, pa.Table | None]:
    """Every silver and gold table of the registry in canonical form; None if never written."""
    names = [("silver", n) for n in SILVER]
    names += [("silver", t.table) for t in SILVER_DERIVED.values()]
    names += [("gold", n) for n in GOLD]
    found: dict[str, pa.Table | None] = {}
    for layer, name in names:
        table = lake.delta_table(layer, name)
        found[f"{layer}.{name}"] = None if table is None else canonical(table.to_pyarrow_table())
    return found


def assert_same_tables(got: dict[str, pa.Table | None], want: dict[str, pa.Table | None]) -> None:
    """Equal snapshots: every value exact, except floats to 1e-9 relative (DuckDB's parallel
    aggregates may sum in another order, which moves the last bit)."""
    assert got.keys() == want.keys()
    for name, expected in want.items():
        actual = got[name]
        if expected is None or actual is None:
            assert actual is expected, name
            continue
        assert actual.schema == expected.schema, name
        assert actual.num_rows == expected.num_rows, name
        for column in expected.column_names:
            a, b = actual.column(column), expected.column(column)
            if pa.types.is_floating(a.type):
                x = a.to_numpy(zero_copy_only=False).astype(float)
                y = b.to_numpy(zero_copy_only=False).astype(float)
                same = np.isclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)
            elif a.equals(b):
                continue
            else:  # find the first difference to show it
                same = np.array([u == v for u, v in zip(a.to_pylist(), b.to_pylist(), strict=True)])
            if not same.all():
                row = int(np.argmin(same))
                got_row, want_row = actual.slice(row, 1).to_pylist(), expected.slice(row, 1)
                raise AssertionError(
                    f"{name}.{column} differs at row {row}: {a[row]} != {b[row]}\n"
                    f"got  {got_row}\nwant {want_row.to_pylist()}"
                )
