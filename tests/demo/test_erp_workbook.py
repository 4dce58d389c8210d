"""The generated demo workbook looks like the real ERP export and the ingestor reads it."""

from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from services.demo.erp_workbook import (
    REQUISITION_HEADERS,
    REQUISITIONS_SHEET,
    SITE_HEADERS,
    SITES_SHEET,
    SUMMARY_SHEET,
    generate_demo_workbook,
)
from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.workbook import read_workbook
from shared.settings import IngestorSettings

SMALL = {"items": 60, "depots": 20, "days": 120}
END = date(2025, 10, 31)


def sheet_values(path):
    """Every sheet's title, state and cell values: the content, not the bytes."""
    workbook = load_workbook(path)
    try:
        return [
            (sheet.title, sheet.sheet_state, [tuple(r) for r in sheet.iter_rows(values_only=True)])
            for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return generate_demo_workbook(out, seed=7, end=END, **SMALL)


@pytest.fixture(scope="module")
def workbook(demo):
    loaded = load_workbook(demo.path)
    yield loaded
    loaded.close()


def test_same_seed_gives_the_same_content(demo, tmp_path):
    again = generate_demo_workbook(tmp_path, seed=7, end=END, **SMALL)
    assert again.path.name == demo.path.name
    assert again.requisition_rows == demo.requisition_rows
    assert sheet_values(again.path) == sheet_values(demo.path)


def test_another_seed_gives_other_content(demo, tmp_path):
    other = generate_demo_workbook(tmp_path, seed=8, end=END, **SMALL)
    ours = dict((t, rows) for t, _, rows in sheet_values(demo.path))
    theirs = dict((t, rows) for t, _, rows in sheet_values(other.path))
    assert ours[REQUISITIONS_SHEET] != theirs[REQUISITIONS_SHEET]
    assert ours[REQUISITIONS_SHEET][0] == theirs[REQUISITIONS_SHEET][0]  # same header


def test_sheet_names_are_the_real_ones(workbook):
    assert workbook.sheetnames == [
        "CUSTO DE MATERIAL E SERVIÇOS",
        "RESUMO GERAL",
        "DADOS",
    ]
    assert workbook.sheetnames == [REQUISITIONS_SHEET, SUMMARY_SHEET, SITES_SHEET]


def test_requisitions_header_and_size(workbook, demo):
    sheet = workbook[REQUISITIONS_SHEET]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == REQUISITION_HEADERS
    assert "DEPÓSITO" in rows[0]
    assert "FAMÍLIA" in rows[0]
    assert len(rows) - 1 == demo.requisition_rows
    assert demo.requisition_rows > 20


def test_dados_is_hidden_with_its_header_at_row_2_column_c(workbook):
    sheet = workbook[SITES_SHEET]
    assert sheet.sheet_state == "hidden"
    assert all(sheet.cell(row=1, column=c).value is None for c in range(1, 8))
    assert sheet["A2"].value is None
    assert sheet["B2"].value is None
    header = [sheet.cell(row=2, column=c).value for c in range(3, 3 + len(SITE_HEADERS))]
    assert header == SITE_HEADERS
    assert header[0] == "SITE "  # trailing space kept, as in the real file
    assert sheet["C3"].value  # a site code below the header
    assert sheet["D3"].value == 1


def test_resumo_geral_header_is_on_row_4(workbook):
    sheet = workbook[SUMMARY_SHEET]
    for row in range(1, 4):
        assert sheet.cell(row=row, column=1).value is None
    assert sheet["A4"].value == "DESCRIÇÃO CTA.FINANC."
    assert sheet["B4"].value == "Soma de VLR.LÍQUIDO"
    last = sheet.max_row
    assert sheet.cell(row=last, column=1).value == "Total Resultado"
    totals = [sheet.cell(row=r, column=2).value for r in range(5, last)]
    assert sheet.cell(row=last, column=2).value == pytest.approx(sum(totals), abs=0.05)


def test_date_cells_are_real_dates_within_the_period(workbook):
    sheet = workbook[REQUISITIONS_SHEET]
    column = REQUISITION_HEADERS.index("DATA SOLICITADO") + 1
    first_day = date(2025, 10, 31).toordinal() - SMALL["days"] + 1
    dated = 0
    for row in range(2, sheet.max_row + 1):
        cell = sheet.cell(row=row, column=column)
        if cell.value == "N/A":
            continue
        assert isinstance(cell.value, datetime), cell.value
        assert cell.is_date
        assert cell.number_format == "d/m/yyyy"
        assert first_day <= cell.value.date().toordinal() <= END.toordinal()
        dated += 1
    assert dated > 0


def requested_weekdays(workbook):
    sheet = workbook[REQUISITIONS_SHEET]
    column = REQUISITION_HEADERS.index("DATA SOLICITADO")
    return {
        row[column].weekday()
        for row in sheet.iter_rows(min_row=2, values_only=True)
        if isinstance(row[column], datetime)
    }


def test_no_requests_on_sundays(workbook):
    weekdays = requested_weekdays(workbook)
    assert 6 not in weekdays
    assert weekdays == {0, 1, 2, 3, 4, 5}


def test_na_is_present(workbook):
    sheet = workbook[REQUISITIONS_SHEET]
    na_cells = [
        (cell.row, cell.column)
        for row in sheet.iter_rows(min_row=2)
        for cell in row
        if cell.value == "N/A"
    ]
    assert na_cells
    required_column = REQUISITION_HEADERS.index("DATA REQUISITADA") + 1
    assert any(column == required_column for _, column in na_cells)


def test_codes_are_zero_padded_text(workbook):
    sheet = workbook[REQUISITIONS_SHEET]
    codes = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert codes
    for code in codes:
        assert isinstance(code, str)
        assert code.startswith("0")
        assert code.isdigit()
        assert len(code) in (4, 6)  # services 0134, materials 010825


def test_stats_describe_the_content(workbook, demo):
    rows = list(workbook[REQUISITIONS_SHEET].iter_rows(min_row=2, values_only=True))
    assert demo.requisition_rows == len(rows)
    assert demo.items == len({r[1] for r in rows})
    assert demo.items <= SMALL["items"]
    assert demo.depots == len({r[0] for r in rows})
    assert demo.depots <= SMALL["depots"]
    sites = list(workbook[SITES_SHEET].iter_rows(min_row=3, values_only=True))
    assert demo.sites == len(sites)


def test_read_workbook_ingests_it_keeping_leading_zeros(demo, workbook):
    parsed = read_workbook(
        demo.path.read_bytes(),
        [ERP_REQUISITIONS],
        max_uncompressed_bytes=IngestorSettings().max_uncompressed_bytes,
    )
    assert [(p.sheet, p.header.row_number) for p in parsed] == [(REQUISITIONS_SHEET, 1)]
    table = parsed[0].table
    assert table.num_rows == demo.requisition_rows
    codes = table.column("item_code").to_pylist()
    assert all(code.startswith("0") for code in codes)
    sheet = workbook[REQUISITIONS_SHEET]
    sheet_codes = [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert codes == sheet_codes
    assert table.column("_source_row").to_pylist() == list(range(2, demo.requisition_rows + 2))
    # N/A became null where the contract allows it, dates are dates
    assert table.column("required_date").null_count > 0
    requested = [d for d in table.column("requested_date").to_pylist() if d is not None]
    assert requested
    assert all(isinstance(d, date) for d in requested)
    assert all(q > 0 for q in table.column("quantity").to_pylist())
    request_numbers = [n for n in table.column("request_number").to_pylist() if n is not None]
    assert request_numbers
    assert all(n.isdigit() for n in request_numbers)


def test_demo_has_the_same_layout_as_the_real_export(workbook, real_workbook):
    real = load_workbook(real_workbook, read_only=True, data_only=True)
    try:
        assert workbook.sheetnames == real.sheetnames
        for name in real.sheetnames:
            assert workbook[name].sheet_state == real[name].sheet_state, name
        real_header = next(real[REQUISITIONS_SHEET].iter_rows(values_only=True))
        assert [h for h in real_header if h is not None] == REQUISITION_HEADERS
        real_sites = list(real[SITES_SHEET].iter_rows(max_row=2, values_only=True))
        assert list(real_sites[1][2 : 2 + len(SITE_HEADERS)]) == SITE_HEADERS
        real_summary = list(real[SUMMARY_SHEET].iter_rows(max_row=4, values_only=True))
        assert real_summary[3][:2] == (
            workbook[SUMMARY_SHEET]["A4"].value,
            workbook[SUMMARY_SHEET]["B4"].value,
        )
    finally:
        real.close()


def test_depot_count_is_respected(tmp_path):
    for depots in (4, 5, 20):
        stats = generate_demo_workbook(
            tmp_path / str(depots), seed=3, items=60, depots=depots, days=120
        )
        assert stats.depots <= depots


@pytest.mark.parametrize("depots", [1, 2, 3])
def test_small_depot_count_is_respected(tmp_path, depots):
    stats = generate_demo_workbook(tmp_path, seed=3, items=60, depots=depots, days=120)
    assert stats.depots <= depots
