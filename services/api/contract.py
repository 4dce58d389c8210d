"""The OpenAPI document as the API behaves, and the docs pages that read it.

FastAPI documents what a route's code declares; the answers that come from elsewhere (the
gateway's refusals, the problem handlers, the csv and parquet exports, the 304 of a
revalidation) are added here, so a client generated from the document, or schemathesis, finds
every status, media type and credential the API really uses.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from services.api import models
from services.api.answers import MEDIA
from services.api.problems import PROBLEM

# Swagger UI and Redoc as published on npm, with one change: Redoc's footer logo, which it
# loads from cdn.redoc.ly, points at the local `redoc-logo-mini.svg` (no page loads anything
# from another host; tests/api/test_docs_and_keys.py checks the assets too).
VENDOR = "/static/vendor"
API_KEY_HEADER = "X-API-Key"
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
# Routes that answer without `Answers.serve`: no ETag, so no 304.
UNVERSIONED = frozenset(
    {
        "/api/v1/datasets",
        "/api/v1/ingestions",
        "/api/v1/status",
        "/api/v1/quality/reports/{build_id}",
    }
)
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
    "Bearer": {"type": "http", "scheme": "bearer"},
}


def problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}


def describe(document: dict[str, Any], *, keyed: bool, max_query_bytes: int) -> dict[str, Any]:
    """`document` (FastAPI's) completed with what the gateway and the handlers answer.
    `keyed`: API keys are configured, so /api routes need one."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = models.Problem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    if keyed:
        components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            describe_operation(path, operation, keyed=keyed, max_query_bytes=max_query_bytes)
    # FastAPI's validation error shapes are never sent: validation errors are problems.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def describe_operation(
    path: str, operation: dict[str, Any], *, keyed: bool, max_query_bytes: int
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = {p["name"] for p in operation.get("parameters", [])}
    # Every error is a problem document, whatever media type the route's success has.
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400 and not is_readiness(path, status):
            response["content"] = {PROBLEM: {"schema": PROBLEM_SCHEMA}}
    if parameters:
        responses.setdefault("422", problem("Invalid parameters."))
    else:
        responses.pop("422", None)
    if "as_of_version" in parameters:
        responses.setdefault("404", problem("No such version of the table (time travel)."))
    if "404" in responses:
        responses["404"].setdefault("description", "Not found.")
        if responses["404"]["description"] == "Not Found":
            responses["404"]["description"] = "Not found."
    responses["413"] = problem("A request body was sent: the API is read-only.")
    responses["414"] = problem(f"Query string longer than {max_query_bytes} bytes.")
    responses["500"] = problem("Internal error (logged; the answer holds no detail).")
    if "format" in parameters:
        ok = responses.get("200", {}).setdefault("content", {})
        ok[MEDIA["csv"].split(";")[0]] = {
            "schema": {"type": "string", "description": "The whole result, comma-separated."}
        }
        ok[MEDIA["parquet"]] = {
            "schema": {"type": "string", "format": "binary", "description": "The whole result."}
        }
    if path == "/metrics":
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    if path.startswith("/api/v1/") and path not in UNVERSIONED:
        responses["304"] = {
            "description": "Not modified: the If-None-Match ETag is the current gold view's."
        }
    if keyed and path.startswith("/api/"):
        operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        responses["401"] = problem(
            f"No API key, or an unknown one: send {API_KEY_HEADER}: <key> or "
            "Authorization: Bearer <key>."
        )
    operation["responses"] = dict(sorted(responses.items()))


def is_readiness(path: str, status: str) -> bool:
    """`/ready` answers 503 with its readiness body (what a probe reads), not a problem."""
    return path == "/ready" and status == "503"


def install(app: FastAPI, *, keyed: bool, max_query_bytes: int) -> None:
    """The completed document at /openapi.json, and /docs and /redoc with their assets
    served from /static/vendor (no CDN: the docs work offline and leak nothing)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe(document, keyed=keyed, max_query_bytes=max_query_bytes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    title = f"{app.title} (docs)"
    favicon = f"{VENDOR}/swagger-ui-favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url="/docs/oauth2-redirect",
            # The validator badge would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
