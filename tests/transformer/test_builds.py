"""Builder on a local lake, fed bronze objects written as the ingestor writes them: redelivery,
latest-ingested-wins, incremental == full rebuild in any order, time travel, commit metadata."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from services.ingestor.contracts import CONTRACTS, ERP_COST_SUMMARY, ERP_REQUISITIONS, ERP_SITES
from services.ingestor.json_reader import read_json
from services.ingestor.service import sha256_file, with_lineage
from services.ingestor.workbook import read_workbook
from services.transformer.builds import Builder, BuildResult, UnknownDatasetError, gold_targets
from services.transformer.transforms import SILVER
from shared.events import BronzeIngested
from shared.settings import StorageSettings
from shared.storage import Lake
from tests.conftest import REAL_DATA
from tests.transformer.conftest import (
    T0,
    assert_same_tables,
    bronze_table,
    content_sha,
    snapshot,
    write_bronze,
)

Bronze = tuple[str, pa.Table, str]  # dataset, bronze rows, source file name


def bronze(dataset: str, name: str, hours: int, rows: list[dict]) -> Bronze:
    """One source file's bronze object, ingested `hours` after T0."""
    at = T0 + timedelta(hours=hours)
    sha = content_sha(dataset, name, rows)
    return dataset, bronze_table(dataset, rows, file=name, sha=sha, ingested_at=at), name


def line(depot, item, request, quantity, requested, purchased=None, supplier=None, **more):
    return {"depot_code": depot, "item_code": item, "request_number": request,
            "quantity": quantity, "requested_date": requested, "purchased_date": purchased,
            "supplier_name": supplier, "item_description": more.pop("description", "ITEM " + item),
            "item_family": more.pop("family", "EPI"), "unit": "UN", **more}  # fmt: skip


def d(month: int, day: int) -> date:
    return date(2025, month, day)


REQ_JAN_FEB = bronze(
    "erp_requisitions",
    "req_jan_feb.xlsx",
    0,
    [
        line("GERBA", "010825", "R1", 10.0, d(1, 6), d(1, 10), "ALFA"),
        line("GERBA", "010825", "R1", 5.0, d(1, 6)),  # its twin: line 2 of (R1, 010825, GERBA)
        line("BAJSS002-3", "0134", "R2", 2.0, d(1, 15), d(1, 20), "BETA"),
        line("ALMOX-BA", "020001", "R3", 4.0, d(2, 3), d(2, 5), "ALFA"),
        line("ALMOX-BA", "020001", "R4", 1.0, d(2, 10)),
    ],
)
REQ_FEB_MAR = bronze(
    "erp_requisitions",
    "req_feb_mar.xlsx",
    1,
    [
        line("ALMOX-BA", "020001", "R3", 6.0, d(2, 3), d(2, 6), "ALFA", description="LUVA NOVA"),
        line("GERBA", "030003", "R5", 3.0, d(3, 3), d(3, 1), "GAMA"),  # bought before requested
        line(None, "0134", "R6", 1.0, None),  # no request date: month unknown
        line("ESCRITORIO", "010825", "R7", 2.0, d(3, 17)),
    ],
)
SITES = bronze(
    "erp_sites",
    "sites.xlsx",
    2,
    [
        {"site_code": "BAJSS002-3", "site_id": "1", "client_name": "CLARO", "client_id": "7"},
        {"site_code": "GERBA", "site_id": "2", "client_name": "TIM", "client_id": "8"},
    ],
)
STOCK = bronze(
    "stock_on_hand",
    "saldo.csv",
    3,
    [
        {"snapshot_date": d(2, 28), "depot_code": "GERBA", "item_code": "010825",
         "quantity_on_hand": 40.0, "average_cost_brl": 2.5},
        {"snapshot_date": d(2, 28), "depot_code": "ALMOX-BA", "item_code": "020001",
         "quantity_on_hand": 3.0, "average_cost_brl": 10.0},
    ],
)  # fmt: skip
SELIC = bronze(
    "selic",
    "selic.json",
    4,
    [{"rate_date": day, "rate_pct": rate}  # Fri 31 Jan .. Mon 3 Feb: a weekend to carry over
     for day, rate in ((d(1, 30), 12.15), (d(1, 31), 13.15), (d(2, 3), 13.15), (d(2, 4), 13.15))],
)  # fmt: skip
PTAX = bronze(
    "ptax_usd",
    "ptax.json",
    5,
    [
        {"quoted_at": datetime(2025, 1, 31, 10), "buy_rate": 5.85, "sell_rate": 5.86,
         "bulletin_type": "Abertura"},
        {"quoted_at": datetime(2025, 1, 31, 13), "buy_rate": 5.83, "sell_rate": 5.84,
         "bulletin_type": "Fechamento"},
        {"quoted_at": datetime(2025, 2, 3, 11), "buy_rate": 5.79, "sell_rate": 5.80,
         "bulletin_type": "Intermediário"},
    ],
)  # fmt: skip
WEATHER = bronze(
    "weather_hourly",
    "openmeteo.json",
    6,
    [{"observed_at": at, "latitude": -12.970122, "longitude": -38.45456, "temperature_c": t,
      "relative_humidity_pct": 80.0, "precipitation_mm": 0.1, "wind_speed_kmh": 9.0}
     for at, t in ((datetime(2025, 1, 31, 0), 25.0), (datetime(2025, 1, 31, 1), 24.0),
                   (datetime(2025, 2, 1, 0), 26.0))],
)  # fmt: skip
IPCA = bronze(
    "ipca",
    "ipca.json",
    7,
    [
        {"month": d(1, 1), "value_pct": 0.16, "variable_code": "63", "variable": "IPCA"},
        {"month": d(2, 1), "value_pct": 1.31, "variable_code": "63", "variable": "IPCA"},
    ],
)
REQ_JAN_FIX = bronze(  # corrects R1's first line (same key), leaves its twin alone
    "erp_requisitions",
    "req_jan_fix.xlsx",
    8,
    [line("GERBA", "010825", "R1", 12.0, d(1, 6), d(1, 9), "ALFA", description="CABO NOVO")],
)
SITES_FIX = bronze(
    "erp_sites",
    "sites_fix.xlsx",
    9,
    [{"site_code": "GERBA", "site_id": "2", "client_name": "VIVO", "client_id": "9"}],
)
ALL = [REQ_JAN_FEB, REQ_FEB_MAR, SITES, STOCK, SELIC, PTAX, WEATHER, IPCA, REQ_JAN_FIX, SITES_FIX]


