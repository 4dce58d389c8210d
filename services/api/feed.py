"""What the API hears from NATS: new gold versions (to switch at once) and ingestions.

The API keeps working without NATS: versions are then found by the periodic check, and the
ingestion list stays empty until the broker is back.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import TypeAdapter

from services.api import models
from services.api.quarantine import text_field
from shared.broker import NatsAuthenticationError, connect, without_credentials
from shared.events import SUBJECT_ROOT, ForecastPublished, GoldUpdated
from shared.logging import get_logger
from shared.quarantine import printable
from shared.settings import NatsSettings

log = get_logger(__name__)

INGESTED = f"{SUBJECT_ROOT}.bronze.ingested.*"
REJECTED = f"{SUBJECT_ROOT}.ingest.rejected.*"
HISTORY_DAYS = 7
TIMESTAMP = TypeAdapter(datetime)


def ingestion_record(subject: str, payload: Any) -> models.Ingestion:
    """One line of `/api/v1/ingestions` from a BronzeIngested or IngestRejected payload.

    Checked here, when it arrives, not when it is served: a payload of another version's
    shape, a field of the wrong type or a name that is not UTF-8 loses that field (or, without
    a time, the event: ValueError), and never makes the endpoint fail."""
    if not isinstance(payload, dict):
        raise ValueError(f"a JSON {type(payload).__name__}, not an object")
    occurred_at = TIMESTAMP.validate_python(payload.get("occurred_at"))
    if occurred_at.tzinfo is None:  # every producer writes UTC
        occurred_at = occurred_at.replace(tzinfo=UTC)
    rejected = ".ingest.rejected." in subject
    return models.Ingestion(
        occurred_at=occurred_at,
        outcome="rejected" if rejected else "ingested",
        dataset=text_field(payload, "dataset") or "unknown",
        source_name=text_field(payload, "source_name") or "",
        row_count=whole(payload.get("row_count")),
        bronze_path=text_field(payload, "bronze_path"),
        reason=text_field(payload, "reason"),
        column=text_field(payload, "column"),
        row=whole(payload.get("row")),
    )


def whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class EventFeed:
    def __init__(
        self, settings: NatsSettings, on_gold_changed: Callable[[], None], keep: int
    ) -> None:
        self._settings = settings
        self._on_gold_changed = on_gold_changed
        self._recent: deque[models.Ingestion] = deque(maxlen=keep)
        self._client: NatsClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        """Why the feed stopped following events (gold is then found by periodic checks)."""
        return self._error

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def recent(self, limit: int) -> list[models.Ingestion]:
        ordered = sorted(self._recent, key=lambda r: r.occurred_at, reverse=True)
        return ordered[:limit]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None and not self._client.is_closed:
            await self._client.close()

    async def _run(self) -> None:
        try:
            await self._follow()
        except NatsAuthenticationError as error:  # logged by connect; retrying cannot help
            self._error = str(error)
        except Exception as error:
            self._error = f"{type(error).__name__}: {error}"
            log.error("event_feed_failed", error=self._error)

    async def _follow(self) -> None:
        self._client = await connect(self._settings, "nova-api")  # retries until the broker is up
        for subject in (GoldUpdated.subject_template, ForecastPublished.subject_template):
            await self._client.subscribe(subject, cb=self._on_version)
        js = self._client.jetstream()
        since = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
        pending = [INGESTED, REJECTED]
        while pending:  # the stream may not exist until the first service declares it
            subject = pending[0]
            try:
                await js.subscribe(
                    subject,
                    cb=self._on_ingestion,
                    ordered_consumer=True,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since
                    ),
                )
                pending.pop(0)
            except Exception as error:
                log.info("ingestion_feed_waiting", subject=subject, error=str(error))
                await asyncio.sleep(2)
        # The URL may hold a user and password (nats://user:pass@host): never logged.
        servers = ",".join(without_credentials(url) for url in self._settings.servers)
        log.info("event_feed_following", url=servers)

    async def _on_version(self, msg: Msg) -> None:
        try:
            payload = json.loads(msg.data)
        except ValueError:
            payload = {}
        # The correlation id lets one file's trip be followed into the API's log.
        log.info(
            "gold_change_heard",
            subject=msg.subject,
            correlation_id=payload.get("correlation_id"),
            build_id=payload.get("build_id"),
            run_id=payload.get("run_id"),
        )
        self._on_gold_changed()

    async def _on_ingestion(self, msg: Msg) -> None:
        try:
            self._recent.append(ingestion_record(msg.subject, json.loads(msg.data)))
        except (ValueError, RecursionError) as error:  # ValidationError is a ValueError
            log.warning(
                "ingestion_event_unreadable", subject=msg.subject, error=printable(str(error))
            )
