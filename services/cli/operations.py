"""Operator commands: what datasets exist, what is in quarantine, retrying it, pruning bronze."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.quarantine import REPORT_SUFFIX, for_terminal, printable, quarantined_entries
from shared.settings import NovaSettings

quarantine_app = typer.Typer(help="Files the ingestor rejected, with their reasons.")
bronze_app = typer.Typer(help="Bronze layer maintenance.")


def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="As in the README.")] = False,
) -> None:
    """List the dataset contracts: columns, types, business key and date, accepted formats."""
    from services.ingestor.contracts import CONTRACTS

    if markdown:
        typer.echo(contracts_markdown(), nl=False)
        return
    if as_json:
        typer.echo(json.dumps([contract_as_dict(c) for c in CONTRACTS.values()], indent=2))
        return
    for contract in CONTRACTS.values():
        typer.echo(f"{contract.name}  ({', '.join(contract.formats)})")
        typer.echo(f"  {contract.description}")
        typer.echo(f"  business key: {', '.join(contract.business_key)}")
        typer.echo(f"  business date: {contract.business_date or '-'}")
        for column in contract.columns:
            flags = ("required" if column.required else "optional") + (
                ", may be empty" if column.nullable else ""
            )
            aliases = " | ".join(column.aliases)
            typer.echo(f"    {column.name:<24} {column.type:<9} {flags:<24} {aliases}")
        typer.echo("")


def contracts_markdown() -> str:
    """The README's dataset reference, generated so that it cannot drift from the contracts."""
    from services.ingestor.contracts import CONTRACTS

    lines: list[str] = []
    for contract in CONTRACTS.values():
        lines += [
            f"### `{contract.name}`",
            "",
            f"{contract.description} Formats: {', '.join(contract.formats)}. "
            f"Business key: `{', '.join(contract.business_key)}`. "
            f"Business date: `{contract.business_date or '-'}`.",
            "",
            "| column | type | | source headers | meaning |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in contract.columns:
            flags = ("required" if c.required else "optional") + (
                ", may be empty" if c.nullable else ""
            )
            headers = ", ".join(f"`{a}`" for a in c.aliases) or "(document field)"
            lines.append(f"| `{c.name}` | {c.type} | {flags} | {headers} | {c.description} |")
        lines.append("")
    return "\n".join(lines)


def contract_as_dict(contract: Any) -> dict[str, Any]:
    return {
        "name": contract.name,
        "description": contract.description,
        "formats": list(contract.formats),
        "business_key": list(contract.business_key),
        "business_date": contract.business_date,
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "required": c.required,
                "nullable": c.nullable,
                "source_headers": list(c.aliases),
                "description": c.description,
            }
            for c in contract.columns
        ],
    }


def _quarantine_dir(settings: NovaSettings) -> Path:
    assert settings.ingestor.quarantine_dir is not None
    return settings.ingestor.quarantine_dir