def new_lake(path) -> Lake:
    return Lake.from_settings(StorageSettings(local_root=path))


def write_all(lake: Lake, objects: Iterable[Bronze]) -> list[BronzeIngested]:
    return [write_bronze(lake, dataset, table, name) for dataset, table, name in objects]


def apply(builder: Builder, event: BronzeIngested) -> BuildResult:
    result = builder.apply_bronze_event(event)
    # a blocked gate keeps gold at its old versions, which would make tables differ for a
    # reason other than the one under test
    assert not result.quality_blocked, result.quality_failures
    return result


def rows(lake: Lake, layer: str, name: str) -> list[dict]:
    return lake.delta_table(layer, name).to_pyarrow_table().to_pylist()


@dataclass(frozen=True)
class Built:
    lake: Lake
    events: list[BronzeIngested]
    results: list[BuildResult]


def build_incrementally(path, order: list[int]) -> Built:
    lake = new_lake(path)
    events = write_all(lake, ALL)
    builder = Builder(lake)
    results = [apply(builder, events[i]) for i in order]
    return Built(lake, events, results)


@pytest.fixture(scope="module")
def as_ingested(tmp_path_factory) -> Built:
    """All the bronze objects applied one by one in the order they were ingested; read only."""
    return build_incrementally(
        tmp_path_factory.mktemp("as_ingested") / "lake", list(range(len(ALL)))
    )


@pytest.fixture(scope="module")
def full_rebuild(tmp_path_factory) -> dict:
    """Every table after ONE rebuild_all over all the bronze objects."""
    lake = new_lake(tmp_path_factory.mktemp("full") / "lake")
    write_all(lake, ALL)
    result = Builder(lake).rebuild_all()
    assert not result.quality_blocked, result.quality_failures
    return snapshot(lake)


