"""read_workbook on small .xlsx files built with openpyxl."""

import os
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from services.ingestor.contracts import CONTRACTS, ERP_REQUISITIONS
from services.ingestor.parsing import ContractViolation
from services.ingestor.workbook import read_workbook

CAP = 64 * 1024**2

HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]


def read(path, contracts):
    """read_workbook on the bytes of `path`, the way the service hands them over."""
    return read_workbook(path.read_bytes(), contracts, max_uncompressed_bytes=CAP)


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

    (parsed,) = read(path, [ERP_REQUISITIONS])
    assert parsed.dataset == "erp_requisitions"
    assert parsed.sheet == "CUSTO DE MATERIAL E SERVIÇOS"
    assert parsed.header.row_number == 1
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

    (parsed,) = read(path, [ERP_REQUISITIONS])
    assert parsed.sheet == "DADOS"
    assert parsed.header.row_number == 2
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

    (parsed,) = read(path, [ERP_REQUISITIONS])
    table = parsed.table
    assert parsed.header.row_number == 3
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
        read(path, [ERP_REQUISITIONS])
    assert caught.value.column == "quantity"
    assert caught.value.row == 37  # header on row 1, index 35 is the 36th data row


def test_header_only_sheet_raises(tmp_path):
    workbook = Workbook()
    workbook.active.append(HEADER)
    path = tmp_path / "empty.xlsx"
    workbook.save(path)
    with pytest.raises(ContractViolation):
        read(path, [ERP_REQUISITIONS])


def test_workbook_without_a_matching_sheet_is_a_violation_naming_the_contracts(tmp_path):
    workbook = Workbook()
    workbook.active.append(["SITE", "ID SITE", "CLIENTE"])
    workbook.active.append(["BAXYZ001", 1, "TIM"])
    workbook.create_sheet("vazio")
    path = tmp_path / "other.xlsx"
    workbook.save(path)
    with pytest.raises(ContractViolation) as caught:
        read(path, [ERP_REQUISITIONS])
    assert "no sheet has the header of any dataset contract (erp_requisitions)" in str(caught.value)
    assert caught.value.dataset == "erp_requisitions"
    with pytest.raises(ContractViolation):
        read(path, [])


