"""Operator commands: `nova datasets`, `nova quarantine list|retry`, `nova bronze prune`."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.ingestor.contracts import CONTRACTS

runner = CliRunner()


@pytest.fixture
def var(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def _quarantine(var, name, inbox_path=None, content=b"broken", reason="no header"):
    quarantine = var / "quarantine"
    quarantine.mkdir(parents=True, exist_ok=True)
    (quarantine / name).write_bytes(content)
    report = {
        "file": name,
        "inbox_path": inbox_path or name,
        "dataset": "stock_movements",
        "reason": reason,
        "column": "quantity",
        "row": 7,
        "rejected_at": "2025-03-01T10:00:00+00:00",
    }
    (quarantine / f"{name}.error.json").write_text(json.dumps(report))


def test_datasets_lists_every_contract_with_columns():
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0, result.output
    for contract in CONTRACTS.values():
        assert contract.name in result.output
        for column in contract.columns:
            assert column.name in result.output


def test_datasets_json_is_the_contracts_as_data():
    result = runner.invoke(app, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [d["name"] for d in listed] == list(CONTRACTS)
    requisitions = listed[0]
    assert requisitions["business_key"] == ["request_number", "item_code", "depot_code"]
    item_code = next(c for c in requisitions["columns"] if c["name"] == "item_code")
    assert "PRODUTO/SERVIÇO" in item_code["source_headers"]


def test_quarantine_list_shows_reason_column_and_row(var):
    _quarantine(var, "mov.csv")
    result = runner.invoke(app, ["quarantine", "list"])
    assert result.exit_code == 0, result.output
    assert "mov.csv" in result.output
    assert "no header" in result.output
    assert "column: quantity" in result.output and "row: 7" in result.output
    as_json = json.loads(runner.invoke(app, ["quarantine", "list", "--json"]).output)
    assert as_json[0]["quarantined_as"] == "mov.csv"


def test_quarantine_list_of_an_empty_quarantine(var):
    result = runner.invoke(app, ["quarantine", "list"])
    assert result.exit_code == 0
    assert "quarantine is empty" in result.output


def test_retry_puts_the_file_back_where_it_was_dropped_and_keeps_the_report(var):
    _quarantine(var, "mov.csv", inbox_path="stock_movements/mov.csv", content=b"v1")
    _quarantine(var, "other.csv")
    result = runner.invoke(app, ["quarantine", "retry", "mov.csv"])
    assert result.exit_code == 0, result.output
    assert (var / "inbox" / "stock_movements" / "mov.csv").read_bytes() == b"v1"
    assert not (var / "quarantine" / "mov.csv").exists()
    kept = list((var / "quarantine" / "retried").glob("mov.csv.*.error.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["reason"] == "no header"
    assert (var / "quarantine" / "other.csv").exists(), "only the named file is retried"


def test_retry_all(var):
    _quarantine(var, "a.csv")
    _quarantine(var, "b.json")
    result = runner.invoke(app, ["quarantine", "retry", "--all"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (var / "inbox").iterdir()) == ["a.csv", "b.json"]


def test_retry_of_an_unknown_name_fails_and_moves_nothing(var):
    _quarantine(var, "a.csv")
    result = runner.invoke(app, ["quarantine", "retry", "nope.csv"])
    assert result.exit_code == 1
    assert "not in quarantine: nope.csv" in result.output
    assert (var / "quarantine" / "a.csv").exists()


def test_retry_never_overwrites_a_file_in_the_inbox(var):
    _quarantine(var, "a.csv", content=b"quarantined")
    (var / "inbox").mkdir(parents=True)
    (var / "inbox" / "a.csv").write_bytes(b"newer drop")
    result = runner.invoke(app, ["quarantine", "retry", "a.csv"])
    assert result.exit_code == 1
    assert (var / "inbox" / "a.csv").read_bytes() == b"newer drop"
    assert (var / "quarantine" / "a.csv").read_bytes() == b"quarantined"


def test_retry_ignores_a_recorded_path_that_would_leave_the_inbox(var):
    _quarantine(var, "a.csv", inbox_path="../../etc/a.csv")
    result = runner.invoke(app, ["quarantine", "retry", "a.csv"])
    assert result.exit_code == 0, result.output
    assert (var / "inbox" / "a.csv").exists()


def test_retry_without_names_is_a_usage_error(var):
    result = runner.invoke(app, ["quarantine", "retry"])
    assert result.exit_code == 2


def test_bronze_prune_dry_run_on_an_empty_lake(var):
    result = runner.invoke(app, ["bronze", "prune", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would remove 0 bronze objects" in result.output


def test_quarantine_list_shows_every_entry_whatever_its_report(var, tmp_path):
    """Issue 13, item 4: a strange report never makes the list fail nor skip a file."""
    quarantine = var / "quarantine"
    _quarantine(var, "good.csv")
    (quarantine / "bad-json.csv").write_bytes(b"x")
    (quarantine / "bad-json.csv.error.json").write_text("{not json")
    (quarantine / "not-utf8.csv").write_bytes(b"x")
    (quarantine / "not-utf8.csv.error.json").write_bytes(b'{"reason": "caf\xe9", "row": 3}')
    (quarantine / "a-list.csv").write_bytes(b"x")
    (quarantine / "a-list.csv.error.json").write_text("[1, 2]")
    (quarantine / "no-fields.csv").write_bytes(b"x")
    (quarantine / "no-fields.csv.error.json").write_text("{}")
    (quarantine / "no-report.csv").write_bytes(b"x")
    (quarantine / os.fsdecode(b"bad\xff.csv")).write_bytes(b"x")
    (quarantine / os.fsdecode(b"bad\xff.csv.error.json")).write_text(
        json.dumps({"file": "bad\\xff.csv", "reason": "no header", "file_name_hex": "626164ff"})
    )
    (quarantine / "link.csv").symlink_to(tmp_path / "nowhere.csv")  # dangling: still listed
    (quarantine / "link.csv.error.json").write_text(json.dumps({"reason": "symbolic link"}))
    names = [
        "a-list.csv",
        "bad-json.csv",
        "bad\\xff.csv",
        "good.csv",
        "link.csv",
        "no-fields.csv",
        "no-report.csv",
        "not-utf8.csv",
    ]

    result = runner.invoke(app, ["quarantine", "list"])
    assert result.exit_code == 0, result.output
    for name in names:
        assert name in result.output
    assert "unreadable report" in result.output and "no report beside it" in result.output

    as_json = runner.invoke(app, ["quarantine", "list", "--json"])
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.output)
    assert sorted(r["quarantined_as"] for r in listed) == names
    json.dumps(listed, ensure_ascii=False).encode("utf-8")  # no lone surrogate anywhere


def test_retry_of_a_name_that_is_not_utf8_as_the_list_shows_it(var):
    raw = os.fsdecode(b"bad\xff.csv")
    _quarantine(var, raw, inbox_path="bad\\xff.csv")
    result = runner.invoke(app, ["quarantine", "retry", "bad\\xff.csv"])
    assert result.exit_code == 0, result.output
    assert (var / "inbox" / raw).read_bytes() == b"broken"


def test_names_and_reasons_cannot_drive_the_terminal(var):
    """A name may hold a newline or an escape sequence (a window title, colours): the list
    shows them as \\xNN on one line each, and retry takes the name as shown."""
    hostile = "x\x1b]0;pwned\x07\nline.csv"
    _quarantine(var, hostile, reason="bad \x1b[31mred\x1b[0m")
    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "x\\x1b]0;pwned\\x07\\x0aline.csv\n" in listed.output
    assert "bad \\x1b[31mred\\x1b[0m" in listed.output
    retried = runner.invoke(app, ["quarantine", "retry", "x\\x1b]0;pwned\\x07\\x0aline.csv"])
    assert retried.exit_code == 0, retried.output
    assert "\x1b" not in retried.output
    assert (var / "inbox" / hostile).read_bytes() == b"broken"
