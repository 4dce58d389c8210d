"""configure_logging: one JSON object per line from structlog and the standard library."""

import io
import json
import logging

import pytest
import structlog

from shared.logging import bind_correlation_id, configure_logging, get_logger
from shared.settings import LogSettings

TOUCHED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "nats")


@pytest.fixture(autouse=True)
def restore_logging():
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name, lg in ((n, logging.getLogger(n)) for n in TOUCHED_LOGGERS)
    }
    saved_structlog = structlog.get_config()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved_structlog)
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def json_lines(stream):
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_structlog_and_stdlib_lines_are_json_with_required_keys():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="json"), stream=out)
    get_logger("tests").info("from_structlog", rows=3)
    logging.getLogger("uvicorn.error").warning("from stdlib %s", "uvicorn")
    records = json_lines(out)
    assert len(records) == 2
    for record in records:
        assert isinstance(record, dict)
        assert record["service"] == "svc"
        assert {"service", "event", "level", "timestamp"} <= record.keys()
        assert "correlation_id" not in record
        assert record["timestamp"].endswith("Z") or "+00:00" in record["timestamp"]
    structlog_line, stdlib_line = records
    assert structlog_line["event"] == "from_structlog"
    assert structlog_line["rows"] == 3
    assert structlog_line["level"] == "info"
    assert stdlib_line["event"] == "from stdlib uvicorn"
    assert stdlib_line["level"] == "warning"


def test_each_record_is_exactly_one_line_even_with_newlines_in_the_message():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="json"), stream=out)
    get_logger().info("two\nlines", detail="a\nb")
    try:
        raise RuntimeError("boom\nagain")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("failed")
    raw_lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert len(raw_lines) == 2
    records = [json.loads(line) for line in raw_lines]
    assert records[0]["event"] == "two\nlines"
    assert "RuntimeError" in records[1]["exception"]
    assert records[1]["level"] == "error"


def test_correlation_id_only_inside_bind_correlation_id():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="json"), stream=out)
    log = get_logger("tests")
    log.info("before")
    with bind_correlation_id("corr-123", file="x.xlsx"):
        log.info("inside")
        logging.getLogger("uvicorn.error").info("stdlib inside")
    log.info("after")
    before, inside, stdlib_inside, after = json_lines(out)
    assert "correlation_id" not in before
    assert inside["correlation_id"] == "corr-123"
    assert inside["file"] == "x.xlsx"
    assert stdlib_inside["correlation_id"] == "corr-123"
    assert "correlation_id" not in after
    assert "file" not in after


def test_level_setting_filters_lower_levels():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="json", level="WARNING"), stream=out)
    get_logger().info("hidden")
    logging.getLogger("uvicorn.error").info("hidden too")
    get_logger().warning("shown")
    records = json_lines(out)
    assert [r["event"] for r in records] == ["shown"]


def test_console_format_is_not_json_but_readable():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="console"), stream=out)
    get_logger().info("console_event", rows=5)
    logging.getLogger("uvicorn.error").info("stdlib console")
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    assert "console_event" in lines[0]
    assert "rows=5" in lines[0]
    assert "service=svc" in lines[0]
    assert "info" in lines[0]
    assert "stdlib console" in lines[1]
    assert "\x1b[" not in text  # no colours when the stream is not a terminal


def test_auto_format_is_json_when_not_a_terminal():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="auto"), stream=out)
    get_logger().info("auto_event")
    (record,) = json_lines(out)
    assert record["event"] == "auto_event"


def test_reconfiguring_does_not_duplicate_handlers():
    first, second = io.StringIO(), io.StringIO()
    configure_logging("svc", LogSettings(format="json"), stream=first)
    configure_logging("other", LogSettings(format="json"), stream=second)
    get_logger().info("once")
    assert first.getvalue() == ""
    (record,) = json_lines(second)
    assert record["service"] == "other"