def test_a_sheet_lacking_one_required_column_is_named_as_the_closest_match(tmp_path):
    workbook = Workbook()
    workbook.active.title = "CUSTO"
    workbook.active.append(["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "QUANTIDADE"])
    workbook.active.append(["BAXYZ001", "010825", "CABO", 3])
    path = tmp_path / "no-family.xlsx"
    workbook.save(path)
    with pytest.raises(ContractViolation) as caught:
        read(path, [ERP_REQUISITIONS])
    reason = caught.value.reason
    assert "sheet 'CUSTO': row 1 looks like the erp_requisitions header" in reason
    assert "lacks the required column(s) item_family" in reason
    assert "FAMÍLIA" in reason


def test_random_bytes_named_xlsx_is_a_violation(tmp_path):
    path = tmp_path / "random.xlsx"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ContractViolation) as caught:
        read(path, [ERP_REQUISITIONS])
    assert "not a readable .xlsx" in caught.value.reason


def test_zip_that_is_not_a_workbook_is_a_violation(tmp_path):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(ContractViolation):
        read(path, [ERP_REQUISITIONS])


def test_empty_file_is_a_violation(tmp_path):
    path = tmp_path / "zero.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ContractViolation):
        read(path, [ERP_REQUISITIONS])


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

    (expected,) = read(good, [ERP_REQUISITIONS])
    assert expected.table.num_rows == 50
    parsed = read(stale, [ERP_REQUISITIONS])
    assert [p.table.num_rows for p in parsed] == [50]
    assert parsed[0].table.equals(expected.table)


# --- several contracts, value types, limits --------------------------------------------------


def erp_like_workbook(path):
    """The three sheets of the ERP export in miniature: requisitions, a pivot summary whose
    header is on row 4, and a hidden site list whose header is on row 2 from column C."""
    workbook = Workbook()
    costs = workbook.active
    costs.title = "CUSTO DE MATERIAL E SERVIÇOS"
    costs.append(HEADER)
    costs.append(["D1", "010825", "CABO", "MATERIAL ELETRICO", 3, datetime(2025, 1, 5)])
    costs.append(["D2", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, None])
    summary = workbook.create_sheet("RESUMO GERAL")
    put_row(summary, 4, 1, ["DESCRIÇÃO CTA.FINANC.", "Soma de VLR.LÍQUIDO"])
    put_row(summary, 5, 1, ["Água/Luz", 550])
    put_row(summary, 6, 1, ["Andaimes", 1038.43])
    put_row(summary, 7, 1, ["Total Resultado", 1588.43])
    sites = workbook.create_sheet("DADOS")
    sites.sheet_state = "hidden"
    put_row(sites, 2, 3, ["SITE ", "ID SITE", "CLIENTE ", "ID CLIENTE ", "STATUS DE ALTERAÇÃO"])
    put_row(sites, 3, 3, ["CGM0002-1", 1, "ATC PREVENTIVA", "NC01", "COMPRADOR ALTERADO"])
    put_row(sites, 4, 3, ["REC036TM", 266, None, None, None])
    workbook.save(path)
    return path


def test_each_sheet_goes_to_the_contract_its_header_fits(tmp_path):
    path = erp_like_workbook(tmp_path / "erp.xlsx")
    parsed = {p.dataset: p for p in read(path, list(CONTRACTS.values()))}
    assert set(parsed) == {"erp_requisitions", "erp_cost_summary", "erp_sites"}

    requisitions = parsed["erp_requisitions"]
    assert requisitions.sheet == "CUSTO DE MATERIAL E SERVIÇOS"
    assert requisitions.header.contract is ERP_REQUISITIONS
    assert requisitions.table.column("item_code").to_pylist() == ["010825", "0134"]

    summary = parsed["erp_cost_summary"]
    assert (summary.sheet, summary.header.row_number) == ("RESUMO GERAL", 4)
    assert summary.table.column("account").to_pylist() == [
        "Água/Luz",
        "Andaimes",
        "Total Resultado",
    ]
    assert summary.table.column("net_value_brl").to_pylist() == [550.0, 1038.43, 1588.43]
    assert summary.table.column("_source_row").to_pylist() == [5, 6, 7]

    sites = parsed["erp_sites"]
    assert (sites.sheet, sites.header.row_number) == ("DADOS", 2)
    assert sites.header.positions["site_code"] == 2  # column C
    # integer ids written by Excel as numbers stay exact text
    assert sites.table.column("site_id").to_pylist() == ["1", "266"]
    assert sites.table.column("client_name").to_pylist() == ["ATC PREVENTIVA", None]
    assert sites.table.column("_source_row").to_pylist() == [3, 4]


def test_excel_error_values_and_text_numbers(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append([*HEADER, "NOME FORNEC."])
    sheet.append(["#N/A", "000123", "LUVA", "EPI", "1.234,5", "#REF!", "#VALUE!"])
    sheet.append(["D1", 45, "CABO", "EPI", 2, 45000, "ACME"])
    sheet["F3"].number_format = "dd/mm/yyyy"  # an Excel date stored as a serial
    path = tmp_path / "types.xlsx"
    workbook.save(path)

    (parsed,) = read(path, [ERP_REQUISITIONS])
    table = parsed.table
    assert table.column("depot_code").to_pylist() == [None, "D1"]
    assert table.column("item_code").to_pylist() == ["000123", "45"]
    assert table.column("quantity").to_pylist() == [1234.5, 2.0]
    assert table.column("requested_date").to_pylist() == [None, date(2023, 3, 15)]
    assert table.column("supplier_name").to_pylist() == [None, "ACME"]


def test_boolean_in_a_text_column_names_sheet_column_and_row(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Planilha1"
    sheet.append(HEADER)
    sheet.append(["D1", "000123", "LUVA", "EPI", 1, None])
    sheet.append(["D1", True, "LUVA", "EPI", 1, None])
    path = tmp_path / "bool.xlsx"
    workbook.save(path)
    with pytest.raises(ContractViolation) as caught:
        read(path, [ERP_REQUISITIONS])
    assert (caught.value.column, caught.value.row) == ("item_code", 3)
    assert "Planilha1" in caught.value.reason


def test_violation_names_the_sheet(tmp_path):
    path = erp_like_workbook(tmp_path / "erp.xlsx")
    workbook = load_workbook(path)
    workbook["RESUMO GERAL"]["B6"] = "mil reais"
    workbook.save(path)
    with pytest.raises(ContractViolation) as caught:
        read(path, list(CONTRACTS.values()))
    assert (caught.value.column, caught.value.row) == ("net_value_brl", 6)
    assert "RESUMO GERAL" in caught.value.reason
    assert "mil reais" in caught.value.reason


def zip_with_entry(path, name, size):
    """A zip whose entry `name` inflates to `size` zero bytes (it compresses to almost nothing)."""
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(name, "w") as entry:
            for _ in range(size // len(chunk)):
                entry.write(chunk)
    return path


def test_zip_that_would_expand_beyond_the_cap_is_refused_before_reading(tmp_path):
    bomb = zip_with_entry(tmp_path / "bomb.xlsx", "xl/worksheets/sheet1.xml", 50 * 1024**2)
    assert bomb.stat().st_size < 1024**2  # small on disk
    with pytest.raises(ContractViolation) as caught:
        read_workbook(bomb.read_bytes(), [ERP_REQUISITIONS], max_uncompressed_bytes=10 * 1024**2)
    assert "over the limit of 10,485,760" in caught.value.reason
    assert "MAX_UNCOMPRESSED_BYTES" in caught.value.reason


def test_the_cap_counts_every_entry_of_the_zip(tmp_path):
    path = tmp_path / "ok.xlsx"
    workbook = Workbook()
    workbook.active.append(HEADER)
    workbook.active.append(["D1", "000123", "LUVA", "EPI", 1, None])
    workbook.save(path)
    with zipfile.ZipFile(path) as archive:
        total = sum(i.file_size for i in archive.infolist())
    content = path.read_bytes()
    (parsed,) = read_workbook(content, [ERP_REQUISITIONS], max_uncompressed_bytes=total)
    assert parsed.table.num_rows == 1
    with pytest.raises(ContractViolation, match="over the limit"):
        read_workbook(content, [ERP_REQUISITIONS], max_uncompressed_bytes=total - 1)


def test_truncated_workbook_is_a_violation(tmp_path):
    path = erp_like_workbook(tmp_path / "erp.xlsx")
    content = path.read_bytes()
    with pytest.raises(ContractViolation) as caught:
        read_workbook(content[: len(content) // 2], [ERP_REQUISITIONS], max_uncompressed_bytes=CAP)
    assert "not a readable .xlsx" in caught.value.reason


def test_damaged_sheet_inside_a_valid_zip_is_a_violation(tmp_path):
    good = erp_like_workbook(tmp_path / "erp.xlsx")
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(ContractViolation) as caught:
        read(damaged, list(CONTRACTS.values()))
    assert "cannot be read" in caught.value.reason


# --- the real ERP export ---------------------------------------------------------------------


def test_real_workbook(real_workbook):
    parsed = {p.dataset: p for p in read(real_workbook, list(CONTRACTS.values()))}
    assert set(parsed) == {"erp_requisitions", "erp_cost_summary", "erp_sites"}

    # Figures documented with the data (shared/data/README.md).
    requisitions = parsed["erp_requisitions"]
    assert requisitions.sheet == "CUSTO DE MATERIAL E SERVIÇOS"
    assert requisitions.header.row_number == 1
    assert requisitions.header.extras == {}
    table = requisitions.table
    assert table.num_rows == 4207
    assert len(set(table.column("item_code").to_pylist())) == 879
    assert all(len(code) >= 4 for code in table.column("item_code").to_pylist())
    assert "010825" in table.column("item_code").to_pylist()  # zero-padded codes kept
    # 191 distinct depots as the README counts them, `N/A` (read as null) being one of them
    assert len(set(table.column("depot_code").to_pylist())) == 191
    assert None in table.column("depot_code").to_pylist()
    assert len(set(table.column("supplier_name").drop_null().to_pylist())) == 472
    assert len(set(table.column("item_family").to_pylist())) == 20
    requested = table.column("requested_date").drop_null().to_pylist()
    assert date(2024, 10, 1) <= min(requested) and max(requested) <= date(2025, 10, 31)

    sites = parsed["erp_sites"]
    assert (sites.sheet, sites.header.row_number) == ("DADOS", 2)
    assert sites.header.positions["site_code"] == 2  # column C
    assert sites.table.num_rows == 267

    # The pivot: its rows, read independently with openpyxl, and its last row is the total.
    summary = parsed["erp_cost_summary"]
    sheet = load_workbook(real_workbook, read_only=True)["RESUMO GERAL"]
    below_header = list(sheet.iter_rows(min_row=summary.header.row_number + 1, values_only=True))
    expected = [r for r in below_header if r[0] is not None]
    assert summary.table.num_rows == len(expected) == 42
    accounts = summary.table.column("account").to_pylist()
    values = summary.table.column("net_value_brl").to_pylist()
    assert accounts[-1] == "Total Resultado"
    assert sum(values[:-1]) == pytest.approx(values[-1], abs=0.01)
