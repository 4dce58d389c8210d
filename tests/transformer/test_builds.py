"""apply_bronze_event on a local lake: idempotent redelivery, accumulation, unknown datasets."""

import hashlib
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.parsing import find_header, rows_to_table
from services.ingestor.service import bronze_path, with_lineage
from services.transformer.builds import UnknownDatasetError, apply_bronze_event
from shared.events import BronzeIngested, new_correlation_id
from shared.settings import StorageSettings
from shared.storage import Lake

HEADER = ("DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO")


@pytest.fixture
def lake(tmp_path):
    return Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))


def ingest(lake, name, rows, when=datetime(2025, 3, 7, 12, tzinfo=UTC)):
    """What the ingestor does for one file, without the workbook: bronze object + event."""
    digest = hashlib.sha256(repr((name, rows)).encode()).hexdigest()
    sheet = [HEADER, *rows]
    header = find_header(sheet, ERP_REQUISITIONS)
    table = rows_to_table(sheet[header.row_number :], header)
    table = with_lineage(table, name, "CUSTO DE MATERIAL E SERVIÇOS", digest, when)
    path = bronze_path("erp_requisitions", digest, when)
    lake.write_parquet(path, table)
    return BronzeIngested(
        producer="ingestor",
        correlation_id=new_correlation_id(),
        dataset="erp_requisitions",
        bronze_path=path,
        content_sha256=digest,
        source_name=name,
        row_count=table.num_rows,
    )


FILE_A = [
    ("BAXYZ001", "010825", "CABO FLEXIVEL", "MATERIAL ELETRICO", 10, "06/01/2025"),
    ("N/A", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, "07/01/2025"),
    ("GERBA", "010825", "CABO FLEXIVEL 2,5MM", "material eletrico", "2,5", "08/01/2025"),
]
FILE_B = [
    ("BAXYZ002", "010825", "CABO FLEXIVEL 2,5MM NOVO", "MATERIAL ELETRICO", 4, "01/02/2025"),
    ("BAXYZ002", "020001", "LUVA VAQUETA", "EPI", 2, "02/02/2025"),
]


def contents(lake, layer, name, sort_keys=("item_code", "_source_file", "_source_row")):
    table = lake.delta_table(layer, name).to_pyarrow_table()
    keys = [k for k in sort_keys if k in table.column_names]
    return sorted(table.to_pylist(), key=lambda r: tuple(r[k] for k in keys))


def test_first_event_builds_silver_and_gold(lake):
    event = ingest(lake, "a.xlsx", FILE_A)
    result = apply_bronze_event(lake, event)

    assert len(result.build_id) == 32
    assert [(t.table, t.version, t.row_count) for t in result.tables] == [
        ("silver.erp_requisitions", 0, 3),
        ("gold.dim_item", 0, 2),
    ]
    silver = contents(lake, "silver", "erp_requisitions")
    assert [r["item_code"] for r in silver] == ["010825", "010825", "0134"]
    assert {r["_content_sha256"] for r in silver} == {event.content_sha256}
    gold = {r["item_code"]: r for r in contents(lake, "gold", "dim_item")}
    assert gold["010825"]["item_description"] == "CABO FLEXIVEL 2,5MM"
    assert gold["010825"]["request_lines"] == 2
    assert gold["010825"]["total_quantity"] == pytest.approx(12.5)
    assert gold["010825"]["first_seen"] == date(2025, 1, 6)
    assert gold["0134"]["item_family"] == "SERVIÇOS TOMADOS"

    # every commit says which build and which event made it
    for layer, name in (("silver", "erp_requisitions"), ("gold", "dim_item")):
        (commit,) = lake.delta_table(layer, name).history(1)
        assert commit["build_id"] == result.build_id
        assert commit["correlation_id"] == event.correlation_id
        assert commit["source_event_id"] == event.event_id
        assert commit["source_bronze_path"] == event.bronze_path


