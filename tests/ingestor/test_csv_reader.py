"""CSV exports as ERPs and Excel write them: detection of encoding, delimiter, header and decimal
separator, typed reading in blocks, and what the service does with a CSV that breaks its contract.
Every file is written to tmp_path and read from disk."""

from datetime import date

import pyarrow as pa
import pytest

from services.ingestor import csv_reader
from services.ingestor.contracts import CONTRACTS, STOCK_MOVEMENTS, STOCK_ON_HAND
from services.ingestor.csv_reader import detect_encoding, detect_layout, is_utf8, read_csv
from services.ingestor.parsing import ContractViolation, contract_schema
from tests.ingestor.fakes import IngestEnv

CSV_CONTRACTS = [c for c in CONTRACTS.values() if "csv" in c.formats]
HEADER = (
    "DATA MOVIMENTO",
    "DEPÓSITO",
    "PRODUTO",
    "DESCRIÇÃO",
    "TIPO MOVIMENTO",
    "QUANTIDADE",
    "U.M.",
    "DOCUMENTO",
    "VALOR UNITÁRIO",
)


def csv_text(rows, delimiter=";", header=HEADER, above=()):
    """Lines joined with `delimiter`; `above` are lines written before the header."""
    lines = [*above, delimiter.join(header), *(delimiter.join(row) for row in rows)]
    return "\n".join(lines) + "\n"


def write(tmp_path, text, encoding="utf-8", name="export.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read(path, contracts=CSV_CONTRACTS):
    """Detect the layout and read the whole file, the way the service chains the steps."""
    with path.open("rb") as handle:
        sample = handle.read(csv_reader.SAMPLE_BYTES)
    complete = len(sample) == path.stat().st_size
    encoding = detect_encoding(sample, whole_file_is_utf8=is_utf8(path))
    layout = detect_layout(sample, contracts, encoding=encoding, complete=complete)
    batches = list(read_csv(path, layout))
    return layout, pa.Table.from_batches(batches, schema=contract_schema(layout.header))


def row(date_text="03/02/2025", quantity="1", item="000123", **overrides):
    values = {
        "date": date_text,
        "depot": "ALMOX-BA",
        "item": item,
        "description": "CABO FLEXÍVEL 2,5MM",
        "type": "ENTRADA",
        "quantity": quantity,
        "unit": "MT",
        "document": "NF-100",
        "cost": "",
    }
    values.update(overrides)
    return tuple(values.values())


@pytest.fixture
def env(tmp_path):
    return IngestEnv(tmp_path)


# --- delimiter, encoding, decimal separator -------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "quantities", "decimal_comma"),
    [
        (";", ["1.234,56", "2", "0,5"], True),
        (",", ["1234.56", "2", "0.5"], False),  # a comma-separated file writes dot decimals
        ("\t", ["1234,56", "2", "0,5"], True),
        ("|", ["1234.56", "2", "0.5"], False),
    ],
    ids=["semicolon", "comma", "tab", "pipe"],
)
def test_delimiter_and_decimal_separator_are_detected(
    tmp_path, delimiter, quantities, decimal_comma
):
    rows = [
        row(quantity=q, item=f"{i:06d}", description="CABO FLEXIVEL")
        for i, q in enumerate(quantities)
    ]
    layout, table = read(write(tmp_path, csv_text(rows, delimiter)))
    assert layout.delimiter == delimiter
    assert layout.decimal_comma is decimal_comma
    assert layout.header.contract is STOCK_MOVEMENTS
    assert layout.field_count == len(HEADER)
    assert table.column("quantity").to_pylist() == [1234.56, 2.0, 0.5]
    assert table.column("item_code").to_pylist() == ["000000", "000001", "000002"]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf8"), ("utf-8-sig", "utf8"), ("cp1252", "cp1252")],
)
def test_encodings_with_accents_in_header_and_values(tmp_path, encoding, detected):
    rows = [
        row(description="ÁGUA SANITÁRIA 5L", type="SAÍDA", unit="UN"),
        row(description='CONEXÃO PVC 1/2" ÇÉÔ', type="TRANSFERÊNCIA", unit="M³"),
    ]
    path = write(tmp_path, csv_text(rows), encoding)
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    layout, table = read(path)
    assert layout.encoding == detected
    assert layout.header.positions["movement_date"] == 0  # no BOM stuck to the first name
    assert layout.header.source_headers["depot_code"] == "DEPÓSITO"
    assert layout.header.extras == {}
    assert table.column("item_description").to_pylist() == [
        "ÁGUA SANITÁRIA 5L",
        'CONEXÃO PVC 1/2" ÇÉÔ',
    ]
    assert table.column("movement_type").to_pylist() == ["SAÍDA", "TRANSFERÊNCIA"]
    assert table.column("unit").to_pylist() == ["UN", "M³"]


