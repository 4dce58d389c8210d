"""Data-quality checks, gate, dq_results rows and profiles on tiny hand-made Arrow tables."""

import json
import time
from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from services.transformer.checks import GOLD_CHECKS
from services.transformer.quality import (
    DQ_RESULTS_SCHEMA,
    AcceptedValues,
    Check,
    CheckResult,
    Freshness,
    HistogramBin,
    InRange,
    NotNull,
    Relationship,
    RowCountChange,
    TopValue,
    UniqueKey,
    evaluate,
    gate,
    json_safe,
    profile,
    quote_ident,
    results_table,
)

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
T = "gold.fact_demand"
DIM = "gold.dim_item"


def run(check, tables, *, previous=None, now=NOW):
    [result] = evaluate([check], tables, previous_row_counts=previous or {}, now=now)
    return result


def demand(rows, schema=None):
    return pa.Table.from_pylist(rows, schema=schema)


# --- declarations -------------------------------------------------------------------------------


def test_checks_are_frozen_and_carry_their_declaration():
    check = NotNull(("item_code",), name="item_present", table=T, description="every line")
    assert check.kind == "not_null"
    assert check.severity == "error"
    assert check.description == "every line"
    with pytest.raises(FrozenInstanceError):
        check.severity = "warn"


def test_a_bare_string_is_one_column_and_lists_become_tuples():
    assert NotNull("item_code", name="n", table=T).columns == ("item_code",)
    assert UniqueKey(["a", "b"], name="u", table=T).columns == ("a", "b")
    rel = Relationship("a", DIM, ["b"], name="r", table=T)
    assert (rel.columns, rel.parent_columns) == (("a",), ("b",))
    assert hash(rel) == hash(Relationship(("a",), DIM, ("b",), name="r", table=T))


@pytest.mark.parametrize(
    "make",
    [
        lambda: NotNull((), name="n", table=T),
        lambda: NotNull(("a", "a"), name="n", table=T),
        lambda: NotNull("a", name="", table=T),
        lambda: NotNull("a", name="n", table=""),
        lambda: NotNull("a", name="n", table=T, severity="fatal"),
        lambda: AcceptedValues("a", (), name="n", table=T),
        lambda: AcceptedValues("a", ("x", None), name="n", table=T),
        lambda: InRange("a", name="n", table=T),
        lambda: InRange("a", min=5, max=1, name="n", table=T),
        lambda: InRange("a", min="a", max=1, name="n", table=T),
        lambda: Relationship(("a", "b"), DIM, ("a",), name="n", table=T),
        lambda: Relationship("a", "", "a", name="n", table=T),
        lambda: Freshness("d", -1, name="n", table=T),
        lambda: Freshness("d", float("nan"), name="n", table=T),
        lambda: RowCountChange(name="n", table=T),
        lambda: RowCountChange(max_drop_ratio=-0.1, name="n", table=T),
    ],
)
def test_impossible_declarations_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_the_base_check_cannot_be_declared():
    with pytest.raises(TypeError):
        Check(name="n", table=T)


def test_two_checks_with_one_name_are_refused():
    table = demand([{"a": 1}])
    checks = [NotNull("a", name="same", table=T), UniqueKey("a", name="same", table=T)]
    with pytest.raises(ValueError, match="same"):
        evaluate(checks, {T: table}, previous_row_counts={}, now=NOW)


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone"):
        evaluate([], {}, previous_row_counts={}, now=datetime(2025, 3, 7, 12))


def test_quote_ident_doubles_quotes():
    assert quote_ident("order") == '"order"'
    assert quote_ident('say "hi"') == '"say ""hi"""'


# --- NotNull -----------------------------------------------------------------------------------


def test_not_null_passes():
    result = run(
        NotNull(("item_code", "qty"), name="nn", table=T),
        {T: demand([{"item_code": "A", "qty": 1}])},
    )
    assert result.passed
    assert (result.failing_rows, result.sample) == (0, [])
    assert result.kind == "not_null"
    assert result.message == "no nulls in item_code, qty"


