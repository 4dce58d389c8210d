"""`nova forecast`: one forecast run on demand, with a progress bar on a terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from services.forecaster.progress import progress_reporter
from shared.logging import configure_logging
from shared.settings import NovaSettings


def forecast(
    items: Annotated[
        list[str] | None, typer.Option("--items", help="Only these material codes (repeatable).")
    ] = None,
    horizon: Annotated[int | None, typer.Option(help="Buckets ahead.")] = None,
    service_level: Annotated[
        float | None, typer.Option(help="Target cycle service level, e.g. 0.95.")
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (0: every core).")] = None,
    bucket: Annotated[str | None, typer.Option(help="week or month.")] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Share the run among workers (`python -m services.forecaster --worker`) "
            "through JetStream.",
        ),
    ] = False,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Series per work chunk with --distributed (hundreds).")
    ] = 500,
) -> None:
    """Forecast every material from gold demand, derive reorder points, publish the run."""
    from services.forecaster.main import (
        options_from,
        quiet_model_libraries,
        run_once,
        serve_metrics,
    )

    settings = NovaSettings()
    configure_logging("forecaster", settings.log)
    quiet_model_libraries()
    options = options_from(
        settings,
        items=items or None,
        horizon=horizon,
        service_level=service_level,
        jobs=jobs,
        bucket=bucket,
    )
    with progress_reporter(sys.stderr.isatty()) as progress:
        if distributed:
            from services.forecaster.distributed import run_distributed_once

            manifest = run_distributed_once(
                settings, options, chunk_size=chunk_size, progress=progress
            )
        else:
            manifest = run_once(settings, options, progress, serve_metrics(settings))
    if manifest is None:
        typer.echo("nothing to forecast yet: gold.fact_demand has no demand history")
        raise typer.Exit(1)

    def listing(counts: dict[str, int] | dict[str, float]) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in counts.items()) or "none"

    typer.echo(
        f"run {manifest.run_id}: {manifest.series} series, reorder points for "
        f"{manifest.items_with_policy} materials in {manifest.duration_seconds:.1f} s "
        f"(gold build {manifest.gold_build_id})\n"
        f"  stages (s): {listing(manifest.stage_seconds)}\n"
        f"  series by demand class: {listing(manifest.series_by_class)}\n"
        f"  models selected: {listing(dict(sorted(manifest.selected_models.items())))}\n"
        f"  failed fits by model: {listing(manifest.failures_by_model)}\n"
        f"  tables: "
        + ", ".join(f"gold.{t} v{v}" for t, v in sorted(manifest.table_versions.items()))
    )