def test_bom_before_a_title_block(tmp_path):
    text = csv_text([row()], above=["Relatório de movimentos", ""])
    layout, table = read(write(tmp_path, text, "utf-8-sig"))
    assert layout.header.row_number == 3
    assert table.column("_source_row").to_pylist() == [4]


def test_thousands_dots_and_decimal_comma(tmp_path):
    rows = [
        row(quantity="1.234,56"),
        row(quantity="-3,25"),
        row(quantity="1.234.567,8"),
        row(quantity="12"),
    ]
    layout, table = read(write(tmp_path, csv_text(rows)))
    assert layout.decimal_comma is True
    assert table.column("quantity").to_pylist() == pytest.approx([1234.56, -3.25, 1234567.8, 12])


def test_thousands_only_values_in_a_semicolon_file_are_thousands(tmp_path):
    # No comma anywhere; every dot is followed by exactly three digits: Brazilian thousands.
    rows = [row(quantity="1.500"), row(quantity="2.000"), row(quantity="12.345"), row(quantity="7")]
    layout, table = read(write(tmp_path, csv_text(rows)))
    assert layout.decimal_comma is True
    assert table.column("quantity").to_pylist() == [1500.0, 2000.0, 12345.0, 7.0]


def test_a_dot_that_is_not_thousands_makes_a_semicolon_file_dot_decimal(tmp_path):
    rows = [row(quantity="1.500"), row(quantity="12.5")]
    layout, table = read(write(tmp_path, csv_text(rows)))
    assert layout.decimal_comma is False
    assert table.column("quantity").to_pylist() == [1.5, 12.5]


def test_dot_decimals_in_a_comma_file(tmp_path):
    rows = [row(quantity="12.5"), row(quantity="1500.25"), row(quantity="1.500")]
    text = csv_text(rows, ",").replace("CABO FLEXÍVEL 2,5MM", '"CABO FLEXÍVEL 2,5MM"')
    layout, table = read(write(tmp_path, text))
    assert (layout.delimiter, layout.decimal_comma) == (",", False)
    # in a comma-separated file a dot is the decimal point, even before three digits
    assert table.column("quantity").to_pylist() == [12.5, 1500.25, 1.5]
    assert table.column("item_description").to_pylist() == ["CABO FLEXÍVEL 2,5MM"] * 3


def test_number_in_the_other_notation_is_named_with_its_line(tmp_path):
    rows = [row(quantity="1.234,56"), row(quantity="12.5")]
    with pytest.raises(ContractViolation) as caught:
        read(write(tmp_path, csv_text(rows)))
    assert (caught.value.column, caught.value.row) == ("quantity", 3)
    assert "'12.5'" in caught.value.reason


def test_decimal_comma_far_below_integer_only_rows_in_a_semicolon_file(tmp_path):
    rows = [row(quantity=str(i + 1)) for i in range(40)] + [row(quantity="1.234,56")]
    _, table = read(write(tmp_path, csv_text(rows)))
    assert table.column("quantity").to_pylist()[-1] == 1234.56


# --- dates, header position, blank lines -----------------------------------------------------


def test_dates_are_day_first(tmp_path):
    rows = [
        row(date_text="03/02/2025"),
        row(date_text="5/3/2024"),
        row(date_text="31/12/2024"),
        row(date_text="29/02/2024"),  # a leap day
        row(date_text="2025-02-03"),
        row(date_text="07/01/2025 00:00:00"),
    ]
    _, table = read(write(tmp_path, csv_text(rows)))
    assert table.schema.field("movement_date").type == pa.date32()
    assert table.column("movement_date").to_pylist() == [
        date(2025, 2, 3),
        date(2024, 3, 5),
        date(2024, 12, 31),
        date(2024, 2, 29),
        date(2025, 2, 3),
        date(2025, 1, 7),
    ]


