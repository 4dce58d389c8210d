"""Data-quality gates: declarative checks over the tables a build produced, and their profiles.

Checks are frozen dataclasses so that a build can declare them next to its transforms. `evaluate`
runs them with DuckDB over the Arrow tables the build is about to publish, `gate` turns the
results into a go/no-go, and `results_table` gives them the shape of `gold.dq_results`. `profile`
describes each table (row count, nulls, distinct values, ranges, histograms, frequent values) for
the build report in `quality_report`.

Every check reads the data only through SQL built from quoted identifiers and bound parameters:
column names and accepted values come from planners' files and must never become SQL text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

Severity = Literal["warn", "error"]
ArrowData = pa.Table | pads.Dataset
Scalar = str | int | float | bool | Decimal | date | datetime

SAMPLE_ROWS = 5
SAMPLE_TEXT_CHARS = 200  # a sample is for recognising a row, not for carrying a whole memo field
HISTOGRAM_BINS = 10
TOP_VALUES = 5
# Exact distinct counts need a hash table per column; above this many rows HyperLogLog is
# within a few percent and an order of magnitude cheaper.
EXACT_DISTINCT_MAX_ROWS = 200_000

DQ_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("build_id", pa.string()),
        pa.field("check", pa.string()),
        pa.field("table", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("passed", pa.bool_()),
        pa.field("failing_rows", pa.int64()),
        pa.field("sample_json", pa.string()),
        pa.field("message", pa.string()),
        pa.field("evaluated_at", pa.timestamp("us", tz="UTC")),
    ]
)


def quote_ident(name: str) -> str:
    """`name` as a DuckDB identifier, whatever it contains (`order`, spaces, quotes)."""
    return '"' + name.replace('"', '""') + '"'


def _column_list(columns: Sequence[str] | str) -> tuple[str, ...]:
    # A bare string is one column name, not a sequence of one-letter columns.
    return (columns,) if isinstance(columns, str) else tuple(columns)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# --- JSON-safe values -------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """`value` as something `json.dumps(..., allow_nan=False)` accepts without losing meaning.

    Dates and times become ISO strings (aware timestamps in UTC), decimals keep their digits as
    strings, non-finite floats become "NaN"/"Infinity"/"-Infinity", bytes become hex, and long
    text is cut to SAMPLE_TEXT_CHARS.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if len(value) > SAMPLE_TEXT_CHARS:
            return value[:SAMPLE_TEXT_CHARS] + "…"
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, datetime):  # before `date`: a datetime is a date
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return json_safe(bytes(value).hex())
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):  # Arrow maps arrive as lists of (key, value) tuples
        return [json_safe(v) for v in value]
    return json_safe(str(value))


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): json_safe(v) for k, v in row.items()}


# --- checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    message: str
    failing_rows: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Check:
    """What every check declares; use one of the subclasses.

    `severity="error"` blocks publishing when the check fails; `"warn"` only reports.
    """

    kind: ClassVar[str] = ""

    name: str
    table: str
    severity: Severity = "error"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            raise TypeError("Check is abstract: declare NotNull, UniqueKey, InRange, ...")
        if not self.name:
            raise ValueError("a check needs a name")
        if not self.table:
            raise ValueError(f"check {self.name!r} needs a table")
        if self.severity not in ("warn", "error"):
            raise ValueError(
                f"check {self.name!r}: severity must be 'warn' or 'error', not {self.severity!r}"
            )

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        """Every table the check reads, with the columns it needs there."""
        return {self.table: ()}

    def _run(self, ctx: _Context) -> _Outcome:
        raise NotImplementedError