def test_not_null_counts_rows_with_a_null_in_any_column_and_samples_them():
    table = demand(
        [
            {"item_code": "A", "qty": 1.0, "day": date(2025, 1, 2)},
            {"item_code": None, "qty": 2.0, "day": date(2025, 1, 3)},
            {"item_code": "C", "qty": None, "day": None},
            {"item_code": None, "qty": None, "day": date(2025, 1, 1)},
        ]
    )
    result = run(NotNull(("item_code", "qty"), name="nn", table=T, severity="warn"), {T: table})
    assert not result.passed
    assert result.severity == "warn"
    assert result.failing_rows == 3
    # Ordered by the checked columns (nulls last), then the others; dates as ISO strings.
    assert result.sample == [
        {"item_code": "C", "qty": None, "day": None},
        {"item_code": None, "qty": 2.0, "day": "2025-01-03"},
        {"item_code": None, "qty": None, "day": "2025-01-01"},
    ]
    assert result.message == "3 of 4 rows have a null in item_code, qty"


def test_sample_is_capped_at_five_rows_but_failing_rows_counts_all():
    table = demand([{"k": None, "n": i} for i in range(12)])
    result = run(NotNull("k", name="nn", table=T), {T: table})
    assert result.failing_rows == 12
    assert result.sample == [{"k": None, "n": i} for i in range(5)]


def test_not_null_on_empty_table_passes():
    table = pa.table({"k": pa.array([], pa.string())})
    assert run(NotNull("k", name="nn", table=T), {T: table}).passed


# --- UniqueKey ---------------------------------------------------------------------------------


def test_unique_key_passes_on_a_composite_key():
    table = demand([{"depot": "D1", "item": "A"}, {"depot": "D2", "item": "A"}])
    assert run(UniqueKey(("depot", "item"), name="uk", table=T), {T: table}).passed


def test_unique_key_counts_every_row_of_a_shared_key():
    table = demand(
        [
            {"depot": "D1", "item": "A", "line": 1},
            {"depot": "D1", "item": "B", "line": 2},
            {"depot": "D1", "item": "A", "line": 3},
            {"depot": "D2", "item": "B", "line": 4},
            {"depot": "D1", "item": "A", "line": 5},
            {"depot": "D2", "item": "B", "line": 6},
        ]
    )
    result = run(UniqueKey(("depot", "item"), name="uk", table=T), {T: table})
    assert not result.passed
    assert result.failing_rows == 5  # (D1, A) three times, (D2, B) twice
    assert result.message == "2 keys (depot, item) shared by 5 rows"
    assert result.sample == [
        {"depot": "D1", "item": "A", "line": 1},
        {"depot": "D1", "item": "A", "line": 3},
        {"depot": "D1", "item": "A", "line": 5},
        {"depot": "D2", "item": "B", "line": 4},
        {"depot": "D2", "item": "B", "line": 6},
    ]


def test_unique_key_does_not_compare_rows_with_a_null_key():
    table = demand(
        [
            {"depot": "D1", "item": None},
            {"depot": "D1", "item": None},
            {"depot": None, "item": None},
            {"depot": None, "item": None},
        ]
    )
    result = run(UniqueKey(("depot", "item"), name="uk", table=T), {T: table})
    assert result.passed
    assert result.failing_rows == 0


# --- AcceptedValues ----------------------------------------------------------------------------


def test_accepted_values_pass_and_nulls_pass():
    table = demand([{"unit": "UN"}, {"unit": "KG"}, {"unit": None}])
    result = run(AcceptedValues("unit", ("UN", "KG", "M"), name="av", table=T), {T: table})
    assert result.passed
    assert result.message == "every unit is an accepted value"


def test_accepted_values_fail_on_exact_mismatch():
    table = demand(
        [
            {"unit": "UN", "row": 1},
            {"unit": "un", "row": 2},
            {"unit": None, "row": 3},
            {"unit": "CX", "row": 4},
            {"unit": "KG", "row": 5},
        ]
    )
    result = run(AcceptedValues("unit", ("UN", "KG"), name="av", table=T), {T: table})
    assert not result.passed
    assert result.failing_rows == 2
    assert result.sample == [{"unit": "CX", "row": 4}, {"unit": "un", "row": 2}]
    assert result.message == "2 rows with unit not among the accepted values (UN, KG)"


def test_accepted_values_are_parameters_not_sql():
    hostile = "x') OR 1=1 --"
    table = demand([{"unit": hostile}, {"unit": "UN"}])
    result = run(AcceptedValues("unit", ("UN",), name="av", table=T), {T: table})
    assert result.failing_rows == 1
    assert result.sample == [{"unit": hostile}]
    assert run(AcceptedValues("unit", (hostile, "UN"), name="av", table=T), {T: table}).passed


