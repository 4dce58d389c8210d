"""Rows in, contract-typed Arrow table (or a ContractViolation naming column and row) out."""

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from services.ingestor.contracts import (
    ERP_COST_SUMMARY,
    ERP_REQUISITIONS,
    ERP_SITES,
    IPCA,
    PTAX_USD,
    SELIC,
    STOCK_MOVEMENTS,
    STOCK_ON_HAND,
)
from services.ingestor.parsing import (
    ContractViolation,
    best_header,
    cast_cell,
    contract_schema,
    find_header,
    rows_to_table,
)

COLUMNS = {c.name: c for c in ERP_REQUISITIONS.columns}
NULLS = ERP_REQUISITIONS.null_tokens
HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]


def cast(value, column):
    return cast_cell(value, COLUMNS[column], NULLS)


def parse(rows):
    """find_header + rows_to_table, the way read_workbook chains them."""
    header = find_header(rows, ERP_REQUISITIONS)
    assert header is not None
    return header, rows_to_table(rows[header.row_number :], header)


# --- cast rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.234,56", 1234.56),
        ("12,5", 12.5),
        ("-3,25", -3.25),
        ("1.234.567", 1234567.0),
        ("1.234.567,8", 1234567.8),
        ("12.5", 12.5),
        ("12", 12.0),
        (" 7 ", 7.0),
        ("1 234,5", 1234.5),
        ("1e3", 1000.0),
        (3, 3.0),
        (2.75, 2.75),
    ],
)
def test_numbers_in_brazilian_and_plain_notation(raw, expected):
    value = cast(raw, "quantity")
    assert isinstance(value, float)
    assert value == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["abc", "12,", "1,2,3", "1.23,4.5", True, date(2024, 1, 1)])
def test_non_numbers_are_refused(raw):
    with pytest.raises((TypeError, ValueError)):
        cast(raw, "quantity")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (45000, date(2023, 3, 15)),  # Excel serial day number
        (45000.75, date(2023, 3, 15)),  # a serial with a time of day
        (32874, date(1990, 1, 1)),  # first serial taken as a date
        ("05/03/2024", date(2024, 3, 5)),  # dd/mm/yyyy, never mm/dd
        ("07/01/2025 00:00:00", date(2025, 1, 7)),  # as many ERPs write it
        ("5/3/2024", date(2024, 3, 5)),
        ("31/12/2024", date(2024, 12, 31)),
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03-05 10:30:00", date(2024, 3, 5)),
        ("2024-03-05T10:30:00", date(2024, 3, 5)),
        (datetime(2024, 3, 5, 23, 59), date(2024, 3, 5)),
        (date(2024, 3, 5), date(2024, 3, 5)),
    ],
)
def test_dates(raw, expected):
    value = cast(raw, "requested_date")
    assert type(value) is date
    assert value == expected


@pytest.mark.parametrize("raw", [1, 94657, 32873, 73051])
def test_numbers_outside_plausible_excel_dates_are_rejected(raw):
    # A request number or quantity in a date column must not become a date silently.
    with pytest.raises((TypeError, ValueError)):
        cast(raw, "requested_date")


@pytest.mark.parametrize("raw", ["30/02/2024", "2024-13-01", "03-05-2024", "ontem", 0, -5, True])
def test_non_dates_are_refused(raw):
    with pytest.raises((TypeError, ValueError)):
        cast(raw, "requested_date")


@pytest.mark.parametrize(
    "token", [None, "", "   ", "N/A", "n/a", " N/A ", "NA", "-", "#N/A", "#REF!", "#VALUE!"]
)
@pytest.mark.parametrize("column", ["quantity", "requested_date", "depot_code"])
def test_null_tokens_become_null(token, column):
    assert cast(token, column) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010825", "010825"),  # zero-padded codes stay text
        ("0134", "0134"),
        (" 010825 ", "010825"),
        (123, "123"),  # an int code becomes its digits
        (123.0, "123"),  # Excel stores numbers as floats
        (12.5, "12.5"),
        (datetime(2024, 3, 5), "2024-03-05T00:00:00"),
    ],
)
def test_strings(raw, expected):
    assert cast(raw, "item_code") == expected


