"""Two transformer processes share one durable consumer on a real nats-server: a burst of events
is split between them, and no table is corrupted and no update lost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.parsing import find_header, rows_to_table
from services.ingestor.service import bronze_path, with_lineage
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested, GoldUpdated, new_correlation_id
from shared.settings import NovaSettings
from shared.storage import Lake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
HEADER = ("DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO")
# Each build rewrites silver and eight gold tables (~1 s), and builds take turns: 24 keeps the
# test near half a minute while both replicas still build a dozen each.
FILES = 24
SHARED_ITEMS = ("010825", "020001")
# For the whole burst: about 30 s on an idle 2-core machine, 75 s with two other processes
# spinning on its cores.
WAIT_SECONDS = 300.0


def ingest(lake: Lake, name: str, rows: list[tuple], when: datetime) -> BronzeIngested:
    """What the ingestor does for one file (as tests/transformer/test_builds.py `ingest`)."""
    digest = hashlib.sha256(repr((name, rows)).encode()).hexdigest()
    sheet = [HEADER, *rows]
    header = find_header(sheet, ERP_REQUISITIONS)
    assert header is not None
    table = rows_to_table(sheet[header.row_number :], header)
    table = with_lineage(table, name, "CUSTO DE MATERIAL E SERVIÇOS", digest, when)
    path = bronze_path("erp_requisitions", digest, when)
    lake.write_parquet(path, table)
    return BronzeIngested(
        producer="ingestor",
        correlation_id=new_correlation_id(),
        dataset="erp_requisitions",
        bronze_path=path,
        content_sha256=digest,
        source_name=name,
        row_count=table.num_rows,
    )


def file_rows(index: int) -> list[tuple]:
    """Two items every file shares and one only this file has; one depot per file keeps the
    business keys apart, so silver must hold every file's rows. All rows fall in two business
    months, so that concurrent builds rewrite the same silver partitions."""
    depot = f"DEP{index:03d}"
    return [
        (depot, SHARED_ITEMS[0], "CABO FLEXIVEL", "MATERIAL ELETRICO", index + 1, "06/01/2025"),
        (depot, SHARED_ITEMS[1], "LUVA VAQUETA", "EPI", 2, "02/02/2025"),
        (depot, f"9{index:05d}", f"ITEM {index}", "EPI", 1, "10/01/2025"),
    ]


def start_transformer(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.transformer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def json_lines(path: Path) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def assert_clean_history(table_dir: Path) -> None:
    """Every version committed whole: contiguous versions, no half-written commit file left in
    the log, and every data file the latest version names is on disk and readable."""
    table = DeltaTable(str(table_dir))
    versions = sorted(entry["version"] for entry in table.history())
    assert versions == list(range(table.version() + 1)), table_dir
    log_dir = table_dir / "_delta_log"
    leftovers = [p.name for p in log_dir.iterdir() if not p.name.endswith((".json", ".crc"))]
    assert [n for n in leftovers if not n.startswith("_last_checkpoint")] == [], table_dir
    for uri in table.file_uris():
        assert Path(uri.removeprefix("file://")).exists(), uri
    table.to_pyarrow_table()  # reads every file of the latest version


def test_two_replicas_split_a_burst_without_losing_an_update(nats_url, tmp_path):
    var = tmp_path / "var"
    env = {
        **os.environ,
        "NOVA_VAR_DIR": str(var),
        "NOVA_NATS__URL": nats_url,
        "NOVA_LOG__FORMAT": "json",
    }
    settings = NovaSettings(var_dir=var, nats={"url": nats_url})
    lake = Lake.from_settings(settings.storage)
    when = datetime(2025, 3, 7, 12, tzinfo=UTC)
    events = [ingest(lake, f"req-{i:02d}.xlsx", file_rows(i), when) for i in range(FILES)]
    logs = [tmp_path / "transformer-1.log", tmp_path / "transformer-2.log"]
    processes = [start_transformer(env, path) for path in logs]

    async def scenario() -> list[GoldUpdated]:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        updates: list[GoldUpdated] = []

        async def collect(msg) -> None:
            updates.append(GoldUpdated.model_validate_json(msg.data))

        await nc.subscribe(GoldUpdated.subject_template, cb=collect)
        deadline = time.monotonic() + WAIT_SECONDS

        async def until(condition, what: str) -> None:
            while not await condition():
                for process, path in zip(processes, logs, strict=True):
                    assert process.poll() is None, f"{path.name} died:\n{path.read_text()}"
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.1)

        async def both_pulling() -> bool:
            try:
                info = await js.consumer_info(settings.nats.stream, "transformer")
            except Exception:  # not created yet by the first process to start
                return False
            return info.num_waiting >= 2

        await until(both_pulling, "both transformers to pull")
        await asyncio.gather(
            *(
                js.publish(
                    e.subject, e.to_bytes(), headers={"Nats-Msg-Id": f"{e.content_sha256}.x"}
                )
                for e in events
            )
        )

        async def all_built() -> bool:
            return len(updates) >= FILES

        await until(all_built, f"{FILES} gold.updated events")

        # A build publishes gold.updated before its event is acked: wait for the last acks.
        async def all_acked() -> bool:
            consumer = await js.consumer_info(settings.nats.stream, "transformer")
            return consumer.num_ack_pending == 0 and consumer.num_pending == 0

        await until(all_acked, "every event to be acked")
        await asyncio.sleep(0.5)  # a surplus update would show up now
        dlq = await js.stream_info(settings.nats.dlq_stream)
        assert dlq.state.messages == 0, "nothing may be dead-lettered"
        await nc.close()
        return updates

    try:
        updates = asyncio.run(scenario())
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)

    # One gold.updated per event, each event built.
    assert len(updates) == FILES
    assert {u.source_events[0] for u in updates} == {e.event_id for e in events}

    silver = lake.delta_table("silver", "erp_requisitions")
    assert silver is not None
    rows = silver.to_pyarrow_table()
    assert rows.num_rows == 3 * FILES
    assert set(rows.column("_content_sha256").to_pylist()) == {e.content_sha256 for e in events}
    dim_item = lake.delta_table("gold", "dim_item")
    assert dim_item is not None
    codes = dim_item.to_pyarrow_table().column("item_code").to_pylist()
    expected_codes = {*SHARED_ITEMS, *(f"9{i:05d}" for i in range(FILES))}
    assert sorted(codes) == sorted(expected_codes)

    # Both replicas took part, and each event was built by exactly one of them.
    built_by = [
        {line["build_id"] for line in json_lines(path) if line["event"] == "gold_updated_published"}
        for path in logs
    ]
    assert all(built_by), f"one replica did nothing: {[len(b) for b in built_by]}"
    assert built_by[0] | built_by[1] == {u.build_id for u in updates}

    lake_dir = var / "lake"
    tables = [
        p
        for layer in ("silver", "gold")
        for p in sorted((lake_dir / layer).iterdir())
        if (p / "_delta_log").is_dir()
    ]
    assert tables
    for table_dir in tables:
        assert_clean_history(table_dir)
