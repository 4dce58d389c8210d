"""SQL transforms on tiny hand-made Arrow tables."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from services.transformer.transforms import (
    GOLD_DIM_ITEM,
    SILVER_ERP_REQUISITIONS,
    Transform,
)

BRONZE_SCHEMA = pa.schema(
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
        pa.field("_source_row", pa.int32()),
        pa.field("_source_file", pa.string()),
        pa.field("_source_sheet", pa.string()),
        pa.field("_content_sha256", pa.string()),
        pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)  # column order as the ingestor writes it (lineage after _source_row)

INGESTED = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)


def bronze(rows, *, sha="a" * 64, ingested_at=INGESTED, file="export.xlsx"):
    """A bronze batch: each row a dict with the fields the test cares about."""
    defaults = {
        "depot_code": "D1",
        "item_description": "ITEM",
        "item_family": "EPI",
        "supplier_name": None,
        "quantity": 1.0,
        "unit": "UN",
        "required_date": None,
        "request_number": None,
        "requested_date": None,
        "purchased_date": None,
    }
    full = []
    for index, row in enumerate(rows):
        full.append(
            {
                **defaults,
                **row,
                "_source_row": row.get("_source_row", index + 2),
                "_source_file": file,
                "_source_sheet": "CUSTO DE MATERIAL E SERVIÇOS",
                "_content_sha256": sha,
                "_ingested_at": ingested_at,
            }
        )
    return pa.Table.from_pylist(full, schema=BRONZE_SCHEMA)


def by_code(table):
    return {row["item_code"]: row for row in table.to_pylist()}


# --- silver ---------------------------------------------------------------------------------


def test_silver_trims_upper_cases_and_keeps_codes_as_text():
    batch = bronze(
        [
            {
                "depot_code": "  baxyz001 ",
                "item_code": " 010825 ",
                "item_description": "  CABO   FLEXIVEL\t 2,5MM ",
                "item_family": " material eletrico ",
                "supplier_name": "  BAHIA   ELETRICA  LTDA ",
                "unit": " mt ",
                "quantity": 10.0,
                "request_number": " 90001 ",
                "requested_date": date(2025, 1, 6),
            },
            {
                "depot_code": "   ",
                "item_code": "0134",
                "item_family": "Serviços Tomados",
                "supplier_name": "  ",
                "unit": "",
                "request_number": "  ",
            },
        ]
    )
    silver = SILVER_ERP_REQUISITIONS.run(bronze_batch=batch)
    assert silver.schema.equals(SILVER_ERP_REQUISITIONS.schema)
    first, second = silver.to_pylist()
    assert first["depot_code"] == "BAXYZ001"
    assert first["item_code"] == "010825"
    assert first["item_description"] == "CABO FLEXIVEL 2,5MM"
    assert first["item_family"] == "MATERIAL ELETRICO"
    assert first["supplier_name"] == "BAHIA ELETRICA LTDA"
    assert first["unit"] == "MT"
    assert first["request_number"] == "90001"
    assert first["quantity"] == 10.0
    assert first["requested_date"] == date(2025, 1, 6)
    assert second["item_code"] == "0134"
    assert second["item_family"] == "SERVIÇOS TOMADOS"
    # blank text becomes null rather than an empty string
    assert second["depot_code"] is None
    assert second["supplier_name"] is None
    assert second["unit"] is None
    assert second["request_number"] is None


def test_silver_keeps_lineage_and_orders_by_source_row():
    batch = bronze(
        [
            {"item_code": "000003", "_source_row": 9},
            {"item_code": "000001", "_source_row": 4},
            {"item_code": "000002", "_source_row": 6},
        ],
        sha="f" * 64,
    )
    silver = SILVER_ERP_REQUISITIONS.run(bronze_batch=batch)
    assert silver.column("item_code").to_pylist() == ["000001", "000002", "000003"]
    assert silver.column("_source_row").to_pylist() == [4, 6, 9]
    assert silver.column("_content_sha256").to_pylist() == ["f" * 64] * 3
    assert silver.column("_source_file").to_pylist() == ["export.xlsx"] * 3
    assert silver.column("_ingested_at").to_pylist() == [INGESTED] * 3
    assert silver.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC")


def test_silver_accepts_an_empty_batch():
    silver = SILVER_ERP_REQUISITIONS.run(bronze_batch=bronze([]))
    assert silver.num_rows == 0
    assert silver.schema.equals(SILVER_ERP_REQUISITIONS.schema)


def test_silver_accepts_all_null_optional_columns():
    batch = bronze([{"item_code": "1"}])  # dates, supplier, request number all null
    silver = SILVER_ERP_REQUISITIONS.run(bronze_batch=batch)
    assert silver.schema.equals(SILVER_ERP_REQUISITIONS.schema)
    assert silver.column("requested_date").to_pylist() == [None]


# --- gold.dim_item --------------------------------------------------------------------------


def silver_of(*batches):
    return pa.concat_tables(SILVER_ERP_REQUISITIONS.run(bronze_batch=b) for b in batches)


def test_dim_item_has_one_row_per_code_with_latest_description_and_activity():
    silver = silver_of(
        bronze(
            [
                {
                    "item_code": "010825",
                    "item_description": "CABO 2,5",
                    "item_family": "eletrico",
                    "unit": "mt",
                    "quantity": 10.0,
                    "requested_date": date(2025, 1, 6),
                },
                {
                    "item_code": "010825",
                    "item_description": "CABO FLEXIVEL 2,5MM",
                    "item_family": "material eletrico",
                    "unit": "mt",
                    "quantity": 5.5,
                    "requested_date": date(2025, 2, 10),
                },
                {
                    "item_code": "010825",
                    "item_description": "CABO ANTIGO",
                    "quantity": 1.0,
                    "requested_date": date(2024, 11, 30),
                },
                {
                    "item_code": "0134",
                    "item_description": "FRETE",
                    "item_family": "serviços tomados",
                    "unit": "sr",
                    "quantity": 1.0,
                    "requested_date": date(2025, 1, 8),
                },
                {
                    "item_code": "134",
                    "item_description": "OUTRO ITEM",
                    "quantity": 2.0,
                    "requested_date": None,
                },
            ]
        )
    )
    dim = GOLD_DIM_ITEM.run(silver_erp_requisitions=silver)
    assert dim.schema.equals(GOLD_DIM_ITEM.schema)
    assert dim.column("item_code").to_pylist() == ["010825", "0134", "134"]  # text order
    items = by_code(dim)
    cable = items["010825"]
    assert cable["item_description"] == "CABO FLEXIVEL 2,5MM"  # from 2025-02-10, the latest
    assert cable["item_family"] == "MATERIAL ELETRICO"
    assert cable["unit"] == "MT"
    assert cable["first_seen"] == date(2024, 11, 30)
    assert cable["last_seen"] == date(2025, 2, 10)
    assert cable["request_lines"] == 3
    assert cable["total_quantity"] == pytest.approx(16.5)
    assert items["0134"]["request_lines"] == 1
    assert items["0134"]["item_family"] == "SERVIÇOS TOMADOS"
    # a code without leading zero is a different material
    assert items["134"]["item_description"] == "OUTRO ITEM"
    assert items["134"]["first_seen"] is None
    assert items["134"]["last_seen"] is None


def test_dim_item_prefers_a_dated_line_and_then_the_latest_ingest():
    day = date(2025, 1, 1)
    older_file = bronze(
        [{"item_code": "000001", "item_description": "OLD NAME", "requested_date": day}],
        sha="1" * 64,
        ingested_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    newer_file = bronze(
        [
            {"item_code": "000001", "item_description": "NEW NAME", "requested_date": day},
            {"item_code": "000001", "item_description": "UNDATED", "requested_date": None},
        ],
        sha="2" * 64,
        ingested_at=datetime(2025, 2, 2, tzinfo=UTC),
    )
    dim = GOLD_DIM_ITEM.run(silver_erp_requisitions=silver_of(older_file, newer_file))
    (row,) = dim.to_pylist()
    assert row["item_description"] == "NEW NAME"  # same date: the later ingest wins
    assert row["request_lines"] == 3
    # same date and same ingest: the later source row wins
    same_file = bronze(
        [
            {
                "item_code": "000002",
                "item_description": "ROW 2",
                "requested_date": date(2025, 1, 1),
            },
            {
                "item_code": "000002",
                "item_description": "ROW 3",
                "requested_date": date(2025, 1, 1),
            },
        ]
    )
    (row,) = GOLD_DIM_ITEM.run(silver_erp_requisitions=silver_of(same_file)).to_pylist()
    assert row["item_description"] == "ROW 3"


def test_dim_item_reads_an_arrow_dataset_input():
    silver = silver_of(bronze([{"item_code": "000001"}, {"item_code": "000002"}]))
    dim = GOLD_DIM_ITEM.run(silver_erp_requisitions=pads.dataset(silver))
    assert dim.column("item_code").to_pylist() == ["000001", "000002"]


# --- contract of a transform ----------------------------------------------------------------


def test_missing_input_is_refused():
    with pytest.raises(ValueError, match="bronze_batch"):
        SILVER_ERP_REQUISITIONS.run()


def test_schema_drift_in_a_type_raises_type_error():
    schema = GOLD_DIM_ITEM.schema
    index = schema.get_field_index("request_lines")
    wrong = schema.set(index, pa.field("request_lines", pa.int32()))
    drifted = replace(GOLD_DIM_ITEM, schema=wrong)
    silver = silver_of(bronze([{"item_code": "000001"}]))
    with pytest.raises(TypeError, match="dim_item"):
        drifted.run(silver_erp_requisitions=silver)


def test_schema_drift_in_names_or_order_raises_type_error():
    silver = silver_of(bronze([{"item_code": "000001"}]))
    renamed = replace(
        GOLD_DIM_ITEM,
        schema=pa.schema(
            [
                f if f.name != "unit" else pa.field("unit_of_measure", pa.string())
                for f in GOLD_DIM_ITEM.schema
            ]
        ),
    )
    with pytest.raises(TypeError):
        renamed.run(silver_erp_requisitions=silver)
    reordered = replace(GOLD_DIM_ITEM, schema=pa.schema(list(reversed(GOLD_DIM_ITEM.schema))))
    with pytest.raises(TypeError):
        reordered.run(silver_erp_requisitions=silver)
    fewer = replace(GOLD_DIM_ITEM, schema=pa.schema(list(GOLD_DIM_ITEM.schema)[:-1]))
    with pytest.raises(TypeError):
        fewer.run(silver_erp_requisitions=silver)


def test_timestamp_time_zone_drift_raises_type_error():
    schema = SILVER_ERP_REQUISITIONS.schema
    index = schema.get_field_index("_ingested_at")
    local_time = replace(
        SILVER_ERP_REQUISITIONS,
        schema=schema.set(index, pa.field("_ingested_at", pa.timestamp("us", tz="America/Bahia"))),
    )
    with pytest.raises(TypeError):
        local_time.run(bronze_batch=bronze([{"item_code": "1"}]))
    naive = replace(
        SILVER_ERP_REQUISITIONS,
        schema=schema.set(index, pa.field("_ingested_at", pa.timestamp("us"))),
    )
    with pytest.raises(TypeError):
        naive.run(bronze_batch=bronze([{"item_code": "1"}]))


def test_every_transform_has_its_sql_file():
    for transform in (SILVER_ERP_REQUISITIONS, GOLD_DIM_ITEM):
        assert "SELECT" in transform.sql.upper()
    ghost = Transform(layer="gold", table="does_not_exist", inputs=(), schema=pa.schema([]))
    with pytest.raises(FileNotFoundError):
        _ = ghost.sql