@pytest.mark.parametrize("bad", ["31/02/2025", "29/02/2025", "32/01/2025", "01/13/2025", "ontem"])
def test_impossible_date_is_named_with_column_and_line(tmp_path, bad):
    rows = [row(), row(), row(date_text=bad), row()]
    with pytest.raises(ContractViolation) as caught:
        read(write(tmp_path, csv_text(rows, above=["Movimentos"])))
    # title on line 1, header on 2, the bad row is the third data row: line 5
    assert (caught.value.column, caught.value.row) == ("movement_date", 5)
    assert bad in caught.value.reason


def test_impossible_iso_date_is_rejected(tmp_path):
    path = write(tmp_path, csv_text([row(date_text="2025-02-31")]))
    try:
        _, table = read(path)
    except ContractViolation as violation:
        assert (violation.column, violation.row) == ("movement_date", 2)
    else:
        read_as = table.column("movement_date").to_pylist()
        raise AssertionError(f"2025-02-31 was accepted and read as {read_as}")


def test_header_below_title_lines(tmp_path):
    above = ["EMPRESA XYZ LTDA;;;", "Relatório de movimentação de estoque", "Emitido em 01/03/2025"]
    rows = [row(item="000123"), row(item="000124")]
    layout, table = read(write(tmp_path, csv_text(rows, above=above)))
    assert layout.header.row_number == 4
    assert table.column("item_code").to_pylist() == ["000123", "000124"]
    assert table.column("_source_row").to_pylist() == [5, 6]


def test_blank_spacer_lines_are_skipped_and_lines_still_count(tmp_path):
    spacer = ";" * (len(HEADER) - 1)  # what Excel writes for an empty row
    lines = [
        ";".join(HEADER),
        ";".join(row(item="000001")),
        spacer,
        spacer,
        ";".join(row(item="000002")),
        ";".join(row(item="000003", quantity="x")),
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ContractViolation) as caught:
        read(path)
    assert (caught.value.column, caught.value.row) == ("quantity", 6)

    path.write_text(path.read_text().replace(";x;", ";3;"))
    _, table = read(path)
    assert table.column("item_code").to_pylist() == ["000001", "000002", "000003"]
    assert table.column("_source_row").to_pylist() == [2, 5, 6]


def test_empty_lines_do_not_shift_line_numbers(tmp_path):
    lines = [";".join(HEADER), ";".join(row(item="000001")), "", ";".join(row(item="000002"))]
    path = write(tmp_path, "\n".join(lines) + "\n")
    _, table = read(path)
    assert table.column("item_code").to_pylist() == ["000001", "000002"]
    assert table.column("_source_row").to_pylist() == [2, 4]


# --- values --------------------------------------------------------------------------------


def test_codes_keep_their_leading_zeros_and_null_tokens_become_null(tmp_path):
    rows = [
        row(item="000123", unit="N/A", cost="1.234,50"),
        row(item="0042", unit="-", cost="n/a"),
        row(item=" 010825 ", unit="", cost="#N/A"),
    ]
    _, table = read(write(tmp_path, csv_text(rows)))
    assert table.column("item_code").to_pylist() == ["000123", "0042", "010825"]
    assert table.column("unit").to_pylist() == [None, None, None]
    assert table.column("unit_cost_brl").to_pylist() == [1234.5, None, None]


def test_empty_value_in_a_required_column_names_column_and_line(tmp_path):
    rows = [row(), row(document="N/A")]
    with pytest.raises(ContractViolation) as caught:
        read(write(tmp_path, csv_text(rows)))
    assert (caught.value.column, caught.value.row) == ("document_number", 3)
    assert "empty" in caught.value.reason


def test_quoted_values_may_hold_the_delimiter(tmp_path):
    text = csv_text([row(description='"CABO; FLEXÍVEL ""2,5MM"""')])
    _, table = read(write(tmp_path, text))
    assert table.column("item_description").to_pylist() == ['CABO; FLEXÍVEL "2,5MM"']


