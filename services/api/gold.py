"""Gold as the API sees it: one immutable view per set of table versions, swapped atomically.

A request takes `GoldState.current` once and reads every table through that view, so it sees
one consistent set of versions even if a newer view is published while it runs. New views are
prepared off the request path (the refresher thread) with the tables the old view had loaded
already in memory, so a switch never makes a request wait for a load.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from shared.logging import get_logger
from shared.manifests import (
    FORECAST_RUNS,
    GOLD_BUILDS,
    commit_info,
    live_forecast_versions,
    live_gold_versions,
)
from shared.storage import Lake

log = get_logger(__name__)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
T = TypeVar("T")

# Tables the API serves, with the column requests look rows up by (sorted on load).
SERVED_TABLES: dict[str, str | None] = {
    "dim_item": "item_code",
    "dim_site": "site_code",
    "dim_supplier": "supplier_name",
    "dim_date": None,
    "fact_demand": "item_code",
    "fact_lead_time": "item_code",
    "fact_stock": "item_code",
    "fact_external_daily": None,
    "mart_features": "item_code",
    "dq_results": None,
    "fact_forecast": "item_code",
    "forecast_accuracy": None,
    "inventory_policy": "item_code",
    GOLD_BUILDS: None,
    FORECAST_RUNS: None,
}
# What the endpoints read, loaded in the background at start so no request pays for it;
# small tables first, so the cheap endpoints are ready soonest.
PRELOAD = (
    GOLD_BUILDS,
    FORECAST_RUNS,
    "dim_item",
    "dim_site",
    "dim_supplier",
    "dq_results",
    "inventory_policy",
    "forecast_accuracy",
    "fact_forecast",
    "fact_demand",
)


# A version check reads two small manifests: this long without an answer, storage is not
# answering (a silent S3 endpoint can keep a read waiting for the client's whole timeout).
STORAGE_STALL_SECONDS = 10.0


class UnknownVersionError(LookupError):
    """`as_of_version` names a version the table never had."""


@dataclass(frozen=True)
class IndexedTable:
    """A table sorted by its key column, with the row range of each key value."""

    name: str
    version: int
    data: pa.Table
    key: str | None
    ranges: Mapping[str, tuple[int, int]]
    _maxima: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, name: str, version: int, data: pa.Table, key: str | None) -> IndexedTable:
        if key is None or key not in data.column_names:
            return cls(name, version, data, None, {})
        if data.num_rows == 0:
            return cls(name, version, data, key, {})
        # Sorting millions of strings is slow; the few thousand distinct codes are sorted once
        # and the rows by their integer rank, which gives the same order.
        encoded = pc.dictionary_encode(data[key].combine_chunks())
        codes = encoded.dictionary
        code_order = pc.array_sort_indices(codes, null_placement="at_end")
        rank_of_code = pc.array_sort_indices(code_order)  # inverse permutation
        ranks = pc.take(rank_of_code, encoded.indices)
        ranks = pc.if_else(pc.is_null(ranks), len(codes), ranks)  # null keys sort last
        order = pc.array_sort_indices(ranks)
        data = data.take(order)
        sizes = pc.value_counts(pc.take(ranks, order)).flatten()[1]
        ranges: dict[str, tuple[int, int]] = {}
        start = 0
        for code_index, size in zip(code_order.to_pylist(), sizes.to_pylist(), strict=False):
            value = codes[code_index].as_py()
            if value is not None:
                ranges[value] = (start, size)
            start += size
        return cls(name, version, data, key, ranges)

    def rows_for(self, value: str) -> pa.Table:
        if self.key is None:
            raise ValueError(f"gold.{self.name} has no lookup key")
        start, size = self.ranges.get(value, (0, 0))
        return self.data.slice(start, size)

    def has(self, value: str) -> bool:
        return value in self.ranges

    def maximum(self, column: str) -> Any:
        """Largest value of a column, computed once per loaded version."""
        if column not in self._maxima:
            self._maxima[column] = pc.max(self.data[column]).as_py() if self.data.num_rows else None
        return self._maxima[column]


@dataclass(frozen=True)
class Pin:
    """The versions a view reads, and where they came from."""

    versions: Mapping[str, int]
    build_id: str | None = None
    run_id: str | None = None

    @property
    def etag(self) -> str:
        text = ",".join(f"{k}={v}" for k, v in sorted(self.versions.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def resolve_pin(lake: Lake) -> Pin:
    """Versions of the latest completed gold build and forecast run, as their manifests name
    them, and the manifests' own latest versions.

    No other table is read at its latest version: a build or run in progress may be half
    committed (before the first manifest, nothing is served).
    """
    versions: dict[str, int] = {}
    build_id = None
    gold = live_gold_versions(lake)
    if gold is not None:
        build_id, versions = gold[0], dict(gold[1])
    versions.update(live_forecast_versions(lake) or {})
    run_id = None
    for manifest in (GOLD_BUILDS, FORECAST_RUNS):
        table = lake.delta_table("gold", manifest)
        if table is not None:
            versions[manifest] = table.version()
            if manifest == FORECAST_RUNS:
                run_id = commit_info(lake, manifest, table.version()).get("run_id")
    return Pin(versions, build_id, run_id)


@dataclass
class GoldView:
    """Gold at one pinned set of versions; tables load on first use and stay loaded."""

    lake: Lake
    pin: Pin
    created_at: float = field(default_factory=time.time)
    _tables: dict[str, IndexedTable | None] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _memo: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """A value derived from this view's tables, computed once (a race computes it twice,
        harmlessly: both results are equal)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]

    @property
    def preloaded(self) -> bool:
        return all(n in self._tables for n in PRELOAD if n in self.pin.versions)

    def preload(self) -> None:
        for name in PRELOAD:
            self.table(name)

    @property
    def etag(self) -> str:
        return self.pin.etag

    def version(self, name: str) -> int | None:
        return self.pin.versions.get(name)

    def loaded(self) -> dict[str, IndexedTable]:
        return {k: v for k, v in self._tables.items() if v is not None}

    def adopt(self, table: IndexedTable) -> None:
        """Reuse a table already in memory (same name and version) from an older view."""
        if self.pin.versions.get(table.name) == table.version:
            self._tables[table.name] = table

    def table(self, name: str) -> IndexedTable | None:
        """The table at this view's version, or None when gold has no such table yet."""
        if name in self._tables:
            return self._tables[name]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._tables:
                self._tables[name] = self._load(name)
        return self._tables[name]

    def _load(self, name: str) -> IndexedTable | None:
        version = self.pin.versions.get(name)
        if version is None:
            return None
        started = time.perf_counter()
        loaded = load_table(self.lake, name, version)
        log.info(
            "gold_table_loaded",
            table=f"gold.{name}",
            version=version,
            rows=loaded.data.num_rows,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return loaded


def load_table(lake: Lake, name: str, version: int) -> IndexedTable:
    delta = lake.delta_table("gold", name, version=version)
    if delta is None:
        raise UnknownVersionError(f"gold.{name} does not exist")
    return IndexedTable.build(name, version, delta.to_pyarrow_table(), SERVED_TABLES.get(name))


class GoldState:
    """The current view, replaced whole by `refresh`; readers never lock."""

    def __init__(
        self, lake: Lake, history_cache: int = 4, stall_seconds: float = STORAGE_STALL_SECONDS
    ) -> None:
        self._lake = lake
        self._stall_seconds = stall_seconds
        self._checking_since: float | None = None
        self.current = GoldView(lake, Pin({}))
        self._refresh_lock = threading.Lock()
        self._history: OrderedDict[tuple[str, int], IndexedTable] = OrderedDict()
        self._history_lock = threading.Lock()
        self._history_size = history_cache
        self.last_checked: datetime | None = None
        self.last_error: str | None = None

    def refresh(self, *, preload: bool = True) -> bool:
        """Publish a new view if gold moved; returns whether it did.

        The new view's tables are loaded before it is published, so no request waits. If
        storage fails meanwhile, the current view stays and `last_error` says why.
        """
        with self._refresh_lock:
            try:
                switched = self._switch_if_moved(preload)
                self.last_error = None
                return switched
            except Exception as error:  # storage down: keep serving the view we have
                # One line, without the terminal colours deltalake puts in its messages.
                # Which storage, too: the client libraries' texts do not always say.
                text = ANSI_ESCAPE.sub(
                    "", f"lake at {self._lake.location}: {type(error).__name__}: {error}"
                )
                self.last_error = " ".join(text.split())
                log.warning("gold_version_check_failed", error=self.last_error)
                return False
            finally:
                self.last_checked = datetime.now().astimezone()

    @property
    def storage_problem(self) -> str | None:
        """Why gold cannot be trusted to be current: the last check's error, or a check that
        has waited `stall_seconds` for storage to answer."""
        since = self._checking_since
        if since is not None and (waited := time.monotonic() - since) > self._stall_seconds:
            return (
                f"storage has not answered a version check for {waited:.0f} s "
                f"(lake at {self._lake.location})"
            )
        return self.last_error

    def _switch_if_moved(self, preload: bool) -> bool:
        self._checking_since = time.monotonic()
        try:
            pin = resolve_pin(self._lake)
        finally:
            self._checking_since = None
        old = self.current
        if pin.versions == old.pin.versions:
            return False
        view = GoldView(self._lake, pin)
        for table in old.loaded().values():
            view.adopt(table)
        if preload:
            view.preload()
        for name in old.loaded():
            view.table(name)
        self.current = view
        log.info(
            "gold_view_switched",
            build_id=pin.build_id,
            run_id=pin.run_id,
            versions=dict(pin.versions),
            etag=pin.etag,
        )
        return True

    def table_at(self, name: str, version: int) -> IndexedTable:
        """A past (or current) version of a table, for `as_of_version`; a few are kept."""
        view = self.current
        latest = view.version(name)
        if latest is None or version > latest:
            # Checked here: asked for a version far beyond the log, deltalake searches for
            # minutes before failing.
            raise UnknownVersionError(
                f"gold.{name} has no version {version}"
                + (f" (the latest served is {latest})" if latest is not None else "")
            )
        if latest == version:
            loaded = view.table(name)
            if loaded is not None:
                return loaded
        key = (name, version)
        with self._history_lock:
            if key in self._history:
                self._history.move_to_end(key)
                return self._history[key]
        try:
            loaded = load_table(self._lake, name, version)
        except UnknownVersionError:
            raise
        except Exception as error:
            raise UnknownVersionError(f"gold.{name} has no version {version}") from error
        with self._history_lock:
            self._history[key] = loaded
            while len(self._history) > self._history_size:
                self._history.popitem(last=False)
        return loaded


class Refresher:
    """Checks for new gold versions every `interval` seconds, or at once when poked."""

    def __init__(self, state: GoldState, interval: float) -> None:
        self._state = state
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gold-refresher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            self._state.current.preload()
        except Exception as error:  # storage trouble: requests load on demand, /ready says why
            log.warning("gold_preload_failed", error=f"{type(error).__name__}: {error}")
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stop.is_set():
                self._state.refresh()
