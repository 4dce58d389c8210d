"""What a bronze event does to silver and gold, independent of how the event arrived.

Silver tables are partitioned by business month and deduplicated by business key: the row from
the latest ingested file wins (ties: content hash, then source row, so the winner never depends
on arrival order). An event rebuilds only the months its file touches; `rebuild_all` recomputes
everything from bronze with the same SQL and the same tie-breaks, so both give equal tables.
Gold tables are computed in memory, checked by the quality gate, and committed only if no
error-severity check fails.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import holidays as holiday_calendars
import pyarrow as pa
import pyarrow.compute as pc

from services.transformer.checks import GOLD_CHECKS
from services.transformer.quality import (
    Check,
    CheckResult,
    evaluate,
    gate,
    profile,
    results_table,
)
from services.transformer.quality_report import render_html_report
from services.transformer.transforms import (
    GOLD,
    GOLD_BY_MONTH,
    SILVER,
    SILVER_DERIVED,
    Transform,
)
from shared.events import BronzeIngested, TableVersion
from shared.logging import get_logger
from shared.manifests import GOLD_BUILDS
from shared.storage import DeltaCommit, Lake

log = get_logger(__name__)
MONTH = "business_month"
Months = frozenset[date | None]

STATES = pa.table(
    {
        "uf": [
            "AC",
            "AL",
            "AP",
            "AM",
            "BA",
            "CE",
            "DF",
            "ES",
            "GO",
            "MA",
            "MT",
            "MS",
            "MG",
            "PA",
            "PB",
            "PR",
            "PE",
            "PI",
            "RJ",
            "RN",
            "RS",
            "RO",
            "RR",
            "SC",
            "SP",
            "SE",
            "TO",
        ],
        "name": [
            "Acre",
            "Alagoas",
            "Amapá",
            "Amazonas",
            "Bahia",
            "Ceará",
            "Distrito Federal",
            "Espírito Santo",
            "Goiás",
            "Maranhão",
            "Mato Grosso",
            "Mato Grosso do Sul",
            "Minas Gerais",
            "Pará",
            "Paraíba",
            "Paraná",
            "Pernambuco",
            "Piauí",
            "Rio de Janeiro",
            "Rio Grande do Norte",
            "Rio Grande do Sul",
            "Rondônia",
            "Roraima",
            "Santa Catarina",
            "São Paulo",
            "Sergipe",
            "Tocantins",
        ],
    }
)
# Cities of the company's depots; a weather series is placed at the one within ~25 km.
CITIES = pa.table(
    {
        "city": ["Salvador", "Feira de Santana", "Aracaju", "Maceió", "Recife", "Natal"],
        "state": ["BA", "BA", "SE", "AL", "PE", "RN"],
        "latitude": [-12.97, -12.27, -10.91, -9.67, -8.05, -5.79],
        "longitude": [-38.50, -38.97, -37.07, -35.74, -34.88, -35.21],
    }
)


class UnknownDatasetError(ValueError):
    """A bronze dataset this transformer has no silver transform for."""


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    tables: list[TableVersion]
    quality_blocked: bool = False
    quality_failures: list[CheckResult] = field(default_factory=list)
    quality_warnings: list[CheckResult] = field(default_factory=list)
    report_path: str | None = None


def _sql_literal(value: date | None) -> str:
    return "NULL" if value is None else f"CAST('{value.isoformat()}' AS DATE)"


def month_predicate(months: Months) -> str:
    known = sorted(m for m in months if m is not None)
    parts = [f"{MONTH} IN ({', '.join(_sql_literal(m) for m in known)})"] if known else []
    if None in months:
        parts.append(f"{MONTH} IS NULL")
    return " OR ".join(parts) or "FALSE"


def _month_filter(months: Months) -> pc.Expression:
    known = [m for m in months if m is not None]
    expression = pc.field(MONTH).isin(pa.array(known, pa.date32()))
    if None in months:
        expression = expression | pc.field(MONTH).is_null()
    return expression


def months_of(table: pa.Table) -> Months:
    if MONTH not in table.column_names:
        return frozenset()
    return frozenset(table.column(MONTH).unique().to_pylist())


def deduplicate(rows: pa.Table) -> pa.Table:
    """One row per (business key, business month): the latest ingested file's."""
    with duckdb.connect(":memory:") as con:
        con.register("candidate_rows", rows)
        return con.sql(
            f"""
            SELECT * EXCLUDE (_rank) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY _business_key, {MONTH}
                    ORDER BY _ingested_at DESC, _content_sha256 DESC, _source_row DESC
                ) AS _rank
                FROM candidate_rows
            )
            WHERE _rank = 1
            ORDER BY {MONTH} NULLS FIRST, _business_key
            """
        ).to_arrow_table()


