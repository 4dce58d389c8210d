"""`python -m bench.transform`: generate (or reuse) the bronze history, measure the full
rebuild, the incremental build of one new daily export and DuckDB run directly on bronze,
report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    add_output_options,
    fill_sizes,
    generated_lake,
    load_average,
    machine,
    now,
    say,
    write_results,
)
from bench.transform import report
from bench.transform.dataset import GENERATOR_VERSION, SEED, Sizes
from bench.transform.runner import DUCKDB, FULL, INCREMENTAL, measure_all

DEFAULTS = {"days": 1095, "items": 2000, "sites": 250, "lines": 5_000_000}
QUICK = {"days": 60, "items": 50, "sites": 20, "lines": 6_000}
REPEATS = {FULL.key: 1, DUCKDB.key: 1, INCREMENTAL.key: 3}
QUICK_REPEATS = {FULL.key: 1, DUCKDB.key: 1, INCREMENTAL.key: 1}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.transform",
        description="Transform benchmark: full rebuild, incremental daily build and DuckDB "
        "directly on bronze (see bench/README.md).",
    )
    parser.add_argument("--days", type=int, help="days of history (default 1,095)")
    parser.add_argument("--items", type=int, help="distinct material codes (default 2,000)")
    parser.add_argument("--sites", type=int, help="distinct depot/site codes (default 250)")
    parser.add_argument("--lines", type=int, help="request lines in all (default 5,000,000)")
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs of every path; best and median are reported (default: 1 for the full "
        "rebuild and DuckDB, 3 for the incremental build)",
    )
    add_output_options(
        parser,
        "transform",
        "where the generated lake is cached and scratch folders live (default var/bench)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK['lines']:,} lines over {QUICK['days']} days, "
        f"{QUICK['items']} items, {QUICK['sites']} sites, one run each)",
    )
    args = parser.parse_args(argv)
    fill_sizes(args, QUICK if args.quick else DEFAULTS)
    if min(args.days, args.items, args.sites) < 1 or args.lines < args.days:
        parser.error("--days, --items and --sites must be >= 1 and --lines >= --days")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be >= 1")
    base = QUICK_REPEATS if args.quick else REPEATS
    args.repeats = {k: args.repeat or v for k, v in base.items()}
    return args


def _prepare_lake(args: argparse.Namespace) -> dict[str, Any]:
    """The generated bronze history, in a child (the parent stays small)."""
    began = time.perf_counter()
    manifest = generated_lake(
        "generating bronze",
        "bench.transform.generate",
        args.days,
        args.items,
        args.sites,
        args.lines,
        args.data_dir,
    )
    seconds = time.perf_counter() - began
    how = (
        f"generated in {manifest['generated_seconds']:.1f} s"
        if manifest["generated_now"]
        else "cached"
    )
    say(
        f"  {manifest['lines']:,} request lines, {manifest['requests']:,} requests, "
        f"{manifest['objects']:,} daily bronze objects ({manifest['first_day']} .. "
        f"{manifest['last_day']}), {manifest['bronze_bytes'] / MB:.1f} MB, {how}"
    )
    say(f"  {manifest['root']}")
    manifest["prepare_seconds"] = round(seconds, 2)
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes(args.days, args.items, args.sites, args.lines)
    started = now()
    system = machine(("duckdb", "deltalake", "pyarrow", "numpy"))
    say(
        f"transform benchmark: {sizes.lines:,} lines over {sizes.days:,} days, {sizes.items:,} "
        f"items, {sizes.sites:,} sites; runs: full {args.repeats[FULL.key]}, DuckDB "
        f"{args.repeats[DUCKDB.key]}, incremental {args.repeats[INCREMENTAL.key]}; "
        f"{system['cpus']} CPUs, load {system['load_average_at_start']}"
    )
    say("bronze history:")
    manifest = _prepare_lake(args)
    say(
        f"incremental export: {sizes.new_day} ({sizes.new_day:%A}), {sizes.new_day_lines:,} "
        "lines, applied to a copy of the first full rebuild's lake"
    )
    say("runs (each in a fresh process):")
    paths, errors = measure_all(
        args.repeats, Path(manifest["root"]), args.data_dir / "transform-work", say
    )
    ratios = report.evaluate(paths)
    system["load_average_at_end"] = load_average()

    say("")
    say(report.table(paths))
    for spec in (INCREMENTAL, FULL):
        if spec.key in paths:
            say("")
            say(f"{spec.label}, best run, committed:")
            say(report.committed_lines(paths[spec.key]))
            if paths[spec.key].get("quality_blocked"):
                failures = ", ".join(paths[spec.key].get("quality_failures") or [])
                say(f"  QUALITY GATE BLOCKED gold: {failures}")
    for spec in (FULL, INCREMENTAL, DUCKDB):
        if spec.key in paths and paths[spec.key].get("breakdown"):
            say("")
            say(f"{spec.label}, best run ({paths[spec.key]['seconds_best']:.2f} s), by step:")
            say(report.breakdown_lines(paths[spec.key], kinds=spec is not DUCKDB))
    if FULL.key in paths and DUCKDB.key in paths:
        say("")
        say("the same SQL files, inside rebuild_all() and run directly by DuckDB:")
        say(report.sql_comparison_lines(paths))
    say("")
    say(report.ratio_lines(ratios))
    for key, error in errors.items():
        say(f"\nERROR in {key}: {error}")

    results = {
        "benchmark": "transform",
        "started_at": started,
        "finished_at": now(),
        "parameters": {
            **sizes.as_dict(),
            "repeats": args.repeats,
            "quick": args.quick,
            "seed": SEED,
            "generator_version": GENERATOR_VERSION,
            "new_day": sizes.new_day.isoformat(),
            "new_day_lines": sizes.new_day_lines,
        },
        "machine": system,
        "inputs": {"bronze": manifest},
        "paths": paths,
        "ratios": ratios,
        "errors": errors,
    }
    return write_results(args.out, results)


if __name__ == "__main__":
    sys.exit(main())
