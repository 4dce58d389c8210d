"""Inbox entries a careless operator or a hostile user can produce (issue 13, items 2 to 4):
files still being written, symlinks and FIFOs, names that are not UTF-8 or are too long."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from services.ingestor import files as inbox_files
from services.ingestor.main import RetryPolicy, StorageOutage, ingest_ready
from services.ingestor.metrics import count_quarantined
from services.ingestor.names import NAME_MAX, bounded_name
from services.ingestor.service import FileBusyError, FileChangedError
from services.ingestor.watcher import StabilityTracker, is_ignored, scan_existing
from shared.quarantine import printable as display_name
from tests.ingestor.fakes import IngestEnv

CSV = (
    "DATA MOVIMENTO;DEPÓSITO;PRODUTO;TIPO MOVIMENTO;QUANTIDADE;DOCUMENTO\n"
    "03/02/2025;ALMOX-BA;000123;ENTRADA;1.500;NF-1\n"
).encode()
BROKEN_CSV = b"nothing;like;a;header\n1;2;3;4\n"


@pytest.fixture
def env(tmp_path):
    return IngestEnv(tmp_path)


def sample(env: IngestEnv, name: str, outcome: str) -> float:
    value = env.metrics.registry.get_sample_value(name, {"reason": outcome})
    return value or 0.0


# --- item 2: a file is complete before it is read, and stays what was read ------------------


def test_a_file_held_open_for_writing_is_not_read_until_the_writer_closes_it(env):
    source = env.drop("movements.csv", CSV[: len(CSV) // 2])
    with source.open("ab") as writer:  # an export still writing, paused longer than stable
        for _ in range(2):
            with pytest.raises(FileBusyError):
                env.process(source)
        assert env.ledger.gets == [], "not even hashed"
        assert env.lake_files() == []
        assert env.publisher.published == []
        assert source.is_file() and not env.archive.exists()
        writer.write(CSV[len(CSV) // 2 :])
    outcome = env.process(source)
    assert outcome.status == "ingested"
    assert outcome.events[0].row_count == 1
    assert hashlib.sha256(outcome.moved_to.read_bytes()).hexdigest() == outcome.content_sha256
    # Logged and counted once per wait, not at every look.
    assert sample(env, "nova_ingest_deferred_total", "open_for_writing") == 1


def test_without_leases_the_stable_time_rule_decides(env, monkeypatch):
    """A network share, another user's file without CAP_LEASE: the lease cannot be taken."""
    real_fcntl = fcntl.fcntl

    def no_lease(fd, command, *args):
        if command == fcntl.F_SETLEASE:
            raise OSError(errno.EACCES, "not the owner")
        return real_fcntl(fd, command, *args)

    monkeypatch.setattr(inbox_files.fcntl, "fcntl", no_lease)
    source = env.drop("movements.csv", CSV)
    assert inbox_files.open_for_writing(source) is None
    with source.open("ab"):
        assert env.process(source).status == "ingested"


def test_polling_mode_does_not_ask_for_a_lease(tmp_path):
    env = IngestEnv(tmp_path, polling=True)
    source = env.drop("movements.csv", CSV)
    with source.open("ab"):  # on a share a lease says nothing true: stable time decides
        assert env.process(source).status == "ingested"


def test_content_rewritten_with_the_same_size_and_mtime_while_read_is_not_kept(env, monkeypatch):
    source = env.drop("movements.csv", CSV)
    before = source.stat()
    write = env.lake.write_parquet_batches

    def write_then_file_is_rewritten(path, schema, batches):
        size = write(path, schema, batches)
        source.write_bytes(CSV.replace(b"NF-1", b"NF-2"))  # same size
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
        return size

    monkeypatch.setattr(env.lake, "write_parquet_batches", write_then_file_is_rewritten)
    with pytest.raises(FileChangedError):
        env.process(source)
    assert env.publisher.published == []
    assert env.lake_files() == [], "the bronze object of what was read is gone"
    assert source.is_file() and not env.archive.exists()


def test_a_file_that_breaks_its_contract_only_because_it_changed_is_not_quarantined(
    env, monkeypatch
):
    source = env.drop("movements.csv", BROKEN_CSV)
    read_parts = env.service._read_parts

    def read_then_writer_appends(path, contracts):
        with source.open("ab") as handle:
            handle.write(b"5;6;7;8\n")
        return read_parts(path, contracts)

    monkeypatch.setattr(env.service, "_read_parts", read_then_writer_appends)
    with pytest.raises(FileChangedError):
        env.process(source)
    assert not env.quarantine.exists() or count_quarantined(env.quarantine) == 0


