"""Composition root of the API: `python -m services.api`."""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from shared.logging import configure_logging
from shared.settings import NovaSettings
from shared.storage import Lake


def main() -> None:
    settings = NovaSettings()
    configure_logging("api", settings.log)
    app = create_app(settings.api, Lake.from_settings(settings.storage))
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_config=None)


if __name__ == "__main__":
    main()
