"""`nova replay`: announce bronze objects again so that the transformer rebuilds from them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import pyarrow.parquet as pq
import typer

from services.cli.dlq import open_jetstream, run_against_nats
from shared.broker import ensure_stream
from shared.events import BronzeIngested, new_correlation_id
from shared.settings import NovaSettings
from shared.storage import Lake

PRODUCER = "cli"
DAY_FORMATS = ["%Y-%m-%d"]


@dataclass(frozen=True)
class BronzeFacts:
    path: str
    content_sha256: str
    row_count: int
    source_name: str
    extra_columns: list[str]


def bronze_in_range(lake: Lake, dataset: str, first: date, last: date) -> list[BronzeFacts]:
    """The dataset's bronze objects whose ingestion day lies in [first, last], oldest first."""
    from services.ingestor.retention import bronze_objects

    objects = [
        o
        for o in bronze_objects(lake.list_files(f"bronze/{dataset}"))
        if o.dataset == dataset and first <= o.day <= last
    ]
    objects.sort(key=lambda o: (o.day, o.path))
    return [_facts(lake, dataset, o.path, o.content_sha256) for o in objects]


def _facts(lake: Lake, dataset: str, path: str, content_sha256: str) -> BronzeFacts:
    # Lake has no footer-only read and a bronze object can hold a million rows: open it through
    # the lake's own filesystem (local or S3) and read the footer plus one row of one column.
    with lake._fs.open_input_file(lake._fs_path(path)) as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        source_name = ""
        if parquet.metadata.num_rows and "_source_file" in names:
            first = next(parquet.iter_batches(batch_size=1, columns=["_source_file"]))
            source_name = str(first.column(0)[0].as_py() or "")
        return BronzeFacts(
            path=path,
            content_sha256=content_sha256,
            row_count=parquet.metadata.num_rows,
            source_name=source_name,
            extra_columns=_extra_columns(dataset, names),
        )


def _extra_columns(dataset: str, names: list[str]) -> list[str]:
    """Columns its contract does not know, as the ingestor announced them (schema drift)."""
    from services.ingestor.contracts import CONTRACTS

    contract = CONTRACTS.get(dataset)
    if contract is None:  # no contract any more: the ingestor's naming is all there is
        return [n for n in names if n.startswith("extra_")]
    known = {c.name for c in contract.columns}
    return [n for n in names if n not in known and not n.startswith("_")]


def replay(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset, as `nova datasets` names.")],
    first: Annotated[
        datetime,
        typer.Option("--from", formats=DAY_FORMATS, help="First ingestion day (YYYY-MM-DD)."),
    ],
    last: Annotated[
        datetime,
        typer.Option("--to", formats=DAY_FORMATS, help="Last ingestion day, included."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be published.")
    ] = False,
) -> None:
    """Publish a bronze event for each object of a dataset ingested between two days (inclusive).

    The transformer then rebuilds silver and gold from them, e.g. after a transform fix. The
    days are the ingestion days of the bronze partitions, not the business dates of the rows.
    """
    if first > last:
        typer.echo("--from must not be after --to", err=True)
        raise typer.Exit(2)
    if not dataset or "/" in dataset or dataset.startswith("."):
        typer.echo(f"not a dataset name: {dataset!r}", err=True)
        raise typer.Exit(2)
    settings = NovaSettings()
    found = bronze_in_range(
        Lake.from_settings(settings.storage), dataset, first.date(), last.date()
    )
    span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if not found:
        typer.echo(f"no bronze objects of {dataset} ingested from {span}")
        return
    if dry_run:
        for facts in found:
            typer.echo(f"would publish {facts.path} ({facts.row_count} rows)")
        typer.echo(f"{len(found)} bronze objects of {dataset} ingested from {span} (dry run)")
        return
    # One stamp for the whole run: a fresh Nats-Msg-Id per replay, so that JetStream's
    # duplicate window (which remembers the ingestor's `<sha>.<dataset>`) keeps these events.
    stamp = int(time.time())

    async def work() -> None:
        nc, js = await open_jetstream(settings)
        try:
            await ensure_stream(js, settings.nats)
            for facts in found:
                event = BronzeIngested(
                    producer=PRODUCER,
                    correlation_id=new_correlation_id(),
                    dataset=dataset,
                    bronze_path=facts.path,
                    content_sha256=facts.content_sha256,
                    source_name=facts.source_name,
                    row_count=facts.row_count,
                    extra_columns=facts.extra_columns,
                )
                msg_id = f"{facts.content_sha256}.{dataset}.replay.{stamp}"
                await js.publish(
                    event.subject,
                    event.to_bytes(),
                    headers={"Nats-Msg-Id": msg_id},
                    stream=settings.nats.stream,
                )
                typer.echo(
                    f"published {facts.path} ({facts.row_count} rows) as event {event.event_id}"
                )
        finally:
            await nc.close()

    run_against_nats(settings, work())
    typer.echo(f"published {len(found)} bronze events of {dataset} ingested from {span}")