def test_accepted_integer_values():
    table = demand([{"lead_days": 7}, {"lead_days": 14}, {"lead_days": 9}])
    result = run(AcceptedValues("lead_days", (7, 14), name="av", table=T), {T: table})
    assert (result.passed, result.failing_rows, result.sample) == (False, 1, [{"lead_days": 9}])


# --- InRange -----------------------------------------------------------------------------------


def test_in_range_is_inclusive_and_nulls_pass():
    table = demand([{"qty": 0.0}, {"qty": 10.0}, {"qty": 5.5}, {"qty": None}])
    result = run(InRange("qty", min=0, max=10, name="ir", table=T), {T: table})
    assert result.passed
    assert result.message == "every qty within [0, 10]"


def test_in_range_fails_below_and_above():
    table = demand([{"qty": -1.0, "n": 1}, {"qty": 10.5, "n": 2}, {"qty": 3.0, "n": 3}])
    result = run(InRange("qty", min=0, max=10, name="ir", table=T), {T: table})
    assert not result.passed
    assert result.failing_rows == 2
    assert result.sample == [{"qty": -1.0, "n": 1}, {"qty": 10.5, "n": 2}]
    assert result.message == "2 rows with qty outside [0, 10]"


def test_in_range_with_one_bound():
    table = demand([{"qty": -1}, {"qty": 10**9}])
    only_min = run(InRange("qty", min=0, name="ir", table=T), {T: table})
    assert (only_min.failing_rows, only_min.sample) == (1, [{"qty": -1}])
    assert only_min.message == "1 row with qty outside [0, ∞]"
    only_max = run(InRange("qty", max=100, name="ir", table=T), {T: table})
    assert (only_max.failing_rows, only_max.sample) == (1, [{"qty": 10**9}])


def test_nan_is_outside_every_range():
    table = demand([{"qty": float("nan")}, {"qty": 1.0}])
    result = run(InRange("qty", min=0, name="ir", table=T), {T: table})
    assert result.failing_rows == 1
    assert result.sample == [{"qty": "NaN"}]


def test_in_range_on_dates():
    table = demand([{"day": date(2024, 12, 31)}, {"day": date(2025, 1, 1)}, {"day": None}])
    check = InRange("day", min=date(2025, 1, 1), max=date(2025, 12, 31), name="ir", table=T)
    result = run(check, {T: table})
    assert (result.failing_rows, result.sample) == (1, [{"day": "2024-12-31"}])


# --- Relationship ------------------------------------------------------------------------------


DIM_ITEMS = demand([{"item_code": "A", "depot": "D1"}, {"item_code": "B", "depot": "D1"}])


def test_relationship_passes_and_null_keys_pass():
    facts = demand([{"item": "A"}, {"item": "B"}, {"item": "A"}, {"item": None}])
    check = Relationship("item", DIM, "item_code", name="rel", table=T)
    result = run(check, {T: facts, DIM: DIM_ITEMS})
    assert result.passed
    assert result.message == "every (item) found in gold.dim_item (item_code)"


def test_relationship_fails_on_orphan_keys():
    facts = demand(
        [
            {"item": "A", "qty": 1},
            {"item": "Z", "qty": 2},
            {"item": "a", "qty": 3},
            {"item": "Z", "qty": 4},
        ]
    )
    check = Relationship("item", DIM, "item_code", name="rel", table=T)
    result = run(check, {T: facts, DIM: DIM_ITEMS})
    assert not result.passed
    assert result.failing_rows == 3
    assert result.sample == [
        {"item": "Z", "qty": 2},
        {"item": "Z", "qty": 4},
        {"item": "a", "qty": 3},
    ]
    assert result.message == "3 rows with a (item) not found in gold.dim_item (item_code)"


def test_relationship_on_a_composite_key_with_a_partly_null_key():
    facts = demand(
        [
            {"item": "A", "depot": "D1"},
            {"item": "A", "depot": "D2"},  # the item exists, but not at this depot
            {"item": "Q", "depot": None},  # not fully known: passes
        ]
    )
    check = Relationship(("item", "depot"), DIM, ("item_code", "depot"), name="rel", table=T)
    result = run(check, {T: facts, DIM: DIM_ITEMS})
    assert (result.failing_rows, result.sample) == (1, [{"item": "A", "depot": "D2"}])