def _require_columns(check: Check, columns: tuple[str, ...], what: str = "columns") -> None:
    if not columns:
        raise ValueError(f"check {check.name!r} needs at least one column in {what}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"check {check.name!r} names a column twice in {what}")


@dataclass(frozen=True)
class NotNull(Check):
    """No row has a null in any of `columns`."""

    kind: ClassVar[str] = "not_null"
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "columns", _column_list(self.columns))
        _require_columns(self, self.columns)

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        return {self.table: self.columns}

    def _run(self, ctx: _Context) -> _Outcome:
        where = " OR ".join(f"t.{quote_ident(c)} IS NULL" for c in self.columns)
        failing, sample = ctx.failing_rows(self.table, where, (), self.columns)
        cols = ", ".join(self.columns)
        if not failing:
            return _Outcome(True, f"no nulls in {cols}")
        total = ctx.row_count(self.table)
        return _Outcome(
            False, f"{failing:,} of {_plural(total, 'row')} have a null in {cols}", failing, sample
        )


@dataclass(frozen=True)
class UniqueKey(Check):
    """No two rows share the same values in `columns`.

    Rows with a null in any key column are not compared, as with SQL UNIQUE; declare a NotNull
    on the same columns for a primary key. `failing_rows` counts every row whose key is shared
    (a key seen three times is three failing rows); the sample holds those rows, ordered by key.
    """

    kind: ClassVar[str] = "unique_key"
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "columns", _column_list(self.columns))
        _require_columns(self, self.columns)

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        return {self.table: self.columns}

    def _run(self, ctx: _Context) -> _Outcome:
        view = ctx.view(self.table)
        keys = ", ".join(quote_ident(c) for c in self.columns)
        not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in self.columns)
        duplicated = (
            f"SELECT {keys}, count(*) AS n FROM {view} WHERE {not_null} "
            f"GROUP BY {keys} HAVING count(*) > 1"
        )
        [[keys_shared, failing]] = ctx.fetch(
            f"SELECT count(*), coalesce(sum(n), 0)::BIGINT FROM ({duplicated})"
        )
        cols = ", ".join(self.columns)
        if not failing:
            return _Outcome(True, f"every ({cols}) is unique")
        on = " AND ".join(f"t.{quote_ident(c)} = d.{quote_ident(c)}" for c in self.columns)
        sample = ctx.sample(
            f"FROM {view} AS t JOIN ({duplicated}) AS d ON {on}", (), self.table, self.columns
        )
        return _Outcome(
            False,
            f"{_plural(keys_shared, 'key')} ({cols}) shared by {failing:,} rows",
            failing,
            sample,
        )


@dataclass(frozen=True)
class AcceptedValues(Check):
    """Every non-null value of `column` is one of `values` (exact match; nulls pass)."""

    kind: ClassVar[str] = "accepted_values"
    column: str
    values: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "values", _column_list(self.values))
        if not self.column:
            raise ValueError(f"check {self.name!r} needs a column")
        if not self.values:
            raise ValueError(f"check {self.name!r} needs at least one accepted value")
        if any(v is None for v in self.values):
            # `x NOT IN (..., NULL)` is never true, which would silently pass every row.
            raise ValueError(f"check {self.name!r}: nulls always pass; leave None out of values")

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        return {self.table: (self.column,)}

    def _run(self, ctx: _Context) -> _Outcome:
        col = f"t.{quote_ident(self.column)}"
        placeholders = ", ".join("?" for _ in self.values)
        where = f"{col} IS NOT NULL AND {col} NOT IN ({placeholders})"
        failing, sample = ctx.failing_rows(self.table, where, self.values, (self.column,))
        if not failing:
            return _Outcome(True, f"every {self.column} is an accepted value")
        accepted = ", ".join(str(v) for v in self.values[:10])
        if len(self.values) > 10:
            accepted += f", … ({len(self.values)} in all)"
        return _Outcome(
            False,
            f"{_plural(failing, 'row')} with {self.column} not among the accepted values "
            f"({accepted})",
            failing,
            sample,
        )