def test_redelivered_event_leaves_the_contents_unchanged(lake):
    event = ingest(lake, "a.xlsx", FILE_A)
    first = apply_bronze_event(lake, event)
    silver_before = contents(lake, "silver", "erp_requisitions")
    gold_before = contents(lake, "gold", "dim_item")

    second = apply_bronze_event(lake, event)

    assert second.build_id != first.build_id
    assert contents(lake, "silver", "erp_requisitions") == silver_before
    assert contents(lake, "gold", "dim_item") == gold_before
    assert [t.row_count for t in second.tables] == [t.row_count for t in first.tables]
    # new versions are committed, but with the same rows
    assert [t.version for t in second.tables] == [t.version + 1 for t in first.tables]


def test_two_files_accumulate_and_redelivery_of_the_first_keeps_the_second(lake):
    event_a = ingest(lake, "a.xlsx", FILE_A)
    event_b = ingest(lake, "b.xlsx", FILE_B, when=datetime(2025, 3, 8, 9, tzinfo=UTC))
    apply_bronze_event(lake, event_a)
    result = apply_bronze_event(lake, event_b)

    assert [(t.table, t.row_count) for t in result.tables] == [
        ("silver.erp_requisitions", 5),
        ("gold.dim_item", 3),
    ]
    silver = contents(lake, "silver", "erp_requisitions")
    assert sorted({r["_source_file"] for r in silver}) == ["a.xlsx", "b.xlsx"]
    gold = {r["item_code"]: r for r in contents(lake, "gold", "dim_item")}
    assert set(gold) == {"010825", "0134", "020001"}
    assert gold["010825"]["request_lines"] == 3
    assert gold["010825"]["item_description"] == "CABO FLEXIVEL 2,5MM NOVO"
    assert gold["010825"]["last_seen"] == date(2025, 2, 1)
    assert gold["010825"]["total_quantity"] == pytest.approx(16.5)

    silver_before = contents(lake, "silver", "erp_requisitions")
    gold_before = contents(lake, "gold", "dim_item")
    apply_bronze_event(lake, event_a)  # late redelivery of the first file
    assert contents(lake, "silver", "erp_requisitions") == silver_before
    assert contents(lake, "gold", "dim_item") == gold_before


def test_previous_gold_version_stays_readable(lake):
    first = apply_bronze_event(lake, ingest(lake, "a.xlsx", FILE_A))
    apply_bronze_event(lake, ingest(lake, "b.xlsx", FILE_B))
    gold_version = first.tables[1].version
    old = lake.delta_table("gold", "dim_item", version=gold_version).to_pyarrow_table()
    assert sorted(old.column("item_code").to_pylist()) == ["010825", "0134"]


def test_content_sha_with_a_quote_is_escaped(lake):
    event = ingest(lake, "a.xlsx", FILE_A)
    apply_bronze_event(lake, event)
    # A second bronze object whose hash holds a quote: an unescaped predicate would either
    # fail or match every row (`... = 'x' OR '1'='1'`) and wipe the first file's rows.
    tricky_sha = "x' OR '1'='1"
    table = lake.read_parquet(event.bronze_path)
    index = table.schema.get_field_index("_content_sha256")
    tricky_table = table.set_column(
        index, "_content_sha256", pa.array([tricky_sha] * table.num_rows, pa.string())
    )
    tricky_path = event.bronze_path.replace(".parquet", "-tricky.parquet")
    lake.write_parquet(tricky_path, tricky_table)
    tricky = event.model_copy(update={"content_sha256": tricky_sha, "bronze_path": tricky_path})

    apply_bronze_event(lake, tricky)
    apply_bronze_event(lake, tricky)

    shas = [r["_content_sha256"] for r in contents(lake, "silver", "erp_requisitions")]
    assert sorted(shas) == sorted([event.content_sha256] * 3 + [tricky_sha] * 3)


def test_unknown_dataset_raises_and_writes_nothing(lake):
    event = ingest(lake, "a.xlsx", FILE_A).model_copy(update={"dataset": "erp_stock"})
    with pytest.raises(UnknownDatasetError, match="erp_stock"):
        apply_bronze_event(lake, event)
    assert lake.delta_table("silver", "erp_requisitions") is None
    assert lake.delta_table("gold", "dim_item") is None
