"""Every source the ingestor accepts, generated in its real raw shape, from one seed.

One call writes the ERP workbook plus six files: the ERP's stock movements and stock snapshot
(CSV, as the ERP and Excel export them) and four public series (JSON, as each API returns
them). The stock files name the workbook's own depots and material codes, so the demo exercises
every dataset contract and every join without the real files.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from services.demo.catalogue import build_catalogue, requisition_lines
from services.demo.erp_workbook import DemoWorkbookStats, generate_demo_workbook
from services.demo.external import bacen_ptax, bacen_selic, ibge_ipca, open_meteo
from services.demo.output import write_bytes
from services.demo.stock import movements_csv, positions_csv, simulate_stock

MOVEMENTS_FILE = "movimentacao_estoque.csv"
POSITIONS_FILE = "posicao_estoque.csv"
WEATHER_FILE = "openmeteo_salvador_ba.json"
SELIC_FILE = "bacen_selic.json"
PTAX_FILE = "bacen_ptax_usd.json"
IPCA_FILE = "ibge_ipca.json"
SOURCE_FILES = (MOVEMENTS_FILE, POSITIONS_FILE, WEATHER_FILE, SELIC_FILE, PTAX_FILE, IPCA_FILE)


@dataclass(frozen=True)
class DemoSources:
    workbook: DemoWorkbookStats
    paths: list[Path]  # everything written: the workbook first, then SOURCE_FILES in order
    rows: dict[str, int]  # file name -> data rows (requisition lines, hours, bulletins, ...)


def generate_demo_sources(
    out_dir: Path,
    *,
    seed: int = 42,
    items: int = 800,
    depots: int = 200,
    end: date = date(2025, 10, 31),
    days: int = 730,
) -> DemoSources:
    """Write the workbook and the six source files into `out_dir`. Same arguments, same bytes."""
    workbook = generate_demo_workbook(
        out_dir, seed=seed, items=items, depots=depots, end=end, days=days
    )
    # Replays the workbook's draws, so the depots, codes and demand are the workbook's own.
    rng = random.Random(seed)
    catalogue = build_catalogue(rng, items, depots)
    lines = requisition_lines(rng, catalogue, end, days)

    # Each file has its own stream, so changing one generator leaves the other files as they were.
    def stream(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    history = simulate_stock(stream(MOVEMENTS_FILE), catalogue, lines, end)
    weather = open_meteo(stream(WEATHER_FILE), end, days)
    selic = bacen_selic(stream(SELIC_FILE), end, days)
    ptax = bacen_ptax(stream(PTAX_FILE), end, days)
    ipca = ibge_ipca(stream(IPCA_FILE), end, days)

    outputs: list[tuple[str, bytes, int]] = [
        (MOVEMENTS_FILE, movements_csv(history.movements), len(history.movements)),
        (POSITIONS_FILE, positions_csv(history.positions, end), len(history.positions)),
        (WEATHER_FILE, _json(weather), len(weather["hourly"]["time"])),
        (SELIC_FILE, _json(selic), len(selic["data"])),
        (PTAX_FILE, _json(ptax), len(ptax["value"])),
        (IPCA_FILE, _json(ipca), len(ipca) - 1),  # the first element is the label row
    ]
    paths = [workbook.path]
    rows = {workbook.path.name: workbook.requisition_rows}
    for name, data, count in outputs:
        paths.append(write_bytes(out_dir / name, data))
        rows[name] = count
    return DemoSources(workbook, paths, rows)


def _json(payload: Any) -> bytes:
    # As the real downloads are saved: two-space indent, accents as they are, no final newline.
    return json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