def test_redelivered_event_changes_no_table_content(lake):
    events = write_all(lake, [REQ_JAN_FEB, SELIC])
    builder = Builder(lake)
    results = [apply(builder, e) for e in events]
    before = snapshot(lake)

    again = apply(builder, events[0])

    assert_same_tables(snapshot(lake), before)
    assert again.build_id != results[0].build_id
    # it did commit again (a new version of each table it touched), with the same rows
    first = {t.table: t for t in results[0].tables if t.table != "gold.dq_results"}
    second = {t.table: t for t in again.tables if t.table != "gold.dq_results"}
    assert second.keys() == first.keys()
    assert all(second[t].version > first[t].version for t in first)
    assert all(second[t].row_count == before[t].num_rows for t in second)


def test_later_file_replaces_overlapping_keys_and_keeps_the_others(as_ingested):
    lake = as_ingested.lake
    silver = sorted(
        (r["_business_key"], r["quantity"], r["_source_file"])
        for r in rows(lake, "silver", "erp_requisitions")
    )
    assert silver == [
        ("R1|010825|GERBA|1", 12.0, "req_jan_fix.xlsx"),  # replaced by the later file
        ("R1|010825|GERBA|2", 5.0, "req_jan_feb.xlsx"),  # its twin line stays
        ("R2|0134|BAJSS002-3|1", 2.0, "req_jan_feb.xlsx"),
        ("R3|020001|ALMOX-BA|1", 6.0, "req_feb_mar.xlsx"),  # replaced
        ("R4|020001|ALMOX-BA|1", 1.0, "req_jan_feb.xlsx"),
        ("R5|030003|GERBA|1", 3.0, "req_feb_mar.xlsx"),
        ("R6|0134||1", 1.0, "req_feb_mar.xlsx"),  # no depot, no request date
        ("R7|010825|ESCRITORIO|1", 2.0, "req_feb_mar.xlsx"),
    ]
    demand = sorted(
        (r["demand_date"], r["item_code"], r["site_code"], r["quantity"])
        for r in rows(lake, "gold", "fact_demand")
    )
    assert demand == [
        (d(1, 6), "010825", "GERBA", 17.0),  # 12 + 5
        (d(1, 15), "0134", "BAJSS002-3", 2.0),
        (d(2, 3), "020001", "ALMOX-BA", 6.0),
        (d(2, 10), "020001", "ALMOX-BA", 1.0),
        (d(3, 3), "030003", "GERBA", 3.0),
        (d(3, 17), "010825", "ESCRITORIO", 2.0),
    ]
    items = {r["item_code"]: r for r in rows(lake, "gold", "dim_item")}
    assert items["010825"]["item_description"] == "ITEM 010825"  # R7 (17 Mar) is the latest
    # R3's 4 replaced by 6, plus R4's 1; R4 (10 Feb) is the latest line, so its description
    assert (items["020001"]["total_quantity"], items["020001"]["request_lines"]) == (7.0, 2)
    assert items["020001"]["item_description"] == "ITEM 020001"
    sites = {r["site_code"]: r["client_name"] for r in rows(lake, "gold", "dim_site")}
    assert sites["GERBA"] == "VIVO"  # the later sites file
    assert sites["BAJSS002-3"] == "CLARO"  # kept from the first one


def test_full_rebuild_contents(full_rebuild):
    """Hand-checked values of the full rebuild the incremental builds are compared to."""
    external = {r["calendar_date"]: r for r in full_rebuild["gold.fact_external_daily"].to_pylist()}
    saturday = external[d(2, 1)]
    assert (saturday["selic_rate_pct"], saturday["selic_is_carried"]) == (13.15, True)
    assert (saturday["ptax_usd_sell"], saturday["ptax_is_carried"]) == (5.84, True)
    assert saturday["ipca_month_pct"] == 1.31
    assert saturday["temperature_mean_c"] == 26.0
    assert external[d(1, 31)]["temperature_mean_c"] == 24.5
    assert max(external) == d(2, 4)  # the last day a source knows
    sites = {r["site_code"]: r["client_name"] for r in full_rebuild["gold.dim_site"].to_pylist()}
    assert (sites["GERBA"], sites["BAJSS002-3"]) == ("VIVO", "CLARO")
    dates = [r["calendar_date"] for r in full_rebuild["gold.dim_date"].to_pylist()]
    # first day of any dated silver table (R1, 6 Jan) to a year after the last (R7, 17 Mar)
    assert (min(dates), max(dates)) == (d(1, 6), date(2026, 3, 17))
    stock = sorted(r["stock_value_brl"] for r in full_rebuild["gold.fact_stock"].to_pylist())
    assert stock == [30.0, 100.0]  # 3 x 10, 40 x 2.5


