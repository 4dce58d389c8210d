"""Dead letters on a real nats-server: the transformer (in this process, real broker) gives up
on an event, `nova dlq list` shows it, `nova dlq replay` brings it back once the cause is fixed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from nats.aio.msg import Msg
from typer.testing import CliRunner

from services.cli.main import app
from services.ingestor.contracts import ERP_REQUISITIONS
from services.ingestor.parsing import find_header, rows_to_table
from services.ingestor.service import bronze_path, with_lineage
from services.transformer.main import build_app
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested, new_correlation_id
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.conftest import free_port, nats_server

runner = CliRunner()
HEADER = ("DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO")
ROWS = [
    ("BAXYZ001", "010825", "CABO FLEXIVEL", "MATERIAL ELETRICO", 10, "06/01/2025"),
    ("GERBA", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, "07/01/2025"),
]
WAIT_SECONDS = 20.0


@pytest.fixture
def settings(nats_url, tmp_path, monkeypatch) -> NovaSettings:
    """The CLI reads the environment; the in-process transformer gets the same settings."""
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOVA_NATS__URL", nats_url)
    monkeypatch.setenv("NOVA_TRANSFORMER__MAX_DELIVER", "2")
    return NovaSettings()


def bronze_object(name: str, when: datetime) -> tuple[str, pa.Table, BronzeIngested]:
    """A bronze object as the ingestor writes it (not yet written) and its event."""
    digest = hashlib.sha256(repr((name, ROWS)).encode()).hexdigest()
    sheet = [HEADER, *ROWS]
    header = find_header(sheet, ERP_REQUISITIONS)
    assert header is not None
    table = rows_to_table(sheet[header.row_number :], header)
    table = with_lineage(table, name, "CUSTO DE MATERIAL E SERVIÇOS", digest, when)
    path = bronze_path("erp_requisitions", digest, when)
    event = BronzeIngested(
        producer="ingestor",
        correlation_id=new_correlation_id(),
        dataset="erp_requisitions",
        bronze_path=path,
        content_sha256=digest,
        source_name=name,
        row_count=table.num_rows,
    )
    return path, table, event


async def _publish(settings: NovaSettings, items: list[tuple[str, bytes, str]]) -> None:
    nc = await connect(settings.nats, name="test")
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        for subject, payload, msg_id in items:
            await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


def publish(settings: NovaSettings, *items: tuple[str, bytes, str]) -> None:
    asyncio.run(_publish(settings, list(items)))


async def _dead_letters(settings: NovaSettings, count: int) -> list[Msg]:
    """Exactly `count` dead letters, read by a consumer of the DLQ stream (not the CLI's code)."""
    nc = await connect(settings.nats, name="test")
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + WAIT_SECONDS
        while (await js.stream_info(settings.nats.dlq_stream)).state.messages < count:
            assert time.monotonic() < deadline, f"fewer than {count} dead letters"
            await asyncio.sleep(0.05)
        assert (await js.stream_info(settings.nats.dlq_stream)).state.messages == count
        reader = await js.pull_subscribe("nova.dlq.v1.>", stream=settings.nats.dlq_stream)
        letters = await reader.fetch(count, timeout=5)
        await reader.unsubscribe()
        return letters
    finally:
        await nc.close()


def dead_letters(settings: NovaSettings, count: int) -> list[Msg]:
    return asyncio.run(_dead_letters(settings, count))


async def _consumer_and_streams(settings: NovaSettings) -> tuple:
    nc = await connect(settings.nats, name="test")
    try:
        js = nc.jetstream()
        return (
            await js.consumer_info(settings.nats.stream, settings.transformer.durable_name),
            await js.stream_info(settings.nats.stream),
            await js.stream_info(settings.nats.dlq_stream),
        )
    finally:
        await nc.close()


def consumer_and_streams(settings: NovaSettings) -> tuple:
    return asyncio.run(_consumer_and_streams(settings))


@contextmanager
def running_transformer(settings: NovaSettings) -> Iterator[None]:
    """The transformer's FastStream app against the real nats-server, on a thread of its own
    (the CLI under test runs its own event loop on this one)."""
    asyncio.run(_publish(settings, []))  # declares the streams, as `serve` does
    started = threading.Event()
    failure: list[BaseException] = []
    loop_and_stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def run() -> None:
        stop = asyncio.Event()
        loop_and_stop.append((asyncio.get_running_loop(), stop))
        broker = build_app(settings).broker
        assert broker is not None
        await broker.start()
        started.set()
        try:
            await stop.wait()
        finally:
            await broker.stop()

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(WAIT_SECONDS) and not failure, failure
    try:
        yield
    finally:
        loop, stop = loop_and_stop[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(WAIT_SECONDS)
        assert not failure, failure


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def settled_consumer(settings: NovaSettings):
    """The transformer's consumer once nothing is pending or awaiting an ack. A dead letter is
    published before the original is terminated, so the DLQ can show it a moment before the
    consumer does."""
    consumer = None

    def settled() -> bool:
        nonlocal consumer
        consumer, _, _ = consumer_and_streams(settings)
        return consumer.num_ack_pending == 0 and consumer.num_pending == 0

    wait_for(settled, "the transformer's consumer to settle (nothing pending, nothing unacked)")
    return consumer


def silver_hashes(lake: Lake) -> set[str]:
    table = lake.delta_table("silver", "erp_requisitions")
    if table is None:
        return set()
    return set(table.to_pyarrow_table().column("_content_sha256").to_pylist())


def test_lake_error_dead_letters_after_max_deliveries_and_replay_builds_it(settings):
    lake = Lake.from_settings(settings.storage)
    path, table, event = bronze_object("late.xlsx", datetime(2025, 3, 7, 12, tzinfo=UTC))
    original_id = f"{event.content_sha256}.erp_requisitions"
    publish(settings, (event.subject, event.to_bytes(), original_id))  # its object is missing

    with running_transformer(settings):
        (letter,) = dead_letters(settings, 1)
        assert letter.subject == f"nova.dlq.v1.{event.subject}"
        assert letter.data == event.to_bytes()  # the original payload, byte for byte
        headers = letter.headers or {}
        assert headers["Nova-Original-Subject"] == event.subject
        assert headers["Nova-Deliveries"] == "2"
        assert headers["Nova-Original-Stream-Seq"] == "1"
        assert headers["Nova-Original-Msg-Id"] == original_id
        assert headers["Nova-Error"].startswith(("FileNotFoundError: ", "OSError: "))
        failed_at = datetime.fromisoformat(headers["Nova-Failed-At"])
        assert abs((datetime.now(UTC) - failed_at).total_seconds()) < WAIT_SECONDS

        consumer = settled_consumer(settings)  # the original terminated
        assert consumer.delivered.consumer_seq == 2  # exactly two deliveries
        assert consumer.num_ack_pending == 0 and consumer.ack_floor.stream_seq == 1

        listed = runner.invoke(app, ["dlq", "list"])
        assert listed.exit_code == 0, listed.output
        for shown in (
            str(letter.metadata.sequence.stream),
            event.subject,
            "dataset: erp_requisitions",
            "deliveries: 2",
            event.correlation_id,
            headers["Nova-Failed-At"],
            headers["Nova-Error"],
        ):
            assert shown in listed.output
        (as_json,) = json.loads(runner.invoke(app, ["dlq", "list", "--json"]).output)
        assert as_json["stream_seq"] == letter.metadata.sequence.stream
        assert as_json["original_subject"] == event.subject
        assert as_json["dataset"] == "erp_requisitions"
        assert as_json["deliveries"] == 2
        assert as_json["correlation_id"] == event.correlation_id
        assert as_json["error"] == headers["Nova-Error"]

        lake.write_parquet(path, table)  # the operator fixes the cause
        replayed = runner.invoke(app, ["dlq", "replay", "--all"])
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 dead letters" in replayed.output
        wait_for(lambda: event.content_sha256 in silver_hashes(lake), "the replayed build")
        # Silver is committed before gold and the gold.updated event; the ack comes last.
        settled_consumer(settings)

    consumer, events, dlq = consumer_and_streams(settings)
    assert dlq.state.messages == 0
    assert consumer.num_ack_pending == 0 and consumer.num_pending == 0
    assert "no dead letters" in runner.invoke(app, ["dlq", "list"]).output

    # The copy got a fresh Nats-Msg-Id: the original one is still in the duplicate window.
    async def replayed_headers() -> dict[str, str]:
        nc = await connect(settings.nats, name="test")
        try:
            return (await nc.jetstream().get_msg(settings.nats.stream, 2)).headers or {}
        finally:
            await nc.close()

    assert events.state.messages == 3  # original, its replay, the gold.updated of the build
    assert (
        asyncio.run(replayed_headers())["Nats-Msg-Id"]
        == f"{original_id}.replay.{letter.metadata.sequence.stream}"
    )


def test_permanent_errors_are_dead_lettered_on_the_first_delivery(settings):
    # An unknown dataset whose error message is long and not ASCII: the header keeps 1 KB.
    unknown = BronzeIngested(
        producer="test",
        correlation_id="c-unknown",
        dataset="não_" + "ç" * 800,
        bronze_path="bronze/x/1.parquet",
        content_sha256="ab" * 32,
        source_name="x.xlsx",
        row_count=1,
    )
    malformed_subject = "nova.v1.bronze.ingested.erp_requisitions"
    publish(
        settings,
        ("nova.v1.bronze.ingested.nao_existe", unknown.to_bytes(), "unknown"),
        (malformed_subject, b"{not json", "malformed"),
    )
    with running_transformer(settings):
        first, second = dead_letters(settings, 2)
        consumer = settled_consumer(settings)

    assert consumer.delivered.consumer_seq == 2  # one delivery each, no retry
    assert consumer.num_ack_pending == 0 and consumer.num_pending == 0
    for letter in (first, second):
        assert (letter.headers or {})["Nova-Deliveries"] == "1"
    error = (first.headers or {})["Nova-Error"]
    assert error.startswith("UnknownDatasetError: no silver transform for dataset 'não_çç")
    assert 1000 < len(error.encode()) <= 1024
    assert first.data == unknown.to_bytes()
    assert second.data == b"{not json"
    assert (second.headers or {})["Nova-Error"].startswith("ValidationError: ")

    listed = json.loads(runner.invoke(app, ["dlq", "list", "--json"]).output)
    assert [d["stream_seq"] for d in listed] == [1, 2]
    assert [d["correlation_id"] for d in listed] == ["c-unknown", None]
    assert [d["deliveries"] for d in listed] == [1, 1]
    text = runner.invoke(app, ["dlq", "list"]).output
    assert "dataset: ?" in text  # the malformed one has none, and is listed all the same
    assert error in text  # not ASCII, and decoded all the same


def test_replay_refuses_unknown_sequences_and_needs_a_choice(settings):
    publish(settings)  # the streams exist, the DLQ is empty
    missing = runner.invoke(app, ["dlq", "replay", "7"])
    assert missing.exit_code == 1
    assert "not in NOVA_DLQ: 7" in missing.output
    nothing = runner.invoke(app, ["dlq", "replay"])
    assert nothing.exit_code == 2
    assert runner.invoke(app, ["dlq", "replay", "--all"]).output.strip() == (
        "replayed 0 dead letters"
    )


def test_an_unreachable_nats_is_one_readable_line(monkeypatch, tmp_path):
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOVA_NATS__URL", f"nats://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NOVA_NATS__CONNECT_TIMEOUT_SECONDS", "1")
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 1
    assert "cannot reach NATS at nats://127.0.0.1:" in result.output


def test_a_refused_nats_login_is_one_readable_line(monkeypatch, tmp_path):
    with nats_server(free_port(), "--user", "nova", "--pass", "right-password") as url:
        monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("NOVA_NATS__URL", url)
        monkeypatch.setenv("NOVA_NATS__USER", "nova")
        monkeypatch.setenv("NOVA_NATS__PASSWORD", "wrong-password")
        result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 1
    assert "NATS authentication failed" in result.output
    assert "wrong-password" not in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_nats_is_named_without_its_password(monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOVA_NATS__URL", f"nats://nova:Sup3r-s3cret@127.0.0.1:{port}")
    monkeypatch.setenv("NOVA_NATS__CONNECT_TIMEOUT_SECONDS", "1")
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 1
    assert f"cannot reach NATS at nats://127.0.0.1:{port}" in result.output
    assert "Sup3r-s3cret" not in result.output
