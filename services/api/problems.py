"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from services.api import models

PROBLEM = "application/problem+json"
INSTANCE_MAX_CHARS = 512  # a problem names the path it answers, not a copy of an 80 KB one


def instance(path: str) -> str:
    return path if len(path) <= INSTANCE_MAX_CHARS else path[:INSTANCE_MAX_CHARS] + "…"


class ApiProblem(Exception):
    """An answer that is a problem: raised anywhere in an endpoint, sent as problem details."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(
    request: Request, status: int, title: str, detail: str | None = None, **extra: Any
) -> JSONResponse:
    headers = extra.pop("headers", None)
    body = models.Problem(
        title=title, status=status, detail=detail, instance=instance(request.url.path), **extra
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM, headers=headers
    )
