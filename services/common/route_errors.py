"""Starlette's own refusals (no such route, method not allowed) in the APIs' error shape.

The registry and alerting APIs answer every error as JSON `{error, message}`, the message saying
what to do next; Starlette answers an unknown path or a method a route does not take with
`{"detail": "Not Found"}`. `answer_route_errors(app)` makes those follow the APIs' shape too,
keeping their status and headers. A 405's `Allow` lists the methods of every route on the path
(Starlette names only the first route's: `GET` where `GET, POST` are both served).

>>> route_error(404, "GET", "/api/v1/nope", "Not Found", None)
('not_found', 'no route GET /api/v1/nope; see /docs for the routes')
>>> route_error(405, "DELETE", "/models", "Method Not Allowed", "GET")
('method_not_allowed', 'DELETE is not allowed on /models; use GET (see /docs)')
"""

from __future__ import annotations

import re
from http import HTTPStatus

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match

_SHOWN = 200  # characters of the asked-for path quoted back


def route_error(
    status: int, method: str, path: str, detail: str, allow: str | None
) -> tuple[str, str]:
    """The `(error, message)` of a refusal Starlette raised with `status`."""
    shown = path[:_SHOWN] + ("..." if len(path) > _SHOWN else "")
    if status == 404:
        return "not_found", f"no route {method} {shown}; see /docs for the routes"
    if status == 405:
        use = allow or "another method"
        return "method_not_allowed", f"{method} is not allowed on {shown}; use {use} (see /docs)"
    try:
        error = re.sub(r"[^a-z0-9]+", "_", HTTPStatus(status).phrase.lower()).strip("_")
    except ValueError:
        error = "http_error"
    return error, f"{detail} ({method} {shown}); see /docs"


def _methods_on(request: Request) -> str | None:
    """Every method some route serves on the request's path (None when no route knows it)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods)) or None


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    allowed = _methods_on(request) if exc.status_code == 405 else None
    if allowed:
        headers["Allow"] = allowed
    error, message = route_error(
        exc.status_code, request.method, request.url.path, str(exc.detail), headers.get("Allow")
    )
    return JSONResponse(
        {"error": error, "message": message}, status_code=exc.status_code, headers=headers
    )


def answer_route_errors(app: Starlette) -> None:
    """Answer Starlette's (and FastAPI's) HTTPException in `app` as `{error, message}`."""
    app.add_exception_handler(HTTPException, _answer)
