"""Turn the rows of a source sheet into a typed Arrow table that obeys its contract.

Pure logic: rows come in as Python values (whatever openpyxl or a CSV reader produced), a
typed table or a `ContractViolation` naming the column and source row comes out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa

from services.ingestor.contracts import Column, DatasetContract, normalise_header, snake_case

HEADER_SCAN_ROWS = 30
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_SERIAL_1990 = (date(1990, 1, 1) - _EXCEL_EPOCH).days
_EXCEL_SERIAL_2100 = (date(2100, 1, 1) - _EXCEL_EPOCH).days
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s.*)?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T].*)?$")
_BR_NUMBER = re.compile(r"^-?\d{1,3}(\.\d{3})*(,\d+)?$|^-?\d+(,\d+)?$")
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")

_ISO_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?$"
)
_DMY_TIMESTAMP = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_YEAR_MONTH = re.compile(r"^(\d{4})-?(\d{2})$")

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "float": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),  # source wall-clock time, as the source states it
    "month": pa.date32(),  # first day of the month
}


class ContractViolation(ValueError):
    """The file does not satisfy its contract; says where, so a planner can fix the export."""

    def __init__(
        self,
        reason: str,
        *,
        column: str | None = None,
        row: int | None = None,
        dataset: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (f"column {column!r}" if column else "", f"row {row}" if row else "")
            if part
        )
        super().__init__(f"{reason} ({where})" if where else reason)
        self.reason = reason
        self.column = column
        self.row = row
        self.dataset = dataset  # the contract it was checked against, when one was chosen


@dataclass(frozen=True)
class HeaderMatch:
    contract: DatasetContract
    row_number: int  # 1-based, as a spreadsheet shows it
    positions: dict[str, int]
    source_headers: dict[str, str]
    extras: dict[str, int]  # unknown columns, kept as text under `extra_<snake_case>`

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(self.extras)


def _extras(row: Sequence[object], used: set[int]) -> dict[str, int]:
    extras: dict[str, int] = {}
    for index, cell in enumerate(row):
        if index in used or cell is None or not str(cell).strip():
            continue
        name, suffix = f"extra_{snake_case(cell)}", 1
        while name in extras:  # two unknown columns with one name stay apart
            suffix += 1
            name = f"extra_{snake_case(cell)}_{suffix}"
        extras[name] = index
    return extras


def find_header(rows: Sequence[Sequence[object]], contract: DatasetContract) -> HeaderMatch | None:
    """The first row among the leading ones that carries every required column of the contract."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        positions = contract.match_header(list(row))
        if positions is not None:
            headers = {name: str(row[pos]).strip() for name, pos in positions.items()}
            extras = _extras(row, set(positions.values()))
            return HeaderMatch(contract, index + 1, positions, headers, extras)
    return None


def best_header(
    rows: Sequence[Sequence[object]], contracts: Iterable[DatasetContract]
) -> HeaderMatch | None:
    """The contract whose header matches most columns; a tie between two is an error."""
    matches = [m for c in contracts if (m := find_header(rows, c)) is not None]
    if not matches:
        return None
    matches.sort(key=lambda m: len(m.positions), reverse=True)
    if len(matches) > 1 and len(matches[0].positions) == len(matches[1].positions):
        raise ContractViolation(
            "the header fits several dataset contracts equally well "
            f"({matches[0].contract.name}, {matches[1].contract.name}); "
            "drop the file into inbox/<dataset>/ to say which"
        )
    return matches[0]


def _cast_string(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        raise TypeError("boolean where text was expected")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cast_float(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("boolean where a number was expected")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _PLAIN_NUMBER.match(text):
            return float(text)
        if _BR_NUMBER.match(text):  # 1.234,56 as Brazilian exports write it
            return float(text.replace(".", "").replace(",", "."))
    raise TypeError(f"not a number: {value!r}")


def _cast_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (_EXCEL_SERIAL_1990 <= value < _EXCEL_SERIAL_2100)
    ):
        # An Excel serial day number; outside 1990..2099 it is more likely a quantity or a
        # request number in the wrong column than a date.
        return _EXCEL_EPOCH + timedelta(days=int(value))
    if isinstance(value, str):
        text = value.strip()
        if m := _DMY.match(text):
            day, month, year = (int(g) for g in m.groups())
            return date(year, month, day)
        if m := _ISO_DATE.match(text):
            year, month, day = (int(g) for g in m.groups())
            return date(year, month, day)
    raise TypeError(f"not a date: {value!r}")


def _cast_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if m := _ISO_TIMESTAMP.match(text):
            year, month, day, hour, minute, second, fraction = m.groups()
            micro = int((fraction or "0").ljust(6, "0"))
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
            )
        if m := _DMY_TIMESTAMP.match(text):
            day, month, year, hour, minute, second = m.groups()
            return datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        if _ISO_DATE.match(text) and len(text) == 10:
            return _cast_timestamp(_cast_date(text))
    raise TypeError(f"not a date and time: {value!r}")