def test_every_way_of_not_finishing_a_file_is_logged_and_counted(env, monkeypatch):
    vanished = env.drop("vanished.csv", CSV)
    changed = env.drop("changed.csv", CSV)
    failing = env.drop("failing.csv", CSV)
    process = env.service.process

    async def scripted(path: Path):
        if path == vanished:
            path.unlink()
        elif path == changed:
            raise FileChangedError("changed")
        elif path == failing:
            raise RuntimeError("broker down")
        return await process(path)

    monkeypatch.setattr(env.service, "process", scripted)
    tracker = StabilityTracker(0)
    asyncio.run(
        ingest_ready(
            [vanished, changed, failing],
            env.service,
            env.lake,
            tracker,
            RetryPolicy(),
            StorageOutage(),
            asyncio.Event(),
        )
    )
    assert sample(env, "nova_ingest_abandoned_total", "vanished") == 1
    assert sample(env, "nova_ingest_deferred_total", "changed_while_read") == 1
    assert sample(env, "nova_ingest_deferred_total", "failed") == 1
    assert sorted(tracker.pending()) == sorted([changed, failing])


def test_a_writer_reopening_the_file_as_it_is_archived_is_logged_and_counted(env, monkeypatch):
    source = env.drop("movements.csv", CSV)
    move = env.service._move

    def move_then_writer_appends(path, target):
        moved = move(path, target)
        with moved.open("ab") as late_writer:  # opened the old name just before the move
            late_writer.write(b"04/02/2025;ALMOX-BA;000123;ENTRADA;1;NF-2\n")
        return moved

    monkeypatch.setattr(env.service, "_move", move_then_writer_appends)
    assert env.process(source).status == "ingested"
    assert sample(env, "nova_ingest_abandoned_total", "written_after_archiving") == 1


def test_the_tracker_reports_a_file_taken_back_before_it_settled(tmp_path):
    gone: list[Path] = []
    tracker = StabilityTracker(5.0, on_vanished=gone.append)
    path = tmp_path / "export.csv"
    path.write_bytes(CSV)
    tracker.notice(path)
    assert tracker.ready(0.0) == []
    path.unlink()
    assert tracker.ready(1.0) == []
    assert gone == [path]


# --- item 3: nothing is read that was not dropped ------------------------------------------


def _secret(tmp_path: Path, content: bytes, mode: int = 0o644) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / f"secret{len(list(outside.iterdir()))}.csv"
    target.write_bytes(content)
    target.chmod(mode)
    return target


@pytest.mark.parametrize("mode", [0o644, 0o000], ids=["readable", "unreadable"])
def test_a_symlink_is_quarantined_as_a_link_without_reading_its_target(env, tmp_path, mode):
    target = _secret(tmp_path, CSV, mode)
    link = env.inbox / "x.csv"
    link.symlink_to(target)

    outcome = env.process(link)

    assert outcome.status == "quarantined"
    assert outcome.moved_to == env.quarantine / "x.csv"
    assert outcome.moved_to.is_symlink() and outcome.moved_to.readlink() == target
    assert not os.path.lexists(link)
    report = env.report(outcome)
    assert "symbolic link" in report["reason"] and "not read" in report["reason"]
    assert report["entry_type"] == "symbolic link"
    assert report["content_sha256"] is None
    target_hash = hashlib.sha256(CSV).hexdigest()
    report_text = outcome.moved_to.with_name("x.csv.error.json").read_text()
    assert target_hash not in report_text
    assert env.ledger.gets == [], "never hashed"
    assert env.lake_files() == []
    assert [type(e).__name__ for e in env.publisher.events] == ["IngestRejected"]
    assert target.read_bytes() == CSV or mode == 0o000
    assert count_quarantined(env.quarantine) == 1


def test_a_dangling_symlink_and_a_link_to_a_folder_are_quarantined(env, tmp_path):
    dangling = env.inbox / "gone.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    folder = env.inbox / "erp_requisitions"
    folder.symlink_to(tmp_path, target_is_directory=True)
    for link in (dangling, folder):
        outcome = env.process(link)
        assert outcome.status == "quarantined"
        assert outcome.moved_to.is_symlink()
    assert count_quarantined(env.quarantine) == 2