def test_relationship_with_an_absent_parent_fails_clearly():
    facts = demand([{"item": "A"}])
    check = Relationship("item", DIM, "item_code", name="rel", table=T, severity="warn")
    result = run(check, {T: facts})
    assert not result.passed
    assert result.severity == "warn"
    assert result.message == "table gold.dim_item is absent from this evaluation"


def test_relationship_to_itself():
    items = demand(
        [
            {"item": "A", "replaces": None},
            {"item": "B", "replaces": "A"},
            {"item": "C", "replaces": "X"},
        ]
    )
    check = Relationship("replaces", T, "item", name="rel", table=T)
    result = run(check, {T: items})
    assert (result.failing_rows, result.sample) == (1, [{"item": "C", "replaces": "X"}])


# --- Freshness ---------------------------------------------------------------------------------


def test_freshness_on_a_date_column_counts_calendar_days():
    table = demand([{"day": date(2025, 3, 1)}, {"day": date(2025, 3, 4)}, {"day": None}])
    fresh = run(Freshness("day", 3, name="fr", table=T), {T: table})
    assert fresh.passed  # 2025-03-04 is three days before 2025-03-07
    assert fresh.message == "latest day 2025-03-04 is 3.0 days old (limit 3 days)"
    stale = run(Freshness("day", 2, name="fr", table=T), {T: table})
    assert not stale.passed
    assert (stale.failing_rows, stale.sample) == (0, [])


def test_freshness_uses_the_injected_now_not_the_clock():
    table = demand([{"day": date(2025, 3, 4)}])
    check = Freshness("day", 3, name="fr", table=T)
    assert run(check, {T: table}, now=datetime(2025, 3, 7, 23, 59, tzinfo=UTC)).passed
    assert not run(check, {T: table}, now=datetime(2025, 3, 8, 0, 0, tzinfo=UTC)).passed
    # The day is taken in UTC: 22:00 in Brasília on the 7th is already the 8th in UTC.
    brasilia = timezone(timedelta(hours=-3))
    assert not run(check, {T: table}, now=datetime(2025, 3, 7, 22, tzinfo=brasilia)).passed


def test_freshness_on_timestamps_aware_and_naive():
    aware = pa.table(
        {"at": pa.array([datetime(2025, 3, 6, 12, tzinfo=UTC)], pa.timestamp("us", "UTC"))}
    )
    naive = pa.table({"at": pa.array([datetime(2025, 3, 6, 12)], pa.timestamp("us"))})
    for table in (aware, naive):
        exactly_one_day = run(Freshness("at", 1, name="fr", table=T), {T: table})
        assert exactly_one_day.passed
        # A naive timestamp is read as UTC, and the message says so.
        assert exactly_one_day.message == (
            "latest at 2025-03-06T12:00:00+00:00 is 1.0 days old (limit 1 day)"
        )
        later = NOW + timedelta(seconds=1)
        assert not run(Freshness("at", 1, name="fr", table=T), {T: table}, now=later).passed


def test_freshness_fails_without_values_or_on_a_non_temporal_column():
    empty = pa.table({"day": pa.array([None, None], pa.date32()), "code": ["a", "b"]})
    no_values = run(Freshness("day", 30, name="fr", table=T), {T: empty})
    assert not no_values.passed
    assert no_values.message == "day has no values (limit 30 days)"
    text = run(Freshness("code", 30, name="fr", table=T), {T: empty})
    assert not text.passed
    assert text.message == "code is string, not a date or timestamp column"


# --- RowCountChange ----------------------------------------------------------------------------


def rows(n):
    return pa.table({"k": pa.array(range(n), pa.int64())})


def test_row_count_change_first_build_passes():
    check = RowCountChange(max_drop_ratio=0.1, max_growth_ratio=0.1, name="rc", table=T)
    result = run(check, {T: rows(3)}, previous={"gold.other": 100})
    assert result.passed
    assert result.message == "first version: 3 rows, nothing to compare"


def test_row_count_change_drop_within_and_beyond_threshold():
    check = RowCountChange(max_drop_ratio=0.5, name="rc", table=T)
    at_limit = run(check, {T: rows(50)}, previous={T: 100})
    assert at_limit.passed
    assert at_limit.message == "100 → 50 rows (-50.0%)"
    beyond = run(check, {T: rows(49)}, previous={T: 100})
    assert not beyond.passed
    assert beyond.failing_rows == 0
    assert beyond.message == "100 → 49 rows (-51.0%): drop above 50.0%"
    # Only drops were limited: any growth passes.
    assert run(check, {T: rows(1000)}, previous={T: 100}).passed