def _cast_month(value: object) -> date:
    if isinstance(value, datetime | date):
        return date(value.year, value.month, 1)
    text = (
        str(int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else value
    )
    if isinstance(text, str) and (m := _YEAR_MONTH.match(text.strip())):
        year, month = int(m.group(1)), int(m.group(2))
        return date(year, month, 1)  # ValueError for month 13
    raise TypeError(f"not a month (YYYYMM): {value!r}")


_CASTS = {
    "string": _cast_string,
    "float": _cast_float,
    "date": _cast_date,
    "timestamp": _cast_timestamp,
    "month": _cast_month,
}


def cast_cell(value: object, column: Column, null_tokens: frozenset[str]) -> object:
    if value is None or (isinstance(value, str) and value.strip().upper() in null_tokens):
        return None
    return _CASTS[column.type](value)


def rows_to_table(rows: Iterable[Sequence[object]], header: HeaderMatch) -> pa.Table:
    """Typed table: contract columns, then extras as text, then `_source_row`; skips blank rows."""
    contract = header.contract
    columns = [c for c in contract.columns if c.name in header.positions]
    values: dict[str, list[object]] = {c.name: [] for c in columns}
    extra_values: dict[str, list[str | None]] = {name: [] for name in header.extras}
    source_rows: list[int] = []
    for offset, row in enumerate(rows):
        row_number = header.row_number + 1 + offset
        cells = [
            row[header.positions[c.name]] if header.positions[c.name] < len(row) else None
            for c in columns
        ]
        if all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells):
            continue
        for column, cell in zip(columns, cells, strict=True):
            try:
                typed = cast_cell(cell, column, contract.null_tokens)
            except (TypeError, ValueError) as exc:
                raise ContractViolation(str(exc), column=column.name, row=row_number) from exc
            if typed is None and not column.nullable:
                raise ContractViolation(
                    "value is empty but the column does not allow it",
                    column=column.name,
                    row=row_number,
                )
            values[column.name].append(typed)
        for name, position in header.extras.items():
            cell = row[position] if position < len(row) else None
            extra_values[name].append(_extra_text(cell))
        source_rows.append(row_number)
    if not source_rows:
        raise ContractViolation("no data rows below the header", row=header.row_number)
    arrays = {c.name: pa.array(values[c.name], type=ARROW_TYPES[c.type]) for c in columns}
    missing_optional = [c for c in contract.columns if c.name not in header.positions]
    for column in missing_optional:  # optional columns absent from the file stay typed nulls
        arrays[column.name] = pa.nulls(len(source_rows), type=ARROW_TYPES[column.type])
    ordered = {c.name: arrays[c.name] for c in contract.columns}
    for name, extra in extra_values.items():
        ordered[name] = pa.array(extra, type=pa.string())
    ordered["_source_row"] = pa.array(source_rows, type=pa.int32())
    return pa.table(ordered)


def _extra_text(cell: object) -> str | None:
    """Unknown columns are kept as trimmed text whatever their cell type; empty is null."""
    if cell is None:
        return None
    text = str(cell).strip() if isinstance(cell, bool | str) else _cast_string(cell)
    return text or None


def near_miss(rows: Sequence[Sequence[object]], contracts: Iterable[DatasetContract]) -> str | None:
    """When no header fits: the row that comes closest to a contract, and what it lacks."""
    best: tuple[int, str] | None = None
    for contract in contracts:
        for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
            normalised = {normalise_header(cell) for cell in row}
            present = [c for c in contract.columns if c.normalised_aliases & normalised]
            missing = [c.name for c in contract.required if c not in present]
            if len(present) < 2 or not missing:
                continue
            message = (
                f"row {index + 1} looks like the {contract.name} header but lacks the required "
                f"column(s) {', '.join(missing)} (accepted headers: "
                + "; ".join(
                    f"{c.name}: {' | '.join(c.aliases)}"
                    for c in contract.required
                    if c.name in missing
                )
                + ")"
            )
            if best is None or len(present) > best[0]:
                best = (len(present), message)
    return None if best is None else best[1]


def contract_schema(header: HeaderMatch) -> pa.Schema:
    """The schema `rows_to_table` (and the CSV reader) produce for this header."""
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in header.contract.columns]
    fields += [pa.field(name, pa.string()) for name in header.extras]
    fields.append(pa.field("_source_row", pa.int32()))
    return pa.schema(fields)