def test_boolean_is_not_text():
    with pytest.raises(TypeError):
        cast(True, "item_code")


# --- find_header ----------------------------------------------------------------------------


def test_find_header_below_a_title_block():
    rows = [
        ("RELATÓRIO DE SUPRIMENTOS", None, None),
        (None, None, None),
        ("Emitido em", "01/02/2025", None),
        tuple(HEADER),
        ("BAXYZ001", "010825", "CABO", "MATERIAL ELETRICO", 2, "05/01/2025"),
    ]
    header = find_header(rows, ERP_REQUISITIONS)
    assert header is not None
    assert header.row_number == 4
    assert header.positions["item_code"] == 1
    assert header.source_headers["item_code"] == "PRODUTO/SERVIÇO"
    assert header.source_headers["item_family"] == "FAMÍLIA"


def test_find_header_with_leading_empty_columns():
    rows = [(), (None, None, *HEADER)]
    header = find_header(rows, ERP_REQUISITIONS)
    assert header is not None
    assert header.row_number == 2
    assert header.positions["depot_code"] == 2


def test_find_header_gives_none_without_a_header():
    rows = [("a", "b"), ("DEPÓSITO", "PRODUTO/SERVIÇO")]  # required columns missing
    assert find_header(rows, ERP_REQUISITIONS) is None
    assert find_header([], ERP_REQUISITIONS) is None


def test_find_header_only_scans_the_leading_rows():
    rows = [("filler",)] * 30 + [tuple(HEADER)]
    assert find_header(rows, ERP_REQUISITIONS) is None
    assert find_header(rows[1:], ERP_REQUISITIONS).row_number == 30


# --- rows_to_table --------------------------------------------------------------------------


def test_rows_become_a_typed_table_with_source_rows():
    rows = [
        ("title",),
        tuple(HEADER),
        ("baxyz001", "010825", "Cabo flexível", "material eletrico", "1.234,5", "05/01/2025"),
        ("N/A", 134, "Frete", "SERVIÇOS TOMADOS", 2, 45000),
        (None, None, None, None, None, None),  # blank row in the middle is skipped
        ("GERBA", "0134", "Frete", "SERVIÇOS TOMADOS", "12,5", datetime(2025, 1, 7, 8, 0)),
        (None, None, None, None, None, None),  # blank trailing rows
        ("", "  ", None, None, None, None),
    ]
    header, table = parse(rows)
    assert header.row_number == 2
    assert table.column_names == [c.name for c in ERP_REQUISITIONS.columns] + ["_source_row"]
    assert table.schema.field("quantity").type == pa.float64()
    assert table.schema.field("requested_date").type == pa.date32()
    assert table.schema.field("item_code").type == pa.string()
    assert table.schema.field("_source_row").type == pa.int32()
    assert table.column("item_code").to_pylist() == ["010825", "134", "0134"]
    assert table.column("depot_code").to_pylist() == ["baxyz001", None, "GERBA"]
    assert table.column("quantity").to_pylist() == [1234.5, 2.0, 12.5]
    assert table.column("requested_date").to_pylist() == [
        date(2025, 1, 5),
        date(2023, 3, 15),
        date(2025, 1, 7),
    ]
    assert table.column("_source_row").to_pylist() == [3, 4, 6]
    # optional columns absent from the sheet are typed nulls
    assert table.schema.field("purchased_date").type == pa.date32()
    assert table.column("purchased_date").null_count == 3
    assert table.column("supplier_name").to_pylist() == [None, None, None]


def test_short_rows_are_padded_with_nulls():
    rows = [
        (*HEADER, "NOME FORNEC."),
        ("D1", "010825", "CABO", "EPI", 1),  # openpyxl may cut trailing empty cells
    ]
    _, table = parse(rows)
    assert table.column("requested_date").to_pylist() == [None]
    assert table.column("supplier_name").to_pylist() == [None]


