"""The FastAPI application; `create_app` is its only entry point."""

from datetime import date
from typing import Annotated

import pyarrow.compute as pc
from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from services.api.gold import GoldReader
from shared.settings import ApiSettings
from shared.storage import Lake


class Item(BaseModel):
    item_code: str = Field(description="Material code as the ERP writes it, leading zeros kept.")
    item_description: str
    item_family: str
    unit: str | None
    first_seen: date | None = Field(description="Earliest request date.")
    last_seen: date | None = Field(description="Latest request date.")
    request_lines: int
    total_quantity: float


class ItemPage(BaseModel):
    items: list[Item]
    total: int = Field(description="Items matching the filters, over all pages.")
    limit: int
    offset: int
    gold_version: int | None = Field(
        description="Version of gold.dim_item served; None before the first build."
    )


class Health(BaseModel):
    status: str


def _gold(request: Request) -> GoldReader:
    return request.app.state.gold


GoldDep = Annotated[GoldReader, Depends(_gold)]


def create_app(settings: ApiSettings, lake: Lake) -> FastAPI:
    app = FastAPI(
        title="Nova Corrente data platform API",
        version="1",
        description="Read-only access to gold tables. Serves precomputed data only.",
    )
    app.state.gold = GoldReader(
        lake, settings.version_check_seconds, sort_keys={"dim_item": "item_code"}
    )
    max_page = settings.max_page_size
    default_page = min(50, max_page)

    @app.get("/health", response_model=Health, tags=["operations"])
    def health() -> Health:
        """The process is up (it does not check gold; see `/api/v1/items`)."""
        return Health(status="ok")

    @app.get("/api/v1/items", response_model=ItemPage, tags=["items"])
    def list_items(
        gold: GoldDep,
        limit: Annotated[int, Query(ge=1, le=max_page)] = default_page,
        offset: Annotated[int, Query(ge=0)] = 0,
        family: Annotated[str | None, Query(description="Exact item family.")] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="Text in code or description.")
        ] = None,
    ) -> ItemPage:
        """Materials, ordered by code."""
        snapshot = gold.snapshot("dim_item")
        if snapshot is None:
            return ItemPage(items=[], total=0, limit=limit, offset=offset, gold_version=None)
        table = snapshot.data
        if family:
            table = table.filter(pc.equal(table["item_family"], family.upper()))
        if q:
            needle = q.upper()
            table = table.filter(
                pc.or_(
                    pc.match_substring(pc.utf8_upper(table["item_code"]), needle),
                    pc.match_substring(pc.utf8_upper(table["item_description"]), needle),
                )
            )
        page = table.slice(offset, limit).to_pylist()
        return ItemPage(
            items=[Item(**row) for row in page],
            total=table.num_rows,
            limit=limit,
            offset=offset,
            gold_version=snapshot.version,
        )

    return app
