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
    demo: Annotated[
        bool,
        typer.Option(help="Drop generated demo exports into the inbox when the lake is empty."),
    ] = True,
    force_demo: Annotated[
        bool,
        typer.Option(
            "--force-demo", help="Drop the demo exports even into a lake that holds data."
        ),
    ] = False,
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
    stack = Stack(settings, guard, say=typer.echo)
    previous = {s: signal.signal(s, guard.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        try:
            _start_and_serve(stack, guard, demo=demo, force_demo=force_demo, forecast=forecast)
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


def _start_and_serve(
    stack: Stack, guard: StartGuard, *, demo: bool, force_demo: bool, forecast: bool
) -> None:
    """Start the stack (with the demo and a forecast if asked), then serve until a signal;
    a child that dies meanwhile is restarted (`Stack.supervise`)."""
    from services.cli.runtime import (
        banner,
        demo_refusal,
        drop_demo,
        start_forecast_when_settled,
    )

    # Looked at before the ingestor starts taking files: the lake as the operator left it.
    refusal = demo_refusal(stack.settings) if demo and not force_demo else None
    typer.echo("starting nats-server, ingestor, transformer and api ...")
    stack.start()
    if force_demo or (demo and refusal is None):
        drop_demo(stack)
    elif refusal is not None:
        typer.echo(refusal)
    forecast_run = start_forecast_when_settled(stack) if forecast else None
    typer.echo(banner(stack, forecast_run))
    guard.disarm()  # serving: a signal now only asks to stop
    while not guard.requested:
        stack.supervise()
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