def test_row_count_change_growth_and_empty_previous():
    check = RowCountChange(max_growth_ratio=1.0, name="rc", table=T)
    assert run(check, {T: rows(200)}, previous={T: 100}).passed
    grown = run(check, {T: rows(201)}, previous={T: 100})
    assert not grown.passed
    assert grown.message == "100 → 201 rows (+101.0%): growth above 100.0%"
    assert run(check, {T: rows(0)}, previous={T: 100}).passed  # drops not limited
    from_empty = run(check, {T: rows(5)}, previous={T: 0})
    assert from_empty.passed
    assert from_empty.message == "previous version was empty; 5 rows now"


# --- identifiers, absent tables and columns, errors --------------------------------------------


def test_every_check_quotes_awkward_identifiers():
    awkward = "gold.weird table"
    parent = 'gold."parent"'
    table = demand(
        [
            {"order": 1, "unit price": 5.0, 'say "hi"': "a", "select": date(2025, 3, 7)},
            {"order": 1, "unit price": -1.0, 'say "hi"': "b", "select": date(2025, 3, 6)},
            {"order": None, "unit price": 2.0, 'say "hi"': None, "select": None},
        ]
    )
    parents = demand([{"from": 2}])
    checks = [
        NotNull(("order", "unit price"), name="nn", table=awkward),
        UniqueKey(("order",), name="uk", table=awkward),
        AcceptedValues('say "hi"', ("a",), name="av", table=awkward),
        InRange("unit price", min=0, name="ir", table=awkward),
        Relationship("order", parent, "from", name="rel", table=awkward),
        Freshness("select", 0, name="fr", table=awkward),
        RowCountChange(max_drop_ratio=0.0, name="rc", table=awkward),
    ]
    results = {
        r.check: r
        for r in evaluate(
            checks, {awkward: table, parent: parents}, previous_row_counts={awkward: 3}, now=NOW
        )
    }
    row_1 = {"order": 1, "unit price": -1.0, 'say "hi"': "b", "select": "2025-03-06"}
    row_2 = {"order": 1, "unit price": 5.0, 'say "hi"': "a", "select": "2025-03-07"}
    row_null = {"order": None, "unit price": 2.0, 'say "hi"': None, "select": None}
    assert {name: (r.passed, r.failing_rows) for name, r in results.items()} == {
        "nn": (False, 1),
        "uk": (False, 2),
        "av": (False, 1),
        "ir": (False, 1),
        "rel": (False, 2),
        "fr": (True, 0),
        "rc": (True, 0),
    }
    assert results["nn"].sample == [row_null]
    assert results["uk"].sample == [row_1, row_2]
    assert results["av"].sample == [row_1]
    assert results["ir"].sample == [row_1]
    assert results["rel"].sample == [row_1, row_2]


def test_check_on_an_absent_table_fails_with_its_declared_severity():
    results = evaluate(
        [
            NotNull("k", name="missing_error", table="gold.nope"),
            RowCountChange(
                max_drop_ratio=0.1, name="missing_warn", table="gold.nope", severity="warn"
            ),
        ],
        {T: rows(1)},
        previous_row_counts={},
        now=NOW,
    )
    assert [(r.passed, r.severity, r.failing_rows, r.sample) for r in results] == [
        (False, "error", 0, []),
        (False, "warn", 0, []),
    ]
    assert results[0].message == "table gold.nope is absent from this evaluation"


def test_check_on_an_absent_column_fails_clearly():
    result = run(NotNull(("k", "qty"), name="nn", table=T), {T: rows(1)})
    assert not result.passed
    assert result.message == "gold.fact_demand has no column qty"


def test_a_check_duckdb_cannot_evaluate_fails_alone():
    table = demand([{"unit": "UN"}])
    results = evaluate(
        [
            AcceptedValues("unit", (1, 2), name="wrong_type", table=T),
            NotNull("unit", name="fine", table=T),
        ],
        {T: table},
        previous_row_counts={},
        now=NOW,
    )
    assert not results[0].passed
    assert results[0].message.startswith("could not evaluate: Conversion Error")
    assert results[1].passed


