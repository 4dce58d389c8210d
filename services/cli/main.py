"""`nova`: the operator's command line."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from shared.settings import NovaSettings

app = typer.Typer(help="Nova Corrente data platform.", no_args_is_help=True, add_completion=False)

ITEMS_TIMEOUT_SECONDS = 120.0


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder to write the exports into.")] = Path("var/demo"),
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 42,
    items: Annotated[int, typer.Option(help="Materials in the catalogue.")] = 800,
    depots: Annotated[int, typer.Option(help="Depots and tower sites.")] = 200,
    days: Annotated[int, typer.Option(help="Days of history.")] = 730,
) -> None:
    """Write realistic ERP exports in the shape of the real workbook."""
    from services.demo.erp_workbook import generate_demo_workbook

    stats = generate_demo_workbook(out, seed=seed, items=items, depots=depots, days=days)
    typer.echo(
        f"wrote {stats.path} ({stats.requisition_rows} requisition lines, {stats.items} materials,"
        f" {stats.depots} depots, {stats.sites} sites)"
    )


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Drop generated demo exports into the inbox.")] = True,
) -> None:
    """Start NATS, the ingestor, the transformer and the API; Ctrl-C stops them all."""
    from services.cli.runtime import RuntimeFailure, Stack, wait_until
    from services.demo.erp_workbook import generate_demo_workbook

    settings = NovaSettings()
    stack = Stack(settings)
    stopping = False
    serving = False

    class StartInterrupted(Exception):
        pass

    def request_stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True
        if not serving:  # still starting: leave the waits at once, children are stopped below
            raise StartInterrupted

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    exit_code = 0
    try:
        typer.echo("starting nats-server, ingestor, transformer and api ...")
        stack.start()
        if demo and stack.item_count() == 0:
            staging = settings.var_dir / "demo"
            stats = generate_demo_workbook(staging)
            inbox.mkdir(parents=True, exist_ok=True)
            # Rename within one filesystem: the ingestor never sees a half-written workbook.
            stats.path.replace(inbox / stats.path.name)
            typer.echo(f"dropped {stats.path.name} ({stats.requisition_rows} lines) into {inbox}")
            wait_until(
                lambda: stack.item_count() > 0,
                ITEMS_TIMEOUT_SECONDS,
                "demo materials in the API",
                stack.check_children,
            )
        api = stack.api_url
        typer.echo(
            "\nNova Corrente data platform is up.\n"
            f"  API        {api}   (docs: {api}/docs)\n"
            f"  inbox      {inbox.resolve()}   (drop ERP .xlsx exports here)\n"
            f"  logs       {settings.log_dir.resolve()}/*.log   (JSON lines)\n"
            f"  try        curl '{api}/api/v1/items?limit=5'\n"
            f"  items now  {stack.item_count()}\n"
            "Press Ctrl-C to stop."
        )
        serving = True
        while not stopping:
            stack.check_children()
            time.sleep(0.5)
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
    raise typer.Exit(exit_code)


if __name__ == "__main__":
    app()
