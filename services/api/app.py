"""The FastAPI application; `create_app` is its only entry point.

Every gold endpoint reads one `GoldView` (a consistent set of table versions), answers from
an in-process cache keyed by that view, and labels the answer with an ETag of the view, so a
client revalidating an unchanged gold gets 304 without any work.
"""

import functools
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    generate_latest,
)
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api import models, queries
from services.api.feed import EventFeed
from services.api.gateway import CachedAnswer, Gateway, Metrics, ResponseCache
from services.api.gold import (
    FORECAST_RUNS,
    GOLD_BUILDS,
    GoldState,
    GoldView,
    IndexedTable,
    Refresher,
    UnknownVersionError,
)
from shared.logging import get_logger
from shared.settings import ApiSettings
from shared.storage import Lake

log = get_logger(__name__)
EndpointT = TypeVar("EndpointT", bound=Callable[..., Response])
STATIC = Path(__file__).parent / "static"
PROBLEM = "application/problem+json"
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
BUILD_ID = re.compile(r"^[0-9a-f]{8,64}$")
HISTORY_PERIODS = 52


class ApiProblem(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(
    request: Request, status: int, title: str, detail: str | None = None, **extra: Any
) -> JSONResponse:
    headers = extra.pop("headers", None)
    body = models.Problem(
        title=title, status=status, detail=detail, instance=request.url.path, **extra
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM, headers=headers
    )


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def version_of(loaded: IndexedTable | None) -> int | None:
    return None if loaded is None else loaded.version


def create_app(
    settings: ApiSettings,
    lake: Lake,
    *,
    feed_factory: Callable[[Callable[[], None]], EventFeed] | None = None,
    quarantine_dir: Path | None = None,
) -> FastAPI:
    """The API over `lake`. `feed_factory` builds the NATS listener (None: periodic checks
    only); `quarantine_dir` is the ingestor's quarantine folder when this host can see it."""
    state = GoldState(lake)
    refresher = Refresher(state, settings.version_check_seconds)
    cache = ResponseCache(settings.cache_entries)
    metrics = Metrics()
    feed = feed_factory(refresher.poke) if feed_factory is not None else None
    max_page = settings.max_page_size
    default_page = min(50, max_page)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Versions only (a look at two manifests); the refresher loads the tables next, in
        # the background, so the process answers at once.
        state.refresh(preload=False)
        refresher.start()
        if feed is not None:
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                await feed.stop()
            refresher.stop()

    app = FastAPI(
        title="Nova Corrente data platform API",
        version="1",
        description=(
            "Read-only access to gold tables, forecasts and inventory policy. The API serves "
            "precomputed data only: it never trains, predicts or writes. Errors are RFC 9457 "
            "problem details (`application/problem+json`)."
        ),
        lifespan=lifespan,
        responses={422: {"model": models.Problem, "description": "Invalid parameters."}},
    )
    app.state.gold = state
    app.state.cache = cache

    # --- errors: problem details, never a stack trace -------------------------------------

    @app.exception_handler(ApiProblem)
    async def on_problem(request: Request, error: ApiProblem) -> JSONResponse:
        return problem_response(request, error.status, error.title, error.detail, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        return problem_response(request, 422, "Invalid parameters", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed"}
        return problem_response(
            request,
            error.status_code,
            titles.get(error.status_code, "HTTP error"),
            str(error.detail),
        )

    @app.exception_handler(Exception)
    async def on_crash(request: Request, error: Exception) -> JSONResponse:
        with suppress(Exception):  # a failing log line must not cost the client its answer
            log.exception("request_failed", path=request.url.path, error_type=type(error).__name__)
        return problem_response(request, 500, "Internal error", "The error was logged.")

    # The gateway answers cached requests itself; CORS wraps it so those answers get CORS
    # headers too (the last middleware added is the outermost).
    app.add_middleware(
        Gateway,
        state=state,
        cache=cache,
        metrics=metrics,
        keys=settings.key_list,
        max_query_bytes=settings.max_query_bytes,
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "HEAD"],
            allow_headers=["Authorization", "X-API-Key", "If-None-Match"],
            expose_headers=["ETag", "X-Gold-Version"],
        )

    # --- dependencies ---------------------------------------------------------------------

    async def current_view() -> GoldView:  # async: no hop to a worker thread for this
        return state.current

    View = Annotated[GoldView, Depends(current_view)]

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

    Limit = Annotated[int, Query(ge=1, le=max_page, description="Page size.")]
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

    def table(view: GoldView, name: str, as_of: int | None = None) -> IndexedTable | None:
        if as_of is not None:
            try:
                return state.table_at(name, as_of)
            except UnknownVersionError as error:
                raise ApiProblem(404, "Unknown version", str(error)) from error
        return view.table(name)

    def token(view: GoldView, name: str | None, as_of: int | None) -> str:
        if as_of is not None and name is not None:
            return f"{name}@{as_of}"
        return view.etag

    known: dict[int, frozenset[str]] = {}  # by id(route): routes live as long as the app

    def known_parameters(route: APIRoute) -> frozenset[str]:
        """The query parameter names a route declares (its own and its dependencies')."""
        if id(route) not in known:
            names: set[str] = set()
            pending = [route.dependant]
            while pending:
                dependant = pending.pop()
                names.update(p.alias for p in dependant.query_params)
                pending.extend(dependant.dependencies)
            known[id(route)] = frozenset(names)
        return known[id(route)]

    def serve(
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
        headers = {"Cache-Control": f"max-age={settings.cache_max_age_seconds}, must-revalidate"}
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
        if route is not None and set(request.query_params) <= known_parameters(route):
            # Unknown parameters are ignored by validation, so each would be a new entry:
            # such answers are not kept, and junk in a URL cannot flush the cache.
            cache.put(
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
        tag = token(view, name, as_of)
        return serve(request, view, tag, build, fmt=fmt, to_model=to_model,
                     version=version_of(loaded))  # fmt: skip

    def rows_or_empty(loaded: IndexedTable | None) -> pa.Table | None:
        return None if loaded is None else loaded.data

    def page_of(rows: pa.Table, offset: int, limit: int) -> list[dict[str, Any]]:
        """One page of rows as dicts; the page's model validates them (in pydantic-core,
        far faster than a model per row)."""
        if rows.num_columns == 0:  # the table does not exist yet
            return []
        return queries.rows(rows, offset, limit)

    api = APIRouter(prefix="/api/v1")

    # --- items, sites, suppliers ----------------------------------------------------------

    ItemSort = Annotated[
        str,
        Query(
            pattern=r"^-?(item_code|item_description|total_quantity|request_lines|last_seen|adi|cv2)$",
            description="Column to sort by; a leading '-' sorts descending.",
        ),
    ]

    @api.get("/items", response_model=models.ItemPage, tags=["items"])
    @inline_when(always)
    def list_items(
        request: Request,
        view: View,
        limit: Limit = default_page,
        offset: Offset = 0,
        family: Annotated[str | None, Query(max_length=100, description="Exact family.")] = None,
        demand_class: Annotated[
            str | None, Query(pattern="^(smooth|erratic|intermittent|lumpy)$")
        ] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="Text in code or description.")
        ] = None,
        sort: ItemSort = "item_code",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Materials with their demand statistics and class, filtered, sorted and paged."""
        loaded = table(view, "dim_item", as_of_version)

        def build() -> pa.Table:
            if loaded is None:
                return pa.table({})
            if not (family or demand_class or q):  # the usual listing: sorted once per view
                return view.memo(
                    f"items:{loaded.version}:{sort}",
                    lambda: queries.sort(loaded.data, sort, "item_code"),
                )
            rows = queries.equals(loaded.data, "item_family", family, upper=True)
            rows = queries.equals(rows, "demand_class", demand_class)
            rows = queries.search(rows, q, ["item_code", "item_description"])
            # Loaded tables are already in key order; filters keep it.
            return rows if sort == "item_code" else queries.sort(rows, sort, "item_code")

        def model(rows: pa.Table) -> models.ItemPage:
            return models.ItemPage(
                items=page_of(rows, offset, limit),
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                version=version_of(loaded),
            )

        version = version_of(loaded)
        return serve(
            request,
            view,
            token(view, "dim_item", as_of_version),
            build,
            fmt=format,
            to_model=model,
            version=version,
        )

    def policy_row(view: GoldView, code: str) -> dict[str, Any] | None:
        policy = view.table("inventory_policy")
        if policy is None or not policy.has(code):
            return None
        return policy.rows_for(code).to_pylist()[0]

    @api.get(
        "/items/{code}",
        response_model=models.ItemDetail,
        tags=["items"],
        responses={404: {"model": models.Problem}},
    )
    @inline_when(always)
    def get_item(
        request: Request,
        view: View,
        code: Annotated[str, PathParam(max_length=64, description="Material code.")],
    ) -> Response:
        """One material: its statistics, the sites that use it, its forecast series and its
        inventory policy."""
        items = view.table("dim_item")
        if items is None or not items.has(code):
            raise ApiProblem(404, "Unknown item", f"no item with code {code!r}")

        def build() -> models.ItemDetail:
            row = items.rows_for(code).to_pylist()[0]
            demand = view.table("fact_demand")
            sites = (
                sorted(s for s in pc.unique(demand.rows_for(code)["site_code"]).to_pylist() if s)
                if demand is not None
                else []
            )
            forecasts = view.table("fact_forecast")
            series = (
                sorted(pc.unique(forecasts.rows_for(code)["series_id"]).to_pylist())
                if forecasts is not None and forecasts.has(code)
                else []
            )
            policy = policy_row(view, code)
            return models.ItemDetail(
                **row,
                sites=sites,
                forecast_series=series,
                policy=models.InventoryPolicy(**policy) if policy else None,
            )

        return serve(request, view, view.etag, build, version=items.version)

    @api.get("/sites", response_model=models.SitePage, tags=["items"])
    @inline_when(always)
    def list_sites(
        request: Request,
        view: View,
        limit: Limit = default_page,
        offset: Offset = 0,
        state_code: Annotated[str | None, Query(alias="state", max_length=2)] = None,
        q: Text = None,
        sort: Annotated[
            str, Query(pattern=r"^-?(site_code|client_name|request_lines|last_seen)$")
        ] = "site_code",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Sites and depots that request material, with their client and state."""
        loaded = table(view, "dim_site", as_of_version)

        def build() -> pa.Table:
            if loaded is None:
                return pa.table({})
            rows = queries.equals(loaded.data, "state", state_code, upper=True)
            rows = queries.search(rows, q, ["site_code", "client_name"])
            return rows if sort == "site_code" else queries.sort(rows, sort, "site_code")

        def model(rows: pa.Table) -> models.SitePage:
            return models.SitePage(
                sites=page_of(rows, offset, limit),
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                version=version_of(loaded),
            )

        return serve_table(request, view, "dim_site", as_of_version, loaded, build, format, model)

    @api.get("/suppliers", response_model=models.SupplierPage, tags=["items"])
    @inline_when(always)
    def list_suppliers(
        request: Request,
        view: View,
        limit: Limit = default_page,
        offset: Offset = 0,
        q: Text = None,
        sort: Annotated[
            str,
            Query(
                pattern=r"^-?(supplier_name|order_count|line_count|lead_time_mean_days|"
                r"lead_time_p90_days|last_order_date)$"
            ),
        ] = "-order_count",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Suppliers with their lead-time statistics."""
        loaded = table(view, "dim_supplier", as_of_version)

        def build() -> pa.Table:
            if loaded is None:
                return pa.table({})
            rows = queries.search(loaded.data, q, ["supplier_name"])
            return queries.sort(rows, sort, "supplier_name")

        def model(rows: pa.Table) -> models.SupplierPage:
            return models.SupplierPage(
                suppliers=page_of(rows, offset, limit),
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "dim_supplier", as_of_version, loaded, build, format, model
        )

    # --- demand and forecasts -------------------------------------------------------------

    def known_item(view: GoldView, code: str) -> None:
        items = view.table("dim_item")
        if items is None or not items.has(code):
            raise ApiProblem(404, "Unknown item", f"no item with code {code!r}")

    @api.get(
        "/demand",
        response_model=models.DemandHistory,
        tags=["demand"],
        responses={404: {"model": models.Problem}},
    )
    @inline_when(lambda arguments: bool(arguments["item"]))
    def demand(
        request: Request,
        view: View,
        item: Annotated[
            str | None, Query(max_length=64, description="Material code; none: all.")
        ] = None,
        site: Annotated[
            str | None, Query(max_length=64, description="Site code; none: all.")
        ] = None,
        date_from: Annotated[date | None, Query(alias="from")] = None,
        date_to: Annotated[date | None, Query(alias="to")] = None,
        grain: Annotated[models.Grain, Query()] = "week",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Demand history per day, ISO week or month, every period in range (0 when none)."""
        try:
            queries.check_range(date_from, date_to, settings.max_date_range_days)
        except queries.BadQuery as error:
            raise ApiProblem(422, "Invalid parameters", str(error)) from error
        if item:
            known_item(view, item)
        loaded = table(view, "fact_demand", as_of_version)

        def build() -> pa.Table:
            if loaded is None:
                return queries.DEMAND_SCHEMA.empty_table()
            rows = loaded.rows_for(item) if item else loaded.data
            # Up to the end of gold's history, so "nothing since" shows as zeros.
            until = date_to or loaded.maximum("demand_date")
            if date_from is not None and until is not None and until < date_from:
                until = date_from
            return queries.demand_history(
                rows,
                site=site,
                date_from=date_from,
                date_to=until,
                grain=grain,
                max_days=settings.max_date_range_days,
            )

        def model(rows: pa.Table) -> models.DemandHistory:
            return models.DemandHistory(
                item_code=item or None,
                site_code=site or None,
                grain=grain,
                date_from=date_from,
                date_to=date_to,
                points=queries.records(rows),
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "fact_demand", as_of_version, loaded, build, format, model
        )

    def last_run(view: GoldView) -> dict[str, Any] | None:
        def find() -> dict[str, Any] | None:
            runs = view.table(FORECAST_RUNS)
            if runs is None or runs.data.num_rows == 0:
                return None
            chosen = runs.data.filter(pc.equal(runs.data["run_id"], view.pin.run_id or ""))
            if chosen.num_rows == 0:
                chosen = runs.data.sort_by([("finished_at", "descending")]).slice(0, 1)
            return chosen.to_pylist()[0]

        return view.memo("last_run", find)

    def run_bucket(view: GoldView) -> str:
        run = last_run(view)
        parameters = json.loads(run["parameters"]) if run else {}
        return str(parameters.get("bucket", "week"))

    @api.get(
        "/forecasts",
        response_model=models.ItemForecast,
        tags=["forecasts"],
        responses={404: {"model": models.Problem}},
    )
    @inline_when(always)
    def forecasts(
        request: Request,
        view: View,
        item: Code,
        site: Annotated[
            str | None,
            Query(
                max_length=64,
                description="A site's series; `*` for every series of the item; "
                "none: the item-level series (all sites together).",
            ),
        ] = None,
        horizon: Annotated[
            int | None, Query(ge=1, le=520, description="Steps ahead to return.")
        ] = None,
        format: Format = "json",
    ) -> Response:
        """The latest run's forecast of one item: quantiles p10..p90, the service-level
        quantile, the chosen model and run id, with actuals beside them."""
        known_item(view, item)
        loaded = view.table("fact_forecast")
        if loaded is None or not loaded.has(item):
            raise ApiProblem(
                404, "No forecast", f"the latest forecast run has no series for {item!r}"
            )
        run = last_run(view)
        bucket = run_bucket(view)
        demand_table = view.table("fact_demand")

        def series() -> list[dict[str, Any]]:
            history = (
                demand_table.rows_for(item)
                if demand_table is not None
                else queries.DEMAND_SCHEMA.empty_table()
            )
            return queries.forecast_series(
                loaded.rows_for(item),
                history,
                site=site,
                horizon=horizon,
                bucket=bucket,
                history_periods=HISTORY_PERIODS,
                data_end=demand_table.maximum("demand_date") if demand_table else None,
            )

        def build() -> BaseModel | pa.Table:
            chosen = series()
            if not chosen:
                raise ApiProblem(404, "No forecast", f"no series of {item!r} for site {site!r}")
            if format != "json":
                flat = [
                    {
                        "series_id": s["series_id"],
                        "site_code": s["site_code"],
                        "model": s["model"],
                        **p,
                    }
                    for s in chosen
                    for p in s["points"]
                ]
                return (
                    pa.Table.from_pylist(flat)
                    if flat
                    else pa.table({"series_id": pa.array([], pa.string())})
                )
            rows = loaded.rows_for(item)
            return models.ItemForecast(
                item_code=item,
                run_id=run["run_id"] if run else rows["run_id"][0].as_py(),
                bucket=bucket,
                service_level=rows["service_level"][0].as_py(),
                series=chosen,
                version=loaded.version,
            )

        return serve(request, view, view.etag, build, fmt=format, version=loaded.version)

    @api.get("/forecasts/summary", response_model=models.ForecastSummary, tags=["forecasts"])
    def forecast_summary(
        request: Request,
        view: View,
        date_from: Annotated[date | None, Query(alias="from")] = None,
        date_to: Annotated[date | None, Query(alias="to")] = None,
        format: Format = "json",
    ) -> Response:
        """Forecast totals per period over all items (item-level series)."""
        try:
            queries.check_range(date_from, date_to, settings.max_date_range_days)
        except queries.BadQuery as error:
            raise ApiProblem(422, "Invalid parameters", str(error)) from error
        loaded = view.table("fact_forecast")
        run = last_run(view)

        def build() -> pa.Table:
            if loaded is None:
                return queries.SUMMARY_SCHEMA.empty_table()
            return queries.forecast_summary(loaded.data, date_from, date_to)

        def model(rows: pa.Table) -> models.ForecastSummary:
            return models.ForecastSummary(
                run_id=run["run_id"] if run else None,
                periods=queries.records(rows),
                version=version_of(loaded),
            )

        return serve(
            request, view, view.etag, build, fmt=format, to_model=model, version=version_of(loaded)
        )

    # --- inventory ------------------------------------------------------------------------

    @api.get(
        "/inventory/policy",
        response_model=models.PolicyPage,
        tags=["inventory"],
        responses={404: {"model": models.Problem}},
    )
    @inline_when(always)
    def inventory_policy(
        request: Request,
        view: View,
        item: Annotated[str | None, Query(max_length=64, description="One material.")] = None,
        limit: Limit = default_page,
        offset: Offset = 0,
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Safety stock, reorder point, service level and lead-time statistics per item."""
        loaded = table(view, "inventory_policy", as_of_version)
        if item:
            known_item(view, item)
            if loaded is None or not loaded.has(item):
                raise ApiProblem(
                    404, "No policy", f"the latest forecast run has no policy for {item!r}"
                )

        def build() -> pa.Table:
            if loaded is None:
                return pa.table({})
            return loaded.rows_for(item) if item else loaded.data

        def model(rows: pa.Table) -> models.PolicyPage:
            return models.PolicyPage(
                policies=page_of(rows, offset, limit),
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "inventory_policy", as_of_version, loaded, build, format, model
        )

    @api.get("/inventory/alerts", response_model=models.AlertPage, tags=["inventory"])
    @inline_when(always)
    def inventory_alerts(
        request: Request,
        view: View,
        level: Annotated[
            list[models.AlertLevel] | None,
            Query(description="Alert levels to list (repeatable); default critical and attention."),
        ] = None,
        limit: Limit = default_page,
        offset: Offset = 0,
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Items at or below their reorder point, most urgent first, with days of cover."""
        levels = sorted(set(level or ["critical", "attention"]), key=queries.ALERT_ORDER.get)
        loaded = table(view, "inventory_policy", as_of_version)
        items = view.table("dim_item")

        def build() -> pa.Table:
            if loaded is None:
                return pa.table({})
            return view.memo(
                f"alerts:{loaded.version}:{','.join(levels)}",
                lambda: queries.alerts(loaded.data, rows_or_empty(items), levels),
            )

        def model(rows: pa.Table) -> models.AlertPage:
            return models.AlertPage(
                alerts=page_of(rows, offset, limit),
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "inventory_policy", as_of_version, loaded, build, format, model
        )

    # --- KPIs and quality -----------------------------------------------------------------

    @api.get("/kpis/forecast-accuracy", response_model=models.ForecastAccuracy, tags=["kpis"])
    def forecast_accuracy(
        request: Request,
        view: View,
        by: Annotated[str, Query(pattern="^(demand_class|model|family)$")] = "demand_class",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Backtest accuracy of the selected model of each series, by demand class, model or
        item family."""
        loaded = table(view, "forecast_accuracy", as_of_version)
        items = view.table("dim_item")
        run = last_run(view)

        def build() -> pa.Table:
            if loaded is None:
                return queries.ACCURACY_SCHEMA.empty_table()
            return queries.accuracy(loaded.data, rows_or_empty(items), by)

        def model(rows: pa.Table) -> models.ForecastAccuracy:
            return models.ForecastAccuracy(
                by=by,  # type: ignore[arg-type]
                run_id=run["run_id"] if run else None,
                groups=queries.records(rows),
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "forecast_accuracy", as_of_version, loaded, build, format, model
        )

    @api.get("/quality", response_model=models.QualityReport, tags=["quality"])
    def quality(request: Request, view: View, as_of_version: AsOf = None) -> Response:
        """Data-quality results of the latest build, with a link to its HTML report."""
        loaded = table(view, "dq_results", as_of_version)

        def build() -> models.QualityReport:
            if loaded is None:
                return models.QualityReport(
                    build_id=None,
                    evaluated_at=None,
                    passed=0,
                    failed_errors=0,
                    failed_warnings=0,
                    checks=[],
                    report_url=None,
                    version=None,
                )
            build_id, rows = queries.latest_build_results(loaded.data)
            checks = [models.QualityCheck(**c) for c in queries.quality_checks(rows)]
            return models.QualityReport(
                build_id=build_id,
                evaluated_at=max((c.evaluated_at for c in checks), default=None),
                passed=sum(c.passed for c in checks),
                failed_errors=sum(not c.passed and c.severity == "error" for c in checks),
                failed_warnings=sum(not c.passed and c.severity != "error" for c in checks),
                checks=checks,
                report_url=f"/api/v1/quality/reports/{build_id}" if build_id else None,
                version=loaded.version,
            )

        return serve(request, view, token(view, "dq_results", as_of_version), build)

    @api.get(
        "/quality/reports/{build_id}",
        response_class=HTMLResponse,
        tags=["quality"],
        responses={404: {"model": models.Problem}},
    )
    def quality_report(
        build_id: Annotated[str, PathParam(max_length=64, description="Build id (hex).")],
    ) -> HTMLResponse:
        """The self-contained HTML quality report a build wrote."""
        if not BUILD_ID.match(build_id):
            raise ApiProblem(404, "Unknown report", f"no report for build {build_id!r}")
        try:
            html = lake.read_bytes(f"reports/quality/{build_id}.html")
        except FileNotFoundError as error:
            raise ApiProblem(404, "Unknown report", f"no report for build {build_id!r}") from error
        return HTMLResponse(html, headers={"Cache-Control": "max-age=86400, immutable"})

    # --- catalog, ingestions, status ------------------------------------------------------

    def dataset_entry(view: GoldView, name: str, version: int) -> models.Dataset | None:
        delta = lake.delta_table("gold", name, version=version)
        if delta is None:
            return None
        commit = next((c for c in delta.history(20) if c.get("version") == version), {})
        committed_at = (
            datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
            if "timestamp" in commit
            else None
        )
        schema = pa.schema(delta.schema().to_arrow())
        lineage = {
            k: str(commit[k])
            for k in (
                "build_id",
                "run_id",
                "correlation_id",
                "source_bronze_paths",
                "rows_written",
                "operation",
                "rebuild",
                "kind",
            )
            if k in commit
        }
        count = view.loaded().get(name)
        return models.Dataset(
            table=f"gold.{name}",
            version=version,
            row_count=count.data.num_rows if count is not None else delta.count(),
            columns=[models.Column(name=f.name, type=str(f.type)) for f in schema],
            committed_at=committed_at,
            age_seconds=(datetime.now(UTC) - committed_at).total_seconds()
            if committed_at
            else None,
            lineage=lineage,
        )

    catalogs: dict[str, models.Catalog] = {}

    @api.get("/datasets", response_model=models.Catalog, tags=["catalog"])
    def datasets(view: View) -> models.Catalog:
        """Every gold table served: schema, current version, rows, freshness, lineage."""
        catalog = catalogs.get(view.etag)
        if catalog is None:  # reading every table's log once per gold version is enough
            entries = [dataset_entry(view, n, v) for n, v in sorted(view.pin.versions.items())]
            catalog = models.Catalog(
                build_id=view.pin.build_id,
                run_id=view.pin.run_id,
                datasets=[e for e in entries if e is not None],
            )
            catalogs.clear()
            catalogs[view.etag] = catalog
        now = datetime.now(UTC)
        return catalog.model_copy(
            update={
                "datasets": [
                    d.model_copy(update={"age_seconds": (now - d.committed_at).total_seconds()})
                    if d.committed_at
                    else d
                    for d in catalog.datasets
                ]
            }
        )

    def quarantined() -> tuple[int | None, list[models.QuarantinedFile]]:
        if quarantine_dir is None:
            return None, []
        if not quarantine_dir.exists():  # nothing was ever quarantined
            return 0, []
        if not quarantine_dir.is_dir():
            return None, []
        files = []
        for report in sorted(quarantine_dir.glob("*.error.json")):
            try:
                data = json.loads(report.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            files.append(
                models.QuarantinedFile(
                    name=report.name.removesuffix(".error.json"),
                    dataset=data.get("dataset"),
                    reason=data.get("reason"),
                    quarantined_at=data.get("quarantined_at") or data.get("time"),
                )
            )
        files.sort(key=lambda f: f.quarantined_at or "", reverse=True)
        return len(files), files

    @api.get("/ingestions", response_model=models.Ingestions, tags=["catalog"])
    def ingestions(limit: Limit = default_page) -> models.Ingestions:
        """Recent files and their outcome (from the event stream), and the quarantine."""
        count, files = quarantined()
        return models.Ingestions(
            events_connected=feed is not None and feed.connected,
            recent=[models.Ingestion(**r) for r in (feed.recent(limit) if feed else [])],
            quarantine_count=count,
            quarantine=files[:limit],
        )

    @api.get("/status", response_model=models.Status, tags=["catalog"])
    def status(view: View) -> models.Status:
        """Pipeline status for the dashboard: versions, last build and last forecast run."""
        run = last_run(view)
        builds = view.table(GOLD_BUILDS)
        last_build_at = None
        if builds is not None and builds.data.num_rows:
            last_build_at = pc.max(builds.data["finished_at"]).as_py()
        return models.Status(
            build_id=view.pin.build_id,
            last_build_at=last_build_at,
            last_forecast_run=models.ForecastRun(
                run_id=run["run_id"],
                finished_at=run["finished_at"],
                duration_seconds=run.get("duration_seconds"),
                series=run.get("series"),
                items_with_policy=run.get("items_with_policy"),
                selected_models=json.loads(run.get("selected_models") or "{}"),
            )
            if run
            else None,
            versions=dict(view.pin.versions),
            checked_at=state.last_checked,
            storage_error=state.last_error,
        )

    app.include_router(api)

    # --- operations -----------------------------------------------------------------------

    @app.get("/health", response_model=models.Health, tags=["operations"])
    def health() -> models.Health:
        """The process is up (it does not look at gold; see `/ready`)."""
        return models.Health(status="ok")

    @app.get(
        "/ready",
        response_model=models.Readiness,
        tags=["operations"],
        responses={503: {"model": models.Readiness}},
    )
    def ready() -> JSONResponse:
        """Ready when gold is readable: a build exists and the last look at storage worked."""
        view = state.current
        ok = bool(view.pin.versions) and state.last_error is None and view.preloaded
        body = models.Readiness(
            ready=ok,
            versions=dict(view.pin.versions),
            build_id=view.pin.build_id,
            run_id=view.pin.run_id,
            storage_error=state.last_error,
            loading=not view.preloaded,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics: requests, latency, cache hits, gold versions served."""
        for name, version in state.current.pin.versions.items():
            metrics.versions.labels(f"gold.{name}").set(version)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- dashboard ------------------------------------------------------------------------

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def dashboard() -> FileResponse:
            return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