def test_violation_names_the_column_and_the_spreadsheet_row():
    rows = [
        ("Relatório",),
        (None,),
        tuple(HEADER),
        ("D1", "010825", "CABO", "EPI", 1, "05/01/2025"),
        ("D1", "010826", "LUVA", "EPI", "muitos", "05/01/2025"),
    ]
    with pytest.raises(ContractViolation) as caught:
        parse(rows)
    violation = caught.value
    assert violation.column == "quantity"
    assert violation.row == 5
    assert "muitos" in violation.reason
    assert "'quantity'" in str(violation)
    assert "row 5" in str(violation)


def test_violation_for_a_bad_date():
    rows = [tuple(HEADER), ("D1", "010825", "CABO", "EPI", 1, "31/02/2025")]
    with pytest.raises(ContractViolation) as caught:
        parse(rows)
    assert (caught.value.column, caught.value.row) == ("requested_date", 2)


def test_empty_value_in_a_non_nullable_column_is_a_violation():
    rows = [
        tuple(HEADER),
        ("D1", "010825", "CABO", "EPI", 1, None),
        ("D1", "N/A", "LUVA", "EPI", 1, None),
    ]
    with pytest.raises(ContractViolation) as caught:
        parse(rows)
    assert (caught.value.column, caught.value.row) == ("item_code", 3)
    assert "empty" in caught.value.reason


def test_header_only_sheet_raises():
    rows = [("title",), tuple(HEADER), (None,) * 6, ("", None, None, None, None, None)]
    with pytest.raises(ContractViolation) as caught:
        parse(rows)
    assert caught.value.row == 2
    assert "no data rows" in caught.value.reason


def test_contract_violation_message_without_location():
    violation = ContractViolation("not a workbook")
    assert str(violation) == "not a workbook"
    assert violation.column is None
    assert violation.row is None


# --- timestamps and months (the JSON sources) -----------------------------------------------

PTAX_COLUMNS = {c.name: c for c in PTAX_USD.columns}
IPCA_COLUMNS = {c.name: c for c in IPCA.columns}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2015-01-02 10:06:25.045", datetime(2015, 1, 2, 10, 6, 25, 45_000)),  # PTAX
        ("2015-01-02 10:06:25.0451239", datetime(2015, 1, 2, 10, 6, 25, 45_123)),
        ("2021-11-12T00:00", datetime(2021, 11, 12, 0, 0)),  # Open-Meteo
        ("2021-11-12T23:59:58", datetime(2021, 11, 12, 23, 59, 58)),
        ("02/01/2015 10:06", datetime(2015, 1, 2, 10, 6)),  # dd/mm, never mm/dd
        ("02/01/2015", datetime(2015, 1, 2)),
        ("2015-01-02", datetime(2015, 1, 2)),
        (date(2015, 1, 2), datetime(2015, 1, 2)),
        (datetime(2015, 1, 2, 9, 30, tzinfo=UTC), datetime(2015, 1, 2, 9, 30)),
    ],
)
def test_timestamps(raw, expected):
    value = cast_cell(raw, PTAX_COLUMNS["quoted_at"], PTAX_USD.null_tokens)
    assert type(value) is datetime
    assert value == expected


@pytest.mark.parametrize("raw", ["2015-01-02 25:00", "2015-02-30 10:00", "ontem", 5, True])
def test_non_timestamps_are_refused(raw):
    with pytest.raises((TypeError, ValueError)):
        cast_cell(raw, PTAX_COLUMNS["quoted_at"], PTAX_USD.null_tokens)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("201501", date(2015, 1, 1)),  # SIDRA D3C
        ("2015-01", date(2015, 1, 1)),
        (201512, date(2015, 12, 1)),
        (date(2015, 3, 17), date(2015, 3, 1)),
    ],
)
def test_months(raw, expected):
    assert cast_cell(raw, IPCA_COLUMNS["month"], IPCA.null_tokens) == expected


@pytest.mark.parametrize("raw", ["201513", "201500", "2015", "janeiro 2015", 2015])
def test_non_months_are_refused(raw):
    with pytest.raises((TypeError, ValueError)):
        cast_cell(raw, IPCA_COLUMNS["month"], IPCA.null_tokens)


