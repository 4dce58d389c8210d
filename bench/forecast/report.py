"""The tables printed at the end of a forecast benchmark run."""

from __future__ import annotations

from typing import Any

from bench.forecast import inventory

# Quoted by the task that set the target; published_benchmarks.csv itself holds MASE only.
QUOTED_WQL = (
    ("best published (GIFT-Eval, as quoted in the task; not in the CSV)", 0.89),
    ("simple per-series methods plateau (as quoted in the task)", 0.885),
)


def _seconds(row: dict[str, Any]) -> str:
    if row["seconds_all_series_estimate"] is not None:
        return f"{row['seconds']:.1f} (~{row['seconds_all_series_estimate']:.0f} all)"
    return f"{row['seconds']:.1f}"


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    header = (
        f"{'forecast':44} {'series':>7} {'WQL':>7} {'MASE':>7} {'MASE n':>7} {'wall s':>18}  note"
    )
    lines += [header, "-" * len(header)]
    for row in results["rows"]:
        lines.append(
            f"{row['label']:44} {row['series']:>7,} {row['wql']:>7.4f} {row['mase']:>7.4f} "
            f"{row['mase_series']:>7,} {_seconds(row):>18}  {row['note']}"
        )
    lines.append("")
    lines.append("WQL = mean over q 0.1..0.9 of 2*sum(pinball)/sum|y| (all series, steps; empty")
    lines.append("cells masked). MASE = median forecast, scale mean|y_t - y_t-12| on the training")
    lines.append("part, zero-scale series left out (GIFT-Eval MASE[0.5]).")
    for label, value in QUOTED_WQL:
        lines.append(f"  WQL {value:.3f}  {label}")
    published = results.get("published") or []
    if published:
        lines.append("")
        lines.append("published (published_benchmarks.csv), horizon 12:")
        for entry in published:
            source = entry["source"].split(" ")[0]
            lines.append(
                f"  {source:8} {entry['variant'][:34]:34} {entry['model']:26} "
                f"{float(entry['value']):>7.3f}  {entry['metric'][:60]}"
            )
        lines.append(
            "  (Monash rows score point forecasts on zero-filled data, another protocol; the"
        )
        lines.append("  GIFT-Eval and fev rows use the protocol above, like our MASE column.)")
    selection = results.get("selection") or {}
    if selection:
        lines.append("")
        counts = ", ".join(f"{k} {v}" for k, v in selection["selected_models"].items())
        lines.append(f"ours, selected models: {counts}")
        for name, part in selection["by_class"].items():
            wql = "n/a" if part["wql"] is None else f"{part['wql']:.4f}"
            lines.append(
                f"  {name:13} {part['series']:>6,} series, "
                f"test demand {part['test_demand']:>8,.0f}, WQL {wql}"
            )
    lines.append("")
    for target in results["targets"]:
        lines.append(
            f"{target['label']:34} {target['value']:>9.4f}   target < {target['target']:<7g} "
            f"{target['status']}"
        )
    if results.get("inventory"):
        lines.append("")
        lines += inventory.render(results["inventory"])
    for model, error in (results.get("errors") or {}).items():
        lines.append(f"ERROR {model}: {error}")
    return "\n".join(lines)
