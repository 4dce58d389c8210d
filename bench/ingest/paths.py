"""The measured paths. Each runs in a fresh process (see `child`), imports what it needs, then
times only the work between `probe.start()` and `probe.stop()`.

Every path returns a dict with at least `rows` (rows read or written) and `output_bytes`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.child import Probe
from bench.ingest.dataset import CODE_COLUMNS, DATE_COLUMNS, SHEET_NAME

# --- ours: IngestService.process() ------------------------------------------------------------


class NullPublisher:
    """The broker is not what is measured."""

    async def publish(self, event: Any, message_id: str) -> None:
        return None


class MemoryLedger:
    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}

    async def get(self, content_sha256: str) -> Any:
        return self._entries.get(content_sha256)

    async def put(self, entry: Any) -> None:
        self._entries[entry.content_sha256] = entry


@dataclass
class Timers:
    """Seconds accumulated per step, by wrapping the ingestor's functions (never editing them).

    Steps run one after the other in the service's worker thread, so plain sums are exact.
    """

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def wrap(self, key: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(key, time.perf_counter() - began)

        return timed

    def patch(self, owner: Any, name: str, key: str) -> None:
        """Time `owner.name` (a module function or an instance method) if it still exists."""
        if hasattr(owner, name):
            setattr(owner, name, self.wrap(key, getattr(owner, name)))


class _TimedCsvReader:
    def __init__(self, reader: Any, timers: Timers) -> None:
        self._reader = reader
        self._timers = timers

    def read_next_batch(self) -> Any:
        began = time.perf_counter()
        try:
            return self._reader.read_next_batch()
        finally:
            self._timers.add("csv_read", time.perf_counter() - began)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class _TimedPyarrowCsv:
    """Stands in for `pyarrow.csv` inside the ingestor's CSV reader to time Arrow's block reads."""

    def __init__(self, module: Any, timers: Timers) -> None:
        self._module = module
        self._timers = timers

    def open_csv(self, *args: Any, **kwargs: Any) -> _TimedCsvReader:
        began = time.perf_counter()  # opening reads and parses the first block
        try:
            return _TimedCsvReader(self._module.open_csv(*args, **kwargs), self._timers)
        finally:
            self._timers.add("csv_read", time.perf_counter() - began)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _instrument(service: Any, lake: Any, timers: Timers) -> None:
    from services.ingestor import csv_reader, workbook
    from services.ingestor import service as service_module

    timers.patch(service_module, "sha256_file", "hash")
    timers.patch(service, "_read_parts", "read_parts")  # CSV: sample, UTF-8 check, layout
    timers.patch(service, "_write_bronze", "write_bronze")  # CSV: parse + cast + write
    timers.patch(csv_reader, "is_utf8", "utf8_check")
    timers.patch(csv_reader, "detect_layout", "detect_layout")
    timers.patch(csv_reader, "_cast_batch", "cast")
    timers.patch(service_module, "_with_lineage", "lineage")
    timers.patch(service_module, "_conform", "conform")
    timers.patch(service_module, "read_workbook", "workbook_read")
    timers.patch(workbook, "rows_to_table", "rows_to_table")
    timers.patch(lake, "write_parquet_batches", "lake_write")
    if hasattr(csv_reader, "pacsv"):
        csv_reader.pacsv = _TimedPyarrowCsv(csv_reader.pacsv, timers)


def _breakdown(total: float, timers: Timers) -> dict[str, float]:
    """Exclusive seconds per step; the Parquet write is the lake write minus the batches it
    pulled (read, cast, lineage), and `other` is ledger, events, archive and the event loop."""
    t = timers.seconds
    produced = sum(t.get(k, 0.0) for k in ("csv_read", "cast", "lineage", "conform"))
    steps = {
        "hash": t.get("hash", 0.0),
        "utf8_check": t.get("utf8_check", 0.0),
        "detect_layout": t.get("detect_layout", 0.0),
        "csv_read": t.get("csv_read", 0.0),
        "cast": t.get("cast", 0.0),
        "workbook_calamine_header": t.get("workbook_read", 0.0) - t.get("rows_to_table", 0.0),
        "workbook_rows_to_table": t.get("rows_to_table", 0.0),
        "lineage": t.get("lineage", 0.0) + t.get("conform", 0.0),
        "parquet_write": t.get("lake_write", 0.0) - produced,
    }
    steps = {k: v for k, v in steps.items() if v > 0}
    steps["other"] = max(0.0, total - sum(steps.values()))
    steps["parse_write"] = t.get("read_parts", 0.0) + t.get("write_bronze", 0.0)
    return {k: round(v, 4) for k, v in steps.items()}


def _place(source: Path, target: Path) -> str:
    """Put the file in the inbox without copying its bytes when the filesystem allows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return "hardlink"
    except OSError:
        shutil.copyfile(source, target)
        return "copy"