# --- extras, contract choice, schema --------------------------------------------------------


def test_unknown_header_cells_become_extras_named_in_snake_case():
    rows = [
        (None, *HEADER, "Observação", "", "OBSERVAÇÃO ", None, "Valor Unitário"),
        (None, "D1", "010825", "CABO", "EPI", 1, None, "urgente", None, 7, None, 12.5),
        (None, "D1", "010826", "LUVA", "EPI", 2, None, "", None, None, None, None),
    ]
    header, table = parse(rows)
    assert header.contract is ERP_REQUISITIONS
    assert header.extras == {
        "extra_observacao": 7,
        "extra_observacao_2": 9,  # two unknown columns with one name stay apart
        "extra_valor_unitario": 11,
    }
    assert header.extra_columns == (
        "extra_observacao",
        "extra_observacao_2",
        "extra_valor_unitario",
    )
    # contract columns, then the extras as text, then the source row
    names = [c.name for c in ERP_REQUISITIONS.columns]
    assert table.column_names == [*names, *header.extra_columns, "_source_row"]
    for name in header.extra_columns:
        assert table.schema.field(name).type == pa.string()
    assert table.column("extra_observacao").to_pylist() == ["urgente", None]
    assert table.column("extra_observacao_2").to_pylist() == ["7", None]
    assert table.column("extra_valor_unitario").to_pylist() == ["12.5", None]
    assert table.schema == contract_schema(header)


def test_a_header_without_unknown_cells_has_no_extras():
    header, table = parse([tuple(HEADER), ("D1", "1", "A", "B", 1, None)])
    assert header.extras == {}
    assert header.extra_columns == ()
    assert not [n for n in table.column_names if n.startswith("extra_")]


def test_boolean_in_an_extra_column_is_kept_or_named_but_never_crashes():
    rows = [(*HEADER, "ATIVO"), ("D1", "010825", "CABO", "EPI", 1, None, True)]
    try:
        _, table = parse(rows)
    except ContractViolation as violation:  # refusing it, with the place, is acceptable too
        assert (violation.column, violation.row) == ("extra_ativo", 2)
    else:
        assert table.column("extra_ativo").to_pylist()[0] in ("True", "TRUE", "true")


def test_best_header_prefers_the_contract_that_matches_most_columns():
    movements = (
        "DATA MOVIMENTO",
        "DEPÓSITO",
        "PRODUTO",
        "DESCRIÇÃO",
        "TIPO MOVIMENTO",
        "QUANTIDADE",
        "DOCUMENTO",
    )
    rows = [("Movimentos de estoque",), movements]
    candidates = [ERP_REQUISITIONS, STOCK_ON_HAND, STOCK_MOVEMENTS, ERP_SITES]
    match = best_header(rows, candidates)
    assert match is not None
    assert match.contract is STOCK_MOVEMENTS
    assert match.row_number == 2
    assert best_header(rows, [ERP_REQUISITIONS, ERP_SITES]) is None
    assert best_header(rows, []) is None


def test_best_header_refuses_to_guess_between_two_equally_good_contracts():
    # Two columns of the cost summary and the two of the SELIC series: a tie, 2 against 2.
    rows = [("DESCRIÇÃO CTA.FINANC.", "VLR.LÍQUIDO", "data", "valor")]
    assert len(find_header(rows, ERP_COST_SUMMARY).positions) == 2
    assert len(find_header(rows, SELIC).positions) == 2
    with pytest.raises(ContractViolation, match="several dataset contracts") as caught:
        best_header(rows, [ERP_COST_SUMMARY, SELIC])
    assert "erp_cost_summary" in caught.value.reason
    assert "selic" in caught.value.reason
    # one more matched column breaks the tie
    rows = [(*rows[0], "SITE", "ID SITE", "CLIENTE", "ID CLIENTE")]
    winner = best_header(rows, [ERP_COST_SUMMARY, SELIC, ERP_SITES])
    assert winner is not None
    assert winner.contract is ERP_SITES