def test_checks_read_arrow_datasets_too():
    dataset = pads.dataset(demand([{"k": 1}, {"k": 1}]))
    result = run(UniqueKey("k", name="uk", table=T), {T: dataset})
    assert (result.failing_rows, result.sample) == (2, [{"k": 1}, {"k": 1}])


def test_results_keep_declaration_order_and_carry_now():
    brasilia = timezone(timedelta(hours=-3))
    now = datetime(2025, 3, 7, 9, tzinfo=brasilia)
    checks = [
        NotNull("k", name="b", table=T, description="keys present"),
        UniqueKey("k", name="a", table=T),
    ]
    results = evaluate(checks, {T: rows(2)}, previous_row_counts={}, now=now)
    assert [r.check for r in results] == ["b", "a"]
    assert [r.kind for r in results] == ["not_null", "unique_key"]
    assert results[0].description == "keys present"
    assert all(r.evaluated_at == now and r.evaluated_at.tzinfo == UTC for r in results)


# --- JSON-safe samples -------------------------------------------------------------------------


def test_samples_are_json_safe():
    table = pa.table(
        {
            "k": pa.array([None], pa.string()),
            "day": pa.array([date(2025, 1, 2)], pa.date32()),
            "at": pa.array([datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)], pa.timestamp("us", "UTC")),
            "amount": pa.array([Decimal("12.50")], pa.decimal128(10, 2)),
            "ratio": pa.array([float("inf")], pa.float64()),
            "raw": pa.array([b"\x00\xff"], pa.binary()),
            "tags": pa.array([["a", "b"]], pa.list_(pa.string())),
            "memo": pa.array(["x" * 300], pa.string()),
        }
    )
    result = run(NotNull("k", name="nn", table=T), {T: table})
    assert result.sample == [
        {
            "k": None,
            "day": "2025-01-02",
            "at": "2025-01-02T03:04:05+00:00",
            "amount": "12.50",
            "ratio": "Infinity",
            "raw": "00ff",
            "tags": ["a", "b"],
            "memo": "x" * 200 + "…",
        }
    ]
    json.dumps(result.sample, allow_nan=False)


def test_json_safe_converts_nested_values():
    assert json_safe({"a": [date(2025, 1, 1), float("nan")], 1: -float("inf")}) == {
        "a": ["2025-01-01", "NaN"],
        "1": "-Infinity",
    }


# --- gate and dq_results -----------------------------------------------------------------------


def result(name, *, passed, severity="error"):
    return CheckResult(
        check=name,
        table=T,
        kind="not_null",
        severity=severity,
        passed=passed,
        failing_rows=0 if passed else 1,
        sample=[] if passed else [{"k": None, "day": "2025-01-01"}],
        message="m",
        evaluated_at=NOW,
    )


def test_gate_blocks_on_a_failed_error_only():
    ok = result("ok", passed=True)
    warned = result("warned", passed=False, severity="warn")
    failed = result("failed", passed=False)
    passed_warn = result("passed_warn", passed=True, severity="warn")

    open_gate = gate([ok, warned, passed_warn])
    assert not open_gate.blocked
    assert open_gate.errors == []
    assert open_gate.warnings == [warned]

    closed = gate([ok, warned, failed])
    assert closed.blocked
    assert closed.errors == [failed]
    assert closed.warnings == [warned]

    assert not gate([]).blocked


def test_gate_over_real_evaluation():
    table = demand([{"k": None}])
    results = evaluate(
        [
            NotNull("k", name="soft", table=T, severity="warn"),
            NotNull("k", name="hard", table=T),
        ],
        {T: table},
        previous_row_counts={},
        now=NOW,
    )
    decision = gate(results)
    assert decision.blocked
    assert [r.check for r in decision.errors] == ["hard"]
    assert [r.check for r in decision.warnings] == ["soft"]


