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


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        lines.append(
            f"{row['label']:44} {row['series']:>7,} {row['wql']:>7.4f} {row['mase']:>7.4f} "
            f"{row['mase_series']:>7,} {_seconds(row):>18}  {row['note']}"
        )
    return lines


def _product(results: dict[str, Any]) -> list[str]:
    header = (
        f"{'forecast':44} {'series':>7} {'WQL':>7} {'MASE':>7} {'MASE n':>7} {'wall s':>18}  note"
    )
    lines = [header, "-" * len(header), *_table(results["rows"])]
    product = results["product"]
    mix = ", ".join(f"{k} {v}" for k, v in product["item_model_mix"].items())
    lines.append(f"  selected models (items): {mix}")
    run = product.get("run") or {}
    for key in ("stage_seconds", "series_by_class", "failures_by_model"):
        if run.get(key) is not None:
            value = run[key]
            text = (
                ", ".join(f"{k} {v}" for k, v in value.items())
                if isinstance(value, dict) and value
                else ("none" if isinstance(value, dict) else str(value))
            )
            lines.append(f"  {key.replace('_', ' ')}: {text}")
    for name, part in (results.get("by_class") or {}).items():
        wql = "n/a" if part["wql"] is None else f"{part['wql']:.4f}"
        lines.append(
            f"  {name:13} {part['series']:>6,} series, test demand {part['test_demand']:>8,.0f}, "
            f"WQL {wql}"
        )
    if results.get("context_rows"):
        lines.append("")
        lines.append(
            "context (not the product): each candidate alone, forecast_candidate, fitted once, "
            "no backtest or selection"
        )
        lines += _table(results["context_rows"])
    lines.append("")
    lines.append("WQL = mean over q 0.1..0.9 of 2*sum(pinball)/sum|y| (all series, steps; empty")
    lines.append("cells masked). MASE = median forecast, scale mean|y_t - y_t-12| on the training")
    lines.append("part, zero-scale series left out (GIFT-Eval MASE[0.5]).")
    for label, value in QUOTED_WQL:
        lines.append(f"  WQL {value:.3f}  {label}")
    return lines


def _calibration(section: dict[str, Any]) -> list[str]:
    lines = [
        f"calibration of the product path on the hold-out ({section['series']:,} series it "
        f"forecast, {section['levels'][0]['cells']:,} observed cells): calibrated when "
        f"share(y<q) - {section['tolerance']} <= tau <= share(y<=q) + {section['tolerance']}",
        f"  {'tau':>5} {'share y<q':>10} {'share y<=q':>11}",
    ]
    for row in section["levels"]:
        lines.append(
            f"  {row['level']:>5.2f} {row['share_below']:>10.3f} {row['share_at_or_below']:>11.3f}"
            f"  {row['status']}"
        )
    return lines


def _sparse(section: dict[str, Any]) -> list[str]:
    wql = "n/a" if section["wql"] is None else f"{section['wql']:.4f}"
    full = section["wql_in_full_panel_run"]
    mix = ", ".join(f"{k} {v}" for k, v in section["selected_models"].items())
    return [
        f"sparse panel ({section['rule']}): {section['series']:,} series, "
        f"{section['zero_share_training']:.1%} zero training months, {section['series_fading']:,} "
        f"fading, {section['series_discontinued_in_holdout']:,} discontinued in the hold-out, "
        f"hold-out demand {section['holdout_demand']:,.0f} in "
        f"{section['series_with_holdout_demand']:,} series",
        f"  product path on this panel alone: WQL {wql} vs zero forecast "
        f"{section['wql_zero']:.4f} in {section['seconds']:.1f} s  {section['status']}"
        + ("" if full is None else f"  (same series in the full-panel run: {full:.4f})"),
        f"  selected models: {mix}",
    ]


def _scale(section: dict[str, Any]) -> list[str]:
    lines = [
        "scale curve: product path on car-parts series resampled with new ids (monthly, 30-day "
        "lead times)",
        f"  {'size':>7} {'series':>7} {'seconds':>9} {'series/s':>9} {'growth':>7}  load before",
    ]
    for p in section["points"]:
        lines.append(
            f"  {p['size']:>7,} {p['series']:>7,} {p['seconds']:>9.1f} "
            f"{p['series_per_second']:>9.1f} {p['growth']:>7.3f}  {p['load_average_before']}"
        )
    lines.append("  growth = seconds per series / seconds per series at the smallest size")
    return lines


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if results.get("rows"):
        lines += _product(results)
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
    if results.get("calibration"):
        lines.append("")
        lines += _calibration(results["calibration"])
    if results.get("sparse"):
        lines.append("")
        lines += _sparse(results["sparse"])
    if results.get("scale"):
        lines.append("")
        lines += _scale(results["scale"])
    weekly = results.get("weekly")
    if weekly:
        lines.append("")
        sizes = weekly["sizes"]
        lines.append(
            f"weekly (nova forecast --bucket week, bench/api's shape: {sizes['items']:,} items, "
            f"{sizes['sites']} sites, {sizes['days']:,} days, {weekly['demand_rows']:,} demand "
            f"rows): {weekly['series']:,} series ({weekly['items']:,} items) in "
            f"{weekly['seconds']:.1f} s, {weekly['series_per_second']:.1f} series/s; "
            f"{weekly['seconds_for_target_series']:.0f} s for 40,000 at that rate; load before "
            f"{weekly['load_average_before']}"
        )
        if weekly.get("stage_seconds"):
            stages = ", ".join(f"{k} {v}" for k, v in weekly["stage_seconds"].items())
            lines.append(f"  stage seconds: {stages}")
    if results.get("inventory"):
        lines.append("")
        lines += inventory.render(results["inventory"])
    if results.get("targets"):
        lines.append("")
        for target in results["targets"]:
            value = target["value"]
            if value is None:
                text = "n/a"
            elif isinstance(value, int):
                text = f"{value:,}"
            else:
                text = f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
            lines.append(
                f"{target['label']:44} {text:>9}   target {target['target']:<26} {target['status']}"
            )
    machine = results.get("machine") or {}
    if machine:
        lines.append("")
        lines.append(
            f"load average at start {machine.get('load_average_at_start')}, at end "
            f"{results.get('load_average_at_end')} ({machine.get('cpus')} CPUs)"
        )
    for model, error in (results.get("errors") or {}).items():
        lines.append(f"ERROR {model}: {error}")
    return "\n".join(lines)
