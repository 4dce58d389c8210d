"""What every gold endpoint shares: its parameters, how it reads gold and how it answers.

An endpoint reads one `GoldView` (a consistent set of table versions), answers from an
in-process cache keyed by that view, and labels the answer with an ETag of the view, so a
client revalidating an unchanged gold gets 304 without any work.
"""

import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import Depends, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from services.api import models, queries
from services.api.gateway import CachedAnswer, ResponseCache
from services.api.gold import FORECAST_RUNS, GoldState, GoldView, IndexedTable, UnknownVersionError
from services.api.problems import ApiProblem
from shared.settings import ApiSettings
from shared.storage import Lake

EndpointT = TypeVar("EndpointT", bound=Callable[..., Response])
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


async def current_view(request: Request) -> GoldView:  # async: no hop to a worker thread
    return request.app.state.gold.current  # type: ignore[no-any-return]


View = Annotated[GoldView, Depends(current_view)]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Format = Annotated[
    models.ExportFormat, Query(description="json, or the whole result as csv or parquet.")
]
AsOf = Annotated[
    int | None,
    Query(ge=0, le=2**31, description="Read the table at this Delta version (time travel)."),
]
Code = Annotated[str, Query(min_length=1, max_length=64, description="Material code.")]
Text = Annotated[str | None, Query(max_length=100)]


def inline_when(light: Callable[[dict[str, Any]], bool]) -> Callable[[EndpointT], EndpointT]:
    """Run a sync endpoint on the event loop when its answer is cheap: JSON from tables
    already in memory and `light(arguments)`. Such an answer costs less CPU than the hop
    to a worker thread and back, which then dominates. Anything that may load from storage
    (time travel, a view still loading) or work through a whole table (an export, demand
    of all items) goes to the thread pool, as FastAPI does with a sync endpoint, so the
    event loop is never blocked for long."""

    def wrap(endpoint: EndpointT) -> EndpointT:
        @functools.wraps(endpoint)
        async def run(**arguments: Any) -> Response:
            view = arguments.get("view")
            if (
                isinstance(view, GoldView)
                and view.preloaded
                and arguments.get("as_of_version") is None
                and arguments.get("format", "json") == "json"
                and light(arguments)
            ):
                return endpoint(**arguments)
            return await run_in_threadpool(endpoint, **arguments)

        return run  # type: ignore[return-value]

    return wrap


def always(_: dict[str, Any]) -> bool:
    return True


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def version_of(loaded: IndexedTable | None) -> int | None:
    return None if loaded is None else loaded.version


def rows_or_empty(loaded: IndexedTable | None) -> pa.Table | None:
    return None if loaded is None else loaded.data


def page_of(rows: pa.Table, offset: int, limit: int) -> list[dict[str, Any]]:
    """One page of rows as dicts; the page's model validates them (in pydantic-core, far
    faster than a model per row)."""
    if rows.num_columns == 0:  # the table does not exist yet
        return []
    return queries.rows(rows, offset, limit)


PageT = TypeVar("PageT", bound=BaseModel)


def paged(
    page: type[PageT], field: str, offset: int, limit: int, loaded: IndexedTable | None
) -> Callable[[pa.Table], PageT]:
    """The JSON model of a list endpoint: one page of the rows in `field`, with the total."""

    def to_model(rows: pa.Table) -> PageT:
        return page(
            **{field: page_of(rows, offset, limit)},
            total=rows.num_rows,
            limit=limit,
            offset=offset,
            version=version_of(loaded),
        )

    return to_model


def known_item(view: GoldView, code: str) -> None:
    items = view.table("dim_item")
    if items is None or not items.has(code):
        raise ApiProblem(404, "Unknown item", f"no item with code {code!r}")


def run_named(view: GoldView, run_id: str | None) -> dict[str, Any] | None:
    """A forecast run's row of gold.forecast_runs (read-only: shared by the view's requests)."""

    def find() -> dict[str, Any] | None:
        runs = view.table(FORECAST_RUNS)
        if runs is None or run_id is None:
            return None
        chosen = runs.data.filter(pc.equal(runs.data["run_id"], run_id))
        return chosen.to_pylist()[0] if chosen.num_rows else None

    return view.memo(f"run:{run_id}", find)


def last_run(view: GoldView) -> dict[str, Any] | None:
    """The forecast run the view pins, else the newest one gold records."""

    def find() -> dict[str, Any] | None:
        runs = view.table(FORECAST_RUNS)
        if runs is None or runs.data.num_rows == 0:
            return None
        newest = runs.data.sort_by([("finished_at", "descending")])["run_id"][0].as_py()
        return run_named(view, view.pin.run_id) or run_named(view, newest)

    return view.memo("last_run", find)