def test_results_table_has_the_fixed_schema():
    table = results_table([result("ok", passed=True), result("failed", passed=False)], "b-1")
    assert table.schema.equals(DQ_RESULTS_SCHEMA)
    assert table.schema.names == [
        "build_id",
        "check",
        "table",
        "kind",
        "severity",
        "passed",
        "failing_rows",
        "sample_json",
        "message",
        "evaluated_at",
    ]
    assert table.schema.field("evaluated_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("failing_rows").type == pa.int64()
    rows_ = table.to_pylist()
    assert [r["check"] for r in rows_] == ["ok", "failed"]
    assert {r["build_id"] for r in rows_} == {"b-1"}
    assert [r["passed"] for r in rows_] == [True, False]
    assert json.loads(rows_[0]["sample_json"]) == []
    assert json.loads(rows_[1]["sample_json"]) == [{"k": None, "day": "2025-01-01"}]
    assert rows_[1]["evaluated_at"] == NOW


def test_results_table_of_no_results_keeps_the_schema():
    table = results_table([], "b-1")
    assert table.num_rows == 0
    assert table.schema.equals(DQ_RESULTS_SCHEMA)


# --- profile -----------------------------------------------------------------------------------


def small_table():
    return pa.table(
        {
            "qty": pa.array([0.0, 1.0, 2.5, 10.0, None, float("nan")], pa.float64()),
            "lines": pa.array([1, 1, 2, 3, 3, 3], pa.int64()),
            "day": pa.array(
                [date(2025, 1, 5), None, date(2025, 1, 1), None, date(2025, 2, 1), None],
                pa.date32(),
            ),
            "depot": pa.array(["D2", "D1", None, "D2", "D1", "<D3>"], pa.string()),
            "order": pa.array([None] * 6, pa.string()),
            "ok": pa.array([True, False, True, None, True, True], pa.bool_()),
        }
    )


def test_profile_numbers_checked_by_hand():
    [(name, p)] = profile({T: small_table()}).items()
    assert name == T
    assert p.table == T
    assert p.row_count == 6
    assert [c.name for c in p.columns] == ["qty", "lines", "day", "depot", "order", "ok"]

    qty = p.column("qty")
    assert (qty.type, qty.null_count, qty.distinct_count) == ("double", 1, 5)  # NaN is a value
    assert qty.null_rate == pytest.approx(1 / 6)
    assert qty.distinct_exact
    assert (qty.min, qty.max) == (0.0, 10.0)  # NaN left out of the range
    assert qty.histogram == [
        HistogramBin(0.0, 1.0, 1),
        HistogramBin(1.0, 2.0, 1),
        HistogramBin(2.0, 3.0, 1),
        *[HistogramBin(float(i), float(i + 1), 0) for i in range(3, 9)],
        HistogramBin(9.0, 10.0, 1),
    ]
    assert qty.top_values is None

    lines = p.column("lines")
    assert (lines.null_count, lines.null_rate, lines.distinct_count) == (0, 0.0, 3)
    assert (lines.min, lines.max) == (1, 3)
    assert [b.count for b in lines.histogram] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 3]
    assert lines.histogram[0].lower == 1.0
    assert lines.histogram[-1].upper == 3.0
    assert lines.histogram[5].lower == pytest.approx(2.0)

    day = p.column("day")
    assert (day.type, day.null_count, day.null_rate, day.distinct_count) == (
        "date32[day]",
        3,
        0.5,
        3,
    )
    assert (day.min, day.max) == ("2025-01-01", "2025-02-01")
    assert (day.histogram, day.top_values) == (None, None)

    depot = p.column("depot")
    assert (depot.null_count, depot.distinct_count, depot.min, depot.max) == (1, 3, None, None)
    assert depot.histogram is None
    assert depot.top_values == [TopValue("D1", 2), TopValue("D2", 2), TopValue("<D3>", 1)]

    order = p.column("order")
    assert (order.null_count, order.null_rate, order.distinct_count) == (6, 1.0, 0)
    assert order.top_values == []

    ok = p.column("ok")
    assert ok.top_values == [TopValue(True, 4), TopValue(False, 1)]


def test_profile_single_value_and_no_finite_values():
    table = pa.table(
        {
            "same": pa.array([7, 7, 7], pa.int32()),
            "nan_only": pa.array([float("nan"), None, float("inf")], pa.float64()),
            "amount": pa.array([Decimal("1.50"), Decimal("3.50"), None], pa.decimal128(9, 2)),
        }
    )
    p = profile({T: table})[T]
    assert p.column("same").histogram == [HistogramBin(7.0, 7.0, 3)]
    nan_only = p.column("nan_only")
    assert (nan_only.min, nan_only.max, nan_only.histogram) == (None, None, [])
    amount = p.column("amount")
    assert (amount.min, amount.max) == ("1.50", "3.50")
    assert [b.count for b in amount.histogram] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]