@dataclass(frozen=True)
class InRange(Check):
    """Every non-null value of `column` lies within [min, max], both inclusive.

    Either bound may be None (unbounded). NaN is outside every range.
    """

    kind: ClassVar[str] = "in_range"
    column: str
    min: Scalar | None = None
    max: Scalar | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.column:
            raise ValueError(f"check {self.name!r} needs a column")
        if self.min is None and self.max is None:
            raise ValueError(f"check {self.name!r} needs a min, a max or both")
        if self.min is not None and self.max is not None:
            try:
                inverted = self.min > self.max  # type: ignore[operator]
            except TypeError as exc:
                raise ValueError(f"check {self.name!r}: min and max are not comparable") from exc
            if inverted:
                raise ValueError(f"check {self.name!r}: min {self.min!r} is above max {self.max!r}")

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        return {self.table: (self.column,)}

    def _run(self, ctx: _Context) -> _Outcome:
        col = f"t.{quote_ident(self.column)}"
        outside: list[str] = []
        params: list[Any] = []
        if self.min is not None:
            outside.append(f"{col} < ?")
            params.append(self.min)
        if self.max is not None:
            outside.append(f"{col} > ?")
            params.append(self.max)
        column_type = ctx.column_type(self.table, self.column)
        if pa.types.is_floating(column_type):
            # DuckDB orders NaN above every number, so it would pass a check with only a min.
            outside.append(f"isnan({col})")
        where = f"{col} IS NOT NULL AND ({' OR '.join(outside)})"
        failing, sample = ctx.failing_rows(self.table, where, params, (self.column,))
        bounds = (
            f"[{'-∞' if self.min is None else self.min}, {'∞' if self.max is None else self.max}]"
        )
        if not failing:
            return _Outcome(True, f"every {self.column} within {bounds}")
        return _Outcome(
            False, f"{_plural(failing, 'row')} with {self.column} outside {bounds}", failing, sample
        )


@dataclass(frozen=True)
class Relationship(Check):
    """Every row of `table` whose key is fully non-null finds that key in `parent_table`.

    `columns[i]` is matched with `parent_columns[i]`; rows with a null key column pass.
    """

    kind: ClassVar[str] = "relationship"
    columns: tuple[str, ...]
    parent_table: str
    parent_columns: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "columns", _column_list(self.columns))
        object.__setattr__(self, "parent_columns", _column_list(self.parent_columns))
        _require_columns(self, self.columns)
        _require_columns(self, self.parent_columns, "parent_columns")
        if not self.parent_table:
            raise ValueError(f"check {self.name!r} needs a parent_table")
        if len(self.columns) != len(self.parent_columns):
            raise ValueError(
                f"check {self.name!r}: {len(self.columns)} columns but "
                f"{len(self.parent_columns)} parent_columns"
            )

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        if self.parent_table == self.table:  # a self-reference (a parent item, say)
            return {self.table: tuple(dict.fromkeys(self.columns + self.parent_columns))}
        return {self.table: self.columns, self.parent_table: self.parent_columns}

    def _run(self, ctx: _Context) -> _Outcome:
        not_null = " AND ".join(f"t.{quote_ident(c)} IS NOT NULL" for c in self.columns)
        match = " AND ".join(
            f"p.{quote_ident(pc)} = t.{quote_ident(c)}"
            for c, pc in zip(self.columns, self.parent_columns, strict=True)
        )
        where = (
            f"{not_null} AND NOT EXISTS "
            f"(SELECT 1 FROM {ctx.view(self.parent_table)} AS p WHERE {match})"
        )
        failing, sample = ctx.failing_rows(self.table, where, (), self.columns)
        key = f"({', '.join(self.columns)})"
        parent = f"{self.parent_table} ({', '.join(self.parent_columns)})"
        if not failing:
            return _Outcome(True, f"every {key} found in {parent}")
        return _Outcome(
            False, f"{_plural(failing, 'row')} with a {key} not found in {parent}", failing, sample
        )


