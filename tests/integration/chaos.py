"""Helpers of the cluster and soak tests: service processes that can be killed and restarted,
generated ERP exports, and the checks of what the pipeline left behind."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from tests.conftest import REPO_ROOT, json_log_lines, stop_process

# --- service processes -----------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """`python -m <module> [args]` with its own environment; each start appends to one log."""

    name: str
    module: str
    env: Mapping[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[tuple[str, int | None]] = field(default_factory=list)  # (signal, exit code)

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f'{{"event": "test_process_start", "start": {self.starts}}}\n'.encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=REPO_ROOT,
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        """Send `sig` to this process only and wait for it to exit (SIGKILL after `timeout`)."""
        if self.process is None:
            return None
        if stop_process(self.process, sig, timeout):
            self.exits.append((f"{signal.Signals(sig).name} (then SIGKILL)", None))
        else:
            self.exits.append((signal.Signals(sig).name, self.process.returncode))
        return self.process.returncode

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def log_lines(self) -> list[dict]:
        return json_log_lines(self.log_path)

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def service_env(var: Path, nats_url: str, **variables: object) -> dict[str, str]:
    """The environment of every service process of a test: its var dir, NATS and JSON logs;
    keyword arguments are further `NOVA_*` variables (name without the prefix)."""
    return {
        **os.environ,
        "NOVA_VAR_DIR": str(var),
        "NOVA_NATS__URL": nats_url,
        "NOVA_LOG__FORMAT": "json",
        **{f"NOVA_{name.upper()}": str(value) for name, value in variables.items()},
    }


# --- generated exports -----------------------------------------------------------------------

REQUISITION_HEADER = (
    "SOLICITAÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;MATERIAL;FAMÍLIA;QUANTIDADE;"
    "NOME FORNEC.;DATA SOLICITADO;DATA DE COMPRA"
)
ITEMS = (
    ("010825", "CABO FLEXIVEL 2,5MM", "MATERIAL ELETRICO"),
    ("020001", "LUVA VAQUETA", "EPI"),
    ("030417", "CONECTOR RF N MACHO", "RADIOFREQUENCIA"),
    ("041002", "BATERIA 12V 100AH", "ENERGIA"),
    ("050220", "ABRACADEIRA NYLON", "FIXACAO"),
    ("060033", "FUSIVEL NH 100A", "MATERIAL ELETRICO"),
)
SUPPLIERS = ("FORNECEDOR ALFA LTDA", "BETA DISTRIBUIDORA", "GAMA COMERCIO")
FIRST_DAY = date(2024, 1, 1)


@dataclass(frozen=True)
class Export:
    """One generated requisition export: its file name, bytes and the rows it holds as
    (request_number, item_code, depot_code, quantity)."""

    name: str
    content: bytes
    rows: tuple[tuple[str, str, str, float], ...]


def requisition_export(index: int, *, correction_of: int | None = None) -> Export:
    """A small valid ERP requisition CSV (UTF-8 with BOM, `;`, decimal commas, dd/mm/yyyy).

    Every file has one line per material, spread over two years so that each material has a
    weekly demand history to forecast; request numbers make every line's business key unique.
    With `correction_of`, the file re-exports that earlier file's lines with new quantities:
    the same business keys, so silver must keep one row per key (the later file's).
    """
    source = index if correction_of is None else correction_of
    depot = f"DEP{source % 7:03d}"
    lines = [REQUISITION_HEADER]
    rows = []
    for k, (code, description, family) in enumerate(ITEMS):
        requested = FIRST_DAY + timedelta(days=(source * 17 + k * 41) % 700)
        purchased = requested + timedelta(days=3 + (source + k) % 20)
        request = f"R{source:05d}-{k}"
        quantity = float(1 + (source * 7 + k * 3 + (index - source)) % 13)
        if correction_of is not None:
            quantity += 0.5
        text_quantity = f"{quantity:.1f}".replace(".", ",")
        supplier = SUPPLIERS[(source + k) % len(SUPPLIERS)]
        lines.append(
            f"{request};{depot};{code};{description};{family};{text_quantity};{supplier};"
            f"{requested:%d/%m/%Y};{purchased:%d/%m/%Y}"
        )
        rows.append((request, code, depot, quantity))
    suffix = "" if correction_of is None else f"-fix{index:05d}"
    name = f"req-{source:05d}{suffix}.csv"
    content = "\ufeff" + "\r\n".join(lines) + "\r\n"
    return Export(name, content.encode("utf-8"), tuple(rows))


def drop(inbox: Path, export: Export, staging: Path) -> Path:
    """Write the export beside the inbox, then move it in: the ingestor sees it whole."""
    target = inbox / "erp_requisitions" / export.name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    temporary = staging / export.name
    temporary.write_bytes(export.content)
    temporary.rename(target)
    return target


# --- what the pipeline left behind -----------------------------------------------------------

# Tables whose rows say *how* a lake got where it is rather than *what* it holds: one row per
# build (gold.builds: build_id, finished_at, table_versions) or per quality check of a build
# (gold.dq_results: build_id, checked_at, and counts of the rows that build saw). An incremental
# lake has one per event build and a rebuilt lake one in all, so they cannot be equal; every
# other table must be.
BUILD_LOG_TABLES = ("builds", "dq_results")


def delta_tables(lake_dir: Path, layer: str) -> list[str]:
    folder = lake_dir / layer
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "_delta_log").is_dir())


# Float aggregates (means, standard deviations, cv²) are summed in whatever order DuckDB's
# parallel aggregation meets the rows, so a table built event by event and the same table rebuilt
# can differ in the last bit (seen: dim_item.cv2 0.2855363321799308 against ...309, and
# dim_supplier.lead_time_std_days). Floats are therefore equal when within this relative
# tolerance; every other value must be identical.
FLOAT_RELATIVE_TOLERANCE = 1e-9


def _canonical(value: object) -> object:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.9g}")  # for ordering and pairing rows only
    return value


def sorted_rows(table: pa.Table) -> list[tuple]:
    """Rows as tuples in a canonical order (columns by name, rows sorted; None sorts first)."""
    names = sorted(table.column_names)
    columns = [table.column(n).to_pylist() for n in names]
    rows = list(zip(*columns, strict=True)) if columns else []

    def key(row: tuple) -> tuple:
        return tuple((value is not None, repr(_canonical(value))) for value in row)

    return sorted(rows, key=key)


def values_equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(
            a, b, rel_tol=FLOAT_RELATIVE_TOLERANCE, abs_tol=1e-12
        )
    return a == b


def rows_equal(ours: list[tuple], theirs: list[tuple]) -> bool:
    return len(ours) == len(theirs) and all(
        len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(ours, theirs, strict=True)
    )


def read_delta(lake_dir: Path, layer: str, name: str, version: int | None = None) -> pa.Table:
    table = DeltaTable(str(lake_dir / layer / name), version=version)
    return table.to_pyarrow_table()


def rebuild_copy(lake_dir: Path, target_var: Path) -> Path:
    """A fresh lake holding only a copy of `lake_dir`'s bronze, rebuilt in full; its root."""
    from services.transformer.builds import rebuild_all
    from shared.settings import NovaSettings
    from shared.storage import Lake

    fresh = target_var / "lake"
    shutil.copytree(
        lake_dir / "bronze",
        fresh / "bronze",
        ignore=shutil.ignore_patterns(".*"),  # staging files of an interrupted write
    )
    lake = Lake.from_settings(NovaSettings(var_dir=target_var).storage)
    result = rebuild_all(lake)
    assert not result.quality_blocked, result.quality_failures
    return fresh


def table_differences(
    lake_dir: Path, rebuilt_dir: Path, tables: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """Per `layer.table` that differs between the two lakes, a short description."""
    differences: dict[str, str] = {}
    for layer, name in tables:
        ours = sorted_rows(read_delta(lake_dir, layer, name))
        theirs = sorted_rows(read_delta(rebuilt_dir, layer, name))
        if not rows_equal(ours, theirs):
            only_ours = [r for r in ours if r not in theirs][:3]
            only_theirs = [r for r in theirs if r not in ours][:3]
            differences[f"{layer}.{name}"] = (
                f"{len(ours)} rows vs {len(theirs)} rebuilt; only here: {only_ours}; "
                f"only rebuilt: {only_theirs}"
            )
    return differences


def compared_tables(lake_dir: Path, rebuilt_dir: Path) -> list[tuple[str, str]]:
    """Every silver and gold table of either lake, except the build logs; both must have it."""
    tables = []
    for layer in ("silver", "gold"):
        ours = set(delta_tables(lake_dir, layer)) - set(BUILD_LOG_TABLES)
        theirs = set(delta_tables(rebuilt_dir, layer)) - set(BUILD_LOG_TABLES)
        assert ours == theirs, f"{layer}: tables here {sorted(ours)}, rebuilt {sorted(theirs)}"
        tables += [(layer, name) for name in sorted(ours)]
    return tables
