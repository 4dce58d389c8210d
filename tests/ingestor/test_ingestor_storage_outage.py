"""The ingestor while the lake is away: files wait in the inbox, nothing is quarantined, and all
of them go on as soon as the lake answers again."""

from __future__ import annotations

import asyncio

import pytest

from services.ingestor.main import (
    RetryPolicy,
    StorageOutage,
    ingest_ready,
    look_at_storage,
)
from services.ingestor.watcher import StabilityTracker
from shared.settings import StorageSettings
from shared.storage import Lake
from tests.ingestor.fakes import IngestEnv
from tests.ingestor.test_service import GOOD_ROWS, write_workbook


class FlakyLake(Lake):
    """A local lake whose object writes fail like an S3 endpoint that went away."""

    def __init__(self, root, error: type[OSError] = OSError) -> None:
        local = Lake.from_settings(StorageSettings(local_root=root))
        super().__init__(local._fs, local._fs_root, local._uri_root, {})
        self.down = True
        self.answers = False  # what `reachable` says
        self.error = error
        self.writes = 0

    def write_parquet_batches(self, path, schema, batches):
        self.writes += 1
        if self.down:
            raise self.error("AWS Error NETWORK_CONNECTION during PutObject: Could not connect")
        return super().write_parquet_batches(path, schema, batches)

    def reachable(self) -> bool:
        return self.answers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _env(tmp_path, lake: FlakyLake) -> IngestEnv:
    env = IngestEnv(tmp_path, stable_seconds=0)
    env.lake = lake
    env.service._lake = lake
    return env


def test_outage_backoff_doubles_to_its_cap_and_restarts_after_an_outage():
    outage = StorageOutage(first_seconds=1, max_seconds=5)
    assert not outage.active
    outage.begin(100.0)
    assert outage.active and outage.next_look == 101.0
    assert [outage.still_down(101.0 + i) for i in range(4)] == [2, 4, 5, 5]
    assert outage.end(130.0) == 30.0
    assert not outage.active
    outage.begin(200.0)
    assert outage.next_look == 201.0  # a new outage starts from the first delay again


def test_a_storage_outage_keeps_every_file_in_the_inbox_and_nothing_in_quarantine(tmp_path):
    lake = FlakyLake(tmp_path / "lake")
    env = _env(tmp_path, lake)
    files = [write_workbook(env.inbox / f"export{i}.xlsx", GOOD_ROWS[: i + 1]) for i in range(3)]
    tracker = StabilityTracker(0)
    retry = RetryPolicy()
    outage = StorageOutage()
    clock = Clock()
    stop = asyncio.Event()

    asyncio.run(ingest_ready(files, env.service, lake, tracker, retry, outage, stop, clock))

    # The first file met the outage; the others were not even read.
    assert lake.writes == 1
    assert outage.active
    assert all(f.is_file() for f in files)
    assert not env.quarantine.exists() or not any(env.quarantine.iterdir())
    assert env.publisher.events == []
    assert sorted(tracker.pending()) == sorted(files)  # all still tracked, none forgotten

    # Still down at the next look: the look comes later each time.
    clock.now = outage.next_look
    asyncio.run(look_at_storage(lake, outage, clock))
    assert outage.active and outage.next_look == clock.now + 2

    # Back: every file goes on at once, without waiting out a per-file backoff.
    lake.down, lake.answers = False, True
    clock.now = outage.next_look
    asyncio.run(look_at_storage(lake, outage, clock))
    assert not outage.active
    ready = tracker.ready(clock.now)
    ready = tracker.ready(clock.now)  # first look records size and mtime, the second hands over
    assert ready == sorted(files)
    asyncio.run(ingest_ready(ready, env.service, lake, tracker, retry, outage, stop, clock))
    assert not any(f.exists() for f in files)
    assert len(env.publisher.events) == 3
    assert not env.quarantine.exists() or not any(env.quarantine.iterdir())


def test_a_lake_error_on_one_file_with_the_lake_answering_backs_off_that_file_only(tmp_path):
    lake = FlakyLake(tmp_path / "lake")
    lake.answers = True  # the endpoint is up, this write failed anyway
    env = _env(tmp_path, lake)
    source = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    tracker, retry, outage, clock = StabilityTracker(0), RetryPolicy(), StorageOutage(), Clock()

    asyncio.run(ingest_ready([source], env.service, lake, tracker, retry, outage, asyncio.Event(),
                             clock))  # fmt: skip

    assert not outage.active
    assert source.is_file()
    assert tracker.pending() == [source]
    assert tracker.ready(clock.now + 0.5) == []  # waits out its own backoff of 1 s
    tracker.ready(clock.now + 0.5)
    assert tracker.ready(clock.now + 1.0) == [source]


@pytest.mark.parametrize("answers", [False, True])
def test_file_not_found_from_the_lake_is_not_a_vanished_file(tmp_path, answers):
    # pyarrow raises FileNotFoundError for a missing object; the file in the inbox is still
    # there and must be tried again, not forgotten until the next restart.
    lake = FlakyLake(tmp_path / "lake", error=FileNotFoundError)
    lake.answers = answers
    env = _env(tmp_path, lake)
    source = write_workbook(env.inbox / "export.xlsx", GOOD_ROWS)
    tracker, outage = StabilityTracker(0), StorageOutage()

    asyncio.run(ingest_ready([source], env.service, lake, tracker, RetryPolicy(), outage,
                             asyncio.Event(), Clock()))  # fmt: skip

    assert source.is_file()
    assert tracker.pending() == [source]
    assert outage.active is not answers


def test_a_file_that_really_vanished_is_forgotten(tmp_path):
    lake = FlakyLake(tmp_path / "lake")
    lake.down, lake.answers = False, True
    env = _env(tmp_path, lake)
    gone = env.inbox / "gone.xlsx"  # moved away between the watcher's look and the read
    tracker = StabilityTracker(0)

    asyncio.run(ingest_ready([gone], env.service, lake, tracker, RetryPolicy(), StorageOutage(),
                             asyncio.Event(), Clock()))  # fmt: skip

    assert tracker.pending() == []


def test_reachable_is_true_for_a_local_lake_and_false_once_its_folder_is_gone(tmp_path):
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    assert lake.reachable()
    (tmp_path / "lake").rmdir()
    assert not lake.reachable()


def test_a_failed_files_backoff_is_kept_while_the_tracker_looks_at_it(tmp_path):
    # The tracker used to forget `not_before` at its first look at the file (size and mtime
    # unknown yet), so a failing file came back after `stable_seconds` whatever its backoff:
    # during a broker outage every file was read and parsed again about every second.
    source = tmp_path / "export.xlsx"
    source.write_bytes(b"content")
    tracker = StabilityTracker(stable_seconds=1.0)
    tracker.notice(source, not_before=100.0)
    assert tracker.ready(10.0) == []  # size and mtime recorded
    assert tracker.ready(12.0) == []  # stable, but its backoff runs until 100
    assert tracker.ready(99.0) == []
    assert tracker.ready(100.0) == [source]
