"""The data-quality HTML report: self-contained, escaped, and showing what the build found."""

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pyarrow as pa
import pytest

from services.transformer.quality import (
    AcceptedValues,
    HistogramBin,
    InRange,
    NotNull,
    RowCountChange,
    evaluate,
    profile,
)
from services.transformer.quality_report import histogram_svg, render_html_report

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
T = "gold.fact_demand"
HOSTILE = "<script>alert('x')</script>"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}


def hostile_table():
    return pa.table(
        {
            "item_code": ["A", HOSTILE, None, "B"],
            "qty": pa.array([1.0, 2.0, 3.0, -4.0], pa.float64()),
            "day": pa.array(
                [date(2025, 3, 1), date(2025, 3, 2), None, date(2025, 3, 3)], pa.date32()
            ),
            f"col {HOSTILE}": ["x", "y", "z", "w"],
        }
    )


def report(*, blocked=True, lineage=None):
    table = hostile_table()
    checks = [
        NotNull("item_code", name="item_code_present", table=T),
        AcceptedValues(
            "item_code",
            ("A", "B"),
            name="known_items",
            table=T,
            severity="warn",
            description=f"only catalogue items {HOSTILE}",
        ),
        InRange("qty", min=0, name="qty_not_negative", table=T, severity="error"),
        RowCountChange(max_drop_ratio=0.5, name="row_count_stable", table=T),
    ]
    if not blocked:
        checks = [c for c in checks if c.severity == "warn"]
    results = evaluate(checks, {T: table}, previous_row_counts={T: 4}, now=NOW)
    return render_html_report(
        build_id="build-42",
        created_at=NOW,
        results=results,
        profiles=profile({T: table}),
        lineage=lineage
        if lineage is not None
        else {
            "bronze_files": [f"erp/{HOSTILE}.xlsx", "erp/b.xlsx"],
            "table_versions": {T: 7, "silver.erp_requisitions": {"version": 3, "rows": 4}},
            "note": None,
        },
    )


class TagBalance(HTMLParser):
    """Fails on a closing tag that does not match the open one, or on tags left open."""

    def __init__(self):
        super().__init__()
        self.stack = []
        self.tags = []
        self.errors = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def parse(page):
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    return parser


def test_report_shows_build_gate_and_every_check():
    page = report()
    assert "build-42" in page
    assert "2025-03-07 12:00:00+00:00" in page
    for name in ("item_code_present", "known_items", "qty_not_negative", "row_count_stable"):
        assert name in page
    assert "Blocked: an error-severity check failed." in page
    # The gate comes before the checks table.
    assert page.index('id="gate"') < page.index('id="checks"') < page.index('id="tables"')
    assert page.index('id="tables"') < page.index('id="lineage"')
    assert "1 of 4 rows have a null in item_code" in page
    assert "4 checks: 1 passed, 2 failed errors, 1 failed warning" in page


def test_failed_errors_are_listed_first():
    page = report()
    checks = page[page.index('id="checks"') :]
    order = [
        checks.index(name)
        for name in ("item_code_present", "qty_not_negative", "known_items", "row_count_stable")
    ]
    assert order == sorted(order)


def test_report_without_failed_errors_says_passed():
    page = report(blocked=False)
    assert "Passed: no error-severity check failed." in page
    assert "Blocked" not in page
    assert 'class="gate open"' in page


def test_hostile_values_are_escaped_everywhere():
    page = report()
    assert "<script" not in page.lower()
    assert "alert('x')" not in page
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    # In sample rows, top values, a column name, a description and the lineage.
    assert page.count(escaped) >= 5
    assert f"col {escaped}" in page
    assert f"erp/{escaped}.xlsx" in page
    assert f"only catalogue items {escaped}" in page


