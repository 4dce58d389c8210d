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
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

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

# family -> (unit choices, nouns, specs, share of services priced per "SR")
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "MATERIAL ELETRICO": (
        ("UN", "MT", "PC"),
        (
            "CABO FLEXIVEL",
            "DISJUNTOR",
            "TERMINAL",
            "CONECTOR",
            "FITA ISOLANTE",
            "ELETRODUTO",
            "HASTE ATERRAMENTO",
        ),
        ("2,5MM", "6MM", "10MM", "16MM", "20A", "32A", '3/4"'),
    ),
    "FERRO E AÇO": (
        ("UN", "KG", "MT"),
        (
            "CANTONEIRA",
            "BARRA CHATA",
            "VERGALHAO",
            "CHAPA",
            "PARAFUSO GALVANIZADO",
            "PORCA SEXTAVADA",
        ),
        ('1/2"', '5/8"', '3/8"', "2MM", "3MM", "M12", "M16"),
    ),
    "EPI": (
        ("UN", "PAR"),
        (
            "LUVA VAQUETA",
            "CAPACETE",
            "OCULOS PROTECAO",
            "CINTO PARAQUEDISTA",
            "TALABARTE",
            "BOTINA",
        ),
        ("TAM 40", "TAM 42", "CLASSE B", "AZUL", "BRANCO"),
    ),
    "MATERIAL CIVIL": (
        ("UN", "M³", "KG", "M2"),
        ("CIMENTO", "AREIA MEDIA", "BRITA", "TABUA PINHO", "PREGO", "BLOCO CONCRETO"),
        ("50KG", "30CM X 3M", '2.1/2"X10MM', "N1", "N2"),
    ),
    "FERRAMENTAS E EQUIPAMENTOS": (
        ("UN", "CJ"),
        ("ALICATE", "CHAVE COMBINADA", "TRENA", "FURADEIRA", "SERRA MARMORE"),
        ('8"', "13MM", "5M", "220V"),
    ),
    "PINTURA": (
        ("GL", "UN", "LT"),
        ("TINTA ESMALTE", "FUNDO ZARCAO", "THINNER", "ROLO LA", "TRINCHA"),
        ("CINZA", "BRANCO", "3,6L", "23CM", '2"'),
    ),
    "MATERIAL DE LIMPEZA": (
        ("UN", "CX"),
        ("DETERGENTE", "DESINFETANTE", "SACO LIXO", "PANO MULTIUSO"),
        ("500ML", "5L", "100L"),
    ),
    "ABRASIVOS": (
        ("UN", "CX"),
        ("DISCO CORTE", "DISCO DESBASTE", "LIXA FERRO"),
        ('4.1/2"', '7"', "GR 80", "GR 120"),
    ),
    "SINALIZADORES": (
        ("UN",),
        ("PLACA ADVERTENCIA", "FITA ZEBRADA", "CONE"),
        ("ALTA TENSAO", "75CM", "200M"),
    ),
    "OLEOS E LUBRIFICANTES": (
        ("LT", "UN"),
        ("OLEO MOTOR", "GRAXA", "OLEO HIDRAULICO"),
        ("15W40", "1KG", "68"),
    ),
    "INFORMATICA": (
        ("UN",),
        ("CABO DE REDE", "MOUSE", "TECLADO", "LICENÇA OFFICE 365"),
        ("CAT6", "USB", "ANUAL"),
    ),
    "PAPELARIA": (("UN", "CX"), ("PAPEL A4", "CANETA", "PASTA ARQUIVO"), ("500FLS", "AZUL")),
    "SUPRIMENTOS ADMINISTRATIVO": (
        ("UN",),
        ("CAFE SOLUVEL", "COPO DESCARTAVEL", "AGUA MINERAL"),
        ("200G", "180ML", "20L"),
    ),
    "SERVIÇOS TOMADOS": (
        ("SR",),
        ("LOCAÇÃO DE RETROESCAVADEIRA", "FRETE", "INSTALAÇÃO ELETRICA", "MANUTENÇÃO GERADOR"),
        ("COM OPERADOR", "DIARIA", "SITE"),
    ),
    "SERVIÇOS PRESTADOS": (
        ("SR", "HR"),
        ("ROÇAGEM", "LIMPEZA DE SITE", "PINTURA DE TORRE", "VISTORIA"),
        ("MENSAL", "AVULSA", "30M"),
    ),
}
FAMILY_WEIGHTS = {
    "MATERIAL ELETRICO": 20,
    "SERVIÇOS TOMADOS": 11,
    "EPI": 11,
    "FERRO E AÇO": 11,
    "MATERIAL CIVIL": 10,
    "FERRAMENTAS E EQUIPAMENTOS": 8,
    "SERVIÇOS PRESTADOS": 8,
    "SUPRIMENTOS ADMINISTRATIVO": 6,
    "PINTURA": 5,
    "MATERIAL DE LIMPEZA": 3,
    "INFORMATICA": 2,
    "ABRASIVOS": 2,
    "PAPELARIA": 1,
    "SINALIZADORES": 1,
    "OLEOS E LUBRIFICANTES": 1,
}
STATES = ("BA", "SE", "AL", "PE", "RN", "MA", "MG", "PB")
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
SUPPLIER_WORDS = (
    "COMERCIAL",
    "DISTRIBUIDORA",
    "MATERIAIS",
    "FERRAGENS",
    "ELETRICA",
    "SERVICOS",
    "INDUSTRIA",
    "CONSTRUCAO",
    "EPI",
    "TECNICA",
)
SUPPLIER_NAMES = (
    "SALVADOR",
    "BAHIA",
    "NORDESTE",
    "ATLANTICO",
    "LEMOS",
    "SANTOS",
    "OLIVEIRA",
    "CAMACARI",
    "FEIRA",
    "ITAPUA",
    "LAURO",
    "RECONCAVO",
    "SOL",
    "MAR",
    "AXE",
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
class DemoItem:
    code: str
    description: str
    family: str
    unit: str
    weekly_rate: float  # expected request lines per week; most items are far below one
    mean_quantity: float
    depots: tuple[str, ...]
    suppliers: tuple[str, ...]


@dataclass(frozen=True)
class DemoWorkbookStats:
    path: Path
    requisition_rows: int
    items: int
    depots: int
    sites: int


def _site_code(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVXZ") for _ in range(3))
    suffix = rng.choice(("", "", f"-{rng.randint(1, 9)}", "-A"))
    return f"{rng.choice(STATES)}{letters}{rng.randint(1, 999):03d}{suffix}"


def _items(
    rng: random.Random,
    count: int,
    depots: list[str],
    suppliers: list[str],
    supplier_family: dict[str, str],
) -> list[DemoItem]:
    families = list(FAMILY_WEIGHTS)
    weights = [FAMILY_WEIGHTS[f] for f in families]
    codes: set[str] = set()
    items: list[DemoItem] = []
    while len(items) < count:
        family = rng.choices(families, weights)[0]
        units, nouns, specs = FAMILIES[family]
        is_service = family.startswith("SERVIÇOS")
        # Materials carry six-digit codes (010825); services four (0134). Both keep the zero.
        code = f"0{rng.randint(100, 999)}" if is_service else f"01{rng.randint(0, 3999):04d}"
        if code in codes:
            continue
        codes.add(code)
        description = f"{rng.choice(nouns)} {rng.choice(specs)}"
        family_suppliers = [s for s in suppliers if supplier_family[s] == family] or suppliers
        home = rng.sample(depots, k=min(len(depots), rng.choice((1, 2, 3, 5, 8, 13))))
        items.append(
            DemoItem(
                code=code,
                description=description,
                family=family,
                unit=rng.choice(units),
                weekly_rate=min(3.0, rng.lognormvariate(math.log(0.08), 1.1)),
                mean_quantity=max(1.0, rng.lognormvariate(math.log(6), 1.0)),
                depots=tuple(home),
                suppliers=tuple(rng.sample(family_suppliers, k=min(3, len(family_suppliers)))),
            )
        )
    return items


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
    fixed_depots = ["ALMOX-BA", "ESCRITÓRIO", "GERBA", "N/A"][: max(depots, 1)]
    generated = sorted({_site_code(rng) for _ in range(depots * 2)})
    depot_codes = generated[: max(depots - len(fixed_depots), 0)] + fixed_depots
    supplier_family: dict[str, str] = {}
    while len(supplier_family) < 150:
        name = f"{rng.choice(SUPPLIER_NAMES)} {rng.choice(SUPPLIER_WORDS)} LTDA"
        supplier_family.setdefault(name, rng.choice(list(FAMILY_WEIGHTS)))
    suppliers = sorted(supplier_family)
    # Per-supplier lead time: log-normal, median a few days, a long tail (real median 6, mean 12).
    lead_time_median = {s: rng.uniform(2, 12) for s in suppliers}
    catalogue = _items(rng, items, depot_codes, suppliers, supplier_family)

    start = end - timedelta(days=days - 1)
    first_monday = start - timedelta(days=start.weekday())
    lines: list[tuple[date, DemoItem, str, str, float]] = []
    for item in catalogue:
        for week in range(days // 7 + 2):
            for _ in range(_poisson(rng, item.weekly_rate)):
                day = first_monday + timedelta(days=week * 7 + rng.randint(0, 5))  # Mon..Sat
                if not start <= day <= end:
                    continue
                quantity = max(1, round(rng.expovariate(1 / item.mean_quantity)))
                lines.append(
                    (
                        day,
                        item,
                        rng.choice(item.depots),
                        rng.choice(item.suppliers),
                        float(quantity) if item.unit in ("MT", "KG") else quantity,
                    )
                )
    lines.sort(key=lambda line: (line[0], line[1].code))

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(REQUISITIONS_SHEET)
    sheet.append(REQUISITION_HEADERS)
    request_numbers: dict[tuple[date, str], int] = defaultdict(lambda: 90000 + len(request_numbers))
    cost_by_family: dict[str, float] = defaultdict(float)
    for day, item, depot, supplier, quantity in lines:
        number = request_numbers[(day, depot)]
        lead_days = round(rng.lognormvariate(math.log(lead_time_median[supplier]), 0.8))
        unpriced = item.family.startswith("SERVIÇOS") and rng.random() < 0.03
        required = (day + timedelta(days=rng.randint(3, 30))) if rng.random() < 0.14 else None
        cost_by_family[item.family] += float(quantity) * rng.uniform(5, 120)
        sheet.append(
            [
                depot,
                item.code,
                item.description,
                item.family,
                supplier,
                quantity,
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
    site_codes = [d for d in depot_codes if d not in ("ALMOX-BA", "ESCRITÓRIO", "GERBA", "N/A")]
    site_codes += [_site_code(rng) for _ in range(60)]
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
    workbook.save(path)
    return DemoWorkbookStats(
        path,
        len(lines),
        len({line[1].code for line in lines}),
        len({line[2] for line in lines}),
        len(site_codes),
    )


def _date_cell(sheet: WriteOnlyWorksheet, day: date) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=datetime(day.year, day.month, day.day))
    cell.number_format = DATE_FORMAT
    return cell


def _poisson(rng: random.Random, rate: float) -> int:
    # Knuth's method: rates here are small, so the loop is short.
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