def test_windows_line_endings(tmp_path):
    good = csv_text([row(item="000001", cost="5,5"), row(item="000002", cost="7")])
    _, table = read(write(tmp_path, good.replace("\n", "\r\n")))
    assert table.column("unit_cost_brl").to_pylist() == [5.5, 7.0]  # no stray \r in the last
    bad = csv_text([row(item="000001"), row(item="000002", quantity="x")])
    with pytest.raises(ContractViolation) as caught:
        read(write(tmp_path, bad.replace("\n", "\r\n")))
    assert (caught.value.column, caught.value.row) == ("quantity", 3)


def test_optional_columns_absent_from_the_file_are_typed_nulls(tmp_path):
    header = ("DATA POSIÇÃO", "DEPÓSITO", "PRODUTO", "SALDO")
    text = csv_text([("28/02/2025", "ALMOX-BA", "000123", "1.250,5")], header=header)
    layout, table = read(write(tmp_path, text))
    assert layout.header.contract is STOCK_ON_HAND
    assert table.column_names == [c.name for c in STOCK_ON_HAND.columns] + ["_source_row"]
    assert table.column("quantity_on_hand").to_pylist() == [1250.5]
    assert table.schema.field("average_cost_brl").type == pa.float64()
    assert table.column("average_cost_brl").to_pylist() == [None]


def test_unknown_column_is_kept_as_extra_text(tmp_path):
    header = (*HEADER, "Observação Interna")
    rows = [(*row(), "urgente"), (*row(item="000124"), "")]
    layout, table = read(write(tmp_path, csv_text(rows, header=header)))
    assert layout.header.extra_columns == ("extra_observacao_interna",)
    assert table.schema.field("extra_observacao_interna").type == pa.string()
    assert table.column("extra_observacao_interna").to_pylist()[0] == "urgente"
    assert table.column("extra_observacao_interna").to_pylist()[1] in ("", None)


# --- refused files -----------------------------------------------------------------------------


def test_nul_bytes_are_binary_content():
    with pytest.raises(ContractViolation, match="binary"):
        detect_encoding(b"DATA;PRODUTO\x00\x00", whole_file_is_utf8=True)
    assert detect_encoding(b"DATA;PRODUTO", whole_file_is_utf8=True) == "utf8"
    assert detect_encoding(b"DATA;PRODUTO", whole_file_is_utf8=False) == "cp1252"


def test_whitespace_only_text_is_empty(tmp_path):
    with pytest.raises(ContractViolation, match="empty"):
        read(write(tmp_path, "\n  \n\t\n"))


def test_no_header_of_any_contract(tmp_path):
    with pytest.raises(ContractViolation) as caught:
        read(write(tmp_path, "a;b;c\n1;2;3\n"))
    assert "no header row" in caught.value.reason
    for contract in CSV_CONTRACTS:
        assert contract.name in caught.value.reason


# --- through the service -----------------------------------------------------------------------


def test_extra_column_is_reported_in_the_event_and_kept_in_bronze(env):
    header = (*HEADER, "Observação")
    text = csv_text([(*row(), "entregar na torre"), (*row(item="000124"), "")], header=header)
    outcome = env.ingest("movimentos.csv", text.encode("cp1252"))
    assert outcome.status == "ingested"
    (event,) = outcome.events
    assert event.dataset == "stock_movements"
    assert event.extra_columns == ["extra_observacao"]
    assert event.row_count == 2
    table = env.lake.read_parquet(event.bronze_path)
    assert table.column("extra_observacao").to_pylist()[0] == "entregar na torre"
    assert table.column("item_description").to_pylist()[0] == "CABO FLEXÍVEL 2,5MM"
    assert table.column("_source_file").to_pylist() == ["movimentos.csv"] * 2
    assert table.column("_source_sheet").to_pylist() == ["", ""]


def test_missing_required_column_is_quarantined(env):
    header = tuple(h for h in HEADER if h != "DOCUMENTO")
    rows = [tuple(v for h, v in zip(HEADER, row(), strict=True) if h != "DOCUMENTO")]
    outcome = env.ingest(
        "stock_movements/sem_documento.csv", csv_text(rows, header=header).encode()
    )
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert report["dataset"] == "stock_movements"
    assert "stock_movements" in report["reason"]
    assert env.lake_files() == []