@functools.lru_cache(maxsize=8)  # the calendar of a span of years does not change
def holidays_table(first_year: int, last_year: int) -> pa.Table:
    """National holidays and those Bahia adds, from the `holidays` package."""
    years = list(range(first_year, last_year + 1))
    national = holiday_calendars.country_holidays("BR", years=years)
    bahia = holiday_calendars.country_holidays("BR", subdiv="BA", years=years)
    rows = [(d, name, "national") for d, name in national.items()]
    rows += [(d, name, "BA") for d, name in bahia.items() if d not in national]
    rows.sort()
    return pa.table(
        {
            "holiday_date": pa.array([r[0] for r in rows], pa.date32()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "scope": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns in the declared order and types (Delta moves partition columns last)."""
    return table.select(schema.names).cast(schema)


class Builder:
    def __init__(
        self,
        lake: Lake,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        checks: Sequence[Check] = GOLD_CHECKS,
    ) -> None:
        self._lake = lake
        self._clock = clock
        self._checks = tuple(checks)

    # --- reading ---------------------------------------------------------------------------

    def _silver_rows(
        self,
        name: str,
        schema: pa.Schema,
        months: Months | None,
        columns: tuple[str, ...] | None = None,
    ) -> pa.Table:
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        dataset = self._lake.delta_dataset("silver", name)
        if dataset is None:
            return schema.empty_table()
        table = dataset.to_table(
            columns=list(columns) if columns else None,
            filter=None if months is None else _month_filter(months),
        )
        return _conform(table, schema)

    def _gold_rows(self, name: str) -> pa.Table:
        dataset = self._lake.delta_dataset("gold", name)
        schema = GOLD[name].schema
        return schema.empty_table() if dataset is None else _conform(dataset.to_table(), schema)

    def _bronze(self, paths: Iterable[str], dataset: str) -> pa.Table:
        """Bronze objects of one dataset; extra (drifted) columns are left out of silver."""
        from services.ingestor.contracts import CONTRACTS
        from services.ingestor.parsing import ARROW_TYPES
        from services.ingestor.service import LINEAGE_FIELDS

        contract = CONTRACTS[dataset]
        schema = pa.schema(
            [
                *(pa.field(c.name, ARROW_TYPES[c.type]) for c in contract.columns),
                pa.field("_source_row", pa.int32()),
                *LINEAGE_FIELDS,
            ]
        )
        tables = [_conform(self._lake.read_parquet(p), schema) for p in paths]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    # --- silver ----------------------------------------------------------------------------

    def _update_silver(
        self, dataset: str, bronze: pa.Table, *, full: bool, metadata: Mapping[str, Any]
    ) -> tuple[list[DeltaCommit], Months]:
        transform = SILVER[dataset]
        fresh = transform.run(bronze=bronze, cities=CITIES)
        months = months_of(fresh)
        existing = (
            transform.schema.empty_table()
            if full
            else self._silver_rows(dataset, transform.schema, months)
        )
        rows = deduplicate(pa.concat_tables([existing, fresh])).cast(transform.schema)
        commits = [
            self._lake.write_delta(
                "silver",
                dataset,
                rows,
                mode="overwrite",
                predicate=None if full else month_predicate(months),
                partition_by=[MONTH],
                metadata={
                    **metadata,
                    "rows_written": rows.num_rows,
                    "months": _months_text(months),
                },
            )
        ]
        derived = SILVER_DERIVED.get(dataset)
        if derived is not None:
            source = self._silver_rows(dataset, transform.schema, None if full else months)
            derived_rows = derived.run(**{derived.inputs[0]: source})
            commits.append(
                self._lake.write_delta(
                    "silver",
                    derived.table,
                    derived_rows,
                    mode="overwrite",
                    predicate=None if full else month_predicate(months),
                    partition_by=[MONTH],
                    metadata={**metadata, "rows_written": derived_rows.num_rows},
                )
            )
        for commit in commits:
            log.info("silver_committed", table=commit.table, version=commit.version,
                     row_count=commit.row_count)  # fmt: skip
        return commits, months

    # --- gold ------------------------------------------------------------------------------

    def _static_input(self, name: str, bounds: Callable[[], pa.Table]) -> pa.Table:
        if name == "states":
            return STATES
        if name == "holidays":
            first = bounds().column("first_date")[0].as_py() or date.today()
            last = bounds().column("last_date")[0].as_py() or date.today()
            return holidays_table(first.year, last.year + 1)
        if name == "bounds":
            return bounds()
        raise KeyError(name)

    def _bounds(self) -> pa.Table:
        """First and last day any dated silver table knows."""
        dated = {
            "erp_requisitions": "requested_date",
            "stock_movements": "movement_date",
            "stock_on_hand": "snapshot_date",
            "weather_daily": "weather_date",
            "selic": "rate_date",
            "ptax_usd_daily": "quote_date",
        }
        firsts, lasts = [], []
        for table, column in dated.items():
            dataset = self._lake.delta_dataset("silver", table)
            if dataset is None:
                continue
            values = dataset.to_table(columns=[column]).column(column)
            low, high = pc.min_max(values).values()
            if low.is_valid:
                firsts.append(low.as_py())
                lasts.append(high.as_py())
        today = self._clock().date()
        return pa.table(
            {
                "first_date": pa.array([min(firsts) if firsts else today], pa.date32()),
                "last_date": pa.array([max(lasts) if lasts else today], pa.date32()),
            }
        )

    def _gold_inputs(
        self,
        transform: Transform,
        built: Mapping[str, pa.Table],
        months: Months | None,
        bounds: Callable[[], pa.Table],
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for name in transform.inputs:
            if name.startswith("silver_"):
                table = name.removeprefix("silver_")
                schema = (SILVER.get(table) or _derived(table)).schema
                by_month = transform.table in GOLD_BY_MONTH
                inputs[name] = self._silver_rows(
                    table,
                    schema,
                    months if by_month else None,
                    transform.input_columns.get(name),
                )
            elif name.startswith("gold_"):
                table = name.removeprefix("gold_")
                inputs[name] = built[table] if table in built else self._gold_rows(table)
            else:
                inputs[name] = self._static_input(name, bounds)
        return inputs

    def _compute_gold(
        self, targets: list[str], months: Months | None
    ) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
        """(full tables as they will be after this build, rows to write per table)."""
        built: dict[str, pa.Table] = {}
        to_write: dict[str, pa.Table] = {}
        # Silver is already committed for this build: its date span is read once, not once per
        # calendar input.
        bounds = functools.cache(self._bounds)
        for name, transform in GOLD.items():
            if name not in targets:
                continue
            rows = transform.run(**self._gold_inputs(transform, built, months, bounds))
            to_write[name] = rows
            if name in GOLD_BY_MONTH and months is not None:
                dataset = self._lake.delta_dataset("gold", name)
                others = (
                    transform.schema.empty_table()
                    if dataset is None
                    else _conform(dataset.to_table(filter=~_month_filter(months)), transform.schema)
                )
                built[name] = pa.concat_tables([others, rows])
            else:
                built[name] = rows
        return built, to_write

    # --- builds ----------------------------------------------------------------------------

    def apply_bronze_event(self, event: BronzeIngested) -> BuildResult:
        """Replace this file's rows in silver (its months only), then rebuild affected gold.

        Replaying the same event replaces the same rows with the same values, so a redelivery
        leaves the tables' contents unchanged.
        """
        if event.dataset not in SILVER:
            raise UnknownDatasetError(f"no silver transform for dataset {event.dataset!r}")
        build_id = uuid.uuid4().hex
        metadata = {
            "build_id": build_id,
            "correlation_id": event.correlation_id,
            "source_event_id": event.event_id,
            "source_bronze_paths": event.bronze_path,
        }
        bronze = self._bronze([event.bronze_path], event.dataset)
        silver, months = self._update_silver(event.dataset, bronze, full=False, metadata=metadata)
        targets = gold_targets({event.dataset})
        return self._finish_build(build_id, silver, targets, months, metadata)

    def rebuild_all(self) -> BuildResult:
        """Recompute every silver and gold table from all bronze objects."""
        from services.ingestor.retention import bronze_objects

        build_id = uuid.uuid4().hex
        objects = bronze_objects(self._lake.list_files("bronze"))
        commits: list[DeltaCommit] = []
        datasets = sorted({o.dataset for o in objects} & set(SILVER))
        for dataset in datasets:
            paths = [o.path for o in objects if o.dataset == dataset]
            metadata = {
                "build_id": build_id,
                "correlation_id": build_id,
                "source_bronze_paths": ",".join(paths),
                "rebuild": "full",
            }
            bronze = self._bronze(paths, dataset)
            commits += self._update_silver(dataset, bronze, full=True, metadata=metadata)[0]
        metadata = {"build_id": build_id, "correlation_id": build_id, "rebuild": "full"}
        return self._finish_build(build_id, commits, gold_targets(set(datasets)), None, metadata)

    def _record_build(self, build_id: str, metadata: Mapping[str, Any]) -> None:
        """Append the versions every gold table has once this build is committed; builds are
        serialized (one lease holder), so this set is what the build left behind."""
        versions: dict[str, int] = {}
        for name in [*GOLD, "dq_results"]:
            table = self._lake.delta_table("gold", name)
            if table is not None:
                versions[name] = table.version()
        row = pa.table(
            {
                "build_id": [build_id],
                "finished_at": pa.array([self._clock()], pa.timestamp("us", tz="UTC")),
                "table_versions": [json.dumps(versions, sort_keys=True)],
            }
        )
        self._lake.write_delta("gold", GOLD_BUILDS, row, mode="append", metadata=metadata)

    def _gate(
        self,
        build_id: str,
        built: Mapping[str, pa.Table],
        to_write: Mapping[str, pa.Table],
        metadata: Mapping[str, Any],
    ) -> tuple[list[CheckResult], list[DeltaCommit], str]:
        """Check the gold tables as they would be after this build; record the results and
        an HTML report whatever the outcome."""
        checks = [c for c in self._checks if c.table in built]
        # Monthly facts are checked on the months this build rewrites: their keys include the
        # day, so the other months cannot break a check that these months pass, and reading
        # the whole history back for every daily export would cost more than the build itself.
        tables: dict[str, Any] = {
            name: to_write[name] if name in GOLD_BY_MONTH else table
            for name, table in built.items()
        }
        for check in checks:
            parent = getattr(check, "parent_table", None)
            if parent and parent not in tables:
                tables[parent] = self._gold_rows(parent)
        previous: dict[str, int] = {}
        for name in built:
            table = self._lake.delta_table("gold", name)
            if table is not None:
                previous[name] = table.count()
        now = self._clock()
        results = evaluate(checks, tables, previous_row_counts=previous, now=now)
        commits: list[DeltaCommit] = []
        if results:
            commits.append(
                self._lake.write_delta(
                    "gold",
                    "dq_results",
                    results_table(results, build_id),
                    mode="append",
                    metadata={**metadata, "rows_written": len(results)},
                )
            )
        report_path = f"reports/quality/{build_id}.html"
        html = render_html_report(
            build_id=build_id,
            created_at=now,
            results=results,
            profiles=profile(dict(to_write)),
            lineage={
                **{k: str(v) for k, v in metadata.items()},
                "tables rebuilt": {n: f"{rows.num_rows:,} rows" for n, rows in to_write.items()},
            },
        )
        self._lake.write_bytes(report_path, html.encode("utf-8"))
        return results, commits, report_path

    def _finish_build(
        self,
        build_id: str,
        silver: list[DeltaCommit],
        targets: list[str],
        months: Months | None,
        metadata: Mapping[str, Any],
    ) -> BuildResult:
        built, to_write = self._compute_gold(targets, months)
        commits = list(silver)
        if not built:
            return BuildResult(build_id, _versions(commits))
        results, recorded, report_path = self._gate(build_id, built, to_write, metadata)
        decision = gate(results)
        if decision.blocked:
            # Silver keeps the new rows (they are what the files say); gold stays at the
            # versions readers already trust until the data is fixed.
            log.warning(
                "quality_gate_blocked",
                build_id=build_id,
                errors=[r.check for r in decision.errors],
                report=report_path,
            )
            return BuildResult(
                build_id,
                _versions([*commits, *recorded]),
                quality_blocked=True,
                quality_failures=list(decision.errors),
                quality_warnings=list(decision.warnings),
                report_path=report_path,
            )
        commits += recorded
        for name, rows in to_write.items():
            by_month = name in GOLD_BY_MONTH
            commit = self._lake.write_delta(
                "gold",
                name,
                rows,
                mode="overwrite",
                predicate=month_predicate(months) if by_month and months is not None else None,
                partition_by=[MONTH] if by_month else None,
                metadata={**metadata, "rows_written": rows.num_rows},
            )
            log.info(
                "gold_committed",
                table=commit.table,
                version=commit.version,
                row_count=commit.row_count,
                rows_written=rows.num_rows,
            )
            commits.append(commit)
        self._record_build(build_id, metadata)
        return BuildResult(
            build_id,
            _versions(commits),
            quality_warnings=list(decision.warnings),
            report_path=report_path,
        )


def _versions(commits: Iterable[DeltaCommit]) -> list[TableVersion]:
    return [TableVersion(table=c.table, version=c.version, row_count=c.row_count) for c in commits]


def _derived(table: str) -> Transform:
    return next(t for t in SILVER_DERIVED.values() if t.table == table)


def _months_text(months: Months) -> str:
    return ",".join(sorted("null" if m is None else m.isoformat() for m in months))


def _silver_sources(table: str) -> set[str]:
    """Datasets whose events change a silver table."""
    if table in SILVER:
        return {table}
    return {source for source, t in SILVER_DERIVED.items() if t.table == table}


_BOUNDS_SOURCES = {"erp_requisitions", "stock_movements", "stock_on_hand", "weather_hourly",
                   "selic", "ptax_usd"}  # fmt: skip


def gold_targets(datasets: set[str]) -> list[str]:
    """Gold tables to rebuild, in dependency order, when these datasets change."""
    changed: list[str] = []
    for name, transform in GOLD.items():
        for source in transform.inputs:
            if source.startswith("silver_"):
                hit = bool(_silver_sources(source.removeprefix("silver_")) & datasets)
            elif source.startswith("gold_"):
                hit = source.removeprefix("gold_") in changed
            else:
                hit = source in ("bounds", "holidays") and bool(_BOUNDS_SOURCES & datasets)
            if hit:
                changed.append(name)
                break
    return changed


def apply_bronze_event(lake: Lake, event: BronzeIngested) -> BuildResult:
    return Builder(lake).apply_bronze_event(event)


def rebuild_all(lake: Lake) -> BuildResult:
    return Builder(lake).rebuild_all()
