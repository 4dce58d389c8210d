"""Tables, ratios and target checks of the API benchmark (standard library only)."""

from __future__ import annotations

import math
from typing import Any

P99_TARGET_MS = 50.0
CEILING_SHARE_TARGET = 0.5
FIRST_ANSWER_TARGET_S = 2.0
SINGLE_ITEM = ("demand", "forecasts")
CACHE_LABEL = {"repeat": "cached", "unique": "uncached"}


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f}"


def cpu_per_request_ms(result: dict[str, Any]) -> float | None:
    """Server CPU (all threads) per request in the measured window, ms."""
    cpu = result.get("server_cpu_seconds")
    n = result["requests"]
    return 1000 * cpu / n if cpu is not None and n else None


def phase_table(
    phases: list[dict[str, Any]], ceiling_rps: float | None, ceiling_cpu_ms: float | None
) -> str:
    header = (
        f"{'endpoint':<28} {'cache':<9} {'URLs':>6} {'requests':>9} {'req/s':>8} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
        f"{'srv CPU ms/req':>14} {'KB/resp':>8} {'/ceiling':>8} {'CPU ratio':>9}"
    )
    lines = [header, "-" * len(header)]
    for phase in phases:
        result = phase["result"]
        n = result["requests"]
        cpu_ms = cpu_per_request_ms(result)
        ratio = cpu_ratio = ""
        if not phase.get("is_ceiling"):
            if ceiling_rps:
                ratio = f"{result['requests_per_second'] / ceiling_rps:.2f}x"
            if ceiling_cpu_ms and cpu_ms:
                cpu_ratio = f"{ceiling_cpu_ms / cpu_ms:.2f}x"
        distinct = "all new" if result["mode"] == "unique" else f"{result['distinct_urls']:,}"
        cache = "" if phase.get("is_ceiling") else CACHE_LABEL.get(result["mode"], "")
        lines.append(
            f"{phase['label']:<28} {cache:<9} {distinct:>6} "
            f"{n:>9,} {result['requests_per_second']:>8,.0f} {_ms(result['p50_ms']):>8} "
            f"{_ms(result['p90_ms']):>8} {_ms(result['p99_ms']):>8} {_ms(result['max_ms']):>8} "
            f"{result['errors']:>6,} {_ms(cpu_ms) if cpu_ms is None else f'{cpu_ms:.2f}':>14} "
            f"{result['mean_body_bytes'] / 1024:>8.1f} {ratio:>8} {cpu_ratio:>9}"
        )
    return "\n".join(lines)


def evaluate(
    phases: list[dict[str, Any]],
    ceiling_rps: float | None,
    ceiling_cpu_ms: float | None,
    first_answer_s: float | None,
) -> list[dict[str, Any]]:
    """Ratios against the ceiling and the target checks. The target is on requests/s; the
    same ratio in server CPU per request (what the throughput ratio would be if the server had
    a core to itself) is reported beside it without a target."""
    checks: list[dict[str, Any]] = []
    for phase in phases:
        if phase.get("is_ceiling"):
            continue
        result = phase["result"]
        cache = CACHE_LABEL[result["mode"]]
        name = f"{phase['endpoint']} ({cache})"
        if ceiling_rps:
            ratio = result["requests_per_second"] / ceiling_rps
            checks.append(
                {
                    "key": f"{phase['endpoint']}_{cache}_vs_ceiling",
                    "label": f"{name}: req/s / ceiling req/s",
                    "value": ratio,
                    "unit": "x",
                    "target": f">= {CEILING_SHARE_TARGET:.2f}x",
                    "status": "met" if ratio >= CEILING_SHARE_TARGET else "MISS",
                }
            )
        cpu_ms = cpu_per_request_ms(result)
        if ceiling_cpu_ms and cpu_ms:
            checks.append(
                {
                    "key": f"{phase['endpoint']}_{cache}_vs_ceiling_cpu",
                    "label": f"{name}: ceiling CPU/req / CPU/req",
                    "value": ceiling_cpu_ms / cpu_ms,
                    "unit": "x",
                    "target": None,
                    "status": "",
                }
            )
        if phase["endpoint"] in SINGLE_ITEM:
            p99 = result["p99_ms"]
            checks.append(
                {
                    "key": f"{phase['endpoint']}_{cache}_p99",
                    "label": f"{name}: p99 latency",
                    "value": p99,
                    "unit": "ms",
                    "target": f"< {P99_TARGET_MS:.0f} ms",
                    "status": "met" if p99 < P99_TARGET_MS else "MISS",
                }
            )
    if first_answer_s is not None:
        checks.append(
            {
                "key": "first_answer",
                "label": "spawn to first 200 of /api/v1/items?limit=50",
                "value": first_answer_s,
                "unit": "s",
                "target": f"< {FIRST_ANSWER_TARGET_S:.0f} s",
                "status": "met" if first_answer_s < FIRST_ANSWER_TARGET_S else "MISS",
            }
        )
    return checks


def check_lines(checks: list[dict[str, Any]]) -> str:
    lines = []
    for check in checks:
        value = check["value"]
        shown = f"{value:.2f}x" if check["unit"] == "x" else f"{value:,.2f} {check['unit']}"
        lines.append(
            f"  {check['label']:<52} {shown:>12}   "
            + (f"target {check['target']:<10} {check['status']}" if check["target"] else "")
        )
    return "\n".join(lines)


def startup_lines(startup: dict[str, Any]) -> str:
    lines = []
    for name, entry in startup.items():
        lines.append(
            f"  {name:<34} spawn to first 200: {entry['spawn_to_first_answer_s']:6.2f} s, "
            f"that request alone: {1000 * entry['first_request_s']:8.1f} ms"
        )
    return "\n".join(lines)


def first_request_lines(first: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {entry['endpoint']:<12} {entry['url']:<58} {1000 * entry['seconds']:9.1f} ms  "
        f"({entry['status']}, {entry['body_bytes'] / 1024:.1f} KB)"
        for entry in first
    )


def primed_lines(phases: list[dict[str, Any]]) -> str:
    """The priming pass of each cached phase: every URL requested once (all cache misses)."""
    lines = []
    for phase in phases:
        primed = phase["result"].get("primed")
        if phase.get("is_ceiling") or not primed:
            continue
        lines.append(
            f"  {phase['label']:<12} {primed['requests']:>5,} URLs in {primed['seconds']:6.2f} s  "
            f"p50 {_ms(primed['p50_ms']):>8} ms  p99 {_ms(primed['p99_ms']):>8} ms  max "
            f"{_ms(primed['max_ms']):>8} ms  errors {primed['errors']}"
        )
    return "\n".join(lines)
