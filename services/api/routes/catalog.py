"""Data quality, the catalog, ingestions and pipeline status."""

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from services.api import models, quarantine, queries
from services.api.answers import (
    Answers,
    AsOf,
    Format,
    View,
    last_run,
    run_json,
    version_of,
)
from services.api.feed import EventFeed
from services.api.gold import GOLD_BUILDS, GoldView
from services.api.problems import ApiProblem
from shared.manifests import commit_info

BUILD_ID = re.compile(r"^[0-9a-f]{8,64}$")


def forecast_run(run: dict[str, Any]) -> models.ForecastRun:
    """A gold.forecast_runs row as the status shows it; the operator figures (stage times,
    series by class, failures by model, the gold build read) are None on runs older than
    those columns."""
    return models.ForecastRun(
        run_id=run["run_id"],
        finished_at=run["finished_at"],
        duration_seconds=run.get("duration_seconds"),
        series=run.get("series"),
        items_with_policy=run.get("items_with_policy"),
        selected_models=run_json(run, "selected_models") or {},
        gold_build_id=run.get("gold_build_id"),
        stage_seconds=numbers(run_json(run, "stage_seconds")),
        series_by_class=numbers(run_json(run, "series_by_class")),
        failures_by_model=numbers(run_json(run, "failures_by_model")),
    )


def numbers(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The numeric entries of a JSON object (anything else in it is not shown)."""
    if value is None:
        return None
    return {
        str(k): v
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def router(answers: Answers, feed: EventFeed | None, quarantine_dir: Path | None) -> APIRouter:
    """`/quality`, `/datasets`, `/ingestions` and `/status`; `feed` lists recent ingestions,
    `quarantine_dir` is the ingestor's quarantine folder when this host can see it."""
    serve = answers.serve
    table = answers.table
    token = answers.token
    Limit = answers.limit
    default_page = answers.default_page
    lake = answers.lake
    state = answers.state
    api = APIRouter(prefix="/api/v1")

    @api.get("/quality", response_model=models.QualityReport, tags=["quality"])
    def quality(
        request: Request, view: View, format: Format = "json", as_of_version: AsOf = None
    ) -> Response:
        """Data-quality results of the latest build, with a link to its HTML report; as csv
        or parquet, that build's rows of gold.dq_results."""
        loaded = table(view, "dq_results", as_of_version)

        def build() -> models.QualityReport | pa.Table:
            if format != "json":
                return queries.latest_build_results(loaded.data)[1] if loaded else pa.table({})
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

        return serve(
            request,
            view,
            token(view, "dq_results", as_of_version),
            build,
            fmt=format,
            version=version_of(loaded),
        )

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

    def dataset_entry(view: GoldView, name: str, version: int) -> models.Dataset | None:
        delta = lake.delta_table("gold", name, version=version)
        if delta is None:
            return None
        try:
            commit = commit_info(lake, name, version)
        except FileNotFoundError:  # its log entry expired: no lineage to show
            commit = {}
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

    @api.get("/ingestions", response_model=models.Ingestions, tags=["catalog"])
    def ingestions(limit: Limit = default_page) -> models.Ingestions:
        """Recent files and their outcome (from the event stream), and the quarantine."""
        count, files = quarantine.quarantined(quarantine_dir)
        return models.Ingestions(
            events_connected=feed is not None and feed.connected,
            events_error=feed.error if feed else None,
            recent=feed.recent(limit) if feed else [],
            quarantine_count=count,
            quarantine=files[:limit],
        )

    @api.get("/status", response_model=models.Status, tags=["catalog"])
    def status(view: View) -> models.Status:
        """Pipeline status for the dashboard: versions, last build and last forecast run, with
        the run's operator figures (wall time per stage, series by demand class, failed fits
        by model, the chosen-model mix, the gold build it read) where the run recorded them."""
        run = last_run(view)
        builds = view.table(GOLD_BUILDS)
        last_build_at = None
        if builds is not None and builds.data.num_rows:
            last_build_at = pc.max(builds.data["finished_at"]).as_py()
        return models.Status(
            build_id=view.pin.build_id,
            last_build_at=last_build_at,
            last_forecast_run=forecast_run(run) if run else None,
            versions=dict(view.pin.versions),
            checked_at=state.last_checked,
            storage_error=state.storage_problem,
            events_error=feed.error if feed else None,
        )

    return api
