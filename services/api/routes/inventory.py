"""Inventory policy, alerts and forecast accuracy."""

from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.api import models, queries
from services.api.answers import (
    Answers,
    AsOf,
    Format,
    Offset,
    View,
    always,
    inline_when,
    known_item,
    last_run,
    paged,
    rows_or_empty,
    run_named,
    run_service_level,
    version_of,
)
from services.api.problems import ApiProblem


def accuracy_note(rows: pa.Table | None) -> str | None:
    """Why WQL or calibration are n/a: the run predates the sums and counts they need."""
    if rows is None or rows.num_rows == 0:
        return None
    missing = []
    if not queries.has_pooled_loss(rows):
        missing.append("the pooled WQL (Σ quantile loss and Σ|actual| per series)")
    if not queries.has_calibration(rows):
        missing.append("calibration (counts of actuals below each quantile)")
    if not missing:
        return None
    return f"This forecast run did not record {' nor '.join(missing)}: shown as n/a."


def router(answers: Answers) -> APIRouter:
    """`/inventory/policy`, `/inventory/alerts` and `/kpis/forecast-accuracy`."""
    serve_table = answers.serve_table
    table = answers.table
    Limit = answers.limit
    default_page = answers.default_page
    api = APIRouter(prefix="/api/v1")

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

        model = paged(models.PolicyPage, "policies", offset, limit, loaded)

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

        model = paged(models.AlertPage, "alerts", offset, limit, loaded)

        return serve_table(
            request, view, "inventory_policy", as_of_version, loaded, build, format, model
        )

    @api.get("/kpis/forecast-accuracy", response_model=models.ForecastAccuracy, tags=["kpis"])
    def forecast_accuracy(
        request: Request,
        view: View,
        by: Annotated[str, Query(pattern="^(demand_class|model|family)$")] = "demand_class",
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        """Backtest accuracy of the selected model of each series, by demand class, model or
        item family, and over all series: MASE, WAPE and bias as means over series; WQL
        pooled (Σ quantile loss / Σ|actual|, quantiles 0.1..0.9); calibration of each served
        level (p10..p90 and the service-level quantile): the shares of actuals below and at
        or below the quantile, calibrated when τ lies between them (±3 points). Runs written
        before the forecaster recorded the sums and counts show WQL and calibration as n/a
        (null, `note` says so)."""
        loaded = table(view, "forecast_accuracy", as_of_version)
        items = view.table("dim_item")
        rows = rows_or_empty(loaded)
        if as_of_version is None or rows is None or rows.num_rows == 0:
            run = last_run(view)
        else:  # a version of the table holds one run's rows
            run = run_named(view, rows["run_id"][0].as_py())
        service_level = run_service_level(run)

        def build() -> pa.Table:
            if rows is None:
                return queries.ACCURACY_SCHEMA.empty_table()
            return queries.accuracy(rows, rows_or_empty(items), by, service_level)

        def model(groups: pa.Table) -> models.ForecastAccuracy:
            overall = (
                queries.accuracy_records(
                    queries.accuracy(rows, None, None, service_level), service_level
                )
                if rows is not None and rows.num_rows
                else []
            )
            return models.ForecastAccuracy(
                by=by,  # type: ignore[arg-type]
                run_id=run["run_id"] if run else None,
                service_level=service_level,
                tolerance=queries.CALIBRATION_TOLERANCE,
                note=accuracy_note(rows),
                overall=overall[0] if overall else None,
                groups=queries.accuracy_records(groups, service_level),
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "forecast_accuracy", as_of_version, loaded, build, format, model
        )

    return api
