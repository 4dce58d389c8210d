"""The demo catalogue shared by every generated export: depots, suppliers, materials, demand.

The workbook and the stock files must name the same depots and material codes, so both draw
them here, from one `random.Random(seed)`, in the same order. Changing the order of draws
changes every demo file for a given seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

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
# Depots that are not tower sites; "N/A" is the ERP's placeholder for a line without a depot.
FIXED_DEPOTS = ("ALMOX-BA", "ESCRITÓRIO", "GERBA", "N/A")
CENTRAL_DEPOT = "ALMOX-BA"
NO_DEPOT = "N/A"


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
class DemoCatalogue:
    depots: tuple[str, ...]
    suppliers: tuple[str, ...]
    lead_time_median: dict[str, float]  # days, per supplier
    items: tuple[DemoItem, ...]


@dataclass(frozen=True)
class RequisitionLine:
    day: date
    item: DemoItem
    depot: str
    supplier: str
    quantity: float  # an int for counted units, a float for metres and kilos, as the ERP stores


def build_catalogue(rng: random.Random, items: int, depots: int) -> DemoCatalogue:
    """Depots, suppliers and materials; advances `rng` exactly as the workbook always has."""
    fixed_depots = list(FIXED_DEPOTS[: max(depots, 1)])
    generated = sorted({site_code(rng) for _ in range(depots * 2)})
    depot_codes = generated[: max(depots - len(fixed_depots), 0)] + fixed_depots
    supplier_family: dict[str, str] = {}
    while len(supplier_family) < 150:
        name = f"{rng.choice(SUPPLIER_NAMES)} {rng.choice(SUPPLIER_WORDS)} LTDA"
        supplier_family.setdefault(name, rng.choice(list(FAMILY_WEIGHTS)))
    suppliers = sorted(supplier_family)
    # Per-supplier lead time: log-normal, median a few days, a long tail (real median 6, mean 12).
    lead_time_median = {s: rng.uniform(2, 12) for s in suppliers}
    catalogue = _items(rng, items, depot_codes, suppliers, supplier_family)
    return DemoCatalogue(tuple(depot_codes), tuple(suppliers), lead_time_median, tuple(catalogue))


def requisition_lines(
    rng: random.Random, catalogue: DemoCatalogue, end: date, days: int
) -> list[RequisitionLine]:
    """Intermittent weekly demand per item, Monday to Saturday, sorted by day then code."""
    start = end - timedelta(days=days - 1)
    first_monday = start - timedelta(days=start.weekday())
    lines: list[RequisitionLine] = []
    for item in catalogue.items:
        for week in range(days // 7 + 2):
            for _ in range(poisson(rng, item.weekly_rate)):
                day = first_monday + timedelta(days=week * 7 + rng.randint(0, 5))  # Mon..Sat
                if not start <= day <= end:
                    continue
                quantity = max(1, round(rng.expovariate(1 / item.mean_quantity)))
                lines.append(
                    RequisitionLine(
                        day,
                        item,
                        rng.choice(item.depots),
                        rng.choice(item.suppliers),
                        float(quantity) if item.unit in ("MT", "KG") else quantity,
                    )
                )
    lines.sort(key=lambda line: (line.day, line.item.code))
    return lines


def request_numbers(lines: list[RequisitionLine]) -> list[int]:
    """The ERP request number of each line: one per (day, depot), numbered as first seen."""
    numbers: dict[tuple[date, str], int] = {}
    return [numbers.setdefault((line.day, line.depot), 90000 + len(numbers)) for line in lines]


def site_code(rng: random.Random) -> str:
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


def poisson(rng: random.Random, rate: float) -> int:
    # Knuth's method: rates here are small, so the loop is short.
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