def test_incremental_builds_equal_a_full_rebuild(as_ingested, full_rebuild):
    incremental = snapshot(as_ingested.lake)

    assert_same_tables(incremental, full_rebuild)
    # not vacuous: every table these datasets feed has rows
    assert {t for t, found in incremental.items() if found is None or not found.num_rows} == {
        "silver.erp_cost_summary",
        "silver.stock_movements",
    }


def test_incremental_builds_in_reverse_order_equal_a_full_rebuild(tmp_path, full_rebuild):
    # the latest-ingested file applied first: the tie-breaks, not the arrival order, decide
    built = build_incrementally(tmp_path / "lake", list(reversed(range(len(ALL)))))

    assert_same_tables(snapshot(built.lake), full_rebuild)


def test_earlier_gold_version_stays_readable(as_ingested):
    lake = as_ingested.lake
    (version,) = [t.version for t in as_ingested.results[0].tables if t.table == "gold.dim_item"]

    old = lake.delta_table("gold", "dim_item", version=version).to_pyarrow_table()
    latest = lake.delta_table("gold", "dim_item")

    assert latest.version() > version
    assert sorted(old.column("item_code").to_pylist()) == ["010825", "0134", "020001"]
    new = latest.to_pyarrow_table()
    assert sorted(new.column("item_code").to_pylist()) == ["010825", "0134", "020001", "030003"]
    old_010825 = next(r for r in old.to_pylist() if r["item_code"] == "010825")
    assert old_010825["total_quantity"] == 15.0  # 10 + 5 before the fix and R7


def test_commit_metadata_names_the_build_and_the_bronze_path(as_ingested):
    lake = as_ingested.lake
    last_requisitions = ALL.index(REQ_JAN_FIX)  # the last requisitions event applied
    event, result = as_ingested.events[last_requisitions], as_ingested.results[last_requisitions]

    (silver,) = lake.delta_table("silver", "erp_requisitions").history(1)

    assert silver["build_id"] == result.build_id
    assert silver["source_bronze_paths"] == event.bronze_path
    assert silver["source_event_id"] == event.event_id
    assert silver["correlation_id"] == event.correlation_id
    assert silver["rows_written"] == "3"  # January's rows: R1 line 1 (fixed), R1 line 2, R2
    assert silver["months"] == "2025-01-01"
    # gold.dim_site was last built by the last sites event
    (gold,) = lake.delta_table("gold", "dim_site").history(1)
    assert gold["build_id"] == as_ingested.results[-1].build_id
    assert gold["source_bronze_paths"] == as_ingested.events[-1].bronze_path


def test_unknown_dataset_raises_and_writes_nothing(lake):
    (event,) = write_all(lake, [REQ_JAN_FEB])
    with pytest.raises(UnknownDatasetError, match="erp_stock"):
        Builder(lake).apply_bronze_event(event.model_copy(update={"dataset": "erp_stock"}))
    assert lake.list_files("silver") == []
    assert lake.list_files("gold") == []


EXTERNAL = ["dim_date", "fact_external_daily", "mart_features"]
GOLD_TARGETS = {
    "erp_requisitions": ["fact_demand", "fact_lead_time", "dim_item", "dim_site", "dim_supplier",
                         "dim_date", "fact_external_daily", "mart_features"],
    "erp_cost_summary": [],
    "erp_sites": ["dim_site"],
    "stock_movements": EXTERNAL,  # its dates widen the calendar
    # its depots are sites too
    "stock_on_hand": ["dim_site", "dim_date", "fact_external_daily", "fact_stock",
                      "mart_features"],
    "weather_hourly": EXTERNAL,
    "selic": EXTERNAL,
    "ptax_usd": EXTERNAL,
    "ipca": ["fact_external_daily", "mart_features"],
}  # fmt: skip


@pytest.mark.parametrize("dataset", list(GOLD_TARGETS))
def test_gold_targets_per_dataset(dataset):
    assert gold_targets({dataset}) == GOLD_TARGETS[dataset]


