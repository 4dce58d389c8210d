"""Dataset contracts: what a source export must contain and how its values are typed.

Contracts are data. Matching a header is forgiving about accents, case, spacing and
punctuation, because each ERP version and each planner's Excel spells them a little differently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "float", "date"]


def normalise_header(text: object) -> str:
    """`' Família '` and `'FAMILIA'` both become `'FAMILIA'`."""
    if text is None:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^A-Z0-9]+", " ", ascii_only.upper()).strip()


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    aliases: tuple[str, ...]
    required: bool = True  # the header must be present
    nullable: bool = False  # a row may leave the value empty (or write N/A)

    @property
    def normalised_aliases(self) -> frozenset[str]:
        return frozenset(normalise_header(a) for a in (self.name, *self.aliases))


# Empty markers planners type, and Excel's error values (openpyxl reads them as text).
NULL_TOKENS = frozenset(
    {"", "N/A", "NA", "-", "#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!"}
)


@dataclass(frozen=True)
class DatasetContract:
    name: str
    description: str
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    business_date: str | None
    null_tokens: frozenset[str] = field(default_factory=lambda: NULL_TOKENS)

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def match_header(self, header: list[object]) -> dict[str, int] | None:
        """Column name -> position in `header`, or None when a required column is missing."""
        positions: dict[str, int] = {}
        normalised = [normalise_header(h) for h in header]
        for column in self.columns:
            for index, cell in enumerate(normalised):
                if cell and cell in column.normalised_aliases:
                    positions[column.name] = index
                    break
        if all(c.name in positions for c in self.required):
            return positions
        return None


ERP_REQUISITIONS = DatasetContract(
    name="erp_requisitions",
    description=(
        "Material and service requisitions/purchases: sheet 'CUSTO DE MATERIAL E SERVIÇOS' of the "
        "ERP supply workbook, one row per request line."
    ),
    columns=(
        Column("depot_code", "string", ("DEPÓSITO", "DEPOSITO"), nullable=True),
        Column("item_code", "string", ("PRODUTO/SERVIÇO", "PRODUTO", "COD PRODUTO")),
        Column("item_description", "string", ("MATERIAL", "DESCRIÇÃO")),
        Column("item_family", "string", ("FAMÍLIA",)),
        Column(
            "supplier_name", "string", ("NOME FORNEC.", "FORNECEDOR"), required=False, nullable=True
        ),
        Column("quantity", "float", ("QUANTIDADE", "QTD")),
        Column("unit", "string", ("U.M.", "UNIDADE"), required=False, nullable=True),
        Column("required_date", "date", ("DATA REQUISITADA",), required=False, nullable=True),
        Column("request_number", "string", ("SOLICITAÇÃO",), required=False, nullable=True),
        Column("requested_date", "date", ("DATA SOLICITADO",), required=False, nullable=True),
        Column("purchased_date", "date", ("DATA DE COMPRA",), required=False, nullable=True),
    ),
    business_key=("request_number", "item_code", "depot_code"),
    business_date="requested_date",
)

CONTRACTS: dict[str, DatasetContract] = {c.name: c for c in (ERP_REQUISITIONS,)}
