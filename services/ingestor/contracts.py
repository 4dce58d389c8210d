"""Dataset contracts: what a source export must contain and how its values are typed.

Contracts are data. Matching a header is forgiving about accents, case, spacing and
punctuation, because each ERP version and each planner's Excel spells them a little differently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

ColumnType = Literal["string", "float", "date", "timestamp", "month"]
SourceFormat = Literal["xlsx", "csv", "json"]


def normalise_header(text: object) -> str:
    """`' Família '` and `'FAMILIA'` both become `'FAMILIA'`."""
    if text is None:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^A-Z0-9]+", " ", ascii_only.upper()).strip()


def snake_case(text: object) -> str:
    """`'VALOR UNITÁRIO'` becomes `'valor_unitario'`: how an unknown extra column is named."""
    return normalise_header(text).lower().replace(" ", "_") or "unnamed"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    aliases: tuple[str, ...]
    required: bool = True  # the header must be present
    nullable: bool = False  # a row may leave the value empty (or write N/A)
    description: str = ""

    @cached_property  # asked for every header cell of every file
    def normalised_aliases(self) -> frozenset[str]:
        return frozenset(normalise_header(a) for a in (self.name, *self.aliases))


@dataclass(frozen=True)
class JsonLayout:
    """Where the records sit in a JSON document, since every public API nests them differently."""

    records_at: str | None  # key of the records; None when the document itself is the list
    orientation: Literal["records", "columns"] = "records"  # list of objects, or parallel arrays
    skip_first: bool = False  # SIDRA puts a row of field labels before the data
    document_fields: tuple[str, ...] = ()  # top-level values copied onto every row


# Empty markers planners type, and Excel's error values (read as text).
NULL_TOKENS = frozenset(
    {"", "N/A", "NA", "-", "#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!"}
)


@dataclass(frozen=True)
class DatasetContract:
    name: str
    description: str
    formats: tuple[SourceFormat, ...]
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    business_date: str | None
    json_layout: JsonLayout | None = None
    null_tokens: frozenset[str] = field(default_factory=lambda: NULL_TOKENS)

    def __post_init__(self) -> None:
        names = {c.name for c in self.columns}
        unknown = {*self.business_key, *([self.business_date] if self.business_date else [])}
        if missing := unknown - names:
            raise ValueError(f"{self.name}: business key/date name unknown columns {missing}")
        if ("json" in self.formats) != (self.json_layout is not None):
            raise ValueError(f"{self.name}: a JSON source needs a json_layout, and only it")

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


_DEPOT = Column(
    "depot_code",
    "string",
    ("DEPÓSITO", "DEPOSITO", "ALMOXARIFADO"),
    description="Depot or tower site code, e.g. BAJSS002-3 or ALMOX-BA.",
)
_ITEM = Column(
    "item_code",
    "string",
    ("PRODUTO/SERVIÇO", "PRODUTO", "COD PRODUTO", "CÓDIGO"),
    description="Material code, zero-padded text (010825); leading zeros are kept.",
)
_ITEM_DESCRIPTION = Column(
    "item_description", "string", ("MATERIAL", "DESCRIÇÃO"), description="Material description."
)
_UNIT = Column(
    "unit",
    "string",
    ("U.M.", "UNIDADE", "UM"),
    required=False,
    nullable=True,
    description="Unit of measure (UN, MT, KG, M2, M³, ...).",
)

ERP_REQUISITIONS = DatasetContract(
    name="erp_requisitions",
    description=(
        "Material and service requisitions/purchases: sheet 'CUSTO DE MATERIAL E SERVIÇOS' of the "
        "ERP supply workbook, one row per request line."
    ),
    formats=("xlsx", "csv"),
    columns=(
        Column(
            _DEPOT.name, "string", _DEPOT.aliases, nullable=True, description=_DEPOT.description
        ),
        _ITEM,
        _ITEM_DESCRIPTION,
        Column("item_family", "string", ("FAMÍLIA",), description="Material family (20 of them)."),
        Column(
            "supplier_name",
            "string",
            ("NOME FORNEC.", "FORNECEDOR"),
            required=False,
            nullable=True,
            description="Supplier the line was bought from.",
        ),
        Column("quantity", "float", ("QUANTIDADE", "QTD"), description="Quantity requested."),
        _UNIT,
        Column(
            "required_date",
            "date",
            ("DATA REQUISITADA",),
            required=False,
            nullable=True,
            description="Date the material is needed by (mostly N/A).",
        ),
        Column(
            "request_number",
            "string",
            ("SOLICITAÇÃO",),
            required=False,
            nullable=True,
            description="Purchase request number.",
        ),
        Column(
            "requested_date",
            "date",
            ("DATA SOLICITADO",),
            required=False,
            nullable=True,
            description="Date the request was made (business date).",
        ),
        Column(
            "purchased_date",
            "date",
            ("DATA DE COMPRA",),
            required=False,
            nullable=True,
            description="Date it was bought; minus requested_date is the lead time.",
        ),
    ),
    business_key=("request_number", "item_code", "depot_code"),
    business_date="requested_date",
)

ERP_COST_SUMMARY = DatasetContract(
    name="erp_cost_summary",
    description=(
        "Cost totals per financial account: sheet 'RESUMO GERAL' of the ERP supply workbook "
        "(a pivot table; its header is a few rows down and its last row is the grand total)."
    ),
    formats=("xlsx", "csv"),
    columns=(
        Column(
            "account",
            "string",
            ("DESCRIÇÃO CTA.FINANC.", "CONTA FINANCEIRA", "CTA FINANC"),
            description="Financial account description; 'Total Resultado' is the pivot total.",
        ),
        Column(
            "net_value_brl",
            "float",
            ("Soma de VLR.LÍQUIDO", "VLR.LÍQUIDO", "VALOR LÍQUIDO"),
            description="Net value in BRL.",
        ),
    ),
    business_key=("account",),
    business_date=None,
)

ERP_SITES = DatasetContract(
    name="erp_sites",
    description=(
        "Tower sites and their clients: the hidden sheet 'DADOS' of the ERP supply workbook "
        "(header on row 2 starting at column C)."
    ),
    formats=("xlsx", "csv"),
    columns=(
        Column("site_code", "string", ("SITE",), description="Site code, e.g. CGM0002-1."),
        Column("site_id", "string", ("ID SITE",), nullable=True, description="Sequential id."),
        Column("client_name", "string", ("CLIENTE",), nullable=True, description="Client name."),
        Column("client_id", "string", ("ID CLIENTE",), nullable=True, description="Client id."),
        Column(
            "change_status",
            "string",
            ("STATUS DE ALTERAÇÃO",),
            required=False,
            nullable=True,
            description="What changed on the site record.",
        ),
    ),
    business_key=("site_code",),
    business_date=None,
)

STOCK_MOVEMENTS = DatasetContract(
    name="stock_movements",
    description=(
        "Stock movements exported from the ERP as CSV: one row per movement line "
        "(ENTRADA, SAÍDA, AJUSTE, TRANSFERÊNCIA)."
    ),
    formats=("csv", "xlsx"),
    columns=(
        Column("movement_date", "date", ("DATA MOVIMENTO", "DATA"), description="Movement day."),
        _DEPOT,
        _ITEM,
        Column(
            _ITEM_DESCRIPTION.name,
            "string",
            _ITEM_DESCRIPTION.aliases,
            required=False,
            nullable=True,
            description=_ITEM_DESCRIPTION.description,
        ),
        Column(
            "movement_type",
            "string",
            ("TIPO MOVIMENTO", "TIPO"),
            description="ENTRADA (in), SAÍDA (out), AJUSTE (adjustment), TRANSFERÊNCIA.",
        ),
        Column("quantity", "float", ("QUANTIDADE", "QTD"), description="Quantity moved (>= 0)."),
        _UNIT,
        Column(
            "document_number",
            "string",
            ("DOCUMENTO", "NUM DOCUMENTO"),
            description="ERP document of the movement.",
        ),
        Column(
            "unit_cost_brl",
            "float",
            ("VALOR UNITÁRIO", "CUSTO UNITÁRIO"),
            required=False,
            nullable=True,
            description="Unit cost in BRL.",
        ),
    ),
    business_key=("document_number", "item_code", "depot_code", "movement_type"),
    business_date="movement_date",
)

STOCK_ON_HAND = DatasetContract(
    name="stock_on_hand",
    description="Stock on hand per depot and material at a snapshot date, exported as CSV.",
    formats=("csv", "xlsx"),
    columns=(
        Column(
            "snapshot_date",
            "date",
            ("DATA POSIÇÃO", "DATA POSICAO", "DATA SALDO"),
            description="Day the balance refers to.",
        ),
        _DEPOT,
        _ITEM,
        Column(
            _ITEM_DESCRIPTION.name,
            "string",
            _ITEM_DESCRIPTION.aliases,
            required=False,
            nullable=True,
            description=_ITEM_DESCRIPTION.description,
        ),
        Column("quantity_on_hand", "float", ("SALDO", "QTD ESTOQUE"), description="Balance."),
        _UNIT,
        Column(
            "average_cost_brl",
            "float",
            ("CUSTO MÉDIO",),
            required=False,
            nullable=True,
            description="Average unit cost in BRL.",
        ),
    ),
    business_key=("snapshot_date", "depot_code", "item_code"),
    business_date="snapshot_date",
)

WEATHER_HOURLY = DatasetContract(
    name="weather_hourly",
    description="Open-Meteo hourly weather history (JSON as the archive API returns it).",
    formats=("json",),
    json_layout=JsonLayout(
        records_at="hourly", orientation="columns", document_fields=("latitude", "longitude")
    ),
    columns=(
        Column("observed_at", "timestamp", ("time",), description="Hour (UTC, as requested)."),
        Column("temperature_c", "float", ("temperature_2m",), nullable=True),
        Column("relative_humidity_pct", "float", ("relative_humidity_2m",), nullable=True),
        Column("precipitation_mm", "float", ("precipitation",), nullable=True),
        Column("wind_speed_kmh", "float", ("wind_speed_10m",), nullable=True),
        Column("latitude", "float", (), description="Of the grid cell the series is for."),
        Column("longitude", "float", (), description="Of the grid cell the series is for."),
    ),
    business_key=("latitude", "longitude", "observed_at"),
    business_date="observed_at",
)

SELIC = DatasetContract(
    name="selic",
    description="SELIC rate from the Banco Central SGS API (JSON: data/valor, dd/mm/yyyy).",
    formats=("json",),
    json_layout=JsonLayout(records_at="data"),
    columns=(
        Column("rate_date", "date", ("data",), description="Day the rate applies to."),
        Column("rate_pct", "float", ("valor",), description="Rate in % per year."),
    ),
    business_key=("rate_date",),
    business_date="rate_date",
)

PTAX_USD = DatasetContract(
    name="ptax_usd",
    description="USD/BRL PTAX quotes from the Banco Central OData API (several bulletins a day).",
    formats=("json",),
    json_layout=JsonLayout(records_at="value"),
    columns=(
        Column("quoted_at", "timestamp", ("dataHoraCotacao",), description="Brasília time."),
        Column("buy_rate", "float", ("cotacaoCompra",), description="BRL per USD, buying."),
        Column("sell_rate", "float", ("cotacaoVenda",), description="BRL per USD, selling."),
        Column(
            "bulletin_type",
            "string",
            ("tipoBoletim",),
            description="Abertura, Intermediário or Fechamento (the closing rate).",
        ),
        Column("buy_parity", "float", ("paridadeCompra",), required=False, nullable=True),
        Column("sell_parity", "float", ("paridadeVenda",), required=False, nullable=True),
    ),
    business_key=("quoted_at", "bulletin_type"),
    business_date="quoted_at",
)

IPCA = DatasetContract(
    name="ipca",
    description="IPCA monthly inflation from IBGE SIDRA (JSON; the first row labels the fields).",
    formats=("json",),
    json_layout=JsonLayout(records_at=None, skip_first=True),
    columns=(
        Column("month", "month", ("D3C",), description="First day of the month (YYYYMM)."),
        Column("value_pct", "float", ("V",), nullable=True, description="Value in %."),
        Column("variable_code", "string", ("D2C",), description="SIDRA variable code."),
        Column("variable", "string", ("D2N",), description="e.g. 'IPCA - Variação mensal'."),
        Column("territory", "string", ("D1N",), required=False, nullable=True),
        Column("territory_code", "string", ("D1C",), required=False, nullable=True),
        Column("unit", "string", ("MN",), required=False, nullable=True),
        Column("unit_code", "string", ("MC",), required=False, nullable=True),
        Column("level", "string", ("NN",), required=False, nullable=True),
        Column("level_code", "string", ("NC",), required=False, nullable=True),
        Column("month_label", "string", ("D3N",), required=False, nullable=True),
    ),
    business_key=("variable_code", "month"),
    business_date="month",
)

CONTRACTS: dict[str, DatasetContract] = {
    c.name: c
    for c in (
        ERP_REQUISITIONS,
        ERP_COST_SUMMARY,
        ERP_SITES,
        STOCK_MOVEMENTS,
        STOCK_ON_HAND,
        WEATHER_HOURLY,
        SELIC,
        PTAX_USD,
        IPCA,
    )
}
