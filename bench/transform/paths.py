"""The measured paths. Each runs in a fresh process (see `child`), prepares its lake, imports
what it needs, then times only the work between `probe.start()` and `probe.stop()`.

Every path returns a dict with at least `rows` (request lines it transformed) and `tables`
(table -> rows, and the version for Delta commits).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.child import Probe
from bench.transform.dataset import DATASET


def copy_lake(source: Path, target: Path) -> str:
    """A private copy of a lake. Parquet data files are hard-linked (bronze objects and Delta
    data files are never modified in place; Delta only adds files); Delta logs, checkpoints
    and everything else are copied. Returns "hardlink" or "copy"."""
    how = "hardlink"
    for folder, _dirs, files in os.walk(source):
        here = Path(folder)
        into = target / here.relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            link = name.endswith(".parquet") and "_delta_log" not in here.parts
            if link and how == "hardlink":
                try:
                    os.link(here / name, into / name)
                    continue
                except OSError:
                    how = "copy"
            shutil.copy2(here / name, into / name)
    return how


def _bytes_below(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- profiling ---------------------------------------------------------------------------------


@dataclass
class Profiler:
    """Exclusive seconds per step, by wrapping the transformer's functions (never editing them).

    Wrapped calls nest (a Delta commit inside a build step): each call's own time is its time
    minus that of the wrapped calls it made, so the steps add up to the measured total.
    """

    exclusive: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _stack: list[list[Any]] = field(default_factory=list)

    def call(self, key: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._stack.append([key, 0.0])
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - began
            _, children = self._stack.pop()
            self.exclusive[key] = self.exclusive.get(key, 0.0) + elapsed - children
            self.calls[key] = self.calls.get(key, 0) + 1
            if self._stack:
                self._stack[-1][1] += elapsed

    def current(self) -> str | None:
        return self._stack[-1][0] if self._stack else None

    def patch(
        self, owner: Any, name: str, key: str | Callable[..., str], *, method: bool = False
    ) -> None:
        """Time `owner.name` under `key` (or `key(*args)`), if it still exists."""
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            label = key(*args, **kwargs) if callable(key) else key
            return self.call(label, original, *args, **kwargs)

        setattr(owner, name, timed)

    def breakdown(self, total: float) -> dict[str, float]:
        steps = {k: round(v, 4) for k, v in self.exclusive.items()}
        steps["other (unwrapped code)"] = round(max(0.0, total - sum(self.exclusive.values())), 4)
        return dict(sorted(steps.items(), key=lambda kv: -kv[1]))


def _months(months: Any) -> str:
    if months is None:
        return "all months"
    return "1 month" if len(months) == 1 else f"{len(months)} months"


def instrument_builder(profiler: Profiler) -> None:
    """Wrap the build steps: bronze read, SQL per table, dedup, lake reads, Delta commits."""
    from services.transformer import builds, transforms
    from shared import storage

    p = profiler
    p.patch(transforms.Transform, "run", lambda self, **_: f"sql {self.layer}.{self.table}")
    p.patch(builds.Builder, "_bronze", "read bronze objects")
    p.patch(builds.Builder, "_update_silver", "silver: concat, cast, months")
    p.patch(builds, "deduplicate", "silver: dedup (row_number over key, month)")
    p.patch(
        builds.Builder,
        "_silver_rows",
        lambda self, name, schema=None, months=None, *_, **__: (
            f"read silver.{name} ({_months(months)})"
        ),
    )
    p.patch(builds.Builder, "_gold_rows", lambda self, name: f"read gold.{name} (whole)")
    p.patch(builds.Builder, "_bounds", "read bounds (date columns of silver)")
    p.patch(builds, "holidays_table", "holidays table")
    p.patch(builds.Builder, "_gold_inputs", "gold: inputs (other)")
    p.patch(builds.Builder, "_compute_gold", "gold: read other months of by-month tables, concat")
    # The quality gate (checks, profiles, HTML report), where the builder has one.
    p.patch(builds, "evaluate", "quality: evaluate checks")
    p.patch(builds, "profile", "quality: profile tables")
    p.patch(builds, "render_html_report", "quality: render HTML report")
    p.patch(builds.Builder, "_gate", "quality: gate (other: row counts, parent tables)")
    p.patch(storage.Lake, "write_bytes", "quality: write HTML report")
    p.patch(
        storage.Lake,
        "write_delta",
        lambda self, layer, name, *_, **__: f"commit {layer}.{name}: open table, count",
    )
    p.patch(
        storage,
        "write_deltalake",
        lambda *a, **k: (p.current() or "commit ?").replace("open table, count", "write_deltalake"),
    )


def _tables(result: Any) -> dict[str, dict[str, int]]:
    return {t.table: {"version": t.version, "rows": t.row_count} for t in result.tables}


def _quality(result: Any) -> dict[str, Any]:
    """What the quality gate said, if the builder has one."""

    def names(results: Any) -> list[str]:
        return [str(getattr(r, "check", r)) for r in results or []]

    return {
        "quality_blocked": bool(getattr(result, "quality_blocked", False)),
        "quality_failures": names(getattr(result, "quality_failures", None)),
        "quality_warnings": names(getattr(result, "quality_warnings", None)),
    }


def _preload() -> None:
    """Import what a running transformer has loaded already: imports are not build work."""
    import duckdb  # noqa: F401
    import holidays  # noqa: F401

    from services.ingestor import contracts, parsing, retention  # noqa: F401
    from services.transformer import builds  # noqa: F401


def _builder(root: Path) -> tuple[Any, Profiler]:
    """A `Builder` on the lake at `root`, instrumented, with what it imports loaded."""
    from services.transformer.builds import Builder
    from shared.settings import StorageSettings
    from shared.storage import Lake

    _preload()
    lake = Lake.from_settings(StorageSettings(local_root=root))
    profiler = Profiler()
    instrument_builder(profiler)
    return Builder(lake), profiler


# --- ours: Builder.rebuild_all() -------------------------------------------------------------


def full(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    """`Builder(lake).rebuild_all()` on a private copy of the generated bronze."""
    root = workdir / "lake"
    placed = copy_lake(source, root)
    builder, profiler = _builder(root)
    probe.start()
    result = builder.rebuild_all()
    probe.stop()
    tables = _tables(result)
    return {
        "rows": tables.get(f"silver.{DATASET}", {}).get("rows", 0),
        "fact_demand_rows": tables.get("gold.fact_demand", {}).get("rows", 0),
        "tables": tables,
        **_quality(result),
        "lake_bytes": _bytes_below(root / "silver") + _bytes_below(root / "gold"),
        "placed_by": placed,
        "breakdown": profiler.breakdown(probe.seconds),
        "breakdown_calls": profiler.calls,
    }


# --- ours: Builder.apply_bronze_event() for one new daily export -----------------------------


def incremental(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    """After a full rebuild (`source` is the lake it left), one new daily export lands in
    bronze and `apply_bronze_event` is timed from call to return, gold commits included."""
    from bench.common import MANIFEST
    from bench.transform.generate import write_new_day
    from services.ingestor.service import EVENT_ID_NAMESPACE, PRODUCER
    from shared.events import BronzeIngested, new_correlation_id

    root = workdir / "lake"
    placed = copy_lake(source, root)
    export = write_new_day(root, json.loads((root / MANIFEST).read_text()))
    event = BronzeIngested(
        event_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{export.content_sha256}.{DATASET}").hex,
        producer=PRODUCER,
        correlation_id=new_correlation_id(),
        **export.event_fields(),
    )
    builder, profiler = _builder(root)
    probe.start()
    result = builder.apply_bronze_event(event)
    probe.stop()
    tables = _tables(result)
    return {
        "rows": export.rows,
        "export": {"day": export.day.isoformat(), "bronze_path": export.bronze_path},
        "fact_demand_rows": tables.get("gold.fact_demand", {}).get("rows", 0),
        "tables": tables,
        **_quality(result),
        "placed_by": placed,
        "breakdown": profiler.breakdown(probe.seconds),
        "breakdown_calls": profiler.calls,
    }


# --- baseline: the same SQL, DuckDB straight on the bronze Parquet -----------------------------


def duckdb_direct(source: Path, workdir: Path, probe: Probe) -> dict[str, Any]:
    """The silver SQL on `read_parquet(bronze/**)`, then the gold SQL of every table the full
    rebuild builds from requisitions, as in-memory tables of one DuckDB connection: no Delta,
    no dedup, no schema checks, no Arrow hand-offs between steps."""
    import duckdb

    from services.transformer.builds import STATES, gold_targets, holidays_table
    from services.transformer.transforms import GOLD, SILVER, SILVER_DERIVED
    from shared import demand_classes

    schemas = {t.table: t.schema for t in (*SILVER.values(), *SILVER_DERIVED.values())}
    pattern = (source / "bronze" / DATASET / "**" / "*.parquet").as_posix()
    steps: dict[str, float] = {}

    def timed(step: str, sql: str) -> None:
        began = time.perf_counter()
        con.execute(sql)
        steps[step] = steps.get(step, 0.0) + time.perf_counter() - began

    def create(name: str, sql: str) -> str:
        return f"CREATE TABLE {name} AS\n{sql.strip().rstrip(';')}\n"

    def ensure(relation: str) -> None:
        if relation in created:
            return
        if relation.startswith("silver_"):  # another dataset's silver: empty here, as in ours
            con.register(relation, schemas[relation.removeprefix("silver_")].empty_table())
        elif relation == "states":
            con.register(relation, STATES)
        elif relation == "bounds":
            timed(
                "bounds + holidays",
                "CREATE TABLE bounds AS SELECT min(requested_date) AS first_date, "
                f"max(requested_date) AS last_date FROM silver_{DATASET}",
            )
        elif relation == "holidays":
            ensure("bounds")
            began = time.perf_counter()
            ((first, last),) = con.execute("SELECT first_date, last_date FROM bounds").fetchall()
            con.register(relation, holidays_table(first.year, last.year + 1))
            steps["bounds + holidays"] = steps.get("bounds + holidays", 0.0) + (
                time.perf_counter() - began
            )
        else:
            raise KeyError(f"the baseline does not know input {relation!r}")
        created.add(relation)

    targets = gold_targets({DATASET})
    probe.start()
    con = duckdb.connect(":memory:")
    con.execute(demand_classes.SQL_MACRO)  # dim_item.sql calls it, as inside the transformer
    created: set[str] = set()
    timed("bronze view", f"CREATE VIEW bronze AS SELECT * FROM read_parquet('{pattern}')")
    timed(f"sql silver.{DATASET}", create(f"silver_{DATASET}", SILVER[DATASET].sql))
    created.add(f"silver_{DATASET}")
    for name in targets:
        transform = GOLD[name]
        for relation in transform.inputs:
            ensure(relation)
        timed(f"sql gold.{name}", create(f"gold_{name}", transform.sql))
        created.add(f"gold_{name}")
    probe.stop()
    tables = {
        f"{layer}.{name}": {"rows": _count(con, f"{layer}_{name}")}
        for layer, name in [("silver", DATASET), *(("gold", t) for t in targets)]
    }
    con.close()
    steps["other"] = max(0.0, probe.seconds - sum(steps.values()))
    return {
        "rows": tables[f"silver.{DATASET}"]["rows"],
        "fact_demand_rows": tables.get("gold.fact_demand", {}).get("rows", 0),
        "tables": tables,
        "threads": _threads(),
        "breakdown": {k: round(v, 4) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
    }


def _count(con: Any, table: str) -> int:
    ((count,),) = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(count)


def _threads() -> int:
    import duckdb

    with duckdb.connect(":memory:") as con:
        ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
    return int(threads)


PathFunction = Callable[[Path, Path, Probe], dict[str, Any]]
FUNCTIONS: dict[str, PathFunction] = {
    "full": full,
    "incremental": incremental,
    "duckdb_direct": duckdb_direct,
}
