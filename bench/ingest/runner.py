"""Run each path in a fresh subprocess, `repeat` times, and aggregate best and median.

This module and the parent process import the standard library only. On Linux a child's
`ru_maxrss` counts the memory of the process image it was spawned from (the spawner's RSS
carries over `fork`/`vfork` + `exec`), so a parent holding pyarrow, NumPy or a generated chunk
would put a floor under every child's peak. The children also report `VmHWM` as a cross-check.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import MB, ChildFailed, PathSpec, best_run, run_child

CHILD_TIMEOUT_SECONDS = 900


# Inputs: "csv", "csv_quarter" or "xlsx".
SPECS: tuple[PathSpec, ...] = (
    PathSpec("ours_csv", "ours CSV: process()", "ours", "csv"),
    PathSpec("pyarrow_csv", "pyarrow read_csv + write_table", "pyarrow_csv", "csv"),
    PathSpec("pandas_csv", "pandas read_csv + to_parquet", "pandas_csv", "csv"),
    PathSpec("ours_xlsx", "ours workbook: process()", "ours", "xlsx"),
    PathSpec("openpyxl_xlsx", "openpyxl read_only + casts", "openpyxl_xlsx", "xlsx"),
    PathSpec("pandas_xlsx", "pandas read_excel + to_parquet", "pandas_xlsx", "xlsx"),
    PathSpec("ours_csv_quarter", "ours CSV 1/4 rows: process()", "ours", "csv_quarter"),
)
# Derived from the ours_csv runs: the parse+write part of process() (no hashing, no archiving).
PARSE_WRITE_KEY = "ours_csv_parse_write"
PARSE_WRITE_LABEL = "ours CSV: parse+write only"


def aggregate(spec_key: str, label: str, runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    chosen, timing = best_run(runs)
    rows = chosen["rows"]
    mb = size / MB
    best = chosen["seconds"]
    summary: dict[str, Any] = {
        "key": spec_key,
        "label": label,
        "rows": rows,
        "input_bytes": size,
        "input_mb": round(mb, 2),
        **timing,
        "mb_per_s": round(mb / best, 2) if best > 0 else 0.0,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "vm_hwm_mb": max(
            (round(r["vm_hwm_mb"], 1) for r in runs if r.get("vm_hwm_mb")), default=None
        ),
        "baseline_rss_mb": round(chosen["baseline_rss_mb"], 1),
        "cpu_seconds": round(chosen["cpu_seconds"], 3),
        "output_bytes": chosen.get("output_bytes"),
    }
    if {r["rows"] for r in runs} != {rows}:
        summary["warning"] = "row counts differ between repeats"
    for extra in ("output_rows", "breakdown", "placed_by", "engine"):
        if extra in chosen:
            summary[extra] = chosen[extra]
    return summary


def parse_write_summary(runs: list[dict[str, Any]], size: int) -> dict[str, Any] | None:
    """The ours_csv runs seen through their parse+write timer."""
    timed = [r for r in runs if r.get("breakdown", {}).get("parse_write")]
    if not timed:
        return None
    as_runs = [{**r, "seconds": r["breakdown"]["parse_write"]} for r in timed]
    summary = aggregate(PARSE_WRITE_KEY, PARSE_WRITE_LABEL, as_runs, size)
    summary.pop("breakdown", None)
    summary["derived_from"] = "ours_csv"
    return summary


def measure_all(
    specs: tuple[PathSpec, ...],
    inputs: dict[str, Path],
    repeat: int,
    work_root: Path,
    progress: Callable[[str], None],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Round-robin over the paths `repeat` times, so that noise spreads over all of them."""
    runs: dict[str, list[dict[str, Any]]] = {s.key: [] for s in specs}
    errors: dict[str, str] = {}
    for attempt in range(1, repeat + 1):
        for spec in specs:
            if spec.key in errors:
                continue
            try:
                source = inputs[spec.input]
                run = run_child(
                    "bench.ingest.child",
                    spec.function,
                    source,
                    work_root,
                    CHILD_TIMEOUT_SECONDS,
                    f"{spec.function} on {source.name}",
                )
            except (ChildFailed, subprocess.TimeoutExpired) as exc:
                errors[spec.key] = str(exc)
                progress(f"  {spec.key:<18} run {attempt}/{repeat}: FAILED\n{exc}")
                continue
            runs[spec.key].append(run)
            progress(
                f"  {spec.key:<18} run {attempt}/{repeat}: {run['seconds']:7.3f} s, "
                f"peak RSS {run['peak_rss_mb']:6.0f} MB"
            )
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if runs[spec.key]:
            size = inputs[spec.input].stat().st_size
            results[spec.key] = aggregate(spec.key, spec.label, runs[spec.key], size)
            if spec.key == "ours_csv":
                derived = parse_write_summary(runs[spec.key], size)
                if derived is not None:
                    results[PARSE_WRITE_KEY] = derived
    return results, errors
