"""`GET /api/v1/ingestions` over a quarantine and an event stream holding strange things:
names that are not UTF-8 or very long, reports missing, empty, cut, not JSON, not objects, of
another shape, links and FIFOs; events of any shape (issue 13, item 4). It never answers a
500, lists every quarantined entry, and reads nothing it should not."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.feed import EventFeed
from shared.broker import connect, ensure_stream
from shared.settings import ApiSettings, NatsSettings, StorageSettings
from shared.storage import Lake
from tests.api.test_feed import wait_until
from tests.ingestor.fakes import IngestEnv

SECRET = "root:$6$never-read-by-the-api"


def write(folder: Path, name: bytes, content: bytes) -> None:
    (Path(os.fsdecode(folder)) / os.fsdecode(name)).write_bytes(content)


def hostile_quarantine(folder: Path, secret: Path) -> int:
    """A quarantine as real ingestors (old and new) and accidents leave it; how many entries
    it lists."""
    folder.mkdir(parents=True)
    report = json.dumps({"dataset": "erp_requisitions", "reason": "no header row",
                         "rejected_at": "2026-12-01T10:00:00+00:00"}).encode()  # fmt: skip
    # A name that is not UTF-8, with the empty report the old ingestor left beside it.
    write(folder, b"estoque-\xff\xfe.csv", b"x")
    write(folder, b"estoque-\xff\xfe.csv.error.json", b"")
    # The report alone (the old ingestor never moved such a file), not UTF-8 inside either.
    write(folder, b"orphan-\xe9.csv.error.json", b'{"reason": "caf\xe9", "dataset": 7}')
    # A name as long as a report's name allows (255 bytes with ".error.json").
    long_name = ("x" * 236 + ".csv").encode()
    write(folder, long_name, b"x")
    write(folder, long_name + b".error.json", report)
    # Reports cut short, not JSON, not an object, of another shape, escaped surrogates.
    for name, content in [
        (b"cut.csv", report[:20]),
        (b"list.csv", b"[1, 2, 3]"),
        (b"string.csv", b'"just text"'),
        (b"shape.csv", b'{"dataset": ["a"], "reason": {"x": 1}, "time": null, "rejected_at": 5}'),
        (b"surrogate.csv", b'{"reason": "bad \\udcff name", "dataset": "\\ud800"}'),
        (b"deep.csv", b"[" * 100_000 + b"]" * 100_000),
        (b"huge.csv", b'{"reason": "' + b"r" * 200_000 + b'"}'),
    ]:
        write(folder, name, b"x")
        write(folder, name + b".error.json", content)
    # A file without its report, a report that is a link to a secret, a FIFO as a report.
    write(folder, b"no-report.xlsx", b"x")
    write(folder, b"linked.csv", b"x")
    (folder / "linked.csv.error.json").symlink_to(secret)
    os.mkfifo(folder / "fifo.csv")
    os.mkfifo(folder / "fifo-report.csv.error.json")
    write(folder, b"fifo-report.csv", b"x")
    (folder / "retried").mkdir()  # the CLI's folder: not an entry
    write(folder, b".0123abcd.error.json.tmp", b"{")  # a report being written
    return 14


def test_a_hostile_quarantine_is_listed_whole(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    quarantine = tmp_path / "quarantine"
    expected = hostile_quarantine(quarantine, secret)
    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    app = create_app(ApiSettings(max_page_size=100), lake, quarantine_dir=quarantine)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/ingestions", params={"limit": 100})
        assert response.status_code == 200, response.text[:500]
        body = response.json()
    assert SECRET not in response.text
    assert body["quarantine_count"] == expected == len(body["quarantine"])
    by_name = {entry["name"]: entry for entry in body["quarantine"]}
    assert set(by_name) >= {"estoque-\\xff\\xfe.csv", "orphan-\\xe9.csv", "x" * 236 + ".csv"}
    assert by_name["x" * 236 + ".csv"]["reason"] == "no header row"
    assert by_name["orphan-\\xe9.csv"]["reason"] == "caf\\xe9"
    assert by_name["linked.csv"]["reason"].startswith("(unreadable report")
    assert by_name["no-report.xlsx"]["reason"] == "(no report beside it)"
    assert by_name["surrogate.csv"]["reason"] == "bad \\xff name"
    assert all(entry["quarantined_at"] for entry in body["quarantine"])


def publish_raw(url: str, messages: list[tuple[str, bytes]]) -> None:
    async def send() -> None:
        settings = NatsSettings(url=url)
        client = await connect(settings, "test")
        js = client.jetstream()
        await ensure_stream(js, settings)
        for subject, data in messages:
            await js.publish(subject, data)
        await client.drain()

    asyncio.run(send())


def event(**fields) -> bytes:
    return json.dumps({"occurred_at": "2026-12-01T10:00:00+00:00", **fields}).encode()


def test_strange_ingestion_events_never_fail_the_endpoint(nats_url, tmp_path):
    rejected, ingested = "nova.v1.ingest.rejected.x", "nova.v1.bronze.ingested.x"
    readable = [
        (rejected, event(source_name="n" * 300, dataset="erp_requisitions", reason="r" * 300)),
        (rejected, b'{"occurred_at": "2026-12-01T11:00:00Z", "source_name": "a-\\udcff.csv"}'),
        (ingested, event(source_name=["a list"], dataset=5, row_count="many", row=True)),
        (ingested, json.dumps({"occurred_at": "2026-12-01T09:00:00"}).encode()),  # no zone
    ]
    unreadable = [
        (rejected, b"\xff\xfe not UTF-8"),
        (rejected, b"{not json"),
        (rejected, b"[1, 2]"),
        (rejected, b'{"source_name": "no time"}'),
        (rejected, b'{"occurred_at": "yesterday"}'),
        (ingested, b"[" * 100_000),
    ]
    publish_raw(nats_url, unreadable[:3] + readable + unreadable[3:])

    def feed(poke: Callable[[], None]) -> EventFeed:
        return EventFeed(NatsSettings(url=nats_url, connect_timeout_seconds=1), poke, keep=50)

    lake = Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))
    app = create_app(ApiSettings(version_check_seconds=3600), lake, feed_factory=feed)
    with TestClient(app, raise_server_exceptions=False) as client:

        def all_heard() -> bool:
            response = client.get("/api/v1/ingestions")
            assert response.status_code == 200, response.text[:500]
            return len(response.json()["recent"]) == len(readable)

        wait_until(all_heard)
        recent = client.get("/api/v1/ingestions").json()["recent"]
    assert [r["occurred_at"][:13] for r in recent] == [
        "2026-12-01T11", "2026-12-01T10", "2026-12-01T10", "2026-12-01T09",
    ]  # fmt: skip
    assert recent[0]["source_name"] == "a-\\xff.csv"
    assert {r["source_name"] for r in recent} >= {"n" * 300, ""}
    strange = next(r for r in recent if r["dataset"] == "5")
    assert (strange["row_count"], strange["row"], strange["outcome"]) == (None, None, "ingested")


def test_files_the_ingestor_quarantined_are_listed_with_their_time_newest_first(tmp_path):
    """Reports as the ingestor writes them (not hand-made ones): the API shows each file's
    `rejected_at` and sorts on it (it once read only `quarantined_at` or `time`)."""
    env = IngestEnv(tmp_path)
    times = [datetime(2026, 11, day, 9, 30, tzinfo=UTC) for day in (3, 1, 2)]
    for n, when in enumerate(times):
        env.now = when
        outcome = env.ingest(f"estoque-{n}.csv", b"\x00\x01 not a csv")
        assert outcome.status == "quarantined"
    app = create_app(ApiSettings(), env.lake, quarantine_dir=env.quarantine)
    with TestClient(app) as client:
        listed = client.get("/api/v1/ingestions").json()["quarantine"]
    assert [(e["name"], e["quarantined_at"]) for e in listed] == [
        (f"estoque-{n}.csv", when.isoformat())
        for n, when in sorted(enumerate(times), key=lambda nw: nw[1], reverse=True)
    ]
