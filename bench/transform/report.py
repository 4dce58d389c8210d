"""Ratios against the targets, and the tables printed at the end of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.transform.runner import DUCKDB, FULL, INCREMENTAL, SPECS


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    numerator: str  # path key
    denominator: str | None  # path key; None: the numerator's seconds themselves
    limit: float
    op: str  # "<" or "<="
    unit: str  # "%", "s" or "x"

    def evaluate(self, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
        top = paths.get(self.numerator)
        bottom = paths.get(self.denominator) if self.denominator else None
        value = None
        if top and self.denominator is None:
            value = top["seconds_best"]
        elif top and bottom and bottom.get("seconds_best"):
            value = top["seconds_best"] / bottom["seconds_best"]
        if value is None:
            status = "n/a"
        elif self.op == "<":
            status = "PASS" if value < self.limit else "MISS"
        else:
            status = "PASS" if value <= self.limit else "MISS"
        return {
            "key": self.key,
            "label": self.label,
            "value": None if value is None else round(value, 4),
            "target": self.limit,
            "target_op": self.op,
            "unit": self.unit,
            "status": status,
        }


TARGETS: tuple[Target, ...] = (
    Target(
        "incremental_vs_full",
        "incremental / full rebuild (seconds)",
        INCREMENTAL.key,
        FULL.key,
        0.05,
        "<",
        "%",
    ),
    Target("incremental_seconds", "incremental build", INCREMENTAL.key, None, 2.0, "<", "s"),
    Target(
        "full_vs_duckdb",
        "full rebuild / DuckDB direct (seconds)",
        FULL.key,
        DUCKDB.key,
        2.0,
        "<=",
        "x",
    ),
)


# CPU seconds of the same runs, no target: less sensitive to other processes on the machine
# than wall seconds (the targets are on wall seconds).
CPU_RATIOS: tuple[tuple[str, str, str, str], ...] = (
    ("incremental_vs_full_cpu", "incremental / full rebuild (CPU s)", INCREMENTAL.key, FULL.key),
    ("full_vs_duckdb_cpu", "full rebuild / DuckDB direct (CPU s)", FULL.key, DUCKDB.key),
)


def evaluate(paths: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    ratios = [t.evaluate(paths) for t in TARGETS]
    for key, label, top, bottom in CPU_RATIOS:
        a, b = paths.get(top), paths.get(bottom)
        value = a["cpu_seconds"] / b["cpu_seconds"] if a and b and b["cpu_seconds"] else None
        ratios.append(
            {
                "key": key,
                "label": label,
                "value": None if value is None else round(value, 4),
                "target": None,
                "target_op": None,
                "unit": "%" if key.startswith("incremental") else "x",
                "status": "info",
            }
        )
    return ratios


def _shown(value: float, unit: str) -> str:
    if unit == "%":
        return f"{100 * value:.1f} %"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.2f}x"


def ratio_lines(ratios: list[dict[str, Any]]) -> str:
    lines = []
    for r in ratios:
        value = "n/a" if r["value"] is None else _shown(r["value"], r["unit"])
        if r["target"] is None:
            lines.append(f"{r['label']:<40} {value:>9}")
            continue
        target = f"target {r['target_op']} {_shown(r['target'], r['unit'])}"
        lines.append(f"{r['label']:<40} {value:>9}   {target:<16} {r['status']}")
    return "\n".join(lines)


def table(paths: dict[str, dict[str, Any]]) -> str:
    header = (
        f"{'path':<36} {'lines in':>10} {'fact_demand':>11} {'s best':>8} {'s median':>9} "
        f"{'lines/s':>10} {'CPU s':>7} {'peak RSS MB':>11}"
    )
    out = [header, "-" * len(header)]
    for spec in SPECS:
        p = paths.get(spec.key)
        if p is None:
            out.append(f"{spec.label:<36} {'FAILED':>10}")
            continue
        demand = p.get("fact_demand_rows")
        out.append(
            f"{p['label']:<36} {p['rows']:>10,} {'' if demand is None else f'{demand:,}':>11} "
            f"{p['seconds_best']:>8.3f} {p['seconds_median']:>9.3f} {p['rows_per_s']:>10,.0f} "
            f"{p['cpu_seconds']:>7.1f} {p['peak_rss_mb']:>11.0f}"
        )
    return "\n".join(out)


def committed_lines(path: dict[str, Any]) -> str:
    """The tables and versions a build committed."""
    tables = path.get("tables") or {}
    return "\n".join(
        f"  {name:<28} version {t.get('version', '?'):>3}  {t['rows']:>11,} rows"
        for name, t in tables.items()
    )


# Steps grouped by what they are; the first matching prefix wins.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQL transforms (Transform.run: DuckDB + Arrow out + schema check)", ("sql ",)),
    ("silver dedup (window over key + month)", ("silver: dedup",)),
    ("bronze read (one object at a time)", ("read bronze",)),
    ("Delta/lake reads to Arrow (silver, gold, bounds)", ("read ",)),
    ("Delta commits (write_deltalake + reopen/count)", ("commit ",)),
    ("quality gate (checks, profiles, HTML report)", ("quality:",)),
)


def by_kind(breakdown: dict[str, float]) -> dict[str, float]:
    kinds: dict[str, float] = {label: 0.0 for label, _ in KINDS}
    kinds["other (concat/cast, listing, holidays, Python)"] = 0.0
    for step, seconds in breakdown.items():
        for label, prefixes in KINDS:
            if step.startswith(prefixes):
                kinds[label] += seconds
                break
        else:
            kinds["other (concat/cast, listing, holidays, Python)"] += seconds
    return kinds


def breakdown_lines(path: dict[str, Any], top: int = 14, kinds: bool = True) -> str:
    breakdown: dict[str, float] = dict(path.get("breakdown") or {})
    total = path["seconds_best"] or 1.0
    lines = []
    if kinds:
        lines.append("  by kind:")
        for kind, seconds in sorted(by_kind(breakdown).items(), key=lambda kv: -kv[1]):
            if seconds > 0:
                lines.append(f"    {kind:<66} {seconds:8.3f} s {100 * seconds / total:5.1f} %")
    lines.append("  largest steps:" if kinds else "  steps:")
    ordered = sorted(breakdown.items(), key=lambda kv: -kv[1])
    calls: dict[str, int] = path.get("breakdown_calls") or {}
    for step, seconds in ordered[:top]:
        times = f"{calls[step]}x" if calls.get(step, 1) > 1 else ""
        lines.append(
            f"    {step:<66} {seconds:8.3f} s {100 * seconds / total:5.1f} % {times}".rstrip()
        )
    rest = sum(s for _, s in ordered[top:])
    if rest > 0:
        lines.append(
            f"    {f'{len(ordered) - top} smaller steps':<66} {rest:8.3f} s "
            f"{100 * rest / total:5.1f} %"
        )
    return "\n".join(lines)


def sql_comparison_lines(paths: dict[str, dict[str, Any]]) -> str:
    """The same SQL files, timed inside the full rebuild and run directly by DuckDB."""
    ours = (paths.get(FULL.key) or {}).get("breakdown") or {}
    direct = (paths.get(DUCKDB.key) or {}).get("breakdown") or {}
    steps = [s for s in ours if s.startswith("sql ") and s in direct]
    steps.sort(key=lambda s: -ours[s])
    lines = [f"  {'transform':<34} {'in rebuild_all':>14} {'DuckDB direct':>14}"]
    for step in steps:
        lines.append(f"  {step[4:]:<34} {ours[step]:>12.3f} s {direct[step]:>12.3f} s")
    lines.append(
        f"  {'all of them':<34} {sum(ours[s] for s in steps):>12.3f} s "
        f"{sum(direct[s] for s in steps):>12.3f} s"
    )
    return "\n".join(lines)
