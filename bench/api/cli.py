"""`python -m bench.api`: generate (or reuse) gold, start the real API and a bare FastAPI
app returning a constant (the ceiling) as subprocesses, load each with a concurrent load
generator on loopback, report latency percentiles, requests/s, ratios and the targets."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.api import report
from bench.api.dataset import GENERATOR_VERSION, SEED, Sizes
from bench.api.servers import HOST, Server, ServerError, free_port, get, spawn
from bench.common import (
    REPO_ROOT,
    add_output_options,
    fill_sizes,
    generated_lake,
    last_json_line,
    load_average,
    machine,
    now,
    run_module,
    say,
    write_results,
)

DEFAULTS: dict[str, Any] = {
    "days": 1095,
    "items": 2000,
    "sites": 250,
    "rows": 5_000_000,
    "duration": 10.0,
    "warmup": 2.0,
}
QUICK: dict[str, Any] = {
    "days": 365,
    "items": 200,
    "sites": 40,
    "rows": 50_000,
    "duration": 2.0,
    "warmup": 0.5,
}
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "pyarrow",
    "deltalake",
    "h11",
    "httptools",
    "uvloop",
)
Say = Callable[[str], None]
FIRST_URL = "/api/v1/items?limit=50"
ENDPOINTS = ("items", "demand", "forecasts", "alerts")
ITEM_SORTS = ("item_code", "-total_quantity", "request_lines", "-last_seen", "adi")
ALERT_LEVELS = (
    "",
    "&level=critical",
    "&level=attention",
    "&level=monitor",
    "&level=critical&level=attention&level=monitor",
)
PAGE = 50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api",
        description="API benchmark: latency and requests/s of the real API over generated gold "
        "against a bare FastAPI endpoint (see bench/README.md).",
    )
    parser.add_argument("--days", type=int, help="days of demand history (default 1,095)")
    parser.add_argument("--items", type=int, help="material codes (default 2,000)")
    parser.add_argument("--sites", type=int, help="site codes (default 250)")
    parser.add_argument("--rows", type=int, help="gold.fact_demand rows (default 5,000,000)")
    parser.add_argument(
        "--connections", type=int, default=16, help="concurrent connections (default 16)"
    )
    parser.add_argument(
        "--duration", type=float, help="measured seconds per endpoint and mode (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds of load before each measurement (default 2)"
    )
    parser.add_argument(
        "--urls",
        type=int,
        default=200,
        help="distinct URLs per endpoint in the cached mode: items for the single-item "
        "endpoints, pages x sorts/levels for the lists (default 200)",
    )
    parser.add_argument(
        "--endpoints",
        default=",".join(ENDPOINTS),
        help=f"comma-separated subset of {','.join(ENDPOINTS)} (default: all)",
    )
    parser.add_argument(
        "--api-command",
        default="-m services.api",
        help="what follows `python` to start the API (default: -m services.api); to compare "
        "a changed copy of the API on the same gold and load",
    )
    add_output_options(
        parser, "api", "the generated gold is cached under DATA_DIR/api/ (default var/bench)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK['rows']:,} demand rows, {QUICK['items']} items, "
        f"{QUICK['sites']} sites, {QUICK['days']} days; {QUICK['duration']:.0f} s per phase)",
    )
    args = parser.parse_args(argv)
    fill_sizes(args, QUICK if args.quick else DEFAULTS)
    if min(args.days, args.items, args.sites, args.rows, args.connections, args.urls) < 1:
        parser.error("--days, --items, --sites, --rows, --connections and --urls must be >= 1")
    if args.rows > args.days * args.items * args.sites // 2:
        parser.error("--rows must be at most half of days x items x sites (demand is sparse)")
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if not args.endpoints or set(args.endpoints) - set(ENDPOINTS):
        parser.error(f"--endpoints takes names from {', '.join(ENDPOINTS)}")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    return args


def _prepare_lake(args: argparse.Namespace, say: Say) -> dict[str, Any]:
    """The generated gold, in a child (the parent stays small)."""
    began = time.perf_counter()
    manifest = generated_lake(
        "generating gold",
        "bench.api.generate",
        args.days,
        args.items,
        args.sites,
        args.rows,
        args.data_dir,
    )
    how = (
        f"generated in {manifest['generated_seconds']:.1f} s"
        if manifest["generated_now"]
        else "cached"
    )
    tables = manifest["tables"]
    say(
        f"  gold.fact_demand {tables['fact_demand']:,} rows ({manifest['first_day']} .. "
        f"{manifest['last_day']}, {100 * manifest['density']:.2f}% of item x site x day cells), "
        f"dim_item {tables['dim_item']:,}, fact_forecast {tables['fact_forecast']:,} "
        f"({manifest['series']:,} series: {manifest['item_series']:,} items, "
        f"{manifest['site_series']:,} item x site), inventory_policy "
        f"{tables['inventory_policy']:,}; {manifest['lake_bytes'] / 2**20:.1f} MB, {how}"
    )
    rows = manifest["demand_rows_per_item"]
    say(
        f"  demand rows per item: median {rows['median']:,}, p90 {rows['p90']:,}, max "
        f"{rows['max']:,}; classes {manifest['demand_classes']}; alerts "
        f"{manifest['alert_levels']}"
    )
    say(f"  {manifest['root']}")
    manifest["prepare_seconds"] = round(time.perf_counter() - began, 2)
    return manifest


def endpoint_urls(items: list[dict[str, Any]], alerts: int, count: int) -> dict[str, list[str]]:
    """The fixed URL list of each endpoint: `count` random items (seeded) for the single-item
    endpoints, pages x sorts (items) and pages x levels (alerts) for the lists."""
    rng = random.Random(SEED)
    chosen = rng.sample(items, min(count, len(items)))
    item_pages = max(1, math.ceil(len(items) / PAGE))
    alert_pages = max(1, math.ceil(alerts / PAGE))
    list_urls = [
        f"/api/v1/items?limit={PAGE}&offset={PAGE * page}&sort={sort}"
        for page in range(item_pages)
        for sort in ITEM_SORTS
    ]
    alert_urls = [
        f"/api/v1/inventory/alerts?limit={PAGE}&offset={PAGE * page}{levels}"
        for page in range(alert_pages)
        for levels in ALERT_LEVELS
    ]
    rng.shuffle(list_urls)
    rng.shuffle(alert_urls)
    return {
        "items": sorted(list_urls[:count], key=lambda u: (len(u), u)),
        "demand": [f"/api/v1/demand?item={i['item_code']}" for i in chosen],
        "forecasts": [f"/api/v1/forecasts?item={i['item_code']}" for i in chosen],
        "alerts": sorted(alert_urls[:count], key=lambda u: (len(u), u)),
    }


def run_load(
    server: Server,
    urls: list[str],
    mode: str,
    args: argparse.Namespace,
    scratch: Path,
    base: int,
) -> dict[str, Any]:
    """One load phase in a fresh load-generator process."""
    spec = {
        "host": HOST,
        "port": server.port,
        "urls": urls,
        "mode": mode,
        "connections": args.connections,
        "warmup": args.warmup,
        "duration": args.duration,
        "seed": SEED + base,
        "base": base,
        "server_pid": server.pid,
        "prime": True,
    }
    spec_path = scratch / "load-spec.json"
    spec_path.write_text(json.dumps(spec))
    completed = run_module(
        "bench.api.load",
        spec_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 120,
    )
    result = last_json_line(completed, "load generator")
    if not server.alive():
        raise ServerError(f"{server.name} died during the load: {server.tail()}")
    return result


def _phase_line(label: str, result: dict[str, Any]) -> str:
    return (
        f"  {label:<30} {result['requests_per_second']:>8,.0f} req/s  p50 "
        f"{result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}"
    )


def measure_ceiling(
    args: argparse.Namespace, scratch: Path, say: Say
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    port = free_port()
    server = spawn("ceiling", ["-m", "bench.api.ceiling", str(port)], {}, port, scratch)
    try:
        first_s, answer = server.wait_first_answer("/constant")
        startup = {"spawn_to_first_answer_s": first_s, "first_request_s": answer.seconds}
        phases = []
        for key, label, url in (
            ("ceiling", "ceiling: async def constant", "/constant"),
            ("ceiling_sync", "ceiling: def constant", "/constant-sync"),
        ):
            result = run_load(server, [url], "repeat", args, scratch, 0)
            say(_phase_line(label, result))
            phases.append({"endpoint": key, "label": label, "result": result, "is_ceiling": True})
        return startup, phases
    finally:
        server.stop()


def api_env(lake_root: Path, var_dir: Path, port: int) -> dict[str, str]:
    """The API's settings as deployed (see shared/settings.py), events off, logs at WARNING."""
    return {
        "NOVA_VAR_DIR": str(var_dir),
        "NOVA_STORAGE__BACKEND": "local",
        "NOVA_STORAGE__LOCAL_ROOT": str(lake_root),
        "NOVA_API__HOST": HOST,
        "NOVA_API__PORT": str(port),
        "NOVA_API__FOLLOW_EVENTS": "false",
        "NOVA_API__KEYS": "",
        "NOVA_API__CORS_ORIGINS": "",
        "NOVA_LOG__LEVEL": "WARNING",
        "NOVA_LOG__FORMAT": "json",
        # Run from a scratch folder so that a developer's .env cannot change the settings.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


def measure_api(
    args: argparse.Namespace,
    manifest: dict[str, Any],
    urls: dict[str, list[str]],
    scratch: Path,
    say: Say,
    out: dict[str, Any],
) -> None:
    """Start the API, time its start and first requests, load every endpoint; results go into
    `out` as they come (also when something fails half-way)."""
    port = free_port()
    var_dir = scratch / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = api_env(Path(manifest["root"]), var_dir, port)
    server = spawn("api", args.api_command.split(), env, port, scratch, cwd=scratch)
    try:
        first_s, answer = server.wait_first_answer(FIRST_URL)
        out["startup"] = {"spawn_to_first_answer_s": first_s, "first_request_s": answer.seconds}
        say(
            f"  spawn to first 200 of {FIRST_URL}: {first_s:.2f} s (that request alone "
            f"{1000 * answer.seconds:.1f} ms)"
        )
        ready = get(port, "/ready")
        out["ready_status"] = ready.status
        pinned = json.loads(ready.body)
        out["pinned"] = {k: pinned.get(k) for k in ("build_id", "run_id", "versions")}
        if (
            pinned.get("build_id") != manifest["build_id"]
            or pinned.get("run_id") != manifest["run_id"]
        ):
            raise ServerError(
                f"the API pinned build {pinned.get('build_id')} / run {pinned.get('run_id')}, "
                f"not the generated {manifest['build_id']} / {manifest['run_id']}"
            )
        # The first request of each endpoint loads the gold tables it reads.
        out["first_requests"].append(
            {
                "endpoint": "items",
                "url": FIRST_URL,
                "seconds": answer.seconds,
                "status": answer.status,
                "body_bytes": answer.body_bytes,
            }
        )
        for endpoint in [e for e in ENDPOINTS[1:] if e in args.endpoints]:
            url = urls[endpoint][0]
            first = get(port, url)
            out["first_requests"].append(
                {
                    "endpoint": endpoint,
                    "url": url,
                    "seconds": first.seconds,
                    "status": first.status,
                    "body_bytes": first.body_bytes,
                }
            )
            say(f"  first {endpoint} request (loads its tables): {1000 * first.seconds:,.1f} ms")
        base = 0
        for endpoint in args.endpoints:
            for mode in ("repeat", "unique"):
                base += 10_000_000
                result = run_load(server, urls[endpoint], mode, args, scratch, base)
                label = f"{endpoint} ({report.CACHE_LABEL[mode]})"
                say(_phase_line(label, result))
                out["phases"].append({"endpoint": endpoint, "label": endpoint, "result": result})
        out["memory_mb"] = server.memory_mb()
    finally:
        server.stop()
        out["server_log_tail"] = server.tail(3000)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes(args.days, args.items, args.sites, args.rows)
    started = now()
    system = machine(PACKAGES)
    say(
        f"API benchmark: {sizes.rows:,} demand rows over {sizes.days:,} days, {sizes.items:,} "
        f"items, {sizes.sites:,} sites; {args.connections} connections, {args.warmup:g} s "
        f"warm-up + {args.duration:g} s per phase; {system['cpus']} CPUs, load "
        f"{system['load_average_at_start']}"
    )
    if (system["cpus"] or 1) <= 2:
        say(
            f"  note: {system['cpus']} CPUs: the server (one uvicorn worker) and the load "
            "generator compete for them, so absolute req/s are pessimistic; ratios come from "
            "the same conditions"
        )
    scratch = args.data_dir / "api" / "run"
    scratch.mkdir(parents=True, exist_ok=True)
    errors: dict[str, str] = {}
    results: dict[str, Any] = {
        "benchmark": "api",
        "started_at": started,
        "parameters": {
            **sizes.as_dict(),
            "connections": args.connections,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "urls": args.urls,
            "endpoints": args.endpoints,
            "api_command": args.api_command,
            "quick": args.quick,
            "seed": SEED,
            "generator_version": GENERATOR_VERSION,
        },
        "machine": system,
    }
    ceiling_phases: list[dict[str, Any]] = []
    api: dict[str, Any] = {"phases": [], "first_requests": []}
    startup: dict[str, Any] = {}
    try:
        say("gold:")
        manifest = _prepare_lake(args, say)
        results["inputs"] = {"gold": manifest}
        items = json.loads((Path(manifest["root"]) / "items.json").read_text())
        alerts = sum(manifest["alert_levels"].get(level, 0) for level in ("critical", "attention"))
        urls = endpoint_urls(items, alerts, args.urls)
        chosen = {u.split("=", 1)[1] for u in urls["demand"]}
        picked = [i for i in items if i["item_code"] in chosen]
        rows = sorted(i["demand_rows"] for i in picked)
        series = sorted(i["series"] for i in picked)
        results["inputs"]["urls"] = urls
        say(
            f"  single-item URLs: {len(picked)} random items; their demand rows median "
            f"{rows[len(rows) // 2]:,} max {rows[-1]:,}, forecast series median "
            f"{series[len(series) // 2]} max {series[-1]}"
        )
        say("ceiling (bare FastAPI, constant body):")
        ceiling_startup, ceiling_phases = measure_ceiling(args, scratch, say)
        startup["ceiling (/constant)"] = ceiling_startup
        say(f"API (python {args.api_command}):")
        measure_api(args, manifest, urls, scratch, say, api)
        startup["API (/api/v1/items?limit=50)"] = api["startup"]
    except (RuntimeError, ServerError, OSError, subprocess.SubprocessError) as error:
        errors["run"] = f"{type(error).__name__}: {error}"

    ceiling_rps = ceiling_phases[0]["result"]["requests_per_second"] if ceiling_phases else None
    phases = [*ceiling_phases, *api["phases"]]
    first_s = api.get("startup", {}).get("spawn_to_first_answer_s")
    ceiling_cpu_ms = (
        report.cpu_per_request_ms(ceiling_phases[0]["result"]) if ceiling_phases else None
    )
    checks = report.evaluate(phases, ceiling_rps, ceiling_cpu_ms, first_s)
    system["load_average_at_end"] = load_average()
    if phases:
        say("")
        say(report.phase_table(phases, ceiling_rps, ceiling_cpu_ms))
        say(
            "  latency: request sent to last body byte, per connection, all requests of the "
            "window kept; srv CPU: server process CPU (all threads) / requests; /ceiling: "
            "req/s over the ceiling's; CPU ratio: ceiling's CPU/req over this one's"
        )
    primed = report.primed_lines(phases)
    if primed:
        say("")
        say(
            f"first request of each URL of the cached phases ({args.connections} connections, "
            "before the warm-up; cache misses):"
        )
        say(primed)
    if startup:
        say("")
        say("start-up:")
        say(report.startup_lines(startup))
    if api["first_requests"]:
        say("first request of each endpoint after start (loads the tables it reads):")
        say(report.first_request_lines(api["first_requests"]))
    if api.get("memory_mb"):
        memory = api["memory_mb"]
        say(
            f"API server memory after the run: RSS {memory.get('VmRSS', 0):,.0f} MB, "
            f"peak {memory.get('VmHWM', 0):,.0f} MB"
        )
    request_errors = sum(
        p["result"]["errors"] + (p["result"].get("primed") or {}).get("errors", 0) for p in phases
    )
    if checks:
        say("")
        say("ratios and targets:")
        say(report.check_lines(checks))
    say("")
    say(
        f"request errors (any status but 200, or a broken connection): {request_errors}"
        + (
            ""
            if not request_errors
            else " -- " + "; ".join(s for p in phases for s in p["result"]["error_samples"][:2])
        )
    )
    for key, error in errors.items():
        say(f"\nERROR in {key}: {error}")
        if api.get("server_log_tail"):
            say(f"API server log (tail):\n{api['server_log_tail']}")

    results.update(
        {
            "finished_at": now(),
            "startup": startup,
            "first_requests": api["first_requests"],
            "ready": {"status": api.get("ready_status"), **api.get("pinned", {})},
            "phases": phases,
            "ceiling_requests_per_second": ceiling_rps,
            "ceiling_cpu_ms_per_request": ceiling_cpu_ms,
            "api_memory_mb": api.get("memory_mb"),
            "request_errors": request_errors,
            "checks": checks,
            "errors": errors,
        }
    )
    return write_results(args.out, results)


if __name__ == "__main__":
    sys.exit(main())
