"""Ratios against the targets, and the table printed at the end of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.ingest.runner import PARSE_WRITE_KEY


@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    numerator: str  # path key
    denominator: str  # path key
    field: str
    target: float | None  # None: reported, no target
    higher_is_better: bool = True

    def evaluate(self, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
        top, bottom = paths.get(self.numerator), paths.get(self.denominator)
        value = None
        if top and bottom and bottom.get(self.field):
            value = round(top[self.field] / bottom[self.field], 3)
        if value is None:
            status = "n/a"
        elif self.target is None:
            status = "info"
        elif self.higher_is_better:
            status = "PASS" if value >= self.target else "MISS"
        else:
            status = "PASS" if value < self.target else "MISS"
        return {
            "key": self.key,
            "label": self.label,
            "value": value,
            "target": self.target,
            "target_op": None if self.target is None else (">=" if self.higher_is_better else "<"),
            "status": status,
        }


# Speed ratios are baseline seconds / ours seconds: above 1, ours is faster.
RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "csv_ours_vs_pyarrow",
        "CSV speed, ours process() / pyarrow",
        "pyarrow_csv",
        "ours_csv",
        "seconds_best",
        0.8,
    ),
    Ratio(
        "csv_ours_vs_pandas",
        "CSV speed, ours process() / pandas",
        "pandas_csv",
        "ours_csv",
        "seconds_best",
        2.0,
    ),
    Ratio(
        "csv_parse_write_vs_pyarrow",
        "CSV speed, ours parse+write only / pyarrow",
        "pyarrow_csv",
        PARSE_WRITE_KEY,
        "seconds_best",
        None,
    ),
    Ratio(
        "xlsx_ours_vs_openpyxl",
        "workbook speed, ours / openpyxl (old reader)",
        "openpyxl_xlsx",
        "ours_xlsx",
        "seconds_best",
        None,
    ),
    Ratio(
        "xlsx_ours_vs_pandas",
        "workbook speed, ours / pandas read_excel",
        "pandas_xlsx",
        "ours_xlsx",
        "seconds_best",
        None,
    ),
    Ratio(
        "rss_full_vs_quarter",
        "ours CSV peak RSS, full / 1/4 rows",
        "ours_csv",
        "ours_csv_quarter",
        "peak_rss_mb",
        1.5,
        higher_is_better=False,
    ),
)


def evaluate(paths: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    ratios = [r.evaluate(paths) for r in RATIOS]
    full, quarter = paths.get("ours_csv"), paths.get("ours_csv_quarter")
    if full and quarter:
        # Peak minus the interpreter and libraries: the memory the file itself costs.
        working_full = full["peak_rss_mb"] - full["baseline_rss_mb"]
        working_quarter = quarter["peak_rss_mb"] - quarter["baseline_rss_mb"]
        ratios.append(
            {
                "key": "working_rss_full_vs_quarter",
                "label": "ours CSV peak RSS above baseline, full / 1/4 rows",
                "value": round(working_full / working_quarter, 3) if working_quarter > 0 else None,
                "target": None,
                "target_op": None,
                "status": "info",
            }
        )
    return ratios


def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def table(order: list[str], paths: dict[str, dict[str, Any]]) -> str:
    header = (
        f"{'path':<32} {'rows':>10} {'MB':>7} {'s best':>8} {'s median':>9} "
        f"{'rows/s':>11} {'MB/s':>7} {'peak RSS MB':>11}"
    )
    lines = [header, "-" * len(header)]
    for key in order:
        p = paths.get(key)
        if p is None:
            lines.append(f"{key:<32} {'FAILED':>10}")
            continue
        lines.append(
            f"{p['label']:<32} {_number(p['rows']):>10} {_number(p['input_mb'], 1):>7} "
            f"{p['seconds_best']:>8.3f} {p['seconds_median']:>9.3f} "
            f"{_number(p['rows_per_s']):>11} {p['mb_per_s']:>7.1f} {p['peak_rss_mb']:>11.0f}"
        )
    return "\n".join(lines)


def ratio_lines(ratios: list[dict[str, Any]]) -> str:
    lines = []
    for r in ratios:
        value = "n/a" if r["value"] is None else f"{r['value']:.2f}x"
        target = "" if r["target"] is None else f"target {r['target_op']} {r['target']}x"
        status = "" if r["status"] == "info" else r["status"]
        lines.append(f"{r['label']:<52} {value:>8}   {target:<15} {status}")
    return "\n".join(lines)


def breakdown_lines(path: dict[str, Any]) -> str:
    breakdown = dict(path.get("breakdown") or {})
    breakdown.pop("parse_write", None)
    total = path["seconds_best"]
    return "\n".join(
        f"  {step:<24} {seconds:7.3f} s  {100 * seconds / total:5.1f} %"
        for step, seconds in breakdown.items()
    )
