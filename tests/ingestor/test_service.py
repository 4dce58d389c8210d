"""IngestService on a local lake, with an in-memory ledger and publisher instead of NATS."""

import hashlib
import io
import json
import os
import zipfile
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest
from openpyxl import Workbook

from services.ingestor.contracts import CONTRACTS
from services.ingestor.ledger import LedgerEntry
from services.ingestor.service import FileChangedError, bronze_path
from shared.events import BronzeIngested, IngestRejected
from tests.ingestor.fakes import NOW, IngestEnv, MemoryLedger, RecordingPublisher

HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]
YESTERDAY = NOW - timedelta(days=1)


@pytest.fixture
def env(tmp_path):
    return IngestEnv(tmp_path)


def write_workbook(path, rows, *, extra_sheets=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "CUSTO DE MATERIAL E SERVIÇOS"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    for title, sheet_rows in extra_sheets:
        extra = workbook.create_sheet(title)
        for row in sheet_rows:
            extra.append(row)
    workbook.save(path)
    return path


def workbook_bytes(rows):
    buffer = io.BytesIO()
    workbook = Workbook()
    workbook.active.append(HEADER)
    for row in rows:
        workbook.active.append(row)
    workbook.save(buffer)
    return buffer.getvalue()


GOOD_ROWS = [
    ["BAXYZ001", "010825", "CABO FLEXIVEL 2,5MM", "MATERIAL ELETRICO", 10, datetime(2025, 1, 6)],
    ["N/A", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, "07/01/2025"],
    ["GERBA", "010825", "CABO FLEXIVEL 2,5MM", "MATERIAL ELETRICO", "2,5", None],
]
BAD_ROWS = [*GOOD_ROWS, ["D1", "010900", "LUVA", "EPI", "muitas", None]]  # bad cell on row 5

GOOD_MOVEMENTS_CSV = (
    "DATA MOVIMENTO;DEPÓSITO;PRODUTO;TIPO MOVIMENTO;QUANTIDADE;DOCUMENTO\n"
    "03/02/2025;ALMOX-BA;000123;ENTRADA;1.500;NF-1\n"
).encode()
BAD_MOVEMENTS_CSV = GOOD_MOVEMENTS_CSV + "04/02/2025;ALMOX-BA;000123;SAÍDA;muitos;REQ-7\n".encode()


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- ingested -------------------------------------------------------------------------------


def test_valid_workbook_is_written_to_bronze_published_and_archived(env):
    source = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    digest = sha256(source)

    outcome = env.process(source)

    assert outcome.status == "ingested"
    assert outcome.content_sha256 == digest
    # archived under the ingest date, named by content
    expected_archive = env.archive / "2025" / "03" / "07" / f"{digest}-export.xlsx"
    assert outcome.moved_to == expected_archive
    assert expected_archive.is_file()
    assert sha256(expected_archive) == digest
    assert not source.exists()
    assert not env.quarantine.exists() or list(env.quarantine.iterdir()) == []

    bronze = f"bronze/erp_requisitions/year=2025/month=03/day=07/{digest}.parquet"
    assert env.lake.list_files("bronze") == [bronze]
    assert env.lake_files() == [bronze]  # and no staging file left beside it
    table = env.lake.read_parquet(bronze)
    assert table.num_rows == 3
    assert table.column("item_code").to_pylist() == ["010825", "0134", "010825"]
    assert table.column("depot_code").to_pylist() == ["BAXYZ001", None, "GERBA"]
    assert table.column("quantity").to_pylist() == [10.0, 1.0, 2.5]
    assert table.column("requested_date").to_pylist() == [date(2025, 1, 6), date(2025, 1, 7), None]
    # lineage
    assert table.column("_source_file").to_pylist() == ["export.xlsx"] * 3
    assert table.column("_source_sheet").to_pylist() == ["CUSTO DE MATERIAL E SERVIÇOS"] * 3
    assert table.column("_source_row").to_pylist() == [2, 3, 4]
    assert table.column("_content_sha256").to_pylist() == [digest] * 3
    assert table.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("_ingested_at").to_pylist() == [NOW] * 3

    ((event, message_id),) = env.publisher.published
    assert outcome.events == [event]
    assert isinstance(event, BronzeIngested)
    assert event.subject == "nova.v1.bronze.ingested.erp_requisitions"
    assert event.producer == "ingestor"
    assert event.correlation_id == outcome.correlation_id
    assert event.dataset == "erp_requisitions"
    assert event.bronze_path == bronze
    assert event.content_sha256 == digest
    assert event.source_name == "export.xlsx"
    assert event.row_count == 3
    assert event.extra_columns == []
    assert digest in message_id
    assert message_id == f"{digest}.erp_requisitions"

    # the ledger went started -> published, with the paths and event ids
    assert [e.status for e in env.ledger.puts] == ["started", "published"]
    entry = env.ledger.entries[digest]
    assert entry.ingested_at == NOW
    assert entry.source_name == "export.xlsx"
    assert entry.bronze_paths == {"erp_requisitions": bronze}
    assert entry.event_ids == {"erp_requisitions": event.event_id}


def test_file_in_a_dataset_folder_is_ingested_with_that_contract(env):
    source = write_workbook(env.inbox / "erp_requisitions" / "export.xlsx", GOOD_ROWS)
    outcome = env.process(source)
    assert outcome.status == "ingested"
    assert outcome.events[0].dataset == "erp_requisitions"


def test_each_file_gets_its_own_correlation_id(env):
    first = env.process(write_workbook(env.inbox / "a.xlsx", GOOD_ROWS))
    second = env.process(write_workbook(env.inbox / "b.xlsx", GOOD_ROWS[:1]))
    assert first.correlation_id != second.correlation_id
    assert first.content_sha256 != second.content_sha256
    assert len(env.lake.list_files("bronze")) == 2


def test_two_sheets_of_the_same_dataset_are_both_kept(env):
    second_sheet = ("CUSTO 2024", [HEADER, ["D9", "019999", "TRENA 5M", "FERRAMENTAS", 4, None]])
    source = write_workbook(env.inbox / "two.xlsx", GOOD_ROWS, extra_sheets=[second_sheet])
    outcome = env.process(source)
    assert outcome.status == "ingested"
    # One dataset, one bronze object and one event, holding the rows of both sheets.
    (event,) = outcome.events
    assert event.row_count == 4
    (path,) = env.lake.list_files("bronze")
    bronze = env.lake.read_parquet(path)
    assert sorted(bronze.column("item_code").to_pylist()) == ["010825", "010825", "0134", "019999"]
    assert set(bronze.column("_source_sheet").to_pylist()) == {
        "CUSTO 2024",
        "CUSTO DE MATERIAL E SERVIÇOS",
    }


def test_sheets_of_one_dataset_with_different_extra_columns_are_merged(env):
    second_sheet = (
        "CUSTO 2024",
        [[*HEADER, "OBSERVAÇÃO"], ["D9", "019999", "TRENA 5M", "FERRAMENTAS", 4, None, "urgente"]],
    )
    source = write_workbook(env.inbox / "two.xlsx", GOOD_ROWS, extra_sheets=[second_sheet])
    outcome = env.process(source)
    assert outcome.status == "ingested"
    (path,) = env.lake.list_files("bronze")
    bronze = env.lake.read_parquet(path)
    by_sheet = {}
    for sheet, note in zip(
        bronze.column("_source_sheet").to_pylist(),
        bronze.column("extra_observacao").to_pylist(),
        strict=True,
    ):
        by_sheet.setdefault(sheet, []).append(note)
    assert by_sheet == {"CUSTO DE MATERIAL E SERVIÇOS": [None] * 3, "CUSTO 2024": ["urgente"]}


def test_the_real_workbook_gives_three_datasets(env, real_workbook):
    outcome = env.ingest("dadosSuprimentos.xlsx", real_workbook.read_bytes())
    assert outcome.status == "ingested"
    counts = {e.dataset: e.row_count for e in outcome.events}
    # documented in shared/data/README.md (the cost summary: 41 accounts and the total row)
    assert counts == {"erp_requisitions": 4207, "erp_cost_summary": 42, "erp_sites": 267}
    assert all(e.extra_columns == [] for e in outcome.events)
    assert len(env.lake.list_files("bronze")) == 3
    for event in outcome.events:
        table = env.lake.read_parquet(event.bronze_path)
        assert table.num_rows == event.row_count
    sites = env.lake.read_parquet(
        next(e.bronze_path for e in outcome.events if e.dataset == "erp_sites")
    )
    assert set(sites.column("_source_sheet").to_pylist()) == {"DADOS"}  # the hidden sheet


# --- duplicate, resume, retries --------------------------------------------------------------


def test_same_content_dropped_twice_is_a_duplicate_and_a_no_op(env):
    # Re-specified: the ledger now remembers published content, so the second copy is not
    # re-ingested (it used to be re-written and re-published for the broker to drop).
    first = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    content = first.read_bytes()
    one = env.process(first)
    (env.inbox / "export.xlsx").write_bytes(content)
    two = env.process(env.inbox / "export.xlsx")

    assert (one.status, two.status) == ("ingested", "duplicate")
    assert one.content_sha256 == two.content_sha256
    assert two.events == []
    # the second copy is archived too, under a free name beside the first
    assert one.moved_to != two.moved_to
    assert two.moved_to == one.moved_to.with_name(f"{one.content_sha256}-export.1.xlsx")
    assert one.moved_to.read_bytes() == two.moved_to.read_bytes() == content
    assert not (env.inbox / "export.xlsx").exists()
    # no second bronze object, no second event, the ledger untouched by the duplicate
    assert env.lake.list_files("bronze") == [one.events[0].bronze_path]
    assert len(env.publisher.published) == 1
    assert [e.status for e in env.ledger.puts] == ["started", "published"]


def test_duplicate_under_another_name_on_another_day(env):
    content = workbook_bytes(GOOD_ROWS)
    one = env.ingest("monday.xlsx", content)
    env.now = NOW + timedelta(days=3)
    two = env.ingest("erp_requisitions/thursday.xlsx", content)
    assert two.status == "duplicate"
    assert (
        two.moved_to == env.archive / "2025" / "03" / "10" / f"{one.content_sha256}-thursday.xlsx"
    )
    assert two.moved_to.is_file()
    assert len(env.lake.list_files("bronze")) == 1
    assert len(env.publisher.published) == 1


def test_resume_after_a_crash_reuses_the_first_ingestion_time(tmp_path):
    content = workbook_bytes(GOOD_ROWS)
    digest = hashlib.sha256(content).hexdigest()
    # The first attempt, yesterday, got as far as the ledger entry and a bronze object.
    first_attempt = LedgerEntry(
        content_sha256=digest,
        status="started",
        ingested_at=YESTERDAY,
        correlation_id="first-attempt",
        source_name="export.xlsx",
    )
    env = IngestEnv(tmp_path, ledger=MemoryLedger([first_attempt]))
    yesterday_path = bronze_path("erp_requisitions", digest, YESTERDAY)
    assert "day=06" in yesterday_path
    env.lake.write_parquet(yesterday_path, pa.table({"stale": [1]}))

    outcome = env.ingest("export.xlsx", content)

    assert outcome.status == "ingested"
    # exactly one object, at yesterday's path, rewritten whole with today's reading
    assert env.lake_files() == [yesterday_path]
    (event,) = outcome.events
    assert event.bronze_path == yesterday_path
    table = env.lake.read_parquet(yesterday_path)
    assert "stale" not in table.column_names
    assert table.num_rows == 3
    assert table.column("_ingested_at").to_pylist() == [YESTERDAY] * 3
    # one file, one story: the event carries the first attempt's correlation id
    assert event.correlation_id == "first-attempt"
    entry = env.ledger.entries[digest]
    assert (entry.status, entry.ingested_at) == ("published", YESTERDAY)
    assert [e.status for e in env.ledger.puts] == ["published"]  # no second "started"


def test_publish_failure_leaves_the_file_in_the_inbox_for_a_retry(tmp_path):
    env = IngestEnv(tmp_path, publisher=RecordingPublisher(fail=True))
    source = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    digest = sha256(source)
    with pytest.raises(ConnectionError):
        env.process(source)
    assert source.is_file()
    assert not env.archive.exists()
    assert env.ledger.entries[digest].status == "started"

    # the broker is back: the retry rewrites the same object and publishes once
    first_objects = env.lake.list_files("bronze")
    env.publisher.fail = False
    env.now = NOW + timedelta(days=1)  # even on another day
    outcome = env.process(source)
    assert outcome.status == "ingested"
    assert env.lake.list_files("bronze") == first_objects == [outcome.events[0].bronze_path]
    assert len(env.publisher.published) == 1
    assert env.ledger.entries[digest].status == "published"


def test_event_ids_derive_from_the_content_and_the_dataset(tmp_path):
    # A re-publish after a crash must be recognisable as the same event by any consumer.
    content = workbook_bytes(GOOD_ROWS)
    one = IngestEnv(tmp_path / "one").ingest("a.xlsx", content)
    two = IngestEnv(tmp_path / "two").ingest("b.xlsx", content)
    other = IngestEnv(tmp_path / "three").ingest("a.xlsx", workbook_bytes(GOOD_ROWS[:2]))
    assert one.correlation_id != two.correlation_id
    assert one.events[0].event_id == two.events[0].event_id
    assert other.events[0].event_id != one.events[0].event_id


@pytest.mark.parametrize("name", ["export.xlsx", "movements.csv"])
def test_file_changed_while_it_was_read_stays_in_the_inbox(env, monkeypatch, name):
    content = workbook_bytes(GOOD_ROWS) if name.endswith(".xlsx") else GOOD_MOVEMENTS_CSV
    source = env.drop(name, content)
    write = env.lake.write_parquet_batches

    def write_then_planner_saves_again(path, schema, batches):
        size = write(path, schema, batches)
        with source.open("ab") as handle:  # the file grows after it was hashed and read
            handle.write(b"\n")
        return size

    monkeypatch.setattr(env.lake, "write_parquet_batches", write_then_planner_saves_again)
    with pytest.raises(FileChangedError):
        env.process(source)
    assert source.is_file()
    assert source.read_bytes() == content + b"\n"
    assert env.publisher.published == []
    assert not env.archive.exists()
    assert not env.quarantine.exists()
    assert [e.status for e in env.ledger.puts] == ["started"]  # never "published"
    assert env.lake_files() == [], "the unpublished bronze object of the old content is gone"


# --- quarantined ---------------------------------------------------------------------------


def test_broken_file_is_quarantined_with_a_report(env):
    source = write_workbook(env.inbox / "broken.xlsx", BAD_ROWS)
    digest = sha256(source)

    outcome = env.process(source)

    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / "broken.xlsx"
    assert outcome.moved_to.is_file()
    assert sha256(outcome.moved_to) == digest
    assert not source.exists()
    assert not env.archive.exists()
    assert env.lake_files() == []

    report = json.loads((env.quarantine / "broken.xlsx.error.json").read_text())
    assert report["file"] == "broken.xlsx"
    assert report["inbox_path"] == "broken.xlsx"
    assert report["content_sha256"] == digest
    assert report["column"] == "quantity"
    assert report["row"] == 5
    assert "muitas" in report["reason"]
    assert "CUSTO DE MATERIAL E SERVIÇOS" in report["reason"]  # the sheet
    assert report["correlation_id"] == outcome.correlation_id
    assert datetime.fromisoformat(report["rejected_at"]) == NOW
    # (which dataset a file in the inbox root is reported under: see the test below)

    ((event, message_id),) = env.publisher.published
    assert outcome.events == [event]
    assert isinstance(event, IngestRejected)
    assert event.dataset == report["dataset"]
    assert event.subject == f"nova.v1.ingest.rejected.{report['dataset']}"
    assert event.producer == "ingestor"
    assert event.correlation_id == outcome.correlation_id
    assert event.source_name == "broken.xlsx"
    assert event.content_sha256 == digest
    assert (event.column, event.row) == ("quantity", 5)
    assert "muitas" in event.reason
    assert digest in message_id


@pytest.mark.parametrize(
    ("name", "dataset"),
    [("broken.xlsx", "erp_requisitions"), ("movements.csv", "stock_movements")],
)
def test_violation_in_the_inbox_root_names_the_dataset_whose_header_matched(env, name, dataset):
    content = workbook_bytes(BAD_ROWS) if name.endswith(".xlsx") else BAD_MOVEMENTS_CSV
    outcome = env.ingest(name, content)
    assert outcome.status == "quarantined"
    assert env.report(outcome)["dataset"] == dataset
    assert outcome.events[0].subject == f"nova.v1.ingest.rejected.{dataset}"


def test_quarantine_report_of_a_file_in_a_dataset_folder(env):
    outcome = env.ingest("erp_requisitions/março/bad.xlsx", workbook_bytes(BAD_ROWS))
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert set(report) == {
        "file",
        "inbox_path",
        "content_sha256",
        "dataset",
        "reason",
        "column",
        "row",
        "rejected_at",
        "correlation_id",
    }
    assert report["inbox_path"] == "erp_requisitions/março/bad.xlsx"
    assert report["file"] == "bad.xlsx"
    assert report["dataset"] == "erp_requisitions"
    assert (report["column"], report["row"]) == ("quantity", 5)
    assert "muitas" in report["reason"]
    assert outcome.moved_to == env.quarantine / "bad.xlsx"


def test_rejection_in_a_dataset_folder_names_that_dataset(env):
    source = write_workbook(env.inbox / "erp_requisitions" / "x.xlsx", [["D1", None, "A", "B", 1]])
    outcome = env.process(source)
    assert outcome.status == "quarantined"
    (event,) = outcome.events
    assert event.dataset == "erp_requisitions"
    assert event.subject == "nova.v1.ingest.rejected.erp_requisitions"
    assert (event.column, event.row) == ("item_code", 2)


def test_second_quarantined_file_with_the_same_name_does_not_overwrite(env):
    first = env.process(write_workbook(env.inbox / "broken.xlsx", [["D1", "1", "A", "B", "x"]]))
    first_report = (env.quarantine / "broken.xlsx.error.json").read_text()
    second_source = write_workbook(env.inbox / "broken.xlsx", [["D1", "1", "A", "B", 1, "bad"]])
    second = env.process(second_source)

    assert first.moved_to == env.quarantine / "broken.xlsx"
    assert second.moved_to == env.quarantine / "broken.1.xlsx"
    assert first.moved_to.is_file()
    assert second.moved_to.is_file()
    assert sha256(first.moved_to) == first.content_sha256
    assert sha256(second.moved_to) == second.content_sha256
    assert (env.quarantine / "broken.xlsx.error.json").read_text() == first_report
    second_report = env.report(second)
    assert second_report["column"] == "requested_date"
    assert second_report["content_sha256"] == second.content_sha256
    assert len(list(env.quarantine.iterdir())) == 4


@pytest.mark.parametrize(
    ("name", "content", "reason_part"),
    [
        ("random.xlsx", os.urandom(2048), "not a readable .xlsx"),
        # Re-specified: .csv is supported now, so the unsupported example is a .pdf.
        ("export.pdf", b"%PDF-1.4 whatever", "unsupported file type '.pdf'"),
        ("noextension", b"whatever", "unsupported file type '(none)'"),
        ("empty.xlsx", b"", "the file is empty"),
    ],
)
def test_unreadable_files_are_quarantined(env, name, content, reason_part):
    outcome = env.ingest(name, content)
    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / name
    assert outcome.moved_to.read_bytes() == content
    report = json.loads((env.quarantine / f"{name}.error.json").read_text())
    assert reason_part in report["reason"]
    assert report["column"] is None
    assert report["row"] is None
    assert env.lake_files() == []


@pytest.mark.parametrize(
    ("name", "reason_part"),
    [
        # Re-specified (issue 13, item 4): `export..xlsx` is an ordinary name and is ingested
        # (see test_hostile.py); a `..` that climbs needs a separator, refused as such.
        ("..\\export.xlsx", "path separator"),
        ("erp\\export.xlsx", "path separator"),
        ("export\x07.xlsx", "control characters"),
    ],
)
def test_unsafe_file_names_are_quarantined_unread(env, name, reason_part):
    content = workbook_bytes(GOOD_ROWS)
    outcome = env.ingest(name, content)
    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / name
    assert outcome.moved_to.read_bytes() == content
    report = env.report(outcome)
    assert reason_part in report["reason"]
    assert report["content_sha256"] is None  # refused before it was hashed
    assert env.ledger.gets == []
    assert env.lake_files() == []


def test_file_over_the_size_limit_is_quarantined_unread(tmp_path):
    env = IngestEnv(tmp_path, max_file_bytes=1000)
    content = workbook_bytes(GOOD_ROWS)
    assert len(content) > 1000
    outcome = env.ingest("big.xlsx", content)
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert f"the file has {len(content):,} bytes" in report["reason"]
    assert "over the limit of 1,000" in report["reason"]
    assert report["content_sha256"] is None
    assert env.ledger.gets == []
    # a file at the limit is read
    small = IngestEnv(tmp_path / "small", max_file_bytes=len(content))
    assert small.ingest("big.xlsx", content).status == "ingested"


def test_zip_bomb_is_quarantined_naming_the_limit(tmp_path):
    env = IngestEnv(tmp_path, max_uncompressed_bytes=10 * 1024**2)
    source = env.inbox / "bomb.xlsx"
    chunk = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/worksheets/sheet1.xml", "w") as entry,
    ):
        for _ in range(50):
            entry.write(chunk)  # 50 MB of zeros, a few dozen KB on disk
    assert source.stat().st_size < 1024**2
    outcome = env.process(source)
    assert outcome.status == "quarantined"
    reason = env.report(outcome)["reason"]
    assert "52,428,800 bytes" in reason
    assert "over the limit of 10,485,760" in reason
    assert env.lake_files() == []


