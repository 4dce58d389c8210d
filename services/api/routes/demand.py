"""Demand history and forecasts."""

from datetime import date
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.api import models, queries, totals
from services.api.answers import (
    Answers,
    AsOf,
    Code,
    Format,
    View,
    always,
    inline_when,
    known_item,
    last_run,
    run_bucket,
    run_named,
    version_of,
)
from services.api.problems import ApiProblem

HISTORY_PERIODS = 52  # periods of actuals shown before a forecast starts
SUMMARY_METHOD = (
    f"Monte-Carlo, {totals.SAMPLES} draws of the total per period (a quantile's sampling error "
    "is about 5 % of the total's standard deviation): each item-level series is "
    "drawn from the distribution its stored quantiles describe (the inverse CDF linear between "
    "p10..p90 and the service-level quantile, continued linearly below p10 but never below 0, "
    "an exponential tail above the highest quantile; its mean can differ from the model's "
    "mean by about 1 %), items independently of each other; "
    "correlated demand (a shared project, fleet or season) makes the real total's spread wider. "
    "Draws are seeded with a constant and the period: the same forecasts give the same numbers."
)


def router(answers: Answers) -> APIRouter:
    """`/demand`, `/forecasts` and `/forecasts/summary`."""
    settings = answers.settings
    serve = answers.serve
    serve_table = answers.serve_table
    table = answers.table
    api = APIRouter(prefix="/api/v1")

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
        answers.check_range(date_from, date_to)
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
        as_of_version: AsOf = None,
    ) -> Response:
        """The latest run's forecast of one item: quantiles p10..p90, the service-level
        quantile, the chosen model and run id, with actuals beside them. With
        `as_of_version`, the forecast that version of gold.fact_forecast held (its run's);
        actuals and history are always gold's current demand."""
        known_item(view, item)
        loaded = table(view, "fact_forecast", as_of_version)
        if loaded is None or not loaded.has(item):
            which = "the latest forecast run" if as_of_version is None else "that version"
            raise ApiProblem(404, "No forecast", f"{which} has no series for {item!r}")
        rows = loaded.rows_for(item)
        run = (
            last_run(view) if as_of_version is None else run_named(view, rows["run_id"][0].as_py())
        )
        bucket = run_bucket(run)
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
            return models.ItemForecast(
                item_code=item,
                run_id=run["run_id"] if run else rows["run_id"][0].as_py(),
                bucket=bucket,
                service_level=rows["service_level"][0].as_py(),
                series=chosen,
                version=loaded.version,
            )

        # Actuals come from today's demand, so even a past forecast changes with the view.
        tag = view.etag if as_of_version is None else f"{view.etag}-fact_forecast@{as_of_version}"
        return serve(request, view, tag, build, fmt=format, version=loaded.version)

    @api.get(
        "/forecasts/summary",
        response_model=models.ForecastSummary,
        tags=["forecasts"],
        description="The total forecast over all items per period (item-level series): its "
        "mean (the sum of the series' means) and its p10, p50 and p90, quantiles of the total "
        "(not sums of the items' quantiles). " + SUMMARY_METHOD,
    )
    def forecast_summary(
        request: Request,
        view: View,
        date_from: Annotated[date | None, Query(alias="from")] = None,
        date_to: Annotated[date | None, Query(alias="to")] = None,
        format: Format = "json",
        as_of_version: AsOf = None,
    ) -> Response:
        answers.check_range(date_from, date_to)
        loaded = table(view, "fact_forecast", as_of_version)
        if as_of_version is None:
            run = last_run(view)
            run_id = run["run_id"] if run else None
        else:  # a version of the table holds one run's forecasts
            run_id = loaded.data["run_id"][0].as_py() if loaded and loaded.data.num_rows else None

        def build() -> pa.Table:
            if loaded is None:
                return queries.SUMMARY_SCHEMA.empty_table()
            # Every period once per table version; a date range is a slice of it.
            every = view.memo(
                f"forecast_summary:{loaded.version}", lambda: queries.forecast_summary(loaded.data)
            )
            return queries.between(every, "period", date_from, date_to)

        def model(rows: pa.Table) -> models.ForecastSummary:
            return models.ForecastSummary(
                run_id=run_id,
                method=SUMMARY_METHOD,
                samples=totals.SAMPLES,
                periods=queries.records(rows),
                version=version_of(loaded),
            )

        return serve_table(
            request, view, "fact_forecast", as_of_version, loaded, build, format, model
        )

    return api
