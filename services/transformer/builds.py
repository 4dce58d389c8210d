"""What one bronze event does to silver and gold, independent of how the event arrived."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.transformer.transforms import GOLD_DIM_ITEM, SILVER_ERP_REQUISITIONS
from shared.events import BronzeIngested, TableVersion
from shared.logging import get_logger
from shared.storage import Lake

log = get_logger(__name__)


class UnknownDatasetError(ValueError):
    """A bronze dataset this transformer has no silver transform for."""


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    tables: list[TableVersion]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def apply_bronze_event(lake: Lake, event: BronzeIngested) -> BuildResult:
    """Replace this file's rows in silver, then rebuild the gold tables that depend on them.

    Replaying the same event replaces the same rows with the same values, so a redelivery
    leaves the tables' contents unchanged.
    """
    if event.dataset != "erp_requisitions":
        raise UnknownDatasetError(f"no silver transform for dataset {event.dataset!r}")
    build_id = uuid.uuid4().hex
    commit_metadata = {
        "build_id": build_id,
        "correlation_id": event.correlation_id,
        "source_event_id": event.event_id,
        "source_bronze_path": event.bronze_path,
    }
    bronze = lake.read_parquet(event.bronze_path)
    silver_rows = SILVER_ERP_REQUISITIONS.run(bronze_batch=bronze)
    silver = lake.write_delta(
        "silver",
        SILVER_ERP_REQUISITIONS.table,
        silver_rows,
        mode="overwrite",
        predicate=f"_content_sha256 = {_sql_text(event.content_sha256)}",
        metadata={**commit_metadata, "rows_written": silver_rows.num_rows},
    )
    log.info(
        "silver_committed",
        table=silver.table,
        version=silver.version,
        rows_written=silver_rows.num_rows,
        row_count=silver.row_count,
    )

    silver_dataset = lake.delta_dataset("silver", SILVER_ERP_REQUISITIONS.table)
    dim_item_rows = GOLD_DIM_ITEM.run(silver_erp_requisitions=silver_dataset)
    dim_item = lake.write_delta(
        "gold", GOLD_DIM_ITEM.table, dim_item_rows, mode="overwrite", metadata=commit_metadata
    )
    log.info(
        "gold_committed",
        table=dim_item.table,
        version=dim_item.version,
        row_count=dim_item.row_count,
    )
    return BuildResult(
        build_id,
        [
            TableVersion(table=c.table, version=c.version, row_count=c.row_count)
            for c in (silver, dim_item)
        ],
    )
