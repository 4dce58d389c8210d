"""Inbox watching: ignored names and the stability rule, with time driven by the test."""

import os
from pathlib import Path

import pytest

from services.ingestor.watcher import StabilityTracker, is_ignored, scan_existing


@pytest.mark.parametrize(
    "name",
    [
        "~$export.xlsx",
        ".hidden",
        ".export.xlsx.swp",
        "export.tmp",
        "export.xlsx.part",
        "export.xlsx.crdownload",
        "export.xlsx.error.json",
        "EXPORT.TMP",  # Windows tools write upper case
        "export.xlsx.Part",
    ],
)
def test_temporary_and_hidden_names_are_ignored(name):
    assert is_ignored(Path("/inbox") / name)
    assert is_ignored(Path("/inbox/erp_requisitions") / name)


@pytest.mark.parametrize(
    "name", ["export.xlsx", "dadosSuprimentos.xlsx", "tmp.xlsx", "part-1.xlsx", "x~$.xlsx"]
)
def test_ordinary_names_are_not_ignored(name):
    assert not is_ignored(Path("/inbox") / name)


def write(path, content):
    path.write_bytes(content)
    return path


def test_file_is_ready_only_after_staying_unchanged_for_stable_seconds(tmp_path):
    tracker = StabilityTracker(stable_seconds=2.0)
    path = write(tmp_path / "export.xlsx", b"complete")
    tracker.notice(path)
    assert tracker.pending() == [path]

    assert tracker.ready(now=100.0) == []  # first look: size and mtime recorded
    assert tracker.ready(now=101.0) == []  # unchanged, but only for 1 s
    assert tracker.ready(now=101.99) == []
    assert tracker.ready(now=102.0) == [path]  # unchanged for 2 s
    assert tracker.pending() == []  # handed over once, then forgotten
    assert tracker.ready(now=200.0) == []


def test_growing_file_is_not_ready(tmp_path):
    tracker = StabilityTracker(stable_seconds=1.0)
    path = write(tmp_path / "export.xlsx", b"a")
    tracker.notice(path)
    assert tracker.ready(now=0.0) == []
    for step in range(1, 6):
        with path.open("ab") as handle:
            handle.write(b"more bytes")
        assert tracker.ready(now=float(step) * 10) == []  # long gaps, but it keeps changing
    assert tracker.pending() == [path]
    # it stopped growing: the clock restarts from the last change
    assert tracker.ready(now=50.5) == []
    assert tracker.ready(now=51.0) == [path]


def test_rewritten_file_with_same_size_but_new_mtime_is_not_ready(tmp_path):
    tracker = StabilityTracker(stable_seconds=1.0)
    path = write(tmp_path / "export.xlsx", b"aaaa")
    tracker.notice(path)
    assert tracker.ready(now=0.0) == []
    stat = path.stat()
    path.write_bytes(b"bbbb")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert tracker.ready(now=5.0) == []
    assert tracker.ready(now=6.0) == [path]


def test_deleted_file_is_dropped(tmp_path):
    tracker = StabilityTracker(stable_seconds=1.0)
    path = write(tmp_path / "export.xlsx", b"x")
    tracker.notice(path)
    assert tracker.ready(now=0.0) == []
    path.unlink()
    assert tracker.ready(now=5.0) == []
    assert tracker.pending() == []


def test_file_deleted_before_the_first_look_is_dropped(tmp_path):
    tracker = StabilityTracker(stable_seconds=0.0)
    tracker.notice(tmp_path / "gone.xlsx")
    assert tracker.ready(now=0.0) == []
    assert tracker.pending() == []


def test_directory_is_dropped(tmp_path):
    tracker = StabilityTracker(stable_seconds=0.0)
    folder = tmp_path / "erp_requisitions"
    folder.mkdir()
    tracker.notice(folder)
    assert tracker.ready(now=0.0) == []
    assert tracker.pending() == []


def test_ignored_names_are_never_tracked(tmp_path):
    tracker = StabilityTracker(stable_seconds=0.0)
    lock = write(tmp_path / "~$export.xlsx", b"lock")
    tracker.notice(lock)
    assert tracker.pending() == []
    assert tracker.ready(now=0.0) == []
    assert tracker.ready(now=10.0) == []


def test_noticing_again_does_not_restart_the_clock(tmp_path):
    tracker = StabilityTracker(stable_seconds=2.0)
    path = write(tmp_path / "export.xlsx", b"x")
    tracker.notice(path)
    assert tracker.ready(now=0.0) == []
    tracker.notice(path)  # e.g. a close event after the copy
    assert tracker.ready(now=2.0) == [path]


def test_several_files_are_handed_over_sorted_and_independently(tmp_path):
    tracker = StabilityTracker(stable_seconds=1.0)
    b = write(tmp_path / "b.xlsx", b"b")
    a = write(tmp_path / "a.xlsx", b"a")
    tracker.notice(b)
    tracker.notice(a)
    assert tracker.ready(now=0.0) == []
    late = write(tmp_path / "c.xlsx", b"c")
    tracker.notice(late)
    assert tracker.ready(now=1.0) == [a, b]
    assert tracker.ready(now=2.0) == [late]


def test_scan_existing_notices_files_in_subfolders_but_not_ignored_ones(tmp_path):
    (tmp_path / "erp_requisitions").mkdir()
    top = write(tmp_path / "top.xlsx", b"1")
    nested = write(tmp_path / "erp_requisitions" / "nested.xlsx", b"2")
    write(tmp_path / "~$top.xlsx", b"lock")
    write(tmp_path / "copy.part", b"partial")
    tracker = StabilityTracker(stable_seconds=0.0)
    scan_existing(tmp_path, tracker)
    assert sorted(tracker.pending()) == sorted([top, nested])