def test_missing_required_column_is_named(env):
    header = tuple(h for h in HEADER if h != "DOCUMENTO")
    rows = [tuple(v for h, v in zip(HEADER, row(), strict=True) if h != "DOCUMENTO")]
    outcome = env.ingest(
        "stock_movements/sem_documento.csv", csv_text(rows, header=header).encode()
    )
    reason = env.report(outcome)["reason"]
    assert "document_number" in reason or "DOCUMENTO" in reason


def test_bad_number_far_down_a_large_file_leaves_nothing_in_bronze(env, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 256 * 1024)
    total, bad_index = 60_000, 49_999  # the 50,000th data row
    above = ["Relatório de movimentos", "Período: 01/2025"]
    rows = [
        row(item=f"{i:06d}", quantity="x1" if i == bad_index else f"{i % 97},5")
        for i in range(total)
    ]
    path = env.drop("movimentos.csv", csv_text(rows, above=above).encode())
    assert path.stat().st_size > 12 * csv_reader.BLOCK_BYTES  # a dozen blocks and more
    bad_line = len(above) + 1 + bad_index + 1

    consumed = []
    write = env.lake.write_parquet_batches

    def counting_write(target, schema, batches):
        def tap():
            for batch in batches:
                consumed.append(batch.num_rows)
                yield batch

        return write(target, schema, tap())

    monkeypatch.setattr(env.lake, "write_parquet_batches", counting_write)
    outcome = env.process(path)

    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert (report["column"], report["row"]) == ("quantity", bad_line)
    assert "x1" in report["reason"]
    # the rows of the earlier blocks were streamed into the writer before the bad one ...
    assert len(consumed) >= 2
    assert 0 < sum(consumed) < bad_index
    # ... and yet neither an object nor a staging file is left anywhere in the lake
    assert env.lake_files() == []
    assert env.publisher.events[0].row == bad_line


def test_nul_bytes_quarantine_the_file_as_binary(env):
    content = csv_text([row()]).encode().replace(b"ALMOX", b"AL\x00MOX", 1)
    outcome = env.ingest("movimentos.csv", content)
    assert outcome.status == "quarantined"
    assert "binary" in env.report(outcome)["reason"]


@pytest.mark.parametrize("where", ["in the sample", "beyond the sample"])
def test_bytes_neither_utf8_nor_cp1252_are_undecodable(env, monkeypatch, where):
    monkeypatch.setattr(csv_reader, "SAMPLE_BYTES", 4096)
    rows = [row(item=f"{i:06d}", description="CONEXÃO") for i in range(200)]
    content = csv_text(rows).encode("cp1252")
    cut = 200 if where == "in the sample" else len(content) - 100
    assert (cut < csv_reader.SAMPLE_BYTES) == (where == "in the sample")
    newline = content.index(b"\n", cut)
    content = content[:newline] + b"\x81" + content[newline:]  # 0x81: undefined in cp1252
    outcome = env.ingest("movimentos.csv", content)
    assert outcome.status == "quarantined"
    assert "neither UTF-8 nor Windows-1252" in env.report(outcome)["reason"]
    assert env.lake_files() == []


@pytest.mark.parametrize(
    ("content", "reason_part"),
    [
        (b"", "the file is empty"),
        (csv_text([]).encode(), "no data rows"),
        (csv_text([]).encode() + b";;;;;;;;\n;;;;;;;;\n", "no data rows"),
    ],
    ids=["empty", "header-only", "header-and-spacers"],
)
def test_files_without_data(env, content, reason_part):
    outcome = env.ingest("movimentos.csv", content)
    assert outcome.status == "quarantined"
    assert reason_part in env.report(outcome)["reason"]
    assert env.lake_files() == []


@pytest.mark.parametrize("fields", ["too many", "too few"])
def test_row_with_the_wrong_number_of_fields_is_malformed(env, fields):
    bad = (*row(), "sobra") if fields == "too many" else row()[:-2]
    content = csv_text([row(), bad, row()]).encode()
    outcome = env.ingest("movimentos.csv", content)
    assert outcome.status == "quarantined"
    assert "malformed CSV" in env.report(outcome)["reason"]
    assert env.lake_files() == []


def test_txt_suffix_is_read_as_csv(env):
    outcome = env.ingest("movimentos.TXT", csv_text([row()]).encode())
    assert outcome.status == "ingested"
    assert outcome.events[0].dataset == "stock_movements"
