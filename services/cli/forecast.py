"""`nova forecast`: one forecast run on demand, with a progress bar on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from shared.logging import configure_logging, get_logger
from shared.settings import NovaSettings

log = get_logger(__name__)
LOG_EVERY_SECONDS = 5.0


@contextmanager
def progress_reporter(interactive: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar with ETA on a terminal; structured log lines otherwise."""
    if interactive:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("forecasting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("series", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return
    last = 0.0

    def log_progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= LOG_EVERY_SECONDS:
            last = now
            log.info("forecast_progress", series_done=done, series_total=total)

    yield log_progress


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
) -> None:
    """Forecast every material from gold demand, derive reorder points, publish the run."""
    from services.forecaster.main import options_from, run_once

    settings = NovaSettings()
    configure_logging("forecaster", settings.log)
    options = options_from(
        settings,
        items=items or None,
        horizon=horizon,
        service_level=service_level,
        jobs=jobs,
        bucket=bucket,
    )
    with progress_reporter(sys.stderr.isatty()) as progress:
        manifest = run_once(settings, options, progress)
    if manifest is None:
        typer.echo("nothing to forecast yet: gold.fact_demand has no demand history")
        raise typer.Exit(1)
    models = ", ".join(f"{m} {n}" for m, n in sorted(manifest.selected_models.items()))
    typer.echo(
        f"run {manifest.run_id}: {manifest.series} series, reorder points for "
        f"{manifest.items_with_policy} materials in {manifest.duration_seconds:.1f} s\n"
        f"  models selected: {models}\n"
        f"  tables: "
        + ", ".join(f"gold.{t} v{v}" for t, v in sorted(manifest.table_versions.items()))
    )
