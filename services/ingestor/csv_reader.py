"""Read CSV exports the way Brazilian ERPs write them, without asking the planner anything.

Detected per file: encoding (UTF-8 with or without BOM, else Windows-1252), delimiter
(`;`, `,`, tab or `|`), header row, and decimal separator (`1.234,56` or `1234.56`). The file is
read by Arrow in blocks and cast with vectorised kernels, so memory stays flat however large the
export is and throughput stays close to Arrow's own CSV reader.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from services.ingestor.contracts import Column, DatasetContract
from services.ingestor.files import open_regular
from services.ingestor.parsing import (
    ARROW_TYPES,
    HEADER_SCAN_ROWS,
    ContractViolation,
    HeaderMatch,
    best_header,
    contract_schema,
    near_miss,
)

SAMPLE_BYTES = 256 * 1024
BLOCK_BYTES = 2 * 1024 * 1024  # per read-ahead block: bounds memory whatever the file size
CAST_THREADS = 2
DELIMITERS = (";", ",", "\t", "|")

_COMMA_DECIMAL = r"^[-+]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"
_THOUSANDS_ONLY = r"^[-+]?\d{1,3}(\.\d{3})+$"
_DMY_DAY = r"^(?P<day>\d{1,2})/"
_ISO_DAY = r"^\d{4}-\d{1,2}-(?P<day>\d{1,2})"
# Tried in order on what the previous formats left unparsed; the first is what ERPs write.
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S")
_TIMESTAMP_FORMATS = (
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y",
    "%Y-%m-%d",
)


@dataclass(frozen=True)
class CsvLayout:
    encoding: str  # as Arrow and Python name it: "utf8" or "cp1252"
    delimiter: str
    header: HeaderMatch
    field_count: int
    decimal_comma: bool


def detect_encoding(sample: bytes, *, whole_file_is_utf8: bool) -> str:
    """UTF-8 when the whole file decodes as UTF-8, else Windows-1252 (what Excel on Windows
    writes); text with NUL bytes is not text."""
    if b"\x00" in sample:
        raise ContractViolation("binary content (NUL bytes) in a text file")
    return "utf8" if whole_file_is_utf8 else "cp1252"


def is_utf8(path: Path, chunk_bytes: int = 4 * 1024 * 1024) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with os.fdopen(open_regular(path), "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sample_lines(sample: bytes, encoding: str, complete: bool) -> list[str]:
    try:
        text = sample.decode("utf-8-sig" if encoding == "utf8" else encoding, errors="strict")
    except UnicodeDecodeError as exc:
        if complete or exc.start < len(sample) - 4:  # a cut multibyte character at the end is fine
            raise ContractViolation(f"text is neither UTF-8 nor Windows-1252: {exc}") from exc
        text = sample[: exc.start].decode("utf-8-sig" if encoding == "utf8" else encoding)
    lines = text.splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line of a sample may be cut
    return lines


def detect_layout(
    sample: bytes, contracts: Sequence[DatasetContract], *, encoding: str, complete: bool
) -> CsvLayout:
    """Find the delimiter and header row that fit a contract; decide the decimal separator."""
    lines = _sample_lines(sample, encoding, complete)
    if not any(line.strip() for line in lines):
        raise ContractViolation("the file is empty")
    head = lines[: HEADER_SCAN_ROWS + 1]
    best: tuple[str, HeaderMatch] | None = None
    for delimiter in DELIMITERS:
        match = best_header(_split(head, delimiter), contracts)
        if match is not None and (best is None or len(match.positions) > len(best[1].positions)):
            best = (delimiter, match)
    if best is None:
        names = ", ".join(c.name for c in contracts)
        closest = next(
            (
                miss
                for delimiter in DELIMITERS
                if (miss := near_miss(_split(head, delimiter), contracts))
            ),
            None,
        )
        raise ContractViolation(
            f"no header row of a dataset contract ({names}) in the first {HEADER_SCAN_ROWS} lines "
            "with any of the delimiters ; , tab |" + (f"; closest: {closest}" if closest else ""),
            dataset=contracts[0].name if len(contracts) == 1 else None,
        )
    delimiter, header = best
    rows = _split(lines, delimiter)
    field_count = len(rows[header.row_number - 1])
    data_rows = rows[header.row_number :]
    float_positions = [
        header.positions[c.name]
        for c in header.contract.columns
        if c.type == "float" and c.name in header.positions
    ]
    # Every complete line of the sample votes, not just the first few: exports often start
    # with whole numbers and show their first decimal separator hundreds of lines down.
    samples = [row[p].strip() for row in data_rows for p in float_positions if p < len(row)]
    return CsvLayout(encoding, delimiter, header, field_count, _decimal_comma(samples, delimiter))


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))


def _decimal_comma(samples: list[str], delimiter: str) -> bool:
    """`1.234,56` or `1234.56`? Any comma inside a number settles it. Otherwise dots followed
    by exactly three digits in a `;` file (the Brazilian Excel default) are thousands."""
    values = pa.array([s for s in samples if "," in s or "." in s], pa.string())
    if len(values) == 0:  # only whole numbers seen: go with the delimiter's convention
        return delimiter == ";"
    if pc.any(pc.match_substring(values, ",")).as_py():
        return True
    if delimiter != ";":
        return False
    with_dot = pc.filter(values, pc.match_substring(values, "."))
    return len(with_dot) > 0 and bool(pc.all(pc.match_substring_regex(with_dot, _THOUSANDS_ONLY)))


def read_csv(path: Path, layout: CsvLayout) -> Iterator[pa.RecordBatch]:
    """Typed record batches; a `ContractViolation` names the column and line of a bad value."""
    # Arrow is given the open file, not the name: a name that is not UTF-8 is no path to Arrow,
    # and a regular file opened without following links cannot become a link meanwhile.
    with os.fdopen(open_regular(path), "rb") as source:
        yield from _read_csv(source, layout)


def _read_csv(source: BinaryIO, layout: CsvLayout) -> Iterator[pa.RecordBatch]:
    header = layout.header
    names = [f"f{i}" for i in range(layout.field_count)]
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                encoding=layout.encoding,
                skip_rows=header.row_number,
                column_names=names,
                block_size=BLOCK_BYTES,
            ),
            # Empty lines kept (and then dropped as spacer rows) so line numbers stay exact.
            parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise ContractViolation("no data rows below the header", row=header.row_number) from exc
        raise ContractViolation(f"malformed CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ContractViolation(f"text is neither UTF-8 nor Windows-1252: {exc}") from exc
    schema = contract_schema(header)
    first_line = header.row_number + 1
    rows_seen = 0
    rows_kept = 0
    # Arrow's kernels release the GIL: casting batches on a small pool keeps every core busy
    # while this thread reads the next block and the caller writes Parquet. Results are taken
    # in file order, so the first bad line reported is the first bad line of the file.
    in_flight: deque[Future[pa.RecordBatch]] = deque()
    with ThreadPoolExecutor(CAST_THREADS, thread_name_prefix="csv-cast") as pool:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise ContractViolation(
                        f"malformed CSV after line {first_line + rows_seen}: {exc}"
                    ) from exc
                except UnicodeDecodeError as exc:
                    raise ContractViolation(
                        f"text is neither UTF-8 nor Windows-1252: {exc}"
                    ) from exc
                in_flight.append(
                    pool.submit(_cast_batch, batch, layout, schema, first_line + rows_seen)
                )
                rows_seen += batch.num_rows
                while len(in_flight) > CAST_THREADS:
                    typed = in_flight.popleft().result()
                    rows_kept += typed.num_rows
                    if typed.num_rows:
                        yield typed
            while in_flight:
                typed = in_flight.popleft().result()
                rows_kept += typed.num_rows
                if typed.num_rows:
                    yield typed
        finally:
            for future in in_flight:  # a violation or a closed generator: drop queued work
                future.cancel()
    if rows_kept == 0:
        raise ContractViolation("no data rows below the header", row=header.row_number)


def _null_tokens(contract: DatasetContract) -> pa.Array:
    tokens = {t for token in contract.null_tokens for t in (token, token.lower(), token.title())}
    return pa.array(sorted(tokens), pa.string())


def _cast_batch(
    batch: pa.RecordBatch, layout: CsvLayout, schema: pa.Schema, first_line: int
) -> pa.RecordBatch:
    header = layout.header
    contract = header.contract
    tokens = _null_tokens(contract)
    ones = pa.repeat(pa.scalar(1, pa.int32()), batch.num_rows)
    line_numbers = pc.add(pc.cumulative_sum(ones), pa.scalar(first_line - 1, pa.int32()))
    texts: dict[str, pa.Array] = {}
    for column in contract.columns:
        if column.name in header.positions:
            raw = batch.column(header.positions[column.name])
            trimmed = pc.utf8_trim_whitespace(raw)
            texts[column.name] = pc.if_else(pc.is_in(trimmed, value_set=tokens), None, trimmed)
    # A row with every contract column empty is a spacer line, as in the workbooks.
    blank = None
    for text in texts.values():
        null = pc.is_null(text)
        blank = null if blank is None else pc.and_(blank, null)
    if blank is not None and pc.any(blank).as_py():
        keep = pc.invert(blank)
        texts = {name: pc.filter(text, keep) for name, text in texts.items()}
        batch = batch.filter(keep)
        line_numbers = pc.filter(line_numbers, keep)
    arrays: list[pa.Array] = []
    for column in contract.columns:
        if column.name not in texts:
            arrays.append(pa.nulls(batch.num_rows, ARROW_TYPES[column.type]))
            continue
        typed = _cast_column(texts[column.name], column, layout.decimal_comma, line_numbers)
        if not column.nullable and typed.null_count:
            index = pc.index(pc.is_null(typed), True).as_py()
            raise ContractViolation(
                "value is empty but the column does not allow it",
                column=column.name,
                row=line_numbers[index].as_py(),
            )
        arrays.append(typed)
    for position in header.extras.values():
        if position >= batch.num_columns:
            arrays.append(pa.nulls(batch.num_rows, pa.string()))
            continue
        trimmed = pc.utf8_trim_whitespace(batch.column(position))
        arrays.append(pc.if_else(pc.equal(trimmed, ""), None, trimmed))
    arrays.append(line_numbers)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _first_failure(
    text: pa.Array, parsed: pa.Array, column: Column, line_numbers: pa.Array, why: str
) -> ContractViolation:
    failed = pc.and_(pc.is_valid(text), pc.is_null(parsed))
    index = pc.index(failed, True).as_py()
    return ContractViolation(
        f"{why}: {text[index].as_py()!r}", column=column.name, row=line_numbers[index].as_py()
    )


def _cast_column(
    text: pa.Array, column: Column, decimal_comma: bool, line_numbers: pa.Array
) -> pa.Array:
    if column.type == "string":
        return text
    if column.type == "float":
        return _cast_float(text, column, decimal_comma, line_numbers)
    if column.type == "month":
        parsed = pc.strptime(text, format="%Y%m", unit="s", error_is_null=True)
        if parsed.null_count != text.null_count:
            raise _first_failure(text, parsed, column, line_numbers, "not a month (YYYYMM)")
        return pc.cast(parsed, pa.date32())
    formats = _DATE_FORMATS if column.type == "date" else _TIMESTAMP_FORMATS
    parsed = _parse_times(text, formats)
    if parsed.null_count != text.null_count:
        raise _first_failure(text, parsed, column, line_numbers, f"not a {column.type}")
    _reject_rolled_over_days(text, parsed, column, line_numbers)
    return pc.cast(parsed, ARROW_TYPES[column.type])


def _first_invalid(
    text: pa.Array, compact: pa.Array, column: Column, line_numbers: pa.Array
) -> ContractViolation:
    invalid = pc.invert(pc.fill_null(pc.match_substring_regex(compact, _COMMA_DECIMAL), True))
    index = pc.index(invalid, True).as_py()
    return ContractViolation(
        f"not a number in the 1.234,56 format this file uses: {text[index].as_py()!r}",
        column=column.name,
        row=line_numbers[index].as_py(),
    )


def _cast_float(
    text: pa.Array, column: Column, decimal_comma: bool, line_numbers: pa.Array
) -> pa.Array:
    if decimal_comma:
        # The cast itself validates most values; the grouping regex runs only where it matters
        # (values with a thousands dot), which keeps this near the speed of a plain cast.
        compact = text
        if pc.any(pc.match_substring(text, " ")).as_py():
            compact = pc.replace_substring(text, " ", "")
        dotted = pc.match_substring(compact, ".")
        if pc.any(dotted).as_py():
            grouped_ok = pc.match_substring_regex(pc.filter(compact, dotted), _COMMA_DECIMAL)
            if not pc.all(grouped_ok).as_py():
                raise _first_invalid(text, compact, column, line_numbers)
            compact = pc.replace_substring(compact, ".", "")
        try:
            return pc.cast(pc.replace_substring(compact, ",", "."), pa.float64())
        except pa.ArrowInvalid:
            raise _first_invalid(text, compact, column, line_numbers) from None
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        parsed = pc.cast(
            pc.if_else(
                pc.match_substring_regex(text, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"),
                text,
                None,
            ),
            pa.float64(),
        )
        raise _first_failure(
            text, parsed, column, line_numbers, "not a number in the 1234.56 format this file uses"
        ) from None


def _parse_times(text: pa.Array, formats: Sequence[str]) -> pa.Array:
    parsed = pc.strptime(text, format=formats[0], unit="us", error_is_null=True)
    for fmt in formats[1:]:
        if parsed.null_count == text.null_count:
            break
        parsed = pc.coalesce(parsed, pc.strptime(text, format=fmt, unit="us", error_is_null=True))
    return parsed


def _reject_rolled_over_days(
    text: pa.Array, parsed: pa.Array, column: Column, line_numbers: pa.Array
) -> None:
    """strptime turns 31/02 into 02/03; a planner's typo must not become a plausible date.

    A rolled-over date always lands on day 1, 2 or 3, so only those rows are re-read.
    """
    suspect = pc.fill_null(pc.less_equal(pc.day(parsed), 3), False)
    if not pc.any(suspect).as_py():
        return
    text, parsed, line_numbers = (
        pc.filter(text, suspect),
        pc.filter(parsed, suspect),
        pc.filter(line_numbers, suspect),
    )
    written = pc.coalesce(
        pc.cast(pc.struct_field(pc.extract_regex(text, _DMY_DAY), "day"), pa.int64()),
        pc.cast(pc.struct_field(pc.extract_regex(text, _ISO_DAY), "day"), pa.int64()),
    )
    wrong = pc.fill_null(pc.not_equal(written, pc.day(parsed)), False)
    if pc.any(wrong).as_py():
        index = pc.index(wrong, True).as_py()
        raise ContractViolation(
            f"not a valid {column.type}: {text[index].as_py()!r}",
            column=column.name,
            row=line_numbers[index].as_py(),
        )
