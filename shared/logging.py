"""Structured logging: JSON lines for machines, readable console output on a terminal.

Every line has `service`, `event`, `level` and `timestamp`; `correlation_id` is added while one
is bound with `bind_correlation_id` (context variables, so it follows async tasks). Credentials
are redacted from every line (`redact_credentials`), whoever logged it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.settings import LogSettings

# `scheme://user:password@host`: from `://` to the last `@` before the host's end (a password
# may hold an unencoded `@`; the servers of a cluster are separate URLs, each redacted).
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#]*@")
# Secrets passed as query parameters (`?token=`, `&password=`, S3 presigned signatures).
_SECRET_PARAMETERS = re.compile(
    r"([?&;](?:password|passwd|pwd|pass|secret|client_secret|token|access_token|auth_token|"
    r"api_key|apikey|key|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)"
    r"[^&;\s#'\"]+",
    re.IGNORECASE,
)
REDACTED = "***"
_MAX_DEPTH = 8  # nested deeper than any event of ours: rendered as text, redacted


def redact_credentials(text: str) -> str:
    """`text` with the user and password of every URL in it, and secret query parameters,
    replaced by `***` (`nats://nova:pw@host:4222` -> `nats://***@host:4222`)."""
    if "@" in text:
        text = _URL_CREDENTIALS.sub(rf"\g<1>{REDACTED}@", text)
    if "=" in text:
        text = _SECRET_PARAMETERS.sub(rf"\g<1>{REDACTED}", text)
    return text


def _redacted(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_credentials(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {_redacted(k, depth + 1): _redacted(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            items = [_redacted(v, depth + 1) for v in value]
            return items if isinstance(value, list | set | frozenset) else tuple(items)
    # Anything else (an exception, a URL object, a settings model) is rendered as its text:
    # replaced by the redacted text only when that differs, so that renderers keep the rest.
    try:
        text = str(value)
    except Exception:
        return value
    redacted = redact_credentials(text)
    return value if redacted == text else redacted


def _redact_credentials(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Every value of the event, nested ones and the formatted exception included."""
    return {key: _redacted(value) for key, value in event_dict.items()}


def _add_service(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _level_name_lower(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if "level" in event_dict:
        event_dict["level"] = str(event_dict["level"]).lower()
    event_dict.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event_dict


def configure_logging(service: str, settings: LogSettings, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library (uvicorn, nats, faststream) to one renderer."""
    out = stream or sys.stdout
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _add_service(service),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _level_name_lower,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # Last before rendering: sees every line, from structlog or the standard library
            # (nats-py, FastStream, uvicorn), with its exception already text.
            _redact_credentials,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "faststream", "nats"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


@contextmanager
def bind_correlation_id(correlation_id: str, **extra: Any) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, **extra):
        yield
