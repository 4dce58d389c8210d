"""`python -m bench.forecast`: the product path (`nova forecast --bucket month --horizon 12`
with its defaults, on a lake) on the car-parts panel, scored on the held-out year; its
calibration, a sparse panel, the scale curve and the inventory simulation; each candidate alone
as context. See bench/README.md, "Forecast"."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    REPO_ROOT,
    add_output_options,
    load_average,
    machine,
    now,
    say,
    write_results,
)
from bench.forecast import carparts, inventory, panels
from bench.forecast.lake import gold_lake
from bench.forecast.product import ProductRun, product_options, run_product
from services.forecaster.models import ALL_MODELS, forecast_candidate

DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "benchmarks"
# Too slow to run alone on every series: a random subset, extrapolated (context rows only).
SUBSET_MODELS = ("AutoARIMA", "Prophet")
# Cheap enough that worker start-up (~2 s per process) would cost more than it saves.
SINGLE_PROCESS_MODELS = (
    "Zero",
    "EmpiricalQuantile",
    "Pooled",
    "PooledBlend",
    "CrostonOptimized",
    "CrostonSBA",
    "TSB",
    "ADIDA",
    "IMAPA",
    "SeasonalNaive",
    "HistoricAverage",
)
WQL_TARGET = 0.85
CALIBRATION_TOLERANCE = 0.03
SCALE_TARGET_SERIES = 5000
SCALE_TARGET_SECONDS = 180.0
LINEAR_GROWTH_MAX = 1.25  # seconds per series at the largest size / at the smallest, at most
DEFAULT_SCALE = (1000, 5000, 20000)
QUICK_SCALE = (100, 200)
QUICK_SERIES = 120
MAIN_LEAD_TIME_DAYS = inventory.LEAD_TIMES_DAYS[0]
# bench/api's default demand shape: 1,095 days, 2,000 items, 250 sites, 5M demand rows.
WEEKLY_API_ITEMS = 2000
WEEKLY_DAYS, WEEKLY_SITES, WEEKLY_ROWS_PER_ITEM = 1095, 250, 2500
WEEKLY_TARGET_SERIES = 40000
WEEKLY_TARGET_SECONDS = 1200.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.forecast",
        description="Forecast benchmark: the product path on the car-parts panel "
        "(see bench/README.md).",
    )
    parser.add_argument(
        "--data", type=Path, default=DATA_DIR / "carparts_long.csv", help="carparts_long.csv"
    )
    parser.add_argument(
        "--published",
        type=Path,
        default=DATA_DIR / "published_benchmarks.csv",
        help="published_benchmarks.csv",
    )
    add_output_options(parser, "forecast")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes of the per-model context rows (the product path takes "
        "NOVA_FORECASTER__JOBS like nova forecast; default every core)",
    )
    parser.add_argument(
        "--series", type=int, help=f"random car-parts series (default all; --quick {QUICK_SERIES})"
    )
    parser.add_argument(
        "--subset",
        type=int,
        help="random series for AutoARIMA and Prophet alone (default 100; --quick 10)",
    )
    parser.add_argument(
        "--scale",
        help="series counts of the scale curve, comma-separated, or 'none' "
        f"(default {','.join(map(str, DEFAULT_SCALE))}; --quick {','.join(map(str, QUICK_SCALE))})",
    )
    parser.add_argument(
        "--weekly",
        type=int,
        default=0,
        metavar="ITEMS",
        help="also run nova forecast's weekly default (--bucket week) on the API benchmark's "
        f"demand shape with ITEMS items ({WEEKLY_API_ITEMS:,}: its ~40,000 item x site series); "
        "default 0 (off)",
    )
    parser.add_argument("--no-context", action="store_true", help="skip the per-model context rows")
    parser.add_argument("--no-inventory", action="store_true", help="skip the inventory simulation")
    parser.add_argument(
        "--order-quantity",
        choices=("policy", "forecast"),
        default="policy",
        help="Q of the inventory simulation: the policy's order_quantity (default) or "
        "max(1, mean monthly forecast), the same for the three reorder points",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choices")
    parser.add_argument(
        "--work-dir", type=Path, help="where the throw-away lakes go (default: a temp folder)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_SERIES} random series, AutoARIMA/Prophet on 10, scale "
        f"{','.join(map(str, QUICK_SCALE))}",
    )
    args = parser.parse_args(argv)
    if args.series is None and args.quick:
        args.series = QUICK_SERIES
    if args.subset is None:
        args.subset = 10 if args.quick else 100
    if args.scale is None:
        args.sizes = list(QUICK_SCALE if args.quick else DEFAULT_SCALE)
    elif args.scale.strip().lower() in ("", "none", "0"):
        args.sizes = []
    else:
        try:
            args.sizes = [int(s) for s in args.scale.split(",") if s.strip()]
        except ValueError:
            parser.error(f"--scale takes comma-separated integers, got {args.scale!r}")
    if args.weekly < 0:
        parser.error("--weekly takes a number of items >= 0")
    if args.jobs < 1 or args.subset < 1 or any(s < 1 for s in args.sizes):
        parser.error("--jobs, --subset and the --scale sizes must be >= 1")
    return args


def _row(
    key: str,
    label: str,
    score: carparts.Score,
    seconds: float,
    *,
    extrapolated_seconds: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "key": key,
        "label": label,
        "series": score.series,
        "wql": round(score.wql, 4),
        "mase": round(score.mase, 4),
        "mase_series": score.mase_series,
        "seconds": round(seconds, 2),
        "seconds_all_series_estimate": None
        if extrapolated_seconds is None
        else round(extrapolated_seconds, 1),
        "note": note,
    }


def _status(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Lakes:
    """Throw-away lakes under one folder, removed at the end."""

    def __init__(self, work_dir: Path | None) -> None:
        base = work_dir or Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(dir=base, prefix="bench-forecast-"))
        self.count = 0

    def run(
        self,
        history: pd.DataFrame,
        lead_time_days: int | None,
        service_levels: tuple[float | None, ...] = (None,),
    ) -> list[ProductRun]:
        """The product path on a new lake of `history`, once per service level (in order)."""
        self.count += 1
        lake = gold_lake(self.root / f"lake{self.count}", history, lead_time_days)
        return [run_product(lake, service_level=level) for level in service_levels]

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _model_mix(forecasts: pd.DataFrame) -> dict[str, int]:
    counts = forecasts.drop_duplicates("series_id")["model"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _by_class(split: carparts.Split, forecasts: pd.DataFrame, run: ProductRun) -> dict[str, Any]:
    """WQL by the demand class the run recorded for each item (gold.forecast_accuracy)."""
    classes: dict[str, list[str]] = {}
    for sid in split.ids:
        classes.setdefault(run.classes.get(sid, "not forecast"), []).append(sid)
    out = {}
    for name, ids in sorted(classes.items()):
        part = split.subset(ids)
        demand = float(np.nansum(part.test))
        wql = carparts.score(part, forecasts).wql if demand > 0 else float("nan")
        out[name] = {
            "series": len(ids),
            "test_demand": demand,
            "wql": None if np.isnan(wql) else round(wql, 4),
        }
    return out


def _context_rows(
    split: carparts.Split, subset: carparts.Split, args: argparse.Namespace, errors: dict[str, str]
) -> list[dict[str, Any]]:
    """Each candidate alone (`forecast_candidate`, no backtest or selection): context only."""
    quantiles = tuple(product_options().quantiles)
    common = {
        "horizon": carparts.HORIZON,
        "freq": carparts.FREQ,
        "season_length": carparts.SEASON_LENGTH,
        "quantiles": quantiles,
    }
    n = len(split.ids)
    rows = []
    for model in ALL_MODELS:
        on_subset = model in SUBSET_MODELS
        data = subset if on_subset else split
        jobs = 1 if model in SINGLE_PROCESS_MODELS else args.jobs

        def run(model: str = model, data: carparts.Split = data, jobs: int = jobs) -> pd.DataFrame:
            return forecast_candidate(
                data.history, model=model, jobs=jobs, everywhere=True, **common
            )

        began = time.perf_counter()
        try:
            frame = run()
        except Exception as error:  # report the others even if one candidate breaks
            errors[model] = f"{type(error).__name__}: {error}"
            say(f"  {model}: FAILED {errors[model]}")
            continue
        seconds = time.perf_counter() - began
        score = carparts.score(data, frame)
        fallbacks = int((frame.drop_duplicates("series_id")["model"] != model).sum())
        notes = []
        if on_subset:
            notes.append(f"random {len(data.ids)} of {n} series; time x{n / len(data.ids):.1f}")
        if fallbacks:
            notes.append(f"{fallbacks} series fell back to EmpiricalQuantile (fit failed)")
        if jobs == 1 and args.jobs > 1:
            notes.append("1 process")
        label = "  Zero (the zero forecast)" if model == "Zero" else f"  {model} alone"
        if on_subset:
            label += " (subset)"
        rows.append(
            _row(
                model,
                label,
                score,
                seconds,
                extrapolated_seconds=seconds * n / len(data.ids) if on_subset else None,
                note="; ".join(notes),
            )
        )
        say(f"  {label.strip()}: WQL {score.wql:.4f}, {seconds:.1f} s")
    return rows


def _timed_section(
    name: str, errors: dict[str, str], run: Callable[[], dict[str, Any] | None]
) -> dict[str, Any] | None:
    try:
        return run()
    except Exception as error:  # still report the other sections
        errors[name] = f"{type(error).__name__}: {error}"
        say(f"  {name}: FAILED {errors[name]}")
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        say(f"forecast benchmark skipped: {args.data} not found (the shared data folder is not")
        say("checked out next to the repository; see bench/README.md)")
        return 0
    started = now()
    system = machine(("statsforecast", "prophet", "numpy", "pandas", "scipy", "deltalake"))
    split = carparts.load(args.data)
    total_series = len(split.ids)
    rng = random.Random(args.seed)
    if args.series is not None and args.series < total_series:
        split = split.subset(sorted(rng.sample(list(split.ids), args.series)))
    subset = split.subset(sorted(rng.sample(list(split.ids), min(args.subset, len(split.ids)))))
    n = len(split.ids)
    options = product_options()
    default_level = round(options.service_level, 4)
    say(
        f"forecast benchmark: car parts, {n:,} of {total_series:,} monthly series, "
        f"{split.months} months, last {carparts.HORIZON} held out, {split.empty_cells:,} empty "
        f"cells masked; {system['cpus']} CPUs, load {system['load_average_at_start']}"
    )
    say(
        f"product path: run_forecast(lake, options_from(NovaSettings(), bucket='month', "
        f"horizon=12)): {options.workers} workers, {options.backtest_origins} origins, "
        f"service level {options.service_level}, candidates {', '.join(options.models)}"
    )
    errors: dict[str, str] = {}
    lakes = Lakes(args.work_dir)
    results: dict[str, Any] = {}
    try:
        results = _run_all(args, split, subset, total_series, default_level, lakes, errors)
    except Exception as error:  # the product path itself failed: say so, exit 1
        errors["product"] = f"{type(error).__name__}: {error}"
        say(f"  product path: FAILED {errors['product']}")
    finally:
        lakes.close()
    results.update(
        {
            "benchmark": "forecast",
            "started_at": started,
            "machine": system,
            "load_average_at_end": load_average(),
            "errors": errors,
        }
    )
    from bench.forecast.report import render

    say("")
    say(render(results))
    return write_results(args.out, results)


def _run_all(
    args: argparse.Namespace,
    split: carparts.Split,
    subset: carparts.Split,
    total_series: int,
    default_level: float,
    lakes: Lakes,
    errors: dict[str, str],
) -> dict[str, Any]:
    n = len(split.ids)
    levels = tuple(inventory.SERVICE_LEVELS)
    lead = MAIN_LEAD_TIME_DAYS
    # The main lake also serves the inventory runs at the main lead time: the default run first
    # (the product-path row), then the other targets.
    main_levels: tuple[float | None, ...] = (None,)
    if not args.no_inventory:
        main_levels += tuple(level for level in levels if level != default_level)
    say(f"product path on {n:,} series (lake with {lead}-day lead times) ...")
    main_runs = lakes.run(split.history, lead, main_levels)
    product = main_runs[0]
    forecasts = carparts.align(split, product.forecasts)
    score = carparts.score(split, forecasts)
    missing = int((forecasts.drop_duplicates("series_id")["model"] == "none").sum())
    mix = _model_mix(forecasts[forecasts["model"] != "none"])
    rows = [
        _row(
            "product",
            "product path: nova forecast defaults",
            score,
            product.seconds,
            note=f"{product.series:,} series forecast by the run"
            + (f"; {missing} parts without a forecast scored as zero" if missing else ""),
        )
    ]
    say(f"  WQL {score.wql:.4f}, MASE {score.mase:.4f}, {product.seconds:.1f} s")

    served = split.subset([s for s in split.ids if s in set(product.forecasts["series_id"])])
    levels_served = tuple(sorted({*carparts.SCORED_QUANTILES, default_level}))
    calibration = carparts.calibration(served, forecasts, levels_served, CALIBRATION_TOLERANCE)

    say("sparse panel ...")

    def sparse_section() -> dict[str, Any] | None:
        ids = panels.sparse_ids(split)
        if not ids:
            return None
        sparse = split.subset(ids)
        run = lakes.run(sparse.history, lead)[0]
        aligned = carparts.align(sparse, run.forecasts)
        demand = float(np.nansum(sparse.test))
        wql = carparts.score(sparse, aligned).wql if demand > 0 else float("nan")
        in_main = carparts.score(sparse, forecasts).wql if demand > 0 else float("nan")
        return {
            **panels.describe_sparse(sparse),
            "rule": f">= {panels.SPARSE_ZERO_SHARE:.0%} zero training months, some demand; "
            f"fading = no demand in the last {panels.FADING_MONTHS} training months",
            "seconds": round(run.seconds, 2),
            "wql": None if np.isnan(wql) else round(wql, 4),
            "wql_zero": 1.0,
            "wql_in_full_panel_run": None if np.isnan(in_main) else round(in_main, 4),
            "selected_models": _model_mix(aligned),
            "status": "n/a" if np.isnan(wql) else _status(wql <= 1.0),
        }

    sparse = _timed_section("sparse", errors, sparse_section)

    stock = None
    if not args.no_inventory:
        say("inventory: product path per lead time and target, then the simulation ...")

        def inventory_section() -> dict[str, Any]:
            runs: dict[tuple[int, float], tuple[pd.DataFrame, pd.DataFrame]] = {}
            for run in main_runs:
                level = run.options["service_level"]
                if round(level, 4) in levels:
                    runs[(lead, round(level, 4))] = (
                        carparts.align(split, run.forecasts),
                        run.policy,
                    )
            for other in inventory.LEAD_TIMES_DAYS[1:]:
                for run in lakes.run(split.history, other, levels):
                    level = round(run.options["service_level"], 4)
                    runs[(other, level)] = (carparts.align(split, run.forecasts), run.policy)
            section = inventory.simulate(
                split, runs, seed=args.seed, quantity_source=args.order_quantity
            )
            section["product_runs"] = [
                {"lead_time_days": ld, "service_level": lv} for ld, lv in sorted(runs)
            ]
            return section

        stock = _timed_section("inventory", errors, inventory_section)

    scale = None
    if args.sizes:
        say(f"scale curve: {', '.join(f'{s:,}' for s in args.sizes)} resampled series ...")

        def scale_section() -> dict[str, Any]:
            points = []
            for size in args.sizes:
                history = panels.resampled_history(args.data, size, args.seed)
                load = load_average()
                run = lakes.run(history, lead)[0]
                points.append(
                    {
                        "size": size,
                        "series": run.series,
                        "seconds": round(run.seconds, 2),
                        "series_per_second": round(run.series / run.seconds, 2),
                        "load_average_before": load,
                        "stage_seconds": run.run_row.get("stage_seconds"),
                    }
                )
                say(f"  {size:,}: {run.series:,} series in {run.seconds:.1f} s")
            base = points[0]["seconds"] / points[0]["series"]
            for point in points:
                point["growth"] = round(point["seconds"] / point["series"] / base, 3)
            return {"points": points}

        scale = _timed_section("scale", errors, scale_section)

    weekly = None
    if args.weekly:
        say(f"weekly: API benchmark shape with {args.weekly:,} items, nova forecast --bucket week")
        weekly = _timed_section("weekly", errors, lambda: _weekly(args, lakes))

    context: list[dict[str, Any]] = []
    if not args.no_context:
        say("context: each candidate alone (forecast_candidate, no backtest or selection) ...")
        context = _context_rows(split, subset, args, errors)
        ours_subset = carparts.score(subset, forecasts)
        for row in context:
            if row["key"] in SUBSET_MODELS:
                row["note"] += f"; product path on them {ours_subset.wql:.4f}"

    targets = _targets(rows[0], calibration, sparse, stock, scale, weekly)
    published = carparts.published(args.published) if args.published.exists() else []
    return {
        "parameters": {
            "data": str(args.data),
            "series": n,
            "series_in_file": total_series,
            "quick": args.quick,
            "subset_series": len(subset.ids),
            "scale_sizes": args.sizes,
            "seed": args.seed,
            "demand_date": "last day of each month (gold.fact_demand), one depot",
            "quantiles_scored": list(carparts.SCORED_QUANTILES),
        },
        "product": {**product.summary(), "item_model_mix": mix, "parts_without_forecast": missing},
        "rows": rows,
        "context_rows": context,
        "by_class": _by_class(split, forecasts, product),
        "calibration": {
            "series": len(served.ids),
            "tolerance": CALIBRATION_TOLERANCE,
            "levels": calibration,
        },
        "sparse": sparse,
        "inventory": stock,
        "scale": scale,
        "weekly": weekly,
        "published": published,
        "targets": targets,
    }


def _targets(
    product: dict[str, Any],
    calibration: list[dict[str, Any]],
    sparse: dict[str, Any] | None,
    stock: dict[str, Any] | None,
    scale: dict[str, Any] | None,
    weekly: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    targets = [
        {
            "key": "wql",
            "label": "product path, WQL q0.1..0.9",
            "value": product["wql"],
            "target": f"< {WQL_TARGET}",
            "status": _status(product["wql"] < WQL_TARGET),
        },
        {
            "key": "calibration",
            "label": "calibrated levels (±0.03)",
            "value": sum(r["status"] == "PASS" for r in calibration),
            "target": f"= {len(calibration)}",
            "status": _status(all(r["status"] == "PASS" for r in calibration)),
        },
    ]
    if sparse is not None and sparse["wql"] is not None:
        targets.append(
            {
                "key": "sparse",
                "label": "sparse panel, WQL",
                "value": sparse["wql"],
                "target": "<= 1.0 (zero)",
                "status": sparse["status"],
            }
        )
    if stock is not None:
        for row in stock["rows"]:
            tag = f"{row['lead_time_days']}d {row['target_service_level']:.2f}"
            targets.append(
                {
                    "key": f"inventory_target_{tag}",
                    "label": f"inventory {tag}: ours cycle SL",
                    "value": row["ours"]["cycle_service_level"],
                    "target": f"{row['target_service_level']:.2f} ± {inventory.TARGET_TOLERANCE}",
                    "status": row["target_status"],
                }
            )
            trade = row["trade_off"]
            same = trade["ours_over_classic_stock_at_same_service"]
            targets.append(
                {
                    "key": f"inventory_stock_{tag}",
                    "label": f"inventory {tag}: stock / classic's"
                    + (" best" if same is None and trade["ours_over_classic_best_stock"] else ""),
                    "value": same if same is not None else trade["ours_over_classic_best_stock"],
                    "target": "<= 1 at the same service",
                    "status": row["stock_status"],
                }
            )
    if scale is not None and scale["points"]:
        points = scale["points"]
        for point in points:
            if point["size"] == SCALE_TARGET_SERIES:
                targets.append(
                    {
                        "key": "scale_seconds",
                        "label": f"{SCALE_TARGET_SERIES:,} monthly series, seconds",
                        "value": point["seconds"],
                        "target": f"<= {SCALE_TARGET_SECONDS:g}",
                        "status": _status(point["seconds"] <= SCALE_TARGET_SECONDS),
                    }
                )
        if len(points) > 1:
            growth = points[-1]["growth"]
            targets.append(
                {
                    "key": "scale_growth",
                    "label": f"s/series at {points[-1]['size']:,} vs {points[0]['size']:,}",
                    "value": growth,
                    "target": f"<= {LINEAR_GROWTH_MAX} (linear)",
                    "status": _status(growth <= LINEAR_GROWTH_MAX),
                }
            )
    if weekly is not None:
        targets.append(
            {
                "key": "weekly_seconds",
                "label": f"{WEEKLY_TARGET_SERIES:,} weekly series, seconds"
                + ("" if weekly["series"] >= WEEKLY_TARGET_SERIES else " (projected)"),
                "value": weekly["seconds_for_target_series"],
                "target": f"<= {WEEKLY_TARGET_SECONDS:g}",
                "status": _status(weekly["seconds_for_target_series"] <= WEEKLY_TARGET_SECONDS),
            }
        )
    return targets


def _weekly(args: argparse.Namespace, lakes: Lakes) -> dict[str, Any]:
    """`nova forecast --bucket week --horizon 12` on bench/api's demand generator (item x site
    daily demand, intermittent and lumpy), no lead times or stock."""
    from bench.api.dataset import Sizes
    from bench.api.generate import fact_demand

    sizes = Sizes(WEEKLY_DAYS, args.weekly, WEEKLY_SITES, WEEKLY_ROWS_PER_ITEM * args.weekly)
    demand, _ = fact_demand(sizes, args.seed)
    lakes.count += 1
    lake = gold_lake(lakes.root / f"lake{lakes.count}", None, None, demand=demand)
    load = load_average()
    run = run_product(lake, bucket="week")
    per_series = run.seconds / max(run.series, 1)
    say(f"  {run.series:,} series in {run.seconds:.1f} s")
    return {
        "sizes": sizes.as_dict(),
        "demand_rows": demand.num_rows,
        "series": run.series,
        "items": run.summary()["items_forecast"],
        "seconds": round(run.seconds, 2),
        "series_per_second": round(run.series / run.seconds, 2),
        "seconds_for_target_series": round(per_series * WEEKLY_TARGET_SERIES, 1),
        "load_average_before": load,
        "options": run.options,
        "stage_seconds": run.run_row.get("stage_seconds"),
        "series_by_class": run.run_row.get("series_by_class"),
    }