def test_hostile_check_names_and_build_ids_are_escaped():
    results = evaluate(
        [NotNull("k", name=f"check {HOSTILE}", table=f"gold.{HOSTILE}")],
        {f"gold.{HOSTILE}": pa.table({"k": [None]})},
        previous_row_counts={},
        now=NOW,
    )
    page = render_html_report(
        build_id=f'"><{HOSTILE}',
        created_at=NOW,
        results=results,
        profiles={},
        lineage={HOSTILE: {HOSTILE: [HOSTILE]}},
    )
    assert "<script" not in page.lower()
    assert "&quot;&gt;&lt;&lt;script&gt;" in page
    assert not parse(page).errors


def test_report_is_self_contained():
    page = report()
    parser = parse(page)
    for tag, attrs in parser.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed"}
        for attribute in ("src", "href", "action", "srcset"):
            value = attrs.get(attribute)
            assert value is None or value.startswith("#"), (tag, attrs)
    assert not re.search(r"https?://", page)
    assert "url(" not in page
    assert "@import" not in page
    assert "<style>" in page  # inline CSS
    assert "default-src 'none'" in page  # and nothing else may load or run


def test_report_structure_is_well_formed():
    page = report()
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert page.rstrip().endswith("</html>")
    parser = parse(page)
    assert parser.errors == []
    assert parser.stack == []
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("html") == tags.count("head") == tags.count("body") == 1
    head = page[: page.index("</head>")]
    assert head.count("<title>") == 1
    assert '<meta charset="utf-8">' in page


def test_profiles_render_counts_rates_ranges_histograms_and_top_values():
    page = report()
    tables = page[page.index('id="tables"') : page.index('id="lineage"')]
    assert "<code>gold.fact_demand</code>" in tables
    assert "4 rows" in tables
    assert "25.0%" in tables  # item_code and day null rate
    assert "2025-03-01" in tables and "2025-03-03" in tables  # day min and max
    assert "-4.0" in tables and "3.0" in tables  # qty min and max
    assert tables.count('<svg class="hist"') == 1  # qty is the only numeric column
    svg = tables[tables.index("<svg") : tables.index("</svg>")]
    assert svg.count("<rect") == 10
    assert "<li>A <span" in tables  # top values of item_code


def test_lineage_renders_nested_keys_and_values():
    page = report()
    lineage = page[page.index('id="lineage"') :]
    assert "<dt>bronze_files</dt>" in lineage
    assert "<li>erp/b.xlsx</li>" in lineage
    assert "<dt>silver.erp_requisitions</dt><dd><dl" in lineage
    assert "<dt>version</dt><dd>3</dd>" in lineage
    assert '<dt>note</dt><dd><span class="null">null</span></dd>' in lineage


def test_empty_lineage_profiles_and_results():
    page = render_html_report(build_id="b", created_at=NOW, results=[], profiles={}, lineage={})
    assert "No checks ran." in page
    assert "No lineage recorded." in page
    assert "Passed" in page
    assert not parse(page).errors


def test_histogram_bars_follow_counts():
    svg = histogram_svg(
        [HistogramBin(0, 1, 10), HistogramBin(1, 2, 0), HistogramBin(2, 3, 5)], "qty"
    )
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"><title>', svg)]
    assert heights == [32.0, 0.0, 16.0]
    assert "<title>0 – 1: 10</title>" in svg
    assert histogram_svg([], "qty") == '<span class="null">no finite values</span>'


def test_tiny_bins_stay_visible():
    svg = histogram_svg([HistogramBin(0, 1, 1_000_000), HistogramBin(1, 2, 1)], "qty")
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"><title>', svg)]
    assert heights == [32.0, pytest.approx(1.0)]


def test_long_values_are_cut_in_cells():
    table = pa.table({"memo": ["m" * 150, None]})
    results = evaluate(
        [AcceptedValues("memo", ("short",), name="memo_short", table=T)],
        {T: table},
        previous_row_counts={},
        now=NOW,
    )
    page = render_html_report(
        build_id="b", created_at=NOW, results=results, profiles=profile({T: table}), lineage={}
    )
    assert "m" * 80 + "…</span>" in page  # the failing row's sample cell
    assert "m" * 40 + "…</span>" in page  # the top value
    assert "m" * 81 + "…" not in page
