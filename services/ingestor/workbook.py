"""Read an Excel workbook (hidden sheets included) into contract-typed tables.

calamine (Rust) reads a workbook some fifty times faster than openpyxl; the zip directory is
checked first so that a small file cannot expand into gigabytes in memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from python_calamine import CalamineError, CalamineWorkbook

from services.ingestor.contracts import DatasetContract
from services.ingestor.parsing import (
    HEADER_SCAN_ROWS,
    ContractViolation,
    HeaderMatch,
    best_header,
    near_miss,
    rows_to_table,
)


@dataclass(frozen=True)
class ParsedSheet:
    header: HeaderMatch
    sheet: str
    table: pa.Table

    @property
    def dataset(self) -> str:
        return self.header.contract.name


def check_zip(content: bytes, max_uncompressed_bytes: int) -> None:
    """An .xlsx is a zip: refuse one that is not, or that would inflate beyond the cap."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ContractViolation(f"not a readable .xlsx workbook (not a valid zip): {exc}") from exc
    if total > max_uncompressed_bytes:
        raise ContractViolation(
            f"the workbook would expand to {total:,} bytes, over the limit of "
            f"{max_uncompressed_bytes:,} (NOVA_INGESTOR__MAX_UNCOMPRESSED_BYTES)"
        )


def read_workbook(
    content: bytes, contracts: Sequence[DatasetContract], *, max_uncompressed_bytes: int
) -> list[ParsedSheet]:
    """Each sheet whose header fits a contract; a sheet that fits but breaks it raises."""
    check_zip(content, max_uncompressed_bytes)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
    except (CalamineError, ValueError, OSError) as exc:
        raise ContractViolation(f"not a readable .xlsx workbook: {exc}") from exc
    parsed: list[ParsedSheet] = []
    near_misses: list[str] = []
    try:
        for name in workbook.sheet_names:
            try:
                # From A1, so that list positions are the row and column numbers Excel shows.
                rows: list[Sequence[object]] = workbook.get_sheet_by_name(name).to_python(
                    skip_empty_area=False
                )
            except (CalamineError, ValueError) as exc:
                raise ContractViolation(f"sheet {name!r} cannot be read: {exc}") from exc
            header = best_header(rows[:HEADER_SCAN_ROWS], contracts)
            if header is None:
                if miss := near_miss(rows, contracts):
                    near_misses.append(f"sheet {name!r}: {miss}")
                continue
            try:
                table = rows_to_table(rows[header.row_number :], header)
            except ContractViolation as violation:
                raise ContractViolation(
                    f"sheet {name!r}: {violation.reason}",
                    column=violation.column,
                    row=violation.row,
                    dataset=header.contract.name,
                ) from violation
            parsed.append(ParsedSheet(header, name, table))
    finally:
        workbook.close()
    if not parsed:
        names = ", ".join(c.name for c in contracts)
        raise ContractViolation(
            f"no sheet has the header of any dataset contract ({names})"
            + (f"; closest: {'; '.join(near_misses)}" if near_misses else ""),
            dataset=contracts[0].name if len(contracts) == 1 else None,
        )
    return parsed
