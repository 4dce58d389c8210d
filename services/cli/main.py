"""`nova`: the operator's command line."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.dlq import dlq_app
from services.cli.forecast import forecast
from services.cli.operations import bronze_app, datasets, quarantine_app, rebuild
from services.cli.replay import replay
from services.cli.storage import storage_app
from shared.settings import NovaSettings

if TYPE_CHECKING:
    from services.cli.runtime import Stack, StartGuard

app = typer.Typer(help="Nova Corrente data platform.", no_args_is_help=True, add_completion=False)
app.command("datasets")(datasets)
app.command("rebuild")(rebuild)
app.command("forecast")(forecast)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(bronze_app, name="bronze")
app.add_typer(dlq_app, name="dlq")
app.add_typer(storage_app, name="storage")
app.command("replay")(replay)

ITEMS_TIMEOUT_SECONDS = 120.0


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder to write the exports into.")] = Path("var/demo"),
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 42,
    items: Annotated[int, typer.Option(help="Materials in the catalogue.")] = 800,
    depots: Annotated[int, typer.Option(help="Depots and tower sites.")] = 200,
    days: Annotated[int, typer.Option(help="Days of history.")] = 730,
) -> None:
    """Write every demo source in its real raw shape: ERP workbook, stock CSVs, public series."""
    from services.demo.sources import generate_demo_sources

    demo = generate_demo_sources(out, seed=seed, items=items, depots=depots, days=days)
    stats = demo.workbook
    typer.echo(
        f"wrote {stats.path} ({stats.requisition_rows} requisition lines, {stats.items} materials,"
        f" {stats.depots} depots, {stats.sites} sites)"
    )
    for path in demo.paths[1:]:
        typer.echo(f"wrote {path} ({demo.rows[path.name]} rows)")


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Drop generated demo exports into the inbox.")] = True,
    forecast: Annotated[
        bool, typer.Option(help="Run one forecast as soon as gold has demand.")
    ] = True,
) -> None:
    """Start NATS, the ingestor, the transformer and the API; Ctrl-C stops them all."""
    from services.cli.runtime import RuntimeFailure, Stack, StartGuard, StartInterrupted

    settings = NovaSettings()
    # While starting, Ctrl-C leaves the waits at once (children are stopped below), but never
    # between starting a child and recording it (see `StartGuard`).
    guard = StartGuard()
    stack = Stack(settings, guard)
    previous = {s: signal.signal(s, guard.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        try:
            _start_and_serve(stack, guard, demo=demo, forecast=forecast)
        finally:
            # From here on a signal only asks to stop: nothing may skip the stop below. (One
            # landing before this line raises StartInterrupted, which still gets there.)
            guard.disarm()
    except RuntimeFailure as failure:
        typer.echo(f"error: {failure}", err=True)
        exit_code = 1
    except StartInterrupted:
        typer.echo("interrupted while starting")
        exit_code = 130
    finally:
        # A second Ctrl-C must not abort the stop half-way and orphan children.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        typer.echo("stopping ...")
        for name, code in stack.stop():
            # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 is clean too.
            clean = code in (0, -signal.SIGTERM)
            typer.echo(f"  {name} stopped" + ("" if clean else f" (exit code {code})"))
        # Called in-process (tests), the caller gets its handlers back: an ignored SIGTERM
        # would be inherited by every process it starts afterwards.
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    raise typer.Exit(exit_code)


def _start_and_serve(stack: Stack, guard: StartGuard, *, demo: bool, forecast: bool) -> None:
    """Start the stack (with the demo and a forecast if asked), then serve until a signal."""
    from services.cli.runtime import wait_until
    from services.demo.sources import generate_demo_sources

    settings = stack.settings
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    typer.echo("starting nats-server, ingestor, transformer and api ...")
    stack.start()
    if demo and stack.item_count() == 0:
        staging = settings.var_dir / "demo"
        sources = generate_demo_sources(staging)
        inbox.mkdir(parents=True, exist_ok=True)
        # Rename within one filesystem: the ingestor never sees a half-written file.
        for path in sources.paths:
            path.replace(inbox / path.name)
        dropped = ", ".join(f"{p.name} ({sources.rows[p.name]} rows)" for p in sources.paths)
        typer.echo(f"dropped {dropped} into {inbox}")
        wait_until(
            lambda: stack.item_count() > 0,
            ITEMS_TIMEOUT_SECONDS,
            "demo materials in the API",
            stack.check_children,
        )
    forecast_run = None
    if forecast and stack.item_count() > 0:
        # Once every demo file is through, so that stock and lead times are in gold too.
        wait_until(
            lambda: not any(p.is_file() for p in inbox.rglob("*")),
            ITEMS_TIMEOUT_SECONDS,
            "the inbox to empty",
            stack.check_children,
        )
        forecast_run = stack.start_forecast()
    api = stack.api_url
    quarantine_dir = settings.ingestor.quarantine_dir
    assert quarantine_dir is not None
    metrics_port = settings.ingestor.metrics_port
    typer.echo(
        "\nNova Corrente data platform is up.\n"
        f"  dashboard  {api}/   (pipeline status, alerts, item forecasts)\n"
        f"  API        {api}/api/v1   (docs: {api}/docs)\n"
        f"  inbox      {inbox.resolve()}   (drop .xlsx, .csv, .json exports here;"
        " `nova datasets` lists what is accepted)\n"
        f"  quarantine {quarantine_dir.resolve()}   (`nova quarantine list`)\n"
        f"  logs       {settings.log_dir.resolve()}/*.log   (JSON lines)\n"
        + (
            f"  metrics    http://127.0.0.1:{metrics_port}/metrics   (ingestor, Prometheus)\n"
            if metrics_port
            else ""
        )
        + f"  try        curl '{api}/api/v1/items?limit=5'\n"
        f"  items now  {stack.item_count()}\n"
        + (
            f"  forecast   running in the background ({forecast_run.log_path}); "
            "`nova forecast` runs one on demand\n"
            + (
                f"             progress: http://{settings.forecaster.metrics_host}:"
                f"{settings.forecaster.metrics_port}/metrics while it runs (Prometheus)\n"
                if settings.forecaster.metrics_port
                else ""
            )
            if forecast_run
            else ""
        )
        + "Press Ctrl-C to stop."
    )
    guard.disarm()  # serving: a signal now only asks to stop
    while not guard.requested:
        stack.check_children()
        if forecast_run is not None and (code := forecast_run.process.poll()) is not None:
            typer.echo(
                "forecast done: forecasts and reorder points are in gold"
                if code == 0
                else f"forecast failed (exit code {code}): see {forecast_run.log_path}"
            )
            forecast_run = None
        time.sleep(0.5)


if __name__ == "__main__":
    app()