def quarantined_reports(quarantine: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(quarantined entry, its error report) for every entry still in quarantine; a report that
    cannot be read still lists its entry, with what can be said (see `shared.quarantine`)."""
    return [(e.path, e.report) for e in quarantined_entries(quarantine) if e.present]


@quarantine_app.command("list")
def quarantine_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each quarantined file with its dataset, time and reason."""
    quarantine = _quarantine_dir(NovaSettings())
    reports = quarantined_reports(quarantine) if quarantine.is_dir() else []
    if as_json:
        typer.echo(
            json.dumps([{**r, "quarantined_as": printable(p.name)} for p, r in reports], indent=2)
        )
        return
    if not reports:
        typer.echo(f"quarantine is empty ({quarantine})")
        return
    for path, report in reports:
        typer.echo(
            f"{for_terminal(path.name)}\n  dataset: {for_terminal(report.get('dataset', '?'))}"
            f"   rejected: {for_terminal(report.get('rejected_at', '?'))}\n"
            f"  reason:  {for_terminal(report.get('reason', '?'))}"
            + (f"   column: {for_terminal(report['column'])}" if report.get("column") else "")
            + (f"   row: {for_terminal(report['row'])}" if report.get("row") else "")
        )


@quarantine_app.command("retry")
def quarantine_retry(
    names: Annotated[list[str] | None, typer.Argument(help="Quarantined file names.")] = None,
    all_files: Annotated[bool, typer.Option("--all", help="Retry every quarantined file.")] = False,
) -> None:
    """Put quarantined files back in the inbox (after fixing the file or the contract).

    The file returns to where it was dropped (`inbox/<dataset>/` or `inbox/`); its error
    report is kept under `quarantine/retried/`.
    """
    settings = NovaSettings()
    quarantine = _quarantine_dir(settings)
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    reports = dict(quarantined_reports(quarantine)) if quarantine.is_dir() else {}
    by_name = {path.name: (path, report) for path, report in reports.items()}
    wanted = list(by_name) if all_files else (names or [])
    # A name that is not UTF-8 can be given as `nova quarantine list` shows it, too.
    shown = {for_terminal(name): name for name in by_name}
    wanted = [n if n in by_name else shown.get(n, n) for n in wanted]
    if not wanted:
        typer.echo("name the files to retry, or pass --all", err=True)
        raise typer.Exit(2)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        typer.echo(
            f"not in quarantine: {', '.join(map(for_terminal, unknown))}"
            " (see `nova quarantine list`)",
            err=True,
        )
        raise typer.Exit(1)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for name in wanted:
        path, report = by_name[name]
        destination = inbox / _original_place(report, path.name)
        if os.path.lexists(destination):
            typer.echo(f"{destination} already exists; not overwriting it", err=True)
            raise typer.Exit(1)
        kept = quarantine / "retried" / f"{path.name}.{stamp}{REPORT_SUFFIX}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        destination.parent.mkdir(parents=True, exist_ok=True)
        # The report moves first: a file back in the inbox with a stale reason beside it in
        # quarantine would be listed as still rejected.
        report_path = path.with_name(path.name + REPORT_SUFFIX)
        if report_path.exists():
            shutil.move(report_path, kept)
        shutil.move(path, destination)
        typer.echo(f"{for_terminal(path.name)} -> {for_terminal(destination)}")


def _original_place(report: dict[str, Any], quarantined_name: str) -> Path:
    """Where the file was dropped, when that is a safe relative path; else the inbox root."""
    recorded = Path(str(report.get("inbox_path") or quarantined_name))
    if recorded.is_absolute() or ".." in recorded.parts or len(recorded.parts) > 2:
        return Path(quarantined_name)
    if len(recorded.parts) == 2:
        return Path(recorded.parts[0]) / quarantined_name
    return Path(quarantined_name)


@bronze_app.command("prune")
def bronze_prune(
    dry_run: Annotated[bool, typer.Option(help="Only show what would be removed.")] = False,
    retention_days: Annotated[
        float | None, typer.Option(help="Override NOVA_INGESTOR__BRONZE_RETENTION_DAYS.")
    ] = None,
) -> None:
    """Remove bronze objects older than the retention whose rows are already in silver."""
    from services.ingestor.retention import prune_bronze
    from shared.storage import Lake

    settings = NovaSettings()
    days = settings.ingestor.bronze_retention_days if retention_days is None else retention_days
    report = prune_bronze(
        Lake.from_settings(settings.storage), datetime.now(UTC), days, dry_run=dry_run
    )
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(report.removed)} bronze objects older than {days:g} days; kept "
        f"{len(report.kept_not_in_silver)} old ones whose rows are not in silver yet"
    )
    for path in report.removed:
        typer.echo(f"  {path}")


def rebuild() -> None:
    """Recompute every silver and gold table from all bronze objects (same SQL as events)."""
    from services.transformer.builds import rebuild_all
    from shared.storage import Lake

    settings = NovaSettings()
    result = rebuild_all(Lake.from_settings(settings.storage))
    typer.echo(f"build {result.build_id}")
    for table in result.tables:
        typer.echo(f"  {table.table:<32} version {table.version:<5} {table.row_count:>10,} rows")
