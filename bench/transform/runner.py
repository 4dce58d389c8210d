"""Run each path in a fresh subprocess, `repeat` times, and aggregate best and median.

Standard library only, like `bench.ingest.runner`: a child's `ru_maxrss` starts from the RSS of
the process that spawned it, so the parent never holds pyarrow or a table.

The first full rebuild's lake is kept as the starting point of every incremental run (each run
gets its own copy), so that all of them apply the same new export to the same rebuilt lake.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ChildFailed, PathSpec, best_run, run_child

CHILD_TIMEOUT_SECONDS = 1800


# Inputs: "bronze", the generated lake; "rebuilt", the lake a full rebuild left.
FULL = PathSpec("full", "ours: rebuild_all()", "full", "bronze")
INCREMENTAL = PathSpec("incremental", "ours: apply_bronze_event(1 day)", "incremental", "rebuilt")
DUCKDB = PathSpec("duckdb_direct", "DuckDB direct on bronze, same SQL", "duckdb_direct", "bronze")
SPECS: tuple[PathSpec, ...] = (FULL, INCREMENTAL, DUCKDB)


def aggregate(spec: PathSpec, runs: list[dict[str, Any]]) -> dict[str, Any]:
    chosen, timing = best_run(runs)
    summary: dict[str, Any] = {
        "key": spec.key,
        "label": spec.label,
        "runs": len(runs),
        "rows": chosen["rows"],
        "fact_demand_rows": chosen.get("fact_demand_rows"),
        **timing,
        "cpu_seconds": round(chosen["cpu_seconds"], 3),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "baseline_rss_mb": round(chosen["baseline_rss_mb"], 1),
    }
    if len({r["rows"] for r in runs}) > 1:
        summary["warning"] = "row counts differ between repeats"
    for extra in (
        "tables",
        "breakdown",
        "breakdown_calls",
        "export",
        "lake_bytes",
        "placed_by",
        "threads",
        "quality_blocked",
        "quality_failures",
        "quality_warnings",
    ):
        if extra in chosen:
            summary[extra] = chosen[extra]
    return summary


def measure_all(
    repeats: dict[str, int],
    bronze: Path,
    work_root: Path,
    progress: Callable[[str], None],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Full rebuilds and DuckDB runs alternate (noise spreads over both); the incremental
    runs follow, each on a copy of the first full rebuild's lake."""
    runs: dict[str, list[dict[str, Any]]] = {s.key: [] for s in SPECS}
    errors: dict[str, str] = {}
    rebuilt = work_root / "rebuilt-lake"

    def one(spec: PathSpec, attempt: int, source: Path, keep: Path | None = None) -> None:
        try:
            run = run_child(
                "bench.transform.child",
                spec.function,
                source,
                work_root,
                CHILD_TIMEOUT_SECONDS,
                spec.function,
                keep,
            )
        except (ChildFailed, subprocess.TimeoutExpired) as exc:
            errors[spec.key] = str(exc)
            progress(f"  {spec.key:<14} run {attempt}/{repeats[spec.key]}: FAILED\n{exc}")
            return
        runs[spec.key].append(run)
        progress(
            f"  {spec.key:<14} run {attempt}/{repeats[spec.key]}: {run['seconds']:8.3f} s, "
            f"peak RSS {run['peak_rss_mb']:6.0f} MB"
        )

    try:
        for attempt in range(1, max(repeats[FULL.key], repeats[DUCKDB.key]) + 1):
            if attempt <= repeats[FULL.key] and FULL.key not in errors:
                keep = rebuilt if not runs[FULL.key] else None
                one(FULL, attempt, bronze, keep)
            if attempt <= repeats[DUCKDB.key] and DUCKDB.key not in errors:
                one(DUCKDB, attempt, bronze)
        for attempt in range(1, repeats[INCREMENTAL.key] + 1):
            if not rebuilt.exists():
                errors[INCREMENTAL.key] = "no full rebuild succeeded: nothing to apply it to"
                progress(f"  {INCREMENTAL.key:<14} skipped: {errors[INCREMENTAL.key]}")
                break
            if INCREMENTAL.key not in errors:
                one(INCREMENTAL, attempt, rebuilt)
    finally:
        shutil.rmtree(rebuilt, ignore_errors=True)
    results = {s.key: aggregate(s, runs[s.key]) for s in SPECS if runs[s.key]}
    return results, errors
