"""read_workbook on small .xlsx files built with openpyxl."""

import os
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.parsing import ContractViolation
from services.ingestor.workbook import read_workbook

HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]


def put_row(sheet, row, column, values):
    for offset, value in enumerate(values):
        sheet.cell(row=row, column=column + offset, value=value)


def test_visible_sheet_with_dates_and_na(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "CUSTO DE MATERIAL E SERVIÇOS"
    sheet.append(HEADER)
    sheet.append(
        ["BAXYZ001", "010825", "CABO FLEXIVEL", "MATERIAL ELETRICO", 3, datetime(2025, 1, 5)]
    )
    sheet.append(["N/A", "0134", "FRETE", "SERVIÇOS TOMADOS", 1.5, "N/A"])
    sheet["F2"].number_format = "d/m/yyyy"
    path = tmp_path / "export.xlsx"
    workbook.save(path)

    (parsed,) = read_workbook(path, [ERP_REQUISITIONS])
    assert parsed.dataset == "erp_requisitions"
    assert parsed.sheet == "CUSTO DE MATERIAL E SERVIÇOS"
    assert parsed.header_row == 1
    table = parsed.table
    assert table.column("item_code").to_pylist() == ["010825", "0134"]
    assert table.column("depot_code").to_pylist() == ["BAXYZ001", None]
    assert table.column("quantity").to_pylist() == [3.0, 1.5]
    assert table.column("requested_date").to_pylist() == [date(2025, 1, 5), None]
    assert table.column("_source_row").to_pylist() == [2, 3]


def test_hidden_sheet_with_header_at_row_2_column_c(tmp_path):
    workbook = Workbook()
    visible = workbook.active
    visible.title = "RESUMO GERAL"
    visible.append([])
    visible.append(["DESCRIÇÃO CTA.FINANC.", "Soma de VLR.LÍQUIDO"])
    visible.append(["Material Eletrico", 1234.5])
    hidden = workbook.create_sheet("DADOS")
    hidden.sheet_state = "hidden"
    put_row(hidden, 2, 3, [f" {h} " for h in HEADER])  # header at C2, with stray spaces
    put_row(hidden, 3, 3, ["BAXYZ001", "000123", "LUVA", "EPI", 2, datetime(2024, 12, 31)])
    put_row(hidden, 4, 3, ["GERBA", 45, "CAPACETE", "EPI", "1.234,5", "N/A"])
    path = tmp_path / "hidden.xlsx"
    workbook.save(path)

    (parsed,) = read_workbook(path, [ERP_REQUISITIONS])
    assert parsed.sheet == "DADOS"
    assert parsed.header_row == 2
    table = parsed.table
    assert table.column("item_code").to_pylist() == ["000123", "45"]
    assert table.column("item_description").to_pylist() == ["LUVA", "CAPACETE"]
    assert table.column("quantity").to_pylist() == [2.0, 1234.5]
    assert table.column("requested_date").to_pylist() == [date(2024, 12, 31), None]
    assert table.column("_source_row").to_pylist() == [3, 4]


def test_long_sheet_reads_every_row_once_across_the_header_scan_window(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Relatório de suprimentos"])
    sheet.append([])
    sheet.append(HEADER)
    total = 75
    for index in range(total):
        sheet.append(["D1", f"{index:06d}", "ITEM", "EPI", index + 1, date(2025, 1, 1)])
    sheet.append([])
    sheet.append([None, None, None, None, None, None])
    path = tmp_path / "long.xlsx"
    workbook.save(path)

    (parsed,) = read_workbook(path, [ERP_REQUISITIONS])
    table = parsed.table
    assert parsed.header_row == 3
    assert table.num_rows == total
    assert table.column("item_code").to_pylist() == [f"{i:06d}" for i in range(total)]
    assert table.column("quantity").to_pylist() == [float(i + 1) for i in range(total)]
    assert table.column("_source_row").to_pylist() == list(range(4, 4 + total))


def test_bad_cell_far_down_names_its_spreadsheet_row(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for index in range(40):
        quantity = "lots" if index == 35 else 1
        sheet.append(["D1", f"{index:06d}", "ITEM", "EPI", quantity, None])
    path = tmp_path / "bad.xlsx"
    workbook.save(path)

    with pytest.raises(ContractViolation) as caught:
        read_workbook(path, [ERP_REQUISITIONS])
    assert caught.value.column == "quantity"
    assert caught.value.row == 37  # header on row 1, index 35 is the 36th data row


def test_header_only_sheet_raises(tmp_path):
    workbook = Workbook()
    workbook.active.append(HEADER)
    path = tmp_path / "empty.xlsx"
    workbook.save(path)
    with pytest.raises(ContractViolation):
        read_workbook(path, [ERP_REQUISITIONS])


def test_workbook_without_a_matching_sheet_gives_nothing(tmp_path):
    workbook = Workbook()
    workbook.active.append(["SITE", "ID SITE", "CLIENTE"])
    workbook.active.append(["BAXYZ001", 1, "TIM"])
    workbook.create_sheet("vazio")
    path = tmp_path / "other.xlsx"
    workbook.save(path)
    assert read_workbook(path, [ERP_REQUISITIONS]) == []
    assert read_workbook(path, []) == []


def test_random_bytes_named_xlsx_is_a_violation(tmp_path):
    path = tmp_path / "random.xlsx"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ContractViolation) as caught:
        read_workbook(path, [ERP_REQUISITIONS])
    assert "not a readable .xlsx" in caught.value.reason


def test_zip_that_is_not_a_workbook_is_a_violation(tmp_path):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(ContractViolation):
        read_workbook(path, [ERP_REQUISITIONS])


def test_empty_file_is_a_violation(tmp_path):
    path = tmp_path / "zero.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ContractViolation):
        read_workbook(path, [ERP_REQUISITIONS])


def _with_dimension(source, target, ref):
    """Copy an .xlsx, rewriting each sheet's <dimension> the way some exporters get it wrong."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data, count = re.subn(
                    rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>'.encode(), data
                )
                assert count == 1
            dst.writestr(item, data)


@pytest.mark.parametrize("ref", ["A1:F10", "A1"])
def test_wrong_sheet_dimension_does_not_lose_rows(tmp_path, ref):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for index in range(50):
        sheet.append(["D1", f"{index:06d}", "ITEM", "EPI", 1, None])
    good = tmp_path / "good.xlsx"
    workbook.save(good)
    stale = tmp_path / "stale.xlsx"
    _with_dimension(good, stale, ref)

    (expected,) = read_workbook(good, [ERP_REQUISITIONS])
    assert expected.table.num_rows == 50
    parsed = read_workbook(stale, [ERP_REQUISITIONS])
    assert [p.table.num_rows for p in parsed] == [50]
    assert parsed[0].table.equals(expected.table)
