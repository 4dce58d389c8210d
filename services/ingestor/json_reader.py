"""Read the JSON that public APIs return (Open-Meteo, BACEN SGS and PTAX, IBGE SIDRA).

Each contract's `JsonLayout` says where the records sit; the records then go through the same
header matching and casting as spreadsheet rows, so a renamed field is caught the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from services.ingestor.contracts import DatasetContract, JsonLayout
from services.ingestor.parsing import (
    ContractViolation,
    HeaderMatch,
    best_header,
    near_miss,
    rows_to_table,
)


def load_json(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ContractViolation(f"JSON is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ContractViolation(f"not valid JSON: {exc}") from exc


def _records(document: Any, layout: JsonLayout) -> tuple[list[str], list[list[Any]]] | None:
    """Field names and row values, or None when the document does not have this layout."""
    if layout.records_at is None:
        found = document
    elif isinstance(document, dict):
        found = document.get(layout.records_at)
    else:
        return None
    scalars = {}
    if layout.document_fields:
        if not isinstance(document, dict):
            return None
        scalars = {k: document.get(k) for k in layout.document_fields}
    if layout.orientation == "columns":
        if not isinstance(found, dict) or not all(isinstance(v, list) for v in found.values()):
            return None
        names = list(found)
        lengths = {len(v) for v in found.values()}
        if len(lengths) > 1:
            raise ContractViolation(
                f"the arrays under {layout.records_at!r} have different lengths {sorted(lengths)}"
            )
        rows = [list(values) for values in zip(*found.values(), strict=True)]
    else:
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            return None
        records = found[1:] if layout.skip_first else found
        names = list(dict.fromkeys(k for record in records[:1000] for k in record))
        rows = [[record.get(name) for name in names] for record in records]
    names += list(scalars)
    for row in rows:
        row.extend(scalars.values())
    return names, rows


def match_json(
    document: Any, contracts: Sequence[DatasetContract]
) -> tuple[HeaderMatch, list[list[Any]]]:
    candidates = [c for c in contracts if c.json_layout is not None]
    best: tuple[HeaderMatch, list[list[Any]]] | None = None
    for contract in candidates:
        assert contract.json_layout is not None
        found = _records(document, contract.json_layout)
        if found is None:
            continue
        names, rows = found
        header = best_header([names], [contract])
        if header is not None and (best is None or len(header.positions) > len(best[0].positions)):
            best = (header, rows)
    if best is None:
        names = ", ".join(c.name for c in candidates) or "none accepts JSON"
        closest = [
            miss
            for contract in candidates
            if contract.json_layout is not None
            and (found := _records(document, contract.json_layout)) is not None
            and (miss := near_miss([found[0]], [contract]))
        ]
        raise ContractViolation(
            f"the JSON does not have the fields of any dataset ({names})"
            + (
                f"; closest: {closest[0].replace('row 1 looks', 'the records look')}"
                if closest
                else ""
            ),
            dataset=candidates[0].name if len(candidates) == 1 else None,
        )
    return best


def read_json(content: bytes, contracts: Sequence[DatasetContract]) -> tuple[HeaderMatch, pa.Table]:
    header, rows = match_json(load_json(content), contracts)
    return header, rows_to_table(rows, header)