@dataclass(frozen=True)
class Freshness(Check):
    """The latest `column` value is no older than `max_age_days` before the evaluation's `now`.

    A date column is compared by calendar day in UTC (a date yesterday is one day old); a
    timestamp without a time zone is taken as UTC. A table with no values fails. Table-level:
    `failing_rows` stays 0 and the message carries the figures.
    """

    kind: ClassVar[str] = "freshness"
    column: str
    max_age_days: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.column:
            raise ValueError(f"check {self.name!r} needs a column")
        if not self.max_age_days >= 0:
            raise ValueError(f"check {self.name!r}: max_age_days must be zero or more")

    def columns_by_table(self) -> dict[str, tuple[str, ...]]:
        return {self.table: (self.column,)}

    def _run(self, ctx: _Context) -> _Outcome:
        column_type = ctx.column_type(self.table, self.column)
        if not (pa.types.is_date(column_type) or pa.types.is_timestamp(column_type)):
            return _Outcome(
                False, f"{self.column} is {column_type}, not a date or timestamp column"
            )
        [[latest]] = ctx.fetch(
            f"SELECT max({quote_ident(self.column)}) FROM {ctx.view(self.table)}"
        )
        now = ctx.now
        limit = f"limit {self.max_age_days:g} day{'' if self.max_age_days == 1 else 's'}"
        if latest is None:
            return _Outcome(False, f"{self.column} has no values ({limit})")
        if isinstance(latest, datetime):
            if latest.tzinfo is None:
                latest = latest.replace(tzinfo=UTC)
            age_days = (now - latest) / timedelta(days=1)
        else:
            age_days = float((now.date() - latest).days)
        shown = json_safe(latest)
        message = f"latest {self.column} {shown} is {age_days:.1f} days old ({limit})"
        return _Outcome(age_days <= self.max_age_days, message)