def ours(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from services.ingestor.service import IngestService
    from shared.settings import IngestorSettings, StorageSettings
    from shared.storage import Lake

    settings = IngestorSettings(
        inbox_dir=workdir / "inbox",
        archive_dir=workdir / "archive",
        quarantine_dir=workdir / "quarantine",
    )
    lake = Lake.from_settings(StorageSettings(local_root=workdir / "lake"))
    service = IngestService(
        lake=lake, publisher=NullPublisher(), ledger=MemoryLedger(), settings=settings
    )
    timers = Timers()
    _instrument(service, lake, timers)
    dropped = workdir / "inbox" / source.name
    placed = _place(source, dropped)
    loop = asyncio.new_event_loop()
    try:
        probe.start()
        outcome = loop.run_until_complete(service.process(dropped))
        probe.stop()
    finally:
        loop.close()
    if outcome.status != "ingested":
        reason = next(
            (str(getattr(e, "reason", "")) for e in outcome.events), "no reason in the outcome"
        )
        raise RuntimeError(f"the ingestor did not ingest the file ({outcome.status}): {reason}")
    written = lake.list_files("bronze")
    bronze = [workdir / "lake" / p for p in written]
    return {
        "rows": sum(e.row_count for e in outcome.events),
        "output_rows": sum(pq.ParquetFile(p).metadata.num_rows for p in bronze),
        "output_bytes": sum(p.stat().st_size for p in bronze),
        "placed_by": placed,
        "breakdown": _breakdown(probe.seconds, timers),
    }


# --- baselines --------------------------------------------------------------------------------


def pyarrow_csv(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = workdir / "out.parquet"
    probe.start()
    table = pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(encoding="cp1252"),
        parse_options=pacsv.ParseOptions(delimiter=";"),
    )
    pq.write_table(table, out, compression="zstd")
    probe.stop()
    return {"rows": table.num_rows, "output_bytes": out.stat().st_size}


def pandas_csv(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    import pandas as pd

    out = workdir / "out.parquet"
    probe.start()
    frame = pd.read_csv(
        source,
        sep=";",
        encoding="cp1252",
        decimal=",",
        thousands=".",
        dtype=dict.fromkeys(CODE_COLUMNS, str),
        parse_dates=list(DATE_COLUMNS),
        dayfirst=True,
    )
    frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
    probe.stop()
    return {"rows": len(frame), "output_bytes": out.stat().st_size}


def _openpyxl_rows(path: Path) -> Iterator[tuple[object, ...]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # as the old reader did: declared sizes may be stale
            yield from sheet.iter_rows(values_only=True)
    finally:
        workbook.close()


def openpyxl_xlsx(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    """The walking skeleton's reader: openpyxl read-only rows, the same contract casts as ours
    (`rows_to_table`), one Parquet file."""
    import pyarrow.parquet as pq

    from services.ingestor.contracts import CONTRACTS
    from services.ingestor.parsing import HEADER_SCAN_ROWS, best_header, rows_to_table

    out = workdir / "out.parquet"
    probe.start()
    rows = list(_openpyxl_rows(source))
    header = best_header(rows[:HEADER_SCAN_ROWS], CONTRACTS.values())
    if header is None:
        raise RuntimeError("no contract header found by the openpyxl path")
    table = rows_to_table(rows[header.row_number :], header)
    pq.write_table(table, out, compression="zstd")
    probe.stop()
    return {"rows": table.num_rows, "output_bytes": out.stat().st_size}


def pandas_xlsx(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    import importlib.util

    import pandas as pd

    engine = "calamine" if importlib.util.find_spec("python_calamine") else "openpyxl"
    out = workdir / "out.parquet"
    probe.start()
    frame = pd.read_excel(
        source, sheet_name=SHEET_NAME, engine=engine, dtype=dict.fromkeys(CODE_COLUMNS, str)
    )
    frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
    probe.stop()
    return {"rows": len(frame), "output_bytes": out.stat().st_size, "engine": engine}


PathFunction = Callable[[Path, Path, Probe], dict[str, Any]]
FUNCTIONS: dict[str, PathFunction] = {
    "ours": ours,
    "pyarrow_csv": pyarrow_csv,
    "pandas_csv": pandas_csv,
    "openpyxl_xlsx": openpyxl_xlsx,
    "pandas_xlsx": pandas_xlsx,
}
