"""IngestService end to end on a local lake, with an in-test publisher instead of NATS."""

import asyncio
import hashlib
import json
import os
import zipfile
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from openpyxl import Workbook

from services.ingestor.contracts import CONTRACTS
from services.ingestor.service import IngestService
from shared.events import BronzeIngested, IngestRejected
from shared.settings import IngestorSettings, StorageSettings
from shared.storage import Lake

HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]
NOW = datetime(2025, 3, 7, 14, 30, 15, tzinfo=UTC)


class RecordingPublisher:
    def __init__(self, fail=False):
        self.published = []
        self.fail = fail

    async def publish(self, event, message_id):
        if self.fail:
            raise ConnectionError("broker down")
        self.published.append((event, message_id))


class Env:
    def __init__(self, tmp_path, publisher=None):
        self.inbox = tmp_path / "inbox"
        self.archive = tmp_path / "archive"
        self.quarantine = tmp_path / "quarantine"
        self.inbox.mkdir()
        self.lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
        self.publisher = publisher or RecordingPublisher()
        self.service = IngestService(
            self.lake,
            self.publisher,
            IngestorSettings(
                inbox_dir=self.inbox, archive_dir=self.archive, quarantine_dir=self.quarantine
            ),
            clock=lambda: NOW,
        )

    def process(self, path):
        return asyncio.run(self.service.process(path))


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


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


GOOD_ROWS = [
    ["BAXYZ001", "010825", "CABO FLEXIVEL 2,5MM", "MATERIAL ELETRICO", 10, datetime(2025, 1, 6)],
    ["N/A", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, "07/01/2025"],
    ["GERBA", "010825", "CABO FLEXIVEL 2,5MM", "MATERIAL ELETRICO", "2,5", None],
]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    assert digest in message_id
    assert message_id == f"{digest}.erp_requisitions"


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


def test_same_content_dropped_twice_is_archived_twice_without_overwrite(env):
    first = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    content = first.read_bytes()
    one = env.process(first)
    (env.inbox / "export.xlsx").write_bytes(content)
    two = env.process(env.inbox / "export.xlsx")
    assert one.content_sha256 == two.content_sha256
    assert one.moved_to != two.moved_to
    assert one.moved_to.is_file()
    assert two.moved_to.is_file()
    # same content, same bronze object and same message id: the broker drops the duplicate
    assert env.lake.list_files("bronze") == [one.events[0].bronze_path]
    assert env.publisher.published[0][1] == env.publisher.published[1][1]


def test_broken_file_is_quarantined_with_a_report(env):
    rows = [*GOOD_ROWS, ["D1", "010900", "LUVA", "EPI", "muitas", None]]
    source = write_workbook(env.inbox / "broken.xlsx", rows)
    digest = sha256(source)

    outcome = env.process(source)

    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / "broken.xlsx"
    assert outcome.moved_to.is_file()
    assert sha256(outcome.moved_to) == digest
    assert not source.exists()
    assert not env.archive.exists()
    assert env.lake.list_files("bronze") == []

    report = json.loads((env.quarantine / "broken.xlsx.error.json").read_text())
    assert report["file"] == "broken.xlsx"
    assert report["content_sha256"] == digest
    assert report["column"] == "quantity"
    assert report["row"] == 5
    assert "muitas" in report["reason"]
    # dropped in the inbox root: the dataset is known only while a single contract exists
    expected_dataset = "erp_requisitions" if list(CONTRACTS) == ["erp_requisitions"] else "unknown"
    assert report["dataset"] == expected_dataset
    assert report["correlation_id"] == outcome.correlation_id
    assert datetime.fromisoformat(report["rejected_at"]) == NOW

    ((event, message_id),) = env.publisher.published
    assert outcome.events == [event]
    assert isinstance(event, IngestRejected)
    assert event.dataset == expected_dataset
    assert event.subject == f"nova.v1.ingest.rejected.{expected_dataset}"
    assert event.producer == "ingestor"
    assert event.correlation_id == outcome.correlation_id
    assert event.source_name == "broken.xlsx"
    assert event.content_sha256 == digest
    assert (event.column, event.row) == ("quantity", 5)
    assert "muitas" in event.reason
    assert digest in message_id


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
    assert second.moved_to != first.moved_to
    assert first.moved_to.is_file()
    assert second.moved_to.is_file()
    assert sha256(first.moved_to) == first.content_sha256
    assert sha256(second.moved_to) == second.content_sha256
    assert (env.quarantine / "broken.xlsx.error.json").read_text() == first_report
    second_report = json.loads(
        second.moved_to.with_name(second.moved_to.name + ".error.json").read_text()
    )
    assert second_report["column"] == "requested_date"
    assert second_report["content_sha256"] == second.content_sha256
    assert len(list(env.quarantine.iterdir())) == 4


@pytest.mark.parametrize(
    ("name", "content", "reason_part"),
    [
        ("random.xlsx", os.urandom(2048), "not a readable .xlsx"),
        ("export.csv", b"a;b\n1;2\n", "unsupported file type"),
        ("noextension", b"whatever", "unsupported file type"),
    ],
)
def test_unreadable_files_are_quarantined(env, name, content, reason_part):
    source = env.inbox / name
    source.write_bytes(content)
    outcome = env.process(source)
    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / name
    report = json.loads((env.quarantine / f"{name}.error.json").read_text())
    assert reason_part in report["reason"]
    assert report["column"] is None
    assert report["row"] is None
    assert env.lake.list_files("bronze") == []


def test_workbook_without_any_contract_sheet_is_quarantined(env):
    path = env.inbox / "summary.xlsx"
    workbook = Workbook()
    workbook.active.append(["DESCRIÇÃO CTA.FINANC.", "Soma de VLR.LÍQUIDO"])
    workbook.active.append(["Pintura", 10.5])
    workbook.save(path)
    outcome = env.process(path)
    assert outcome.status == "quarantined"
    report = json.loads((env.quarantine / "summary.xlsx.error.json").read_text())
    assert "erp_requisitions" in report["reason"]


def test_publish_failure_leaves_the_file_in_the_inbox_for_a_retry(tmp_path):
    env = Env(tmp_path, RecordingPublisher(fail=True))
    source = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    with pytest.raises(ConnectionError):
        env.process(source)
    assert source.is_file()
    assert not env.archive.exists()


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
    assert "could not read the workbook" in report["reason"]
    assert env.lake.list_files("bronze") == []
    ((event, _),) = env.publisher.published
    assert isinstance(event, IngestRejected)


def test_reject_event_that_cannot_be_published_still_quarantines_with_reason(tmp_path):
    env = Env(tmp_path, RecordingPublisher(fail=True))
    broken = env.inbox / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    outcome = env.process(broken)  # must not raise: the report on disk is the record
    assert outcome.status == "quarantined"
    assert not broken.exists()
    report = json.loads((env.quarantine / "broken.xlsx.error.json").read_text())
    assert "not a readable .xlsx workbook" in report["reason"]
