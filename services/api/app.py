"""The FastAPI application; `create_app` is its only entry point: it wires gold, the
refresher, the event feed, the gateway and the routers (`services/api/routes/`)."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api import contract, models
from services.api.answers import Answers
from services.api.feed import EventFeed
from services.api.gateway import Gateway, Metrics, ResponseCache
from services.api.gold import GoldState, Refresher
from services.api.problems import ApiProblem, problem_response
from services.api.routes import catalog, demand, inventory, items
from shared.logging import get_logger
from shared.settings import ApiSettings
from shared.storage import Lake

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"


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
        # Served by `contract.install` from local assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
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
            headers=error.headers,  # a 405's Allow, for one
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

    contract.install(app, keyed=bool(settings.key_list), max_query_bytes=settings.max_query_bytes)
    answers = Answers(settings, state, cache, lake)
    for gold_router in (items.router(answers), demand.router(answers), inventory.router(answers)):
        app.include_router(gold_router)
    app.include_router(catalog.router(answers, feed, quarantine_dir))

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
        problem = state.storage_problem
        ok = bool(view.pin.versions) and problem is None and view.preloaded
        body = models.Readiness(
            ready=ok,
            versions=dict(view.pin.versions),
            build_id=view.pin.build_id,
            run_id=view.pin.run_id,
            storage_error=problem,
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
