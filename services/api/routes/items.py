"""Materials, sites and suppliers."""

from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from services.api import models, queries
from services.api.answers import (
    Answers,
    AsOf,
    Format,
    Offset,
    Text,
    View,
    always,
    inline_when,
    paged,
    version_of,
)
from services.api.gold import GoldView
from services.api.problems import ApiProblem


def router(answers: Answers) -> APIRouter:
    """`/items`, `/items/{code}`, `/sites` and `/suppliers`."""
    serve = answers.serve
    serve_table = answers.serve_table
    table = answers.table
    token = answers.token
    Limit = answers.limit
    default_page = answers.default_page
    api = APIRouter(prefix="/api/v1")

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

        model = paged(models.ItemPage, "items", offset, limit, loaded)

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

        model = paged(models.SitePage, "sites", offset, limit, loaded)

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

        model = paged(models.SupplierPage, "suppliers", offset, limit, loaded)

        return serve_table(
            request, view, "dim_supplier", as_of_version, loaded, build, format, model
        )

    return api
