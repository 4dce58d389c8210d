"""NATS JetStream plumbing shared by the services: connection, the event and dead-letter streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from nats.aio.client import Client as NatsClient
from nats.errors import AuthorizationError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from shared.events import ALL_SUBJECTS, DLQ_ALL_SUBJECTS
from shared.logging import get_logger
from shared.settings import NatsSettings

log = get_logger(__name__)
# where nats-py logs the errors of a client without an error callback
nats_log = logging.getLogger("nats.aio.client")

SECONDS_PER_DAY = 24 * 3600
# How long a declaration waits for a cluster to settle (a leader elected after a node was lost,
# or several services creating the same stream at once) before the service gives up.
SETTLE_SECONDS = 60.0
T = TypeVar("T")


def stream_config(settings: NatsSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream,
        subjects=[ALL_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.max_age_days * SECONDS_PER_DAY,
        num_replicas=settings.replicas,
    )


def dlq_stream_config(settings: NatsSettings) -> StreamConfig:
    """Dead letters wait for an operator, so they are kept far longer than the events."""
    if settings.dlq_stream == settings.stream:
        raise ValueError(f"the dead-letter stream must not be the event stream ({settings.stream})")
    return StreamConfig(
        name=settings.dlq_stream,
        subjects=[DLQ_ALL_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        # A transformer that dead-letters, then crashes before terminating the original, sends
        # the same dead letter again on redelivery: the window drops that copy.
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.dlq_max_age_days * SECONDS_PER_DAY,
        num_replicas=settings.replicas,
    )


class NatsAuthenticationError(ConnectionError):
    """The NATS server refused this client: wrong, missing or unexpected user and password."""


ErrorCallback = Callable[[Exception], Awaitable[None]]


def is_authentication_failure(error: BaseException) -> bool:
    """The server's `-ERR 'Authorization Violation'` (nats-py reports it two ways)."""
    return isinstance(error, AuthorizationError) or "authorization violation" in str(error).lower()


def without_credentials(url: str) -> str:
    """`url` without a `user:password@` part, fit for a log line or an error message."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def authentication_failed_message(settings: NatsSettings) -> str:
    servers = ",".join(without_credentials(url) for url in settings.servers)
    if settings.user is None:
        refused = (
            "the server requires a user and password: set NOVA_NATS__USER and NOVA_NATS__PASSWORD"
        )
    else:
        refused = (
            f"the server refused user {settings.user!r} or its password: check "
            "NOVA_NATS__USER and NOVA_NATS__PASSWORD"
        )
    return f"NATS authentication failed at {servers}: {refused}"


def error_callback(
    settings: NatsSettings,
    name: str,
    *,
    fail: Callable[[], bool] = lambda: True,
    quiet: bool = False,
) -> ErrorCallback:
    """nats-py's `error_cb` for the client `name`.

    A refused credential is logged as `nats_authentication_failed` and, while `fail()` is true,
    raised as NatsAuthenticationError: raised from the callback, it ends nats-py's connect loop,
    which would otherwise retry a credential that can never work, forever. Other errors are
    logged the way nats-py logs them by default (nothing when `quiet`).
    """

    async def on_error(error: Exception) -> None:
        if is_authentication_failure(error):
            log.error(
                "nats_authentication_failed",
                client=name,
                servers=[without_credentials(url) for url in settings.servers],
                user=settings.user,
            )
            if fail():
                raise NatsAuthenticationError(authentication_failed_message(settings)) from error
        elif not quiet:
            nats_log.error("nats: encountered error", exc_info=error)

    return on_error


async def _connect(
    settings: NatsSettings, name: str, *, quiet: bool = False, **reconnect: Any
) -> NatsClient:
    client = NatsClient()
    connected = False
    try:
        await client.connect(
            settings.servers,
            name=name,
            connect_timeout=settings.connect_timeout_seconds,
            # A refused credential ends the first connection; once connected, a later refusal
            # (the server's users changed) is logged on every reconnect attempt.
            error_cb=error_callback(settings, name, fail=lambda: not connected, quiet=quiet),
            **settings.auth_options(),
            **reconnect,
        )
    except BaseException:
        await client.close()
        raise
    connected = True
    return client


async def connect(settings: NatsSettings, name: str) -> NatsClient:
    """Connect, retrying while no server answers; NatsAuthenticationError when one refuses the
    credentials."""
    return await _connect(settings, name, max_reconnect_attempts=-1, reconnect_time_wait=1)


async def connect_once(settings: NatsSettings, name: str) -> NatsClient:
    """For a command line: fail fast (NoServersError) instead of retrying forever, quietly;
    NatsAuthenticationError when a server refuses the credentials."""
    # The caller reports the failure once, readably. nats-py only gives up on a first
    # connection when the attempts are bounded.
    return await _connect(
        settings, name, quiet=True, max_reconnect_attempts=1, reconnect_time_wait=0.2
    )


async def until_settled(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Run a JetStream administration call, again while the cluster cannot answer yet.

    On a cluster, a request about a stream or bucket that has no leader yet (just created by
    another service, or its node lost) times out or gets a 503 instead of an answer.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    delay = 0.2
    while True:
        try:
            return await action()
        except (NatsTimeoutError, ServiceUnavailableError, NoRespondersError) as error:
            if time.monotonic() + delay > deadline:
                raise
            log.info("jetstream_not_settled", what=what, error=type(error).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _declare(js: JetStreamContext, config: StreamConfig) -> None:
    await until_settled(lambda: _declare_once(js, config), f"stream {config.name}")


async def _declare_once(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # another service created it between the two calls
            pass
    await js.update_stream(config)


async def ensure_stream(js: JetStreamContext, settings: NatsSettings) -> None:
    """Create the event and dead-letter streams, or bring existing ones to the configured shape.

    Both are declared here so that every service that declares the event stream also leaves
    a place for dead letters: nothing fails to dead-letter because its stream is missing.
    """
    await _declare(js, stream_config(settings))
    await _declare(js, dlq_stream_config(settings))