def test_a_fifo_is_quarantined_without_hanging_the_ingestor(env):
    fifo = env.inbox / "pipe.csv"
    os.mkfifo(fifo)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(env.process(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock a reader stuck in open() so the test run can end
        for place in (fifo, env.quarantine / "pipe.csv"):
            with contextlib.suppress(OSError):
                os.close(os.open(place, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=10)
        pytest.fail("reading a FIFO blocked the ingestor")
    (outcome,) = done
    assert outcome.status == "quarantined"
    assert stat.S_ISFIFO(os.lstat(env.quarantine / "pipe.csv").st_mode)
    assert "named pipe" in env.report(outcome)["reason"]


def test_the_watcher_hands_over_links_and_fifos_but_not_folders(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "stock_on_hand").mkdir(parents=True)
    (inbox / "stock_on_hand" / "real.csv").write_bytes(CSV)
    (inbox / "dangling.csv").symlink_to(tmp_path / "nowhere")
    (inbox / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(inbox / "pipe.csv")
    tracker = StabilityTracker(0)
    scan_existing(inbox, tracker)
    assert tracker.ready(0.0) == []  # the first look records size and mtime
    assert [p.relative_to(inbox).as_posix() for p in tracker.ready(1.0)] == [
        "dangling.csv",
        "linked-folder",
        "pipe.csv",
        "stock_on_hand/real.csv",
    ]


# --- item 4: any name a file system allows ---------------------------------------------------


def test_a_name_that_is_not_utf8_is_ingested_with_a_faithful_readable_name(env):
    raw = b"relat\xf3rio\xff.csv"  # a Latin-1 share, and a byte that is nothing at all
    source = Path(os.fsdecode(bytes(env.inbox) + b"/" + raw))
    source.write_bytes(CSV)

    outcome = env.process(source)

    assert outcome.status == "ingested", outcome
    readable = "relat\\xf3rio\\xff.csv"
    assert display_name(source.name) == readable
    (event,) = outcome.events
    assert event.source_name == readable
    event.to_bytes().decode("utf-8")  # what the API receives is valid UTF-8 JSON
    entry = env.ledger.entries[outcome.content_sha256]
    assert entry.source_name == readable
    entry.model_dump_json()
    table = env.lake.read_parquet(event.bronze_path)
    assert table.column("_source_file").to_pylist() == [readable]
    assert os.fsencode(outcome.moved_to.name).endswith(b"-" + raw), "the archive keeps the bytes"


def test_a_broken_file_whose_name_is_not_utf8_gets_one_valid_report(env):
    raw = b"bad\xff.csv"
    source = Path(os.fsdecode(bytes(env.inbox) + b"/" + raw))
    source.write_bytes(BROKEN_CSV)

    outcome = env.process(source)

    assert outcome.status == "quarantined"
    assert os.fsencode(outcome.moved_to.name) == raw
    reports = [p for p in env.quarantine.iterdir() if p.name.endswith(".error.json")]
    assert len(reports) == 1
    report = json.loads(reports[0].read_bytes().decode("utf-8"))
    assert report["file"] == "bad\\xff.csv"
    assert report["file_name_is_utf8"] is False
    assert bytes.fromhex(report["file_name_hex"]) == raw
    assert report["inbox_path"] == "bad\\xff.csv"
    assert sorted(p.name for p in env.quarantine.iterdir() if p.name.startswith(".")) == []
    outcome.events[0].to_bytes().decode("utf-8")


@pytest.mark.parametrize("utf8", [True, False], ids=["utf8", "not-utf8"])
def test_names_at_the_file_system_limit_are_archived_and_quarantined_in_bounded_names(env, utf8):
    stem = ("ç" * 124) if utf8 else ("c" * 244 + "\udcff" * 4)  # with `q.csv`: 253 bytes
    for content, status in ((CSV, "ingested"), (BROKEN_CSV, "quarantined")):
        name = f"{stem}{status[0]}.csv"
        assert len(os.fsencode(name)) > NAME_MAX - 10
        outcome = env.ingest(name, content)
        assert outcome.status == status
        kept = os.fsencode(outcome.moved_to.name)
        assert len(kept) <= NAME_MAX and kept.endswith(b".csv")
        assert outcome.moved_to.read_bytes() == content
        if status == "ingested":
            assert outcome.moved_to.name.startswith(outcome.content_sha256 + "-")
            assert outcome.events[0].source_name == display_name(name)
        else:
            report_path = outcome.moved_to.with_name(outcome.moved_to.name + ".error.json")
            report = json.loads(report_path.read_bytes().decode("utf-8"))
            assert report["file"] == display_name(name), "the original name, whole"
            assert report["quarantined_as"] == display_name(outcome.moved_to.name)
        if utf8:
            kept.decode("utf-8")  # shortened without cutting a character in two
    # Into folders that exist now (a too long name fails differently there).
    again = env.ingest(f"{stem}x.csv", CSV)
    assert again.status == "duplicate"
    assert len(os.fsencode(again.moved_to.name)) <= NAME_MAX
    assert env.ingest(f"{stem}y.csv", BROKEN_CSV).status == "quarantined"
    assert list(env.inbox.iterdir()) == []


def test_bounded_names_keep_apart_long_names_that_share_a_beginning():
    one, two = "a" * 300 + "1.csv", "a" * 300 + "2.csv"
    assert bounded_name(one, 20) != bounded_name(two, 20)
    assert len(bounded_name(one, 20).encode()) <= NAME_MAX - 20
    assert bounded_name("short.csv", 20) == "short.csv"


@pytest.mark.parametrize("name", ["a..b.csv", "export..csv", "v1..2.csv"])
def test_two_dots_inside_a_name_are_not_a_path(env, name):
    assert env.ingest(name, CSV).status == "ingested"


@pytest.mark.parametrize("name", [".hidden.csv", "~$export.xlsx", "export.csv.part", "x.tmp"])
def test_temporary_names_stay_ignored(name):
    assert is_ignored(Path("/inbox") / name)