def test_profile_top_values_keep_five_most_frequent_ties_by_value():
    values = ["F"] * 1 + ["E"] * 2 + ["D"] * 2 + ["C"] * 3 + ["B"] * 3 + ["A"] * 4
    p = profile({T: pa.table({"v": values})})[T]
    assert p.column("v").top_values == [
        TopValue("A", 4),
        TopValue("B", 3),
        TopValue("C", 3),
        TopValue("D", 2),
        TopValue("E", 2),
    ]


def test_profile_empty_table_and_several_tables():
    empty = pa.table({"k": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    profiles = profile({"gold.empty": empty, T: small_table()})
    assert list(profiles) == ["gold.empty", T]
    p = profiles["gold.empty"]
    assert p.row_count == 0
    k = p.column("k")
    assert (k.null_count, k.null_rate, k.distinct_count, k.min, k.histogram) == (
        0,
        0.0,
        0,
        None,
        [],
    )
    assert p.column("s").top_values == []


def test_profile_nested_columns_get_null_counts_only():
    table = pa.table({"tags": pa.array([["a"], None, []], pa.list_(pa.string()))})
    tags = profile({T: table})[T].column("tags")
    assert (tags.null_count, tags.distinct_count, tags.distinct_exact) == (1, None, False)
    assert (tags.min, tags.histogram, tags.top_values) == (None, None, None)


def test_profile_estimates_distinct_counts_above_the_threshold():
    table = pa.table({"k": pa.array(range(5000), pa.int64())})
    exact = profile({T: table})[T].column("k")
    assert (exact.distinct_count, exact.distinct_exact) == (5000, True)
    estimate = profile({T: table}, exact_distinct_max_rows=100)[T].column("k")
    assert not estimate.distinct_exact
    assert estimate.distinct_count == pytest.approx(5000, rel=0.1)


def test_profile_reads_datasets():
    p = profile({T: pads.dataset(small_table())})[T]
    assert p.row_count == 6
    assert p.column("depot").top_values[0] == TopValue("D1", 2)


@pytest.mark.slow
def test_profile_of_five_million_rows_is_fast():
    n = 5_000_000
    ints = pa.array(range(n), pa.int64())
    uniform = pc.random(n, initializer=1)
    table = pa.table(
        {
            "id": ints,
            "qty": pc.multiply(uniform, 100.0),
            "price": pc.random(n, initializer=2),
            "lines": pc.cast(pc.floor(pc.multiply(uniform, 1000.0)), pa.int64()),
            "day": pc.cast(pc.cast(pc.add(pc.divide(ints, 2500), 18000), pa.int32()), pa.date32()),
            "at": pc.cast(pc.multiply(ints, 1_000_000), pa.timestamp("us", tz="UTC")),
            "depot": pc.binary_join_element_wise(
                "D", pc.cast(pc.bit_wise_and(ints, 7), pa.string()), ""
            ),
            "item": pc.binary_join_element_wise(
                "IT", pc.cast(pc.divide(ints, 100), pa.string()), ""
            ),
            "code": pc.binary_join_element_wise("C", pc.cast(ints, pa.string()), ""),
            "flag": pc.greater(uniform, 0.5),
        }
    )
    started = time.perf_counter()
    p = profile({T: table})[T]
    elapsed = time.perf_counter() - started
    print(f"\nprofile of {n:,} rows x {table.num_columns} columns: {elapsed:.2f} s")
    assert p.row_count == n
    assert p.column("depot").distinct_count == pytest.approx(8, abs=1)
    assert sum(b.count for b in p.column("qty").histogram) == n


def test_every_fact_key_is_checked_against_its_dimension():
    """Star-schema integrity: each fact's item, site and supplier key has a relationship check
    to its dimension (the item check was the only one)."""
    checked = {
        (c.table, c.columns, c.parent_table)
        for c in GOLD_CHECKS
        if isinstance(c, Relationship) and c.parent_columns == c.columns
    }
    for fact, key, dimension in [
        ("fact_demand", "item_code", "dim_item"),
        ("fact_demand", "site_code", "dim_site"),
        ("fact_lead_time", "item_code", "dim_item"),
        ("fact_lead_time", "site_code", "dim_site"),
        ("fact_lead_time", "supplier_name", "dim_supplier"),
        ("fact_stock", "site_code", "dim_site"),
        ("fact_stock", "item_code", "dim_item"),
    ]:
        assert (fact, (key,), dimension) in checked, (fact, key)
