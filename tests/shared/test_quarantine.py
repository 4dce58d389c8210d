"""shared.quarantine: what every reader of the quarantine folder sees, however strange it is."""

from __future__ import annotations

import json
import os

from shared.quarantine import for_terminal, printable, quarantined_entries, read_report


def test_printable_shows_undecodable_name_bytes_as_escapes():
    name = os.fsdecode(b"caf\xe9.csv")
    assert printable(name) == "caf\\xe9.csv"
    assert printable("ação.csv") == "ação.csv"
    assert printable("\udce9") == "\\xe9"  # JSON text's surrogate escape of a byte
    assert printable("\ud800") == "\\ud800"  # a lone surrogate no byte stands for


def test_every_entry_is_listed_with_a_report_that_any_reader_can_print(tmp_path):
    folder = tmp_path / "quarantine"
    folder.mkdir()
    (folder / "ok.csv").write_text("x")
    (folder / "ok.csv.error.json").write_text(json.dumps({"reason": "bad row", "row": 3}))
    (folder / "no-report.csv").write_text("x")
    (folder / "not-json.csv").write_text("x")
    (folder / "not-json.csv.error.json").write_text("{cut")
    (folder / "list.csv").write_text("x")
    (folder / "list.csv.error.json").write_text("[1, 2]")
    (folder / "latin1.csv").write_text("x")
    (folder / "latin1.csv.error.json").write_bytes(b'{"reason": "caf\xe9", "n": ["\\ud800"]}')
    (folder / "deep.csv").write_text("x")
    (folder / "deep.csv.error.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "gone.csv.error.json").write_text(json.dumps({"reason": "left by an old release"}))
    (folder / "link.csv.error.json").symlink_to("/etc/passwd")
    (folder / "link.csv").write_text("x")
    (folder / "retried").mkdir()
    (folder / ".ok2.csv.error.json.tmp").write_text("half")

    entries = {e.path.name: e for e in quarantined_entries(folder)}

    assert sorted(entries) == [
        "deep.csv", "gone.csv", "latin1.csv", "link.csv", "list.csv", "no-report.csv",
        "not-json.csv", "ok.csv",
    ]  # fmt: skip
    assert entries["ok.csv"].report == {"reason": "bad row", "row": 3}
    assert entries["no-report.csv"].report == {"reason": "(no report beside it)"}
    assert entries["not-json.csv"].report["reason"].startswith("(unreadable report: not JSON")
    assert "not an object" in entries["list.csv"].report["reason"]
    assert entries["latin1.csv"].report == {"reason": "caf\\xe9", "n": ["\\ud800"]}
    assert entries["deep.csv"].report["reason"].startswith("(unreadable report")
    assert entries["link.csv"].report["reason"].startswith("(unreadable report")
    assert not entries["gone.csv"].present and entries["ok.csv"].present
    for entry in entries.values():
        json.dumps(entry.report).encode("utf-8")  # printable and encodable, whatever it held


def test_a_report_is_read_through_no_link(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"reason": "secret"}))
    (tmp_path / "x.csv.error.json").symlink_to(secret)
    assert "secret" not in json.dumps(read_report(tmp_path / "x.csv.error.json"))


def test_for_terminal_escapes_control_characters_and_undecodable_bytes():
    assert for_terminal("a\nb\x1b[31m\x07\x7f\x85.csv") == "a\\x0ab\\x1b[31m\\x07\\x7f\\x85.csv"
    assert for_terminal(os.fsdecode(b"caf\xe9\n.csv")) == "caf\\xe9\\x0a.csv"
    assert for_terminal("ação 7") == "ação 7"
    assert for_terminal(7) == "7"
