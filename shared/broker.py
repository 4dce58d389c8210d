"""NATS JetStream plumbing shared by the services: connection and the event stream."""

from __future__ import annotations

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from shared.events import ALL_SUBJECTS
from shared.settings import NatsSettings


def stream_config(settings: NatsSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream,
        subjects=[ALL_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.max_age_days * 24 * 3600,
    )


async def connect(settings: NatsSettings, name: str) -> NatsClient:
    return await nats.connect(
        settings.url,
        name=name,
        connect_timeout=settings.connect_timeout_seconds,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
    )


async def ensure_stream(js: JetStreamContext, settings: NatsSettings) -> None:
    """Create the event stream, or bring an existing one to the configured shape."""
    config = stream_config(settings)
    try:
        await js.stream_info(settings.stream)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # another service created it between the two calls
            pass
    await js.update_stream(config)