def test_truncated_workbook_is_quarantined(env):
    content = workbook_bytes(GOOD_ROWS)
    outcome = env.ingest("cut.xlsx", content[: len(content) // 2])
    assert outcome.status == "quarantined"
    assert "not a readable .xlsx" in env.report(outcome)["reason"]
    assert env.lake_files() == []


def test_workbook_without_any_contract_sheet_is_quarantined(env):
    # Re-specified: the old example (DESCRIÇÃO CTA.FINANC. / Soma de VLR.LÍQUIDO) is now the
    # erp_cost_summary contract and is ingested, so a header no contract knows is used.
    path = env.inbox / "prices.xlsx"
    workbook = Workbook()
    workbook.active.append(["ITEM", "PREÇO"])
    workbook.active.append(["Pintura", 10.5])
    workbook.save(path)
    outcome = env.process(path)
    assert outcome.status == "quarantined"
    report = json.loads((env.quarantine / "prices.xlsx.error.json").read_text())
    assert "no sheet has the header" in report["reason"]
    for name, contract in CONTRACTS.items():  # names every contract it tried
        assert (name in report["reason"]) == ("xlsx" in contract.formats)


def test_damaged_workbook_is_quarantined(env, tmp_path):
    good = write_workbook(tmp_path / "good.xlsx", GOOD_ROWS)
    damaged = env.inbox / "damaged.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    outcome = env.process(damaged)  # must not raise: the file would be retried forever
    assert outcome.status == "quarantined"
    assert not damaged.exists()
    report = json.loads((env.quarantine / "damaged.xlsx.error.json").read_text())
    # Re-specified wording: calamine's reader says which sheet cannot be read.
    assert "sheet 'CUSTO DE MATERIAL E SERVIÇOS' cannot be read" in report["reason"]
    assert env.lake.list_files("bronze") == []
    ((event, _),) = env.publisher.published
    assert isinstance(event, IngestRejected)


def test_boolean_in_an_unknown_column_does_not_make_the_file_fail_forever(env):
    path = env.inbox / "flags.xlsx"
    workbook = Workbook()
    workbook.active.append([*HEADER, "ATIVO"])
    workbook.active.append(["D1", "010825", "CABO", "EPI", 1, None, True])
    workbook.save(path)
    outcome = env.process(path)
    assert outcome.status in ("ingested", "quarantined")


def test_reject_event_that_cannot_be_published_still_quarantines_with_reason(tmp_path):
    env = IngestEnv(tmp_path, publisher=RecordingPublisher(fail=True))
    broken = env.inbox / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    outcome = env.process(broken)  # must not raise: the report on disk is the record
    assert outcome.status == "quarantined"
    assert not broken.exists()
    report = json.loads((env.quarantine / "broken.xlsx.error.json").read_text())
    assert "not a readable .xlsx workbook" in report["reason"]
