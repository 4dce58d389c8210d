"""`python -m bench.ingest`: generate (or reuse) the inputs, measure every path, report."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    add_output_options,
    fill_sizes,
    load_average,
    machine,
    now,
    run_module,
    say,
    write_results,
)
from bench.ingest import report
from bench.ingest.dataset import GENERATOR_VERSION, SEED, cached_path
from bench.ingest.runner import PARSE_WRITE_KEY, SPECS, measure_all

QUICK = {"rows": 20_000, "workbook_rows": 2_000, "repeat": 1}
DEFAULTS = {"rows": 1_000_000, "workbook_rows": 100_000, "repeat": 3}
TABLE_ORDER = [
    "ours_csv",
    PARSE_WRITE_KEY,
    "pyarrow_csv",
    "pandas_csv",
    "ours_csv_quarter",
    "ours_xlsx",
    "openpyxl_xlsx",
    "pandas_xlsx",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="Ingest benchmark: ours vs pyarrow, pandas and openpyxl (see bench/README.md).",
    )
    parser.add_argument("--rows", type=int, help="CSV rows (default 1,000,000)")
    parser.add_argument("--workbook-rows", type=int, help="workbook rows (default 100,000)")
    parser.add_argument("--repeat", type=int, help="runs per path; best and median (default 3)")
    add_output_options(
        parser,
        "ingest",
        "where generated inputs are cached and scratch folders live (default var/bench)",
    )
    parser.add_argument(
        "--paths",
        help="comma-separated subset of paths to run: " + ", ".join(s.key for s in SPECS),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK['rows']:,} CSV rows, {QUICK['workbook_rows']:,} "
        "workbook rows, 1 run)",
    )
    args = parser.parse_args(argv)
    fill_sizes(args, QUICK if args.quick else DEFAULTS)
    if args.rows < 4 or args.workbook_rows < 1 or args.repeat < 1:
        parser.error("--rows must be >= 4, --workbook-rows and --repeat >= 1")
    return args


def _prepare_inputs(
    args: argparse.Namespace, needed: set[str], say: Any
) -> tuple[dict[str, Path], dict[str, Any]]:
    wanted = {
        "csv": ("csv", args.rows),
        "csv_quarter": ("csv", args.rows // 4),
        "xlsx": ("xlsx", args.workbook_rows),
    }
    inputs: dict[str, Path] = {}
    described: dict[str, Any] = {}
    for name, (kind, rows) in wanted.items():
        if name not in needed:
            continue
        path = cached_path(args.data_dir, kind, rows)
        made = not path.exists()
        began = time.perf_counter()
        if made:
            # In a child too: the parent stays small, since a child's ru_maxrss starts from
            # the RSS of the process that spawned it.
            run_module(
                "bench.ingest.generate",
                kind,
                rows,
                args.data_dir,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        seconds = time.perf_counter() - began
        size = path.stat().st_size
        how = f"generated in {seconds:.1f} s" if made else "cached"
        say(f"  {name:<12} {rows:>10,} rows  {size / MB:7.1f} MB  {how}  ({path})")
        with path.open("rb") as handle:  # warm the page cache: every path reads it warm
            while handle.read(16 * MB):
                pass
        inputs[name] = path
        described[name] = {
            "path": str(path),
            "rows": rows,
            "bytes": size,
            "generated_seconds": round(seconds, 2) if made else None,
        }
    return inputs, described


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    specs = SPECS
    if args.paths:
        chosen = {p.strip() for p in args.paths.split(",") if p.strip()}
        unknown = chosen - {s.key for s in SPECS}
        if unknown:
            say(f"unknown paths: {', '.join(sorted(unknown))}")
            return 2
        specs = tuple(s for s in SPECS if s.key in chosen)
    started = now()
    system = machine(("pyarrow", "pandas", "openpyxl", "python-calamine", "numpy"))
    say(
        f"ingest benchmark: {args.rows:,} CSV rows, {args.workbook_rows:,} workbook rows, "
        f"best of {args.repeat}; {system['cpus']} CPUs, load {system['load_average_at_start']}"
    )
    say("inputs:")
    inputs, described = _prepare_inputs(args, {s.input for s in specs}, say)
    say("runs (each in a fresh process):")
    paths, errors = measure_all(specs, inputs, args.repeat, args.data_dir / "work", say)
    ratios = report.evaluate(paths)
    system["load_average_at_end"] = load_average()

    say("")
    say(report.table([k for k in TABLE_ORDER if k in paths or k in {s.key for s in specs}], paths))
    if "ours_csv" in paths and paths["ours_csv"].get("breakdown"):
        say("")
        say("ours CSV process(), best run, by step:")
        say(report.breakdown_lines(paths["ours_csv"]))
    if "ours_xlsx" in paths and paths["ours_xlsx"].get("breakdown"):
        say("ours workbook process(), best run, by step:")
        say(report.breakdown_lines(paths["ours_xlsx"]))
    say("")
    say(report.ratio_lines(ratios))
    for key, error in errors.items():
        say(f"\nERROR in {key}: {error}")

    results = {
        "benchmark": "ingest",
        "started_at": started,
        "finished_at": now(),
        "parameters": {
            "rows": args.rows,
            "workbook_rows": args.workbook_rows,
            "repeat": args.repeat,
            "quick": args.quick,
            "seed": SEED,
            "generator_version": GENERATOR_VERSION,
        },
        "machine": system,
        "inputs": described,
        "paths": paths,
        "ratios": ratios,
        "errors": errors,
    }
    return write_results(args.out, results)


if __name__ == "__main__":
    sys.exit(main())
