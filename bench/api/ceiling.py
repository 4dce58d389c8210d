"""The practical ceiling: a bare FastAPI app with an endpoint returning a small constant,
served by uvicorn exactly as `services.api.main` serves the API (one worker, `uvicorn.run`
with the same host and port settings and `log_config=None`).

`/constant` is `async def` (the ceiling); `/constant-sync` is the same as a plain function,
which Starlette runs in its thread pool like every endpoint of the API (reported beside it).

`python -m bench.api.ceiling PORT`
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

CONSTANT = {"status": "ok", "items": 2000, "version": 1}


def create_app() -> FastAPI:
    app = FastAPI(title="constant")

    @app.get("/constant")
    async def constant() -> dict[str, object]:
        return CONSTANT

    # The API's endpoints are plain functions, which Starlette runs in its thread pool.
    @app.get("/constant-sync")
    def constant_sync() -> dict[str, object]:
        return CONSTANT

    return app


def main(argv: list[str]) -> int:
    (port,) = argv
    uvicorn.run(create_app(), host="127.0.0.1", port=int(port), log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