@dataclass(frozen=True)
class RowCountChange(Check):
    """The row count moved by no more than the given ratios since the previous version.

    `max_drop_ratio=0.5` allows losing up to half the rows; `max_growth_ratio=1.0` allows up
    to doubling; None leaves that direction unchecked. The first build of a table, and a
    previous version with no rows, pass: there is nothing to compare with, and failing would
    block the table from ever being published. Table-level: `failing_rows` stays 0.
    """

    kind: ClassVar[str] = "row_count_change"
    max_drop_ratio: float | None = None
    max_growth_ratio: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_drop_ratio is None and self.max_growth_ratio is None:
            raise ValueError(f"check {self.name!r} needs max_drop_ratio, max_growth_ratio or both")
        for ratio in (self.max_drop_ratio, self.max_growth_ratio):
            if ratio is not None and not ratio >= 0:
                raise ValueError(f"check {self.name!r}: ratios must be zero or more")

    def _run(self, ctx: _Context) -> _Outcome:
        current = ctx.row_count(self.table)
        previous = ctx.previous_row_counts.get(self.table)
        if previous is None:
            return _Outcome(True, f"first version: {_plural(current, 'row')}, nothing to compare")
        if previous == 0:
            return _Outcome(True, f"previous version was empty; {_plural(current, 'row')} now")
        change = (current - previous) / previous
        message = f"{previous:,} → {current:,} rows ({change:+.1%})"
        if change < 0 and self.max_drop_ratio is not None and -change > self.max_drop_ratio:
            return _Outcome(False, f"{message}: drop above {self.max_drop_ratio:.1%}")
        if change > 0 and self.max_growth_ratio is not None and change > self.max_growth_ratio:
            return _Outcome(False, f"{message}: growth above {self.max_growth_ratio:.1%}")
        return _Outcome(True, message)


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one build; `sample` holds up to SAMPLE_ROWS JSON-safe rows."""

    check: str
    table: str
    kind: str
    severity: Severity
    passed: bool
    failing_rows: int
    sample: list[dict[str, Any]]
    message: str
    evaluated_at: datetime
    description: str = ""


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    # Through Arrow rather than fetchall: aware timestamps arrive as zoneinfo datetimes without
    # DuckDB's optional pytz dependency.
    result = con.sql(sql, params=list(params)).to_arrow_table()
    return list(zip(*(column.to_pylist() for column in result.columns), strict=True))


class _Context:
    """One DuckDB connection with every table of the evaluation registered under a safe alias."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: Mapping[str, ArrowData],
        previous_row_counts: Mapping[str, int],
        now: datetime,
    ) -> None:
        self.con = con
        self.tables = tables
        self.previous_row_counts = previous_row_counts
        self.now = now
        self._views: dict[str, str] = {}
        self._row_counts: dict[str, int] = {}
        for index, name in enumerate(tables):
            # Table names like "gold.fact_demand" would read as schema.table; aliases avoid that.
            alias = f"dq_table_{index}"
            con.register(alias, tables[name])
            self._views[name] = alias

    def view(self, table: str) -> str:
        return self._views[table]

    def schema(self, table: str) -> pa.Schema:
        return self.tables[table].schema

    def column_type(self, table: str, column: str) -> pa.DataType:
        column_type = self.schema(table).field(column).type
        return column_type.value_type if pa.types.is_dictionary(column_type) else column_type

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return _fetch(self.con, sql, params)

    def row_count(self, table: str) -> int:
        if table not in self._row_counts:
            [[count]] = self.fetch(f"SELECT count(*) FROM {self.view(table)}")
            self._row_counts[table] = int(count)
        return self._row_counts[table]

    def sample(
        self, from_clause: str, params: Sequence[Any], table: str, first: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """Up to SAMPLE_ROWS rows of `t`, ordered so that the same data gives the same sample.

        Ordered by the check's own columns, then by every other plain column: DuckDB keeps
        insertion order for simple scans but not across joins and parallel sorts.
        """
        rest = [
            f.name
            for f in self.schema(table)
            if f.name not in first and not pa.types.is_nested(f.type)
        ]
        order = ", ".join(f"t.{quote_ident(c)} ASC NULLS LAST" for c in (*first, *rest))
        sql = f"SELECT t.* {from_clause} ORDER BY {order} LIMIT {SAMPLE_ROWS}"
        rows = self.con.sql(sql, params=list(params)).to_arrow_table().to_pylist()
        return [_json_row(r) for r in rows]

    def failing_rows(
        self, table: str, where: str, params: Sequence[Any], first: tuple[str, ...]
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many rows of `table` (aliased `t`) match `where`, and a sample of them."""
        from_clause = f"FROM {self.view(table)} AS t WHERE {where}"
        [[count]] = self.fetch(f"SELECT count(*) {from_clause}", params)
        if not count:
            return 0, []
        return int(count), self.sample(from_clause, params, table, first)


def _run_check(check: Check, ctx: _Context) -> _Outcome:
    needed = check.columns_by_table()
    absent = [t for t in needed if t not in ctx.tables]
    if absent:
        return _Outcome(False, f"table {', '.join(absent)} is absent from this evaluation")
    for table, columns in needed.items():
        names = set(ctx.schema(table).names)
        missing = [c for c in columns if c not in names]
        if missing:
            return _Outcome(False, f"{table} has no column {', '.join(missing)}")
    try:
        return check._run(ctx)
    except duckdb.Error as exc:
        # A type mismatch (say, numbers accepted for a text column) fails this check with
        # DuckDB's reason instead of stopping every other check of the build.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _Outcome(False, f"could not evaluate: {reason}")


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def evaluate(
    checks: Iterable[Check],
    tables: Mapping[str, ArrowData],
    *,
    previous_row_counts: Mapping[str, int],
    now: datetime,
) -> list[CheckResult]:
    """Run every check over `tables` (name → Arrow table or dataset); one result per check.

    `previous_row_counts` holds the row count of each table's previous published version
    (absent for a first build); `now` is the instant the evaluation is made as of: Freshness
    measures against it and every result carries it as `evaluated_at`.
    """
    checks = list(checks)
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise ValueError(f"two checks are named {check.name!r}; dq_results keys on the name")
        seen.add(check.name)
    now = _utc(now, "now")
    results = []
    with duckdb.connect(":memory:") as con:
        ctx = _Context(con, tables, previous_row_counts, now)
        for check in checks:
            outcome = _run_check(check, ctx)
            results.append(
                CheckResult(
                    check=check.name,
                    table=check.table,
                    kind=check.kind,
                    severity=check.severity,
                    passed=outcome.passed,
                    failing_rows=outcome.failing_rows,
                    sample=outcome.sample,
                    message=outcome.message,
                    evaluated_at=now,
                    description=check.description,
                )
            )
    return results


def results_table(results: Iterable[CheckResult], build_id: str) -> pa.Table:
    """The results as rows of `gold.dq_results` (schema DQ_RESULTS_SCHEMA)."""
    rows = [
        {
            "build_id": build_id,
            "check": r.check,
            "table": r.table,
            "kind": r.kind,
            "severity": r.severity,
            "passed": r.passed,
            "failing_rows": r.failing_rows,
            "sample_json": json.dumps(json_safe(r.sample), ensure_ascii=False, allow_nan=False),
            "message": r.message,
            "evaluated_at": _utc(r.evaluated_at, "evaluated_at"),
        }
        for r in results
    ]
    return pa.Table.from_pylist(rows, schema=DQ_RESULTS_SCHEMA)


@dataclass(frozen=True)
class GateDecision:
    """Whether the build may publish: blocked by any failed error-severity check."""

    blocked: bool
    errors: list[CheckResult]
    warnings: list[CheckResult]


def gate(results: Iterable[CheckResult]) -> GateDecision:
    failed = [r for r in results if not r.passed]
    errors = [r for r in failed if r.severity == "error"]
    warnings = [r for r in failed if r.severity == "warn"]
    return GateDecision(blocked=bool(errors), errors=errors, warnings=warnings)


# --- profiling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramBin:
    lower: float
    upper: float  # inclusive for the last bin only
    count: int


@dataclass(frozen=True)
class TopValue:
    value: Any  # JSON-safe
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """One column's shape. `min`/`max` are JSON-safe; NaN and infinities are left out of them.

    `histogram` is set for numeric columns (HISTOGRAM_BINS equal-width bins between min and
    max, one bin when they are equal, empty without finite values), `top_values` for text and
    boolean columns (most frequent first, ties by value).
    """

    name: str
    type: str
    null_count: int
    null_rate: float
    distinct_count: int | None
    distinct_exact: bool
    min: Any = None
    max: Any = None
    histogram: list[HistogramBin] | None = None
    top_values: list[TopValue] | None = None


@dataclass(frozen=True)
class TableProfile:
    table: str
    row_count: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _value_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _is_numeric(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _is_ordered(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_date(data_type)
        or pa.types.is_timestamp(data_type)
        or pa.types.is_time(data_type)
    )


def _is_categorical(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
        or pa.types.is_boolean(data_type)
    )


def _row_count(data: ArrowData) -> int:
    return data.num_rows if isinstance(data, pa.Table) else data.count_rows()


def _histogram(
    con: duckdb.DuckDBPyConnection, view: str, columns: list[tuple[str, float, float]]
) -> dict[str, list[HistogramBin]]:
    """Equal-width histograms for (column, finite min, finite max), in one scan."""
    if not columns:
        return {}
    aggregates = []
    for index, (name, low, high) in enumerate(columns):
        col = f"{quote_ident(name)}::DOUBLE"
        bucket = "0"
        if high > low:
            # Scale before dividing: (1.3 - 1) / 0.1 lands in bin 2, (1.3 - 1) * 10 / 1 in bin 3.
            bucket = (
                f"least(floor(({col} - ({low!r})) * {HISTOGRAM_BINS} / ({high - low!r})), "
                f"{HISTOGRAM_BINS - 1})::INTEGER"
            )
        aggregates.append(f"histogram({bucket}) FILTER (WHERE isfinite({col})) AS h{index}")
    [row] = con.sql(f"SELECT {', '.join(aggregates)} FROM {view}").to_arrow_table().to_pylist()
    histograms = {}
    for index, (name, low, high) in enumerate(columns):
        counts = dict(row[f"h{index}"] or [])
        if high > low:
            edges = [low + (high - low) * i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
            edges.append(high)
            histograms[name] = [
                HistogramBin(edges[i], edges[i + 1], int(counts.get(i, 0)))
                for i in range(HISTOGRAM_BINS)
            ]
        else:
            histograms[name] = [HistogramBin(low, high, int(counts.get(0, 0)))]
    return histograms


def _top_values(con: duckdb.DuckDBPyConnection, view: str, name: str) -> list[TopValue]:
    col = quote_ident(name)
    rows = _fetch(
        con,
        f"SELECT {col} AS value, count(*) AS n FROM {view} WHERE {col} IS NOT NULL "
        f"GROUP BY {col} ORDER BY n DESC, {col} ASC LIMIT {TOP_VALUES}",
    )
    return [TopValue(json_safe(value), int(count)) for value, count in rows]


def _profile_table(
    con: duckdb.DuckDBPyConnection, table: str, data: ArrowData, view: str, exact_below: int
) -> TableProfile:
    row_count = _row_count(data)
    exact = row_count <= exact_below
    fields = [(f.name, _value_type(f.type), f.type) for f in data.schema]
    aggregates = ["count(*) AS n"]
    for index, (name, value_type, _) in enumerate(fields):
        col = quote_ident(name)
        aggregates.append(f"count({col}) AS nn{index}")
        if not pa.types.is_nested(value_type):
            distinct = f"count(DISTINCT {col})" if exact else f"approx_count_distinct({col})"
            aggregates.append(f"{distinct} AS d{index}")
        if _is_numeric(value_type) or _is_ordered(value_type):
            # NaN sorts above every number in DuckDB; leave it and infinities out of the range.
            finite = f" FILTER (WHERE isfinite({col}))" if pa.types.is_floating(value_type) else ""
            aggregates.append(f"min({col}){finite} AS lo{index}")
            aggregates.append(f"max({col}){finite} AS hi{index}")
    [stats] = con.sql(f"SELECT {', '.join(aggregates)} FROM {view}").to_arrow_table().to_pylist()
    numeric = [
        (name, float(stats[f"lo{i}"]), float(stats[f"hi{i}"]))
        for i, (name, value_type, _) in enumerate(fields)
        if _is_numeric(value_type) and stats[f"lo{i}"] is not None
    ]
    histograms = _histogram(con, view, numeric)
    columns = []
    for index, (name, value_type, declared_type) in enumerate(fields):
        non_null = int(stats[f"nn{index}"])
        null_count = row_count - non_null
        distinct = stats.get(f"d{index}")
        top = None
        if _is_categorical(value_type):
            top = _top_values(con, view, name) if non_null else []
        histogram = None
        if _is_numeric(value_type):
            histogram = histograms.get(name, [])
        columns.append(
            ColumnProfile(
                name=name,
                type=str(declared_type),
                null_count=null_count,
                null_rate=null_count / row_count if row_count else 0.0,
                distinct_count=None if distinct is None else int(distinct),
                distinct_exact=exact and distinct is not None,
                min=json_safe(stats.get(f"lo{index}")),
                max=json_safe(stats.get(f"hi{index}")),
                histogram=histogram,
                top_values=top,
            )
        )
    return TableProfile(table=table, row_count=row_count, columns=columns)


def profile(
    tables: Mapping[str, ArrowData], *, exact_distinct_max_rows: int = EXACT_DISTINCT_MAX_ROWS
) -> dict[str, TableProfile]:
    """Describe every table: one aggregate scan, one histogram scan, one GROUP BY per text column.

    Distinct counts are exact up to `exact_distinct_max_rows` rows and HyperLogLog estimates
    above (see `ColumnProfile.distinct_exact`).
    """
    profiles = {}
    with duckdb.connect(":memory:") as con:
        for index, (table, data) in enumerate(tables.items()):
            view = f"dq_table_{index}"
            con.register(view, data)
            profiles[table] = _profile_table(con, table, data, view, exact_distinct_max_rows)
    return profiles
