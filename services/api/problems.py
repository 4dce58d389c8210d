"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from services.api import models

PROBLEM = "application/problem+json"


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
        title=title, status=status, detail=detail, instance=request.url.path, **extra
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM, headers=headers
    )
