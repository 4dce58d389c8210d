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


PASSWORD = "Sup3r-s3cret"  # what must never reach a log line
SECRET_URL = f"nats://nova:{PASSWORD}@nats.internal:4222"


class Endpoint:
    """Not a string, a dict or a list: logged through its text."""

    def __str__(self) -> str:
        return f"Endpoint(http://minio:{PASSWORD}@minio.internal:9000)"


def log_credentials_every_way() -> None:
    """URLs with credentials as the message, as values nested in dicts, lists and tuples, as
    an object's text, as a query parameter, in a standard library message and in exceptions."""
    get_logger("tests").info(
        f"connecting to {SECRET_URL}",
        url=SECRET_URL,
        servers=[SECRET_URL, "nats://other:4222"],
        nested={"storage": {"endpoint": f"s3://AKIA:{PASSWORD}@bucket/lake"}, "n": 3},
        pair=("x", f"https://user:{PASSWORD}@example.org/p?token={PASSWORD}&page=2"),
        endpoint=Endpoint(),
        rows=7,
    )
    logging.getLogger("nats.aio.client").error("could not connect to %s", SECRET_URL)
    try:
        raise ConnectionRefusedError(f"connect to {SECRET_URL} refused")
    except ConnectionRefusedError:
        get_logger("tests").exception("nats_connect_failed")
        logging.getLogger("faststream").exception("broker failed")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_credentials_in_urls_are_never_written(log_format):
    out = io.StringIO()
    configure_logging("svc", LogSettings(format=log_format), stream=out)
    log_credentials_every_way()
    text = out.getvalue()
    assert PASSWORD not in text
    assert "nats://***@nats.internal:4222" in text
    assert "s3://***@bucket/lake" in text
    assert "http://***@minio.internal:9000" in text  # the object's text, redacted
    assert "token=***&page=2" in text
    assert "ConnectionRefusedError" in text  # the exception is still there, redacted


def test_redacted_json_lines_keep_their_shape():
    out = io.StringIO()
    configure_logging("svc", LogSettings(format="json"), stream=out)
    log_credentials_every_way()
    first, stdlib, exception, foreign_exception = json_lines(out)
    assert first["event"] == "connecting to nats://***@nats.internal:4222"
    assert first["url"] == "nats://***@nats.internal:4222"
    assert first["servers"] == ["nats://***@nats.internal:4222", "nats://other:4222"]
    assert first["nested"] == {"storage": {"endpoint": "s3://***@bucket/lake"}, "n": 3}
    assert first["pair"] == ["x", "https://***@example.org/p?token=***&page=2"]
    assert first["rows"] == 7
    assert stdlib["event"] == "could not connect to nats://***@nats.internal:4222"
    for line in (exception, foreign_exception):
        assert "connect to nats://***@nats.internal:4222 refused" in line["exception"]


def test_text_without_credentials_is_left_alone():
    from shared.logging import redact_credentials

    for text in (
        "nats://127.0.0.1:4222",
        "nats://a:4222,nats://b:4222",
        "mail ops@example.org about it",
        "GET /api/v1/items?page=2&size=50",
        "ratio=0.5 key=value",
    ):
        assert redact_credentials(text) == text
    assert redact_credentials("nats://a:x@h1:4222,nats://b:y@h2:4222") == (
        "nats://***@h1:4222,nats://***@h2:4222"
    )
    assert redact_credentials("nats://s3cr3t-token@h:4222") == "nats://***@h:4222"  # token auth


def test_a_service_with_a_password_in_its_nats_url_never_logs_it(tmp_path):
    """The API (a real process) follows events through a NATS URL that holds its password."""
    import asyncio
    import os
    import subprocess
    import sys
    import time

    from shared.broker import connect, ensure_stream
    from shared.settings import NatsSettings
    from tests.conftest import REPO_ROOT, free_port, json_log_lines, nats_server, stop_process

    port = free_port()
    arguments = ("--jetstream", "--store_dir", str(tmp_path / "nats"), "--addr", "127.0.0.1")
    with nats_server(port, *arguments, "--user", "nova", "--pass", PASSWORD):
        url = f"nats://nova:{PASSWORD}@127.0.0.1:{port}"

        async def declare() -> None:  # the feed follows at once once the stream exists
            nc = await connect(NatsSettings(url=url), name="test")
            await ensure_stream(nc.jetstream(), NatsSettings(url=url))
            await nc.close()

        asyncio.run(declare())
        log = tmp_path / "api.log"
        env = {
            **os.environ,
            "NOVA_VAR_DIR": str(tmp_path / "var"),
            "NOVA_NATS__URL": url,
            "NOVA_API__PORT": str(free_port()),
            "NOVA_LOG__FORMAT": "json",
        }
        with log.open("wb") as sink:
            api = subprocess.Popen(
                [sys.executable, "-m", "services.api"],
                cwd=REPO_ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while not any(line["event"] == "event_feed_following" for line in json_log_lines(log)):
                assert api.poll() is None, f"the API exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"the API never followed:\n{log.read_text()}"
                time.sleep(0.1)
        finally:
            stop_process(api)
    text = log.read_text(errors="replace")
    assert PASSWORD not in text, text
    assert f"127.0.0.1:{port}" in text  # where it connected is still said
