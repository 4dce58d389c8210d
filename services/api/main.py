"""Composition root of the API: `python -m services.api`."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

from services.api.app import create_app
from services.api.feed import EventFeed
from shared.logging import configure_logging, get_logger
from shared.settings import NovaSettings
from shared.storage import Lake

H11_HEAD_ROOM = 1024 * 1024


def main() -> None:
    settings = NovaSettings()
    configure_logging("api", settings.log)
    if settings.api.open_to_the_network:
        get_logger(__name__).warning(
            "api_open_without_keys",
            host=settings.api.host,
            hint="anyone who reaches this address reads gold: set NOVA_API__KEYS",
        )

    def feed(on_gold_changed: Callable[[], None]) -> EventFeed:
        return EventFeed(settings.nats, on_gold_changed, settings.api.recent_ingestions)

    app = create_app(
        settings.api,
        Lake.from_settings(settings.storage),
        feed_factory=feed if settings.api.follow_events else None,
        quarantine_dir=settings.ingestor.quarantine_dir,
    )
    uvicorn.run(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        # h11 refuses a request head over 16 KiB with its own plain-text 400; with 1 MiB of
        # room above the query limit, the gateway sees a long query and answers its 414
        # problem (only a head over that still gets h11's 400).
        h11_max_incomplete_event_size=settings.api.max_query_bytes + H11_HEAD_ROOM,
    )


if __name__ == "__main__":
    main()