def run_parameters(run: dict[str, Any] | None) -> dict[str, Any]:
    parameters = json.loads(run.get("parameters") or "{}") if run else {}
    return parameters if isinstance(parameters, dict) else {}


def run_bucket(run: dict[str, Any] | None) -> str:
    return str(run_parameters(run).get("bucket", "week"))


def run_service_level(run: dict[str, Any] | None) -> float | None:
    level = run_parameters(run).get("service_level")
    return float(level) if isinstance(level, int | float) else None


def run_json(run: dict[str, Any], column: str) -> dict[str, Any] | None:
    """A JSON column of a gold.forecast_runs row as a dict; None when the run is older than
    the column (or it holds no object)."""
    text = run.get(column)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Answers:
    """How endpoints read gold and answer, for one app (its settings, state and cache)."""

    settings: ApiSettings
    state: GoldState
    cache: ResponseCache
    lake: Lake
    _known: dict[int, frozenset[str]] = field(default_factory=dict)  # by id(route)

    @property
    def default_page(self) -> int:
        return min(50, self.settings.max_page_size)

    @property
    def limit(self) -> Any:
        """The page-size parameter, bounded by the configured maximum."""
        return Annotated[int, Query(ge=1, le=self.settings.max_page_size, description="Page size.")]

    def check_range(self, date_from: date | None, date_to: date | None) -> None:
        """`from`..`to` in order and within the configured maximum, else a 422 problem."""
        try:
            queries.check_range(date_from, date_to, self.settings.max_date_range_days)
        except queries.BadQuery as error:
            raise ApiProblem(422, "Invalid parameters", str(error)) from error

    def table(self, view: GoldView, name: str, as_of: int | None = None) -> IndexedTable | None:
        if as_of is not None:
            try:
                return self.state.table_at(name, as_of)
            except UnknownVersionError as error:
                raise ApiProblem(404, "Unknown version", str(error)) from error
        return view.table(name)

    @staticmethod
    def token(view: GoldView, name: str | None, as_of: int | None) -> str:
        if as_of is not None and name is not None:
            return f"{name}@{as_of}"
        return view.etag

    def known_parameters(self, route: APIRoute) -> frozenset[str]:
        """The query parameter names a route declares (its own and its dependencies')."""
        if id(route) not in self._known:
            names: set[str] = set()
            pending = [route.dependant]
            while pending:
                dependant = pending.pop()
                names.update(p.alias for p in dependant.query_params)
                pending.extend(dependant.dependencies)
            self._known[id(route)] = frozenset(names)
        return self._known[id(route)]

    def serve(
        self,
        request: Request,
        view: GoldView,
        tag: str,
        build: Callable[[], BaseModel | pa.Table],
        *,
        fmt: str = "json",
        to_model: Callable[[pa.Table], BaseModel] | None = None,
        version: int | None = None,
    ) -> Response:
        """Answer from `build`, with ETag and Cache-Control of the gold view, and keep the
        answer for the gateway to send again while `view` is current."""
        etag = f'"{tag}-{fmt}"'
        headers = {
            "Cache-Control": f"max-age={self.settings.cache_max_age_seconds}, must-revalidate"
        }
        if version is not None:
            headers["X-Gold-Version"] = str(version)
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers={"ETag": etag, **headers})
        result = build()
        if isinstance(result, pa.Table):
            if fmt == "json":
                assert to_model is not None, "a table result needs a model for json"
                body = to_model(result).model_dump_json().encode()
            else:
                body = table_bytes(result, fmt)
        else:
            body = result.model_dump_json().encode()
        route = request.scope.get("route")
        if route is not None and set(request.query_params) <= self.known_parameters(route):
            # Unknown parameters are ignored by validation, so each would be a new entry:
            # such answers are not kept, and junk in a URL cannot flush the cache.
            self.cache.put(
                (view.etag, request.url.path, request.scope["query_string"]),
                CachedAnswer(
                    body=body,
                    media_type=MEDIA[fmt],
                    etag=etag,
                    route=route.path,
                    headers=tuple((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ),
            )
        return Response(content=body, media_type=MEDIA[fmt], headers={"ETag": etag, **headers})

    def serve_table(
        self,
        request: Request,
        view: GoldView,
        name: str,
        as_of: int | None,
        loaded: IndexedTable | None,
        build: Callable[[], BaseModel | pa.Table],
        fmt: str,
        to_model: Callable[[pa.Table], BaseModel],
    ) -> Response:
        """`serve` for an endpoint reading one table (`as_of` time travel included)."""
        tag = self.token(view, name, as_of)
        return self.serve(request, view, tag, build, fmt=fmt, to_model=to_model,
                          version=version_of(loaded))  # fmt: skip
