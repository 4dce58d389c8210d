"""Named SQL transforms and the schema each one promises.

Each transform is a `.sql` file under `sql/<layer>/<table>.sql` that reads named input
relations and returns one table; the schema beside it is checked on every run so that a change
to the SQL cannot silently change what downstream readers get.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class Transform:
    layer: str
    table: str
    inputs: tuple[str, ...]
    schema: pa.Schema

    @property
    def sql(self) -> str:
        resource = files("services.transformer") / "sql" / self.layer / f"{self.table}.sql"
        return resource.read_text(encoding="utf-8")

    def run(self, **inputs: Any) -> pa.Table:
        """Run the SQL over Arrow tables/datasets given by input name; check the schema."""
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"{self.layer}.{self.table} needs inputs {sorted(missing)}")
        with duckdb.connect(":memory:") as con:
            for name in self.inputs:
                con.register(name, inputs[name])
            result = con.sql(self.sql).to_arrow_table()
        if not _same_shape(result.schema, self.schema):
            raise TypeError(
                f"{self.layer}.{self.table} produced\n{result.schema}\nbut promises\n{self.schema}"
            )
        return result.cast(self.schema)


def _same_type(produced: pa.DataType, promised: pa.DataType) -> bool:
    if pa.types.is_timestamp(produced) and pa.types.is_timestamp(promised):
        # DuckDB names UTC "Etc/UTC"; the instant is the same.
        utc = {"UTC", "Etc/UTC", "+00:00"}
        return produced.unit == promised.unit and (
            produced.tz == promised.tz or {produced.tz, promised.tz} <= utc
        )
    return produced.equals(promised)


def _same_shape(produced: pa.Schema, promised: pa.Schema) -> bool:
    return produced.names == promised.names and all(
        _same_type(a.type, b.type) for a, b in zip(produced, promised, strict=True)
    )


LINEAGE_FIELDS = [
    pa.field("_source_file", pa.string()),
    pa.field("_source_sheet", pa.string()),
    pa.field("_source_row", pa.int32()),
    pa.field("_content_sha256", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
]

SILVER_ERP_REQUISITIONS = Transform(
    layer="silver",
    table="erp_requisitions",
    inputs=("bronze_batch",),
    schema=pa.schema(
        [
            pa.field("depot_code", pa.string()),
            pa.field("item_code", pa.string()),
            pa.field("item_description", pa.string()),
            pa.field("item_family", pa.string()),
            pa.field("supplier_name", pa.string()),
            pa.field("quantity", pa.float64()),
            pa.field("unit", pa.string()),
            pa.field("required_date", pa.date32()),
            pa.field("request_number", pa.string()),
            pa.field("requested_date", pa.date32()),
            pa.field("purchased_date", pa.date32()),
            *LINEAGE_FIELDS,
        ]
    ),
)

GOLD_DIM_ITEM = Transform(
    layer="gold",
    table="dim_item",
    inputs=("silver_erp_requisitions",),
    schema=pa.schema(
        [
            pa.field("item_code", pa.string()),
            pa.field("item_description", pa.string()),
            pa.field("item_family", pa.string()),
            pa.field("unit", pa.string()),
            pa.field("first_seen", pa.date32()),
            pa.field("last_seen", pa.date32()),
            pa.field("request_lines", pa.int64()),
            pa.field("total_quantity", pa.float64()),
        ]
    ),
)
