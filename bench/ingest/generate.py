"""Deterministic ERP requisition exports for the benchmark: a Brazilian CSV and a workbook.

The CSV is what a Brazilian ERP writes: Windows-1252, `;`, CRLF, `1.234,56`, `dd/mm/yyyy`, `N/A`
for empty dates, accents in headers and values. Rows are drawn from small pools (items, depots,
suppliers, days, quantities) with NumPy and joined with Arrow kernels, 100,000 rows at a time, so a
million rows take a few seconds. The same seed and row count always give the same rows (and,
for the CSV, the same bytes; openpyxl stamps the save time into a workbook).

Files are cached under `<data_dir>/` by their parameters and written through a temporary name, so
an interrupted run never leaves a half file that a later run would trust.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.ingest.dataset import HEADER, SEED, SHEET_NAME, cached_path

CHUNK_ROWS = 100_000
CSV_ENCODING = "cp1252"
NA = "N/A"
FIRST_DAY = date(2023, 11, 1)
DAYS = 730  # requests over two years
MAX_LEAD_DAYS = 180

# family -> (units, nouns, specs)
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "MATERIAL ELÉTRICO": (
        ("UN", "MT", "PC"),
        ("CABO FLEXÍVEL", "DISJUNTOR", "TERMINAL", "CONECTOR", "ELETRODUTO"),
        ("2,5MM²", "6MM²", "10MM²", "20A", "32A", '3/4"'),
    ),
    "FERRO E AÇO": (
        ("UN", "KG", "MT"),
        ("CANTONEIRA", "BARRA CHATA", "VERGALHÃO", "CHAPA", "PARAFUSO"),
        ('1/2"', '5/8"', "2MM", "M12", "M16"),
    ),
    "EPI": (
        ("UN", "PAR"),
        ("LUVA VAQUETA", "CAPACETE", "ÓCULOS PROTEÇÃO", "CINTO PARAQUEDISTA", "BOTINA"),
        ("TAM 40", "TAM 42", "CLASSE B", "AZUL"),
    ),
    "MATERIAL CIVIL": (
        ("UN", "M³", "KG", "M2"),
        ("CIMENTO", "AREIA MÉDIA", "BRITA", "TÁBUA PINHO", "BLOCO CONCRETO"),
        ("50KG", "30CM X 3M", "N1", "N2"),
    ),
    "FERRAMENTAS E EQUIPAMENTOS": (
        ("UN", "CJ"),
        ("ALICATE", "CHAVE COMBINADA", "TRENA", "FURADEIRA", "SERRA MÁRMORE"),
        ('8"', "13MM", "5M", "220V"),
    ),
    "PINTURA": (
        ("GL", "UN", "LT"),
        ("TINTA ESMALTE", "FUNDO ZARCÃO", "THINNER", "ROLO LÃ", "TRINCHA"),
        ("CINZA", "BRANCO", "3,6L", "23CM"),
    ),
    "MATERIAL DE LIMPEZA": (
        ("UN", "CX"),
        ("DETERGENTE", "DESINFETANTE", "SACO LIXO", "PANO MULTIUSO"),
        ("500ML", "5L", "100L"),
    ),
    "ABRASIVOS": (("UN", "CX"), ("DISCO CORTE", "DISCO DESBASTE", "LIXA FERRO"), ('7"', "GR 80")),
    "SINALIZAÇÃO": (
        ("UN",),
        ("PLACA ADVERTÊNCIA", "FITA ZEBRADA", "CONE"),
        ("ALTA TENSÃO", "75CM", "200M"),
    ),
    "ÓLEOS E LUBRIFICANTES": (
        ("LT", "UN"),
        ("ÓLEO MOTOR", "GRAXA", "ÓLEO HIDRÁULICO"),
        ("15W40", "1KG", "68"),
    ),
    "INFORMÁTICA": (
        ("UN",),
        ("CABO DE REDE", "MOUSE", "TECLADO", "LICENÇA OFFICE"),
        ("CAT6", "USB", "ANUAL"),
    ),
    "PAPELARIA": (("UN", "CX"), ("PAPEL A4", "CANETA", "PASTA ARQUIVO"), ("500FLS", "AZUL")),
    "SUPRIMENTOS ADMINISTRATIVOS": (
        ("UN",),
        ("CAFÉ SOLÚVEL", "COPO DESCARTÁVEL", "ÁGUA MINERAL"),
        ("200G", "180ML", "20L"),
    ),
    "SERVIÇOS TOMADOS": (
        ("SR",),
        ("LOCAÇÃO RETROESCAVADEIRA", "FRETE", "INSTALAÇÃO ELÉTRICA", "MANUTENÇÃO GERADOR"),
        ("C/ OPERADOR", "DIÁRIA", "SITE"),
    ),
    "SERVIÇOS PRESTADOS": (
        ("SR", "HR"),
        ("ROÇAGEM", "LIMPEZA DE SITE", "PINTURA DE TORRE", "VISTORIA"),
        ("MENSAL", "AVULSA"),
    ),
    "ILUMINAÇÃO": (("UN",), ("LÂMPADA LED", "REFLETOR", "LUMINÁRIA"), ("9W", "50W", "BIVOLT")),
    "REFRIGERAÇÃO": (("UN", "KG"), ("GÁS R22", "COMPRESSOR", "FILTRO SECADOR"), ("13KG", "1/4")),
    "BATERIAS": (("UN",), ("BATERIA ESTACIONÁRIA", "BATERIA SELADA"), ("12V 100AH", "2V 500AH")),
    "ATERRAMENTO": (
        ("UN", "MT"),
        ("HASTE COBREADA", "CORDOALHA", "CAIXA INSPEÇÃO"),
        ("5/8", "50MM²"),
    ),
    "ESTRUTURA METÁLICA": (("UN", "KG"), ("MONTANTE", "TRAVAMENTO", "ESCADA"), ("GALV.", "3M")),
}
SUPPLIER_KINDS = ("COMERCIAL", "DISTRIBUIDORA", "ELÉTRICA", "CONSTRUÇÕES", "FERRAGENS", "TÉCNICA")
SUPPLIER_NAMES = (
    "SÃO JOSÉ",
    "BAHIA",
    "NORDESTE",
    "PIRAJÁ",
    "ITAPUÃ",
    "CAMAÇARI",
    "FEIRA",
    "JOÃO PESSOA",
    "CONCEIÇÃO",
    "PARAÍSO",
    "ARACAJU",
    "MACEIÓ",
)
SUPPLIER_FORMS = ("LTDA", "ME", "EIRELI", "S.A.")
STATES = ("BA", "PE", "SE", "AL", "PB", "RN", "CE")


@dataclass(frozen=True)
class Pools:
    """What rows are drawn from. Index `-1` of depots, suppliers and days is the empty marker."""

    depots: list[str]  # last: "N/A"
    item_codes: list[str]
    item_descriptions: list[str]
    item_families: list[str]
    item_units: list[str]
    suppliers: list[str]  # last: "" (no supplier)
    quantity_texts: list[str]  # 1.234,56
    quantity_values: list[float]
    days: list[date]  # FIRST_DAY onwards


def _brazilian(value: float, decimals: int) -> str:
    """12345.6 -> '12.345,60' (thousands dots, decimal comma)."""
    text = f"{value:,.{decimals}f}"
    return text.translate(str.maketrans({",": ".", ".": ","}))


def build_pools(seed: int = SEED, items: int = 5000, depots: int = 400) -> Pools:
    rng = random.Random(seed)
    depot_codes = sorted(
        {
            f"{rng.choice(STATES)}{''.join(rng.choices('ABCDEFGHJKLMNPRSTUVXZ', k=3))}"
            f"{rng.randint(1, 999):03d}-{rng.randint(1, 9)}"
            for _ in range(depots)
        }
    )
    depot_codes += ["ALMOX-BA", "ALMOX-PE", "GERBA", NA]
    families = list(FAMILIES)
    codes = [f"{n:06d}" for n in rng.sample(range(1, 200_000), items)]
    descriptions, item_families, units = [], [], []
    for _ in range(items):
        family = rng.choice(families)
        family_units, nouns, specs = FAMILIES[family]
        descriptions.append(f"{rng.choice(nouns)} {rng.choice(specs)}")
        item_families.append(family)
        units.append(rng.choice(family_units))
    suppliers = sorted(
        {
            " ".join(rng.choice(part) for part in (SUPPLIER_KINDS, SUPPLIER_NAMES, SUPPLIER_FORMS))
            for _ in range(300)
        }
    )
    suppliers.append("")
    quantity_texts, quantity_values = [], []
    for _ in range(10_000):
        draw = rng.random()
        if draw < 0.6:
            value, decimals = float(rng.randint(1, 50)), 0
        elif draw < 0.8:
            value, decimals = round(rng.uniform(0.1, 99), 2), 2
        elif draw < 0.95:
            value, decimals = float(rng.randint(100, 5000)), 0
        else:
            value, decimals = round(rng.uniform(1000, 99_999), 2), 2
        quantity_texts.append(_brazilian(value, decimals))
        quantity_values.append(value)
    days = [FIRST_DAY + timedelta(days=d) for d in range(DAYS + MAX_LEAD_DAYS + 1)]
    return Pools(
        depot_codes,
        codes,
        descriptions,
        item_families,
        units,
        suppliers,
        quantity_texts,
        quantity_values,
        days,
    )


@dataclass(frozen=True)
class Draw:
    """Pool indices for one chunk of rows; a day index of -1 means `N/A`."""

    first_row: int
    depot: np.ndarray
    item: np.ndarray
    supplier: np.ndarray
    quantity: np.ndarray
    required_day: np.ndarray
    request_number: np.ndarray  # -1: N/A
    requested_day: np.ndarray
    purchased_day: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.item)


def draws(pools: Pools, rows: int, seed: int = SEED) -> Iterator[Draw]:
    """Chunks of row draws; chunk `k` depends only on the seed, `k` and its size."""
    n_depots, n_items = len(pools.depots) - 1, len(pools.item_codes)
    for chunk, first in enumerate(range(0, rows, CHUNK_ROWS)):
        n = min(CHUNK_ROWS, rows - first)
        rng = np.random.default_rng([seed, chunk])
        depot = rng.integers(0, n_depots, n)
        depot[rng.random(n) < 0.02] = n_depots  # N/A
        item = (rng.random(n) ** 2 * n_items).astype(np.int64)  # a few items are most requested
        supplier = rng.integers(0, len(pools.suppliers) - 1, n)
        supplier[rng.random(n) < 0.01] = len(pools.suppliers) - 1  # no supplier
        quantity = rng.integers(0, len(pools.quantity_texts), n)
        requested = rng.integers(0, DAYS, n)
        required = np.where(rng.random(n) < 0.14, requested + rng.integers(3, 31, n), -1)
        lead = np.minimum(rng.geometric(1 / 20, n), MAX_LEAD_DAYS)
        purchased = requested + lead
        unpriced = rng.random(n) < 0.02  # services bought without a request: all N/A
        number = np.where(unpriced, -1, 100_000 + (first + np.arange(n)) // 3)
        yield Draw(
            first,
            depot,
            item,
            supplier,
            quantity,
            required,
            number,
            np.where(unpriced, -1, requested),
            np.where(unpriced, -1, purchased),
        )


# --- CSV ------------------------------------------------------------------------------------


def _take(pool: pa.Array, indices: np.ndarray) -> pa.Array:
    return pool.take(pa.array(indices))


def _csv_chunk(pools: Pools, arrow: dict[str, pa.Array], draw: Draw) -> bytes:
    dates = arrow["dates"]  # last entry: N/A
    na_day = len(dates) - 1

    def day(indices: np.ndarray) -> pa.Array:
        return _take(dates, np.where(indices < 0, na_day, indices))

    numbers = pc.cast(pa.array(draw.request_number), pa.string())
    numbers = pc.if_else(pc.equal(pa.array(draw.request_number), -1), NA, numbers)
    columns = [
        _take(arrow["depots"], draw.depot),
        _take(arrow["codes"], draw.item),
        _take(arrow["descriptions"], draw.item),
        _take(arrow["families"], draw.item),
        _take(arrow["suppliers"], draw.supplier),
        _take(arrow["quantities"], draw.quantity),
        _take(arrow["units"], draw.item),
        day(draw.required_day),
        numbers,
        day(draw.requested_day),
        day(draw.purchased_day),
    ]
    lines = pc.binary_join_element_wise(*columns, ";")
    lines = pc.binary_join_element_wise(lines, "", "\r\n")  # each line ends with CRLF
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    text = memoryview(lines.buffers()[2])[start:end].tobytes().decode("utf-8")
    return text.encode(CSV_ENCODING)


def write_csv(path: Path, rows: int, seed: int = SEED) -> None:
    pools = build_pools(seed)
    arrow = {
        "depots": pa.array(pools.depots),
        "codes": pa.array(pools.item_codes),
        "descriptions": pa.array(pools.item_descriptions),
        "families": pa.array(pools.item_families),
        "units": pa.array(pools.item_units),
        "suppliers": pa.array(pools.suppliers),
        "quantities": pa.array(pools.quantity_texts),
        "dates": pa.array([f"{d:%d/%m/%Y}" for d in pools.days] + [NA]),
    }
    with path.open("wb") as handle:
        handle.write((";".join(HEADER) + "\r\n").encode(CSV_ENCODING))
        for draw in draws(pools, rows, seed):
            handle.write(_csv_chunk(pools, arrow, draw))


# --- workbook -------------------------------------------------------------------------------


def workbook_rows(rows: int, seed: int = SEED) -> Iterator[list[object]]:
    """The same draws as the CSV, as Excel would hold them: numbers, date cells and `N/A`."""
    pools = build_pools(seed)
    moments = [datetime(d.year, d.month, d.day) for d in pools.days]

    def day(index: int) -> object:
        return NA if index < 0 else moments[index]

    for draw in draws(pools, rows, seed):
        for depot, item, supplier, quantity, required, number, requested, purchased in zip(
            draw.depot.tolist(),
            draw.item.tolist(),
            draw.supplier.tolist(),
            draw.quantity.tolist(),
            draw.required_day.tolist(),
            draw.request_number.tolist(),
            draw.requested_day.tolist(),
            draw.purchased_day.tolist(),
            strict=True,
        ):
            yield [
                pools.depots[depot],
                pools.item_codes[item],
                pools.item_descriptions[item],
                pools.item_families[item],
                pools.suppliers[supplier] or None,
                pools.quantity_values[quantity],
                pools.item_units[item],
                day(required),
                NA if number < 0 else number,
                day(requested),
                day(purchased),
            ]


def write_workbook(path: Path, rows: int, seed: int = SEED) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_NAME)
    sheet.append(list(HEADER))
    for row in workbook_rows(rows, seed):
        sheet.append(row)
    workbook.save(path)


# --- cache ----------------------------------------------------------------------------------


def cached(data_dir: Path, kind: str, rows: int, seed: int = SEED) -> tuple[Path, bool]:
    """The `kind` ("csv" or "xlsx") file of `rows` rows, generated unless already cached.

    Returns the path and whether it was generated now.
    """
    path = cached_path(data_dir, kind, rows, seed)
    if path.exists():
        return path, False
    data_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".tmp-", suffix=path.suffix)
    os.close(handle)
    try:
        (write_csv if kind == "csv" else write_workbook)(Path(temporary), rows, seed)
        Path(temporary).replace(path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path, True


def main(argv: list[str]) -> int:
    """`python -m bench.ingest.generate KIND ROWS DATA_DIR`: prints the cached file's path."""
    kind, rows, data_dir = argv
    path, _ = cached(Path(data_dir), kind, int(rows))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
