"""`nova replay` on a real nats-server: the bronze objects of one dataset ingested within a range
of days are announced again, with fresh message ids; a dry run only lists them."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from nats.js.errors import NotFoundError
from typer.testing import CliRunner

from services.cli.main import app
from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.parsing import find_header, rows_to_table
from services.ingestor.service import bronze_path, with_lineage
from shared.broker import connect
from shared.events import BronzeIngested
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.conftest import free_port

runner = CliRunner()
HEADER = ("DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO")


@pytest.fixture
def settings(nats_url, tmp_path, monkeypatch) -> NovaSettings:
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOVA_NATS__URL", nats_url)
    return NovaSettings()


def write_bronze(lake: Lake, name: str, day: int, rows: int, extra: bool = False) -> str:
    """An erp_requisitions bronze object ingested on 2025-03-<day>, as the ingestor writes it."""
    header = (*HEADER, "CENTRO DE CUSTO") if extra else HEADER
    lines = [
        ("DEP1", f"{i:06d}", "CABO", "MATERIAL ELETRICO", i + 1, "06/01/2025", "CC1")[: len(header)]
        for i in range(rows)
    ]
    digest = hashlib.sha256(repr((name, lines)).encode()).hexdigest()
    sheet = [header, *lines]
    match = find_header(sheet, ERP_REQUISITIONS)
    assert match is not None
    when = datetime(2025, 3, day, 23, 59, tzinfo=UTC)
    table = with_lineage(rows_to_table(sheet[match.row_number :], match), name, "S", digest, when)
    path = bronze_path("erp_requisitions", digest, when)
    lake.write_parquet(path, table)
    return path


@pytest.fixture
def bronze(settings) -> dict[str, str]:
    lake = Lake.from_settings(settings.storage)
    paths = {
        "before": write_bronze(lake, "before.xlsx", 4, 2),
        "first_day": write_bronze(lake, "first.xlsx", 5, 3, extra=True),
        "middle": write_bronze(lake, "middle.xlsx", 6, 1),
        "last_day": write_bronze(lake, "last.xlsx", 7, 4),
        "after": write_bronze(lake, "after.xlsx", 8, 2),
    }
    # Another dataset on a day in range, and a stray file: neither is replayed.
    other = "bronze/stock_movements/year=2025/month=03/day=06/" + "e" * 64 + ".parquet"
    lake.write_parquet(other, pa.table({"_source_file": ["m.csv"]}))
    stray = "bronze/erp_requisitions/year=2025/month=03/day=06/notes.parquet"
    lake.write_parquet(stray, pa.table({"x": [1]}))
    return paths


async def _stored_events(settings: NovaSettings) -> list[tuple[BronzeIngested, dict[str, str]]]:
    nc = await connect(settings.nats, name="test")
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(settings.nats.stream)
        except NotFoundError:
            return []
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            raw = await js.get_msg(settings.nats.stream, seq)
            assert raw.subject == "nova.v1.bronze.ingested.erp_requisitions"
            assert raw.data is not None
            found.append((BronzeIngested.model_validate_json(raw.data), raw.headers or {}))
        return found
    finally:
        await nc.close()


def stored_events(settings: NovaSettings) -> list[tuple[BronzeIngested, dict[str, str]]]:
    return asyncio.run(_stored_events(settings))


def test_replay_announces_exactly_the_objects_ingested_in_the_range(settings, bronze):
    in_range = [bronze["first_day"], bronze["middle"], bronze["last_day"]]
    args = ["replay", "--dataset", "erp_requisitions", "--from", "2025-03-05", "--to", "2025-03-07"]

    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert [line.split()[2] for line in dry.output.splitlines()[:-1]] == in_range
    assert "3 bronze objects of erp_requisitions" in dry.output
    assert stored_events(settings) == []  # nothing published

    before = int(time.time())
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "published 3 bronze events" in result.output
    stored = stored_events(settings)
    events = [event for event, _ in stored]
    assert [e.bronze_path for e in events] == in_range
    assert [e.row_count for e in events] == [3, 1, 4]  # from the Parquet footers
    assert [e.source_name for e in events] == ["first.xlsx", "middle.xlsx", "last.xlsx"]
    assert [e.extra_columns for e in events] == [["extra_centro_de_custo"], [], []]
    assert len({e.event_id for e in events}) == 3 and len({e.correlation_id for e in events}) == 3
    for event, headers in stored:
        assert event.dataset == "erp_requisitions"
        assert event.bronze_path.endswith(f"/{event.content_sha256}.parquet")
        match = re.fullmatch(
            rf"{event.content_sha256}\.erp_requisitions\.replay\.(\d+)", headers["Nats-Msg-Id"]
        )
        assert match is not None and before <= int(match[1]) <= time.time()


def test_a_replay_of_a_single_day_and_of_an_empty_range(settings, bronze):
    one_day = ["replay", "--dataset", "erp_requisitions", "--from", "2025-03-08", "--to"]
    result = runner.invoke(app, [*one_day, "2025-03-08"])
    assert result.exit_code == 0, result.output
    assert [e.bronze_path for e, _ in stored_events(settings)] == [bronze["after"]]

    empty = runner.invoke(
        app,
        ["replay", "--dataset", "erp_requisitions", "--from", "2025-03-09", "--to", "2025-03-31"],
    )
    assert empty.exit_code == 0, empty.output
    assert "no bronze objects of erp_requisitions ingested from 2025-03-09" in empty.output


def test_a_dry_run_needs_no_nats_and_bad_ranges_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOVA_NATS__URL", f"nats://127.0.0.1:{free_port()}")
    lake = Lake.from_settings(NovaSettings().storage)
    path = write_bronze(lake, "a.xlsx", 5, 2)
    base = ["replay", "--dataset", "erp_requisitions"]
    dry = runner.invoke(app, [*base, "--from", "2025-03-01", "--to", "2025-03-31", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert path in dry.output

    backwards = runner.invoke(app, [*base, "--from", "2025-03-31", "--to", "2025-03-01"])
    assert backwards.exit_code == 2
    assert "--from must not be after --to" in backwards.output
    not_a_day = runner.invoke(app, [*base, "--from", "07/03/2025", "--to", "2025-03-31"])
    assert not_a_day.exit_code == 2
    unreachable = runner.invoke(app, [*base, "--from", "2025-03-01", "--to", "2025-03-31"])
    assert unreachable.exit_code == 1
    assert "cannot reach NATS" in unreachable.output
