"""A realistic ERP supply workbook, generated: same sheets, headers and quirks as the real one.

Quirks reproduced on purpose, since the ingestor must cope with each: Portuguese headers with
accents, a cost summary whose header sits on row 4, a hidden sites sheet whose header starts at
row 2 column C with trailing spaces, Excel date cells, `N/A` in date and depot cells, and
zero-padded material codes stored as text. Demand is intermittent (most items are requested in
few weeks) and purchase dates follow per-supplier lead times.
"""

from __future__ import annotations

import math
import random
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.demo.catalogue import (
    FIXED_DEPOTS,
    build_catalogue,
    request_numbers,
    requisition_lines,
    site_code,
)
from services.demo.output import replacing

REQUISITIONS_SHEET = "CUSTO DE MATERIAL E SERVIÇOS"
SUMMARY_SHEET = "RESUMO GERAL"
SITES_SHEET = "DADOS"
REQUISITION_HEADERS = [
    "DEPÓSITO",
    "PRODUTO/SERVIÇO",
    "MATERIAL",
    "FAMÍLIA",
    "NOME FORNEC.",
    "QUANTIDADE",
    "U.M.",
    "DATA REQUISITADA",
    "SOLICITAÇÃO",
    "DATA SOLICITADO",
    "DATA DE COMPRA",
]
SITE_HEADERS = ["SITE ", "ID SITE", "CLIENTE ", "ID CLIENTE ", "STATUS DE ALTERAÇÃO"]
DATE_FORMAT = "d/m/yyyy"

CLIENTS = (
    "ATC PREVENTIVA",
    "ATC CORRETIVA",
    "ATC OBRAS CIVIS",
    "TIM",
    "CLARO",
    "VIVO",
    "AMERICAN TOWER",
    "SBA",
    "HIGHLINE",
)
SITE_STATUSES = (
    "COMPRADOR ALTERADO",
    "CENTRO DE CUSTO ALTERADO",
    "COMPRADOR E CENTRO DE CUSTO ALTERADOS",
    "SEM ALTERAÇÃO",
)
COST_ACCOUNTS = (
    "Água/Luz",
    "Aluguel - Maquinas, Equipamentos e Ferramentas",
    "Aluguel - Veiculos",
    "Combustiveis e Lubrificantes",
    "Epi`s / Epc`s",
    "Ferro e Aço",
    "Fretes e carretos (Diversos)",
    "Itens de Escritorio",
    "Materiais Civis",
    "Material Eletrico",
    "Pintura",
    "Servicos Prestados PJ",
    "Software",
    "Tintas e Solventes",
)


@dataclass(frozen=True)
class DemoWorkbookStats:
    path: Path
    requisition_rows: int
    items: int
    depots: int
    sites: int


def generate_demo_workbook(
    out_dir: Path,
    *,
    seed: int = 42,
    items: int = 800,
    depots: int = 200,
    end: date = date(2025, 10, 31),
    days: int = 730,
    file_name: str = "dadosSuprimentos_demo.xlsx",
) -> DemoWorkbookStats:
    """Write the workbook and return what it holds. Same arguments, same content."""
    rng = random.Random(seed)
    catalogue = build_catalogue(rng, items, depots)
    lead_time_median = catalogue.lead_time_median
    lines = requisition_lines(rng, catalogue, end, days)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(REQUISITIONS_SHEET)
    sheet.append(REQUISITION_HEADERS)
    cost_by_family: dict[str, float] = defaultdict(float)
    for line, number in zip(lines, request_numbers(lines), strict=True):
        day, item, supplier = line.day, line.item, line.supplier
        lead_days = round(rng.lognormvariate(math.log(lead_time_median[supplier]), 0.8))
        unpriced = item.family.startswith("SERVIÇOS") and rng.random() < 0.03
        required = (day + timedelta(days=rng.randint(3, 30))) if rng.random() < 0.14 else None
        cost_by_family[item.family] += float(line.quantity) * rng.uniform(5, 120)
        sheet.append(
            [
                line.depot,
                item.code,
                item.description,
                item.family,
                supplier,
                line.quantity,
                item.unit,
                _date_cell(sheet, required) if required else "N/A",
                "N/A" if unpriced else number,
                "N/A" if unpriced else _date_cell(sheet, day),
                "N/A" if unpriced else _date_cell(sheet, day + timedelta(days=lead_days)),
            ]
        )

    summary = workbook.create_sheet(SUMMARY_SHEET)
    for _ in range(3):
        summary.append([])
    summary.append(["DESCRIÇÃO CTA.FINANC.", "Soma de VLR.LÍQUIDO"])
    totals = [round(rng.uniform(500, 900_000), 2) for _ in COST_ACCOUNTS]
    for account, total in zip(COST_ACCOUNTS, totals, strict=True):
        summary.append([account, total])
    summary.append(["Total Resultado", round(sum(totals), 2)])

    sites = workbook.create_sheet(SITES_SHEET)
    sites.sheet_state = "hidden"
    sites.append([])
    sites.append([None, None, *SITE_HEADERS])
    site_codes = [d for d in catalogue.depots if d not in FIXED_DEPOTS]
    site_codes += [site_code(rng) for _ in range(60)]
    for index, site in enumerate(site_codes, start=1):
        client = rng.randrange(len(CLIENTS))
        sites.append(
            [
                None,
                None,
                site,
                index,
                CLIENTS[client],
                f"NC{client + 1:02d}",
                rng.choice(SITE_STATUSES),
            ]
        )

    fixed = datetime(end.year, end.month, end.day)  # so the same seed gives the same file
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    with replacing(path) as temporary:
        workbook.save(temporary)
        _pin_timestamps(temporary, fixed)
    return DemoWorkbookStats(
        path,
        len(lines),
        len({line.item.code for line in lines}),
        len({line.depot for line in lines}),
        len(site_codes),
    )


def _date_cell(sheet: WriteOnlyWorksheet, day: date) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=datetime(day.year, day.month, day.day))
    cell.number_format = DATE_FORMAT
    return cell


def _pin_timestamps(path: Path, stamp: datetime) -> None:
    """Same seed, same bytes: openpyxl stamps each zip entry and the `modified` property with
    the wall clock on save, whatever the properties say, so both are rewritten to `stamp`."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    modified = f"{stamp:%Y-%m-%dT%H:%M:%SZ}".encode()
    with zipfile.ZipFile(path, "w") as target:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + modified, data)
            pinned = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            pinned.compress_type = info.compress_type
            pinned.external_attr = info.external_attr
            target.writestr(pinned, data)
