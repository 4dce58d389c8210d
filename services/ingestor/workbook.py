"""Read an Excel workbook (hidden sheets included) into contract-typed tables."""

from __future__ import annotations

import itertools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from services.ingestor.contracts import DatasetContract
from services.ingestor.parsing import (
    HEADER_SCAN_ROWS,
    ContractViolation,
    find_header,
    rows_to_table,
)


@dataclass(frozen=True)
class ParsedSheet:
    dataset: str
    sheet: str
    header_row: int
    table: pa.Table


def read_workbook(source: Path | BinaryIO, contracts: list[DatasetContract]) -> list[ParsedSheet]:
    """Every (sheet, contract) pair whose header matches; a bad sheet for a match raises."""
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise ContractViolation(f"not a readable .xlsx workbook: {exc}") from exc
    parsed: list[ParsedSheet] = []
    try:
        for sheet in workbook.worksheets:
            # Read-only mode trusts the size the file declares, which exporters other than
            # Excel often get wrong; a stale size would silently drop rows.
            sheet.reset_dimensions()
            rows = sheet.iter_rows(values_only=True)
            head = [row for _, row in zip(range(HEADER_SCAN_ROWS), rows, strict=False)]
            for contract in contracts:
                header = find_header(head, contract)
                if header is None:
                    continue
                below_header = head[header.row_number :]
                table = rows_to_table(
                    itertools.chain(
                        below_header, sheet.iter_rows(min_row=len(head) + 1, values_only=True)
                    ),
                    contract,
                    header,
                )
                parsed.append(ParsedSheet(contract.name, sheet.title, header.row_number, table))
    finally:
        workbook.close()
    return parsed