def test_every_dataset_has_a_silver_transform_and_listed_targets():
    assert set(CONTRACTS) == set(SILVER) == set(GOLD_TARGETS)
    # several datasets at once: the union, still in dependency order
    assert gold_targets({"erp_sites", "ipca"}) == ["dim_site", "fact_external_daily",
                                                   "mart_features"]  # fmt: skip


# --- the real files ----------------------------------------------------------------------------

REAL_EXTERNAL = {
    "weather_hourly": "openmeteo_salvador_ba.json",
    "selic": "bacen_selic.json",
    "ptax_usd": "bacen_ptax_usd.json",
    "ipca": "ibge_ipca.json",
}


def real_bronze() -> list[Bronze]:
    """The real workbook's three sheets and the four external files, parsed as the ingestor
    parses them, each file ingested at its own time."""
    workbook = REAL_DATA / "erp" / "dadosSuprimentos.xlsx"
    missing = [p for p in (workbook, *(REAL_DATA / "external" / f for f in REAL_EXTERNAL.values()))
               if not p.is_file()]  # fmt: skip
    if missing:
        pytest.skip(f"real data not present ({missing[0]}; it lives outside the repo)")
    objects: list[Bronze] = []
    sha = sha256_file(workbook)
    sheets = read_workbook(
        workbook.read_bytes(),
        [ERP_REQUISITIONS, ERP_COST_SUMMARY, ERP_SITES],
        max_uncompressed_bytes=512 * 1024 * 1024,
    )
    for sheet in sheets:
        table = with_lineage(sheet.table, workbook.name, sheet.sheet, sha, T0)
        objects.append((sheet.dataset, table, workbook.name))
    for hours, (dataset, name) in enumerate(REAL_EXTERNAL.items(), start=1):
        path = REAL_DATA / "external" / name
        _, table = read_json(path.read_bytes(), [CONTRACTS[dataset]])
        table = with_lineage(table, name, "", sha256_file(path), T0 + timedelta(hours=hours))
        objects.append((dataset, table, name))
    return objects


def test_real_files_incremental_equals_full_rebuild(tmp_path):
    objects = real_bronze()
    assert sorted(o[0] for o in objects) == sorted(
        ["erp_requisitions", "erp_cost_summary", "erp_sites", *REAL_EXTERNAL]
    )

    incremental_lake = new_lake(tmp_path / "incremental")
    builder = Builder(incremental_lake)
    for event in write_all(incremental_lake, objects):
        apply(builder, event)
    full_lake = new_lake(tmp_path / "full")
    write_all(full_lake, objects)
    assert not Builder(full_lake).rebuild_all().quality_blocked

    silver = full_lake.delta_table("silver", "erp_requisitions")
    assert silver.count() == 4207
    dim_item = full_lake.delta_table("gold", "dim_item").to_pyarrow_table()
    assert dim_item.num_rows == 879
    assert len(dim_item.column("item_code").unique()) == 879
    assert_same_tables(snapshot(incremental_lake), snapshot(full_lake))


def test_lines_without_a_request_number_are_never_merged_across_files(lake):
    """Two daily exports each with a line the ERP left without a request number (same item
    and depot, no date): both are demand, neither replaces the other; re-ingesting one of the
    files replaces only its own line."""
    line = {"item_code": "0134", "item_description": "FRETE", "item_family": "SERVICOS",
            "depot_code": "GERBA", "quantity": 1.0}  # fmt: skip
    builder = Builder(lake)
    events = []
    for day, name in ((1, "monday.xlsx"), (2, "tuesday.xlsx")):
        sha = content_sha(name)
        at = datetime(2025, 3, day, 12, tzinfo=UTC)
        table = bronze_table("erp_requisitions", [line], file=name, sha=sha, ingested_at=at)
        events.append(write_bronze(lake, "erp_requisitions", table, name))
    for event in [*events, events[0]]:  # the second monday delivery is a redelivery
        assert not builder.apply_bronze_event(event).quality_blocked
    silver = sorted(r["_source_file"] for r in rows(lake, "silver", "erp_requisitions"))
    assert silver == ["monday.xlsx", "tuesday.xlsx"]
