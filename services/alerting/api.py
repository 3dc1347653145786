"""The alerting HTTP API: open groups, silences, acknowledgements and the outbox.

Every change is saved to Redis (with the engine's whole state) before the answer goes back, so
a silence that was acknowledged with 2xx survives a crash. Changes always need
`Authorization: Bearer <token>` with the service's token (the `api_token` setting, else
var/alerting/token); reads are open on the (loopback) address it binds. Errors are JSON
`{error, message}`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.alerting.engine import Engine
from services.alerting.outbox import Store
from services.alerting.silences import SilenceError
from services.common.route_errors import answer_route_errors
from services.common.settings import Secret

MAX_SILENCE_S = 366 * 86_400.0


class SilenceIn(BaseModel):
    """A silence to create: matchers like `deployment="credit"`, for `duration_s` from now."""

    matchers: list[str] = Field(min_length=1, max_length=32)
    duration_s: float = Field(gt=0, le=MAX_SILENCE_S)
    created_by: str = Field(min_length=1, max_length=1000)
    comment: str = Field(default="", max_length=1000)
    starts_in_s: float = Field(default=0.0, ge=0, le=MAX_SILENCE_S)


class AckIn(BaseModel):
    """An acknowledgement of one firing alert."""

    created_by: str = Field(min_length=1, max_length=1000)
    comment: str = Field(default="", max_length=1000)


class ApiError(Exception):
    """An error answer: HTTP status, short code, message telling what to do."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def create_api(
    engine: Engine,
    store: Store,
    persist: Callable[[], Awaitable[None]],
    token: Secret,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The FastAPI app over a running engine; `persist` saves its state; changes need `token`."""
    if not token:
        raise ValueError("the alerting API needs a token: it never accepts changes from anyone")
    api = FastAPI(title="streamops alerting", version="1")
    answer_route_errors(api)  # an unknown route or a wrong method: {error, message} too

    @api.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "message": exc.message}, status_code=exc.status)

    def require_token(authorization: str | None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.reveal().encode()
        ):
            raise ApiError(
                401,
                "unauthorized",
                "changes need `Authorization: Bearer <token>` with the alerting token (the "
                "service's api_token setting, else var/alerting/token; the CLI reads that file "
                "or takes STREAMOPS_CLI_ALERTING_TOKEN)",
            )

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "outbox_depth": await store.depth()}

    @api.get("/api/v1/alerts")
    async def alerts() -> dict[str, Any]:
        return {"groups": engine.groups()}

    @api.get("/api/v1/silences")
    async def list_silences(include_expired: bool = False) -> dict[str, Any]:
        now = clock()
        return {
            "silences": [
                {**s.to_dict(), "status": s.status(now)}
                for s in engine.silences.list_silences(now, include_expired)
            ]
        }

    @api.post("/api/v1/silences", status_code=201)
    async def add_silence(body: SilenceIn, authorization: str | None = Header(None)) -> Any:
        require_token(authorization)
        now = clock()
        start = now + body.starts_in_s
        try:
            silence = engine.silences.add(
                body.matchers, start, start + body.duration_s, body.created_by, body.comment, now
            )
        except SilenceError as exc:
            raise ApiError(400, "bad_silence", str(exc)) from None
        await persist()
        return {**silence.to_dict(), "status": silence.status(now)}

    @api.delete("/api/v1/silences/{silence_id}")
    async def expire_silence(silence_id: str, authorization: str | None = Header(None)) -> Any:
        require_token(authorization)
        now = clock()
        try:
            silence = engine.silences.expire(silence_id, now)
        except KeyError:
            raise ApiError(404, "not_found", f"no silence {silence_id}; list them first") from None
        except SilenceError as exc:
            raise ApiError(409, "already_expired", str(exc)) from None
        await persist()
        return {**silence.to_dict(), "status": silence.status(now)}

    @api.post("/api/v1/alerts/{fingerprint}/ack", status_code=201)
    async def ack(fingerprint: str, body: AckIn, authorization: str | None = Header(None)) -> Any:
        require_token(authorization)
        try:
            done = engine.silences.ack(fingerprint, body.created_by, body.comment, clock())
        except SilenceError as exc:
            raise ApiError(400, "bad_ack", str(exc)) from None
        await persist()
        return {
            "fingerprint": done.fingerprint,
            "created_by": done.created_by,
            "comment": done.comment,
            "created_at": done.created_at,
        }

    @api.get("/api/v1/acks")
    async def acks() -> dict[str, Any]:
        return {"acks": [a.__dict__ for a in engine.silences.acks()]}

    @api.get("/api/v1/outbox")
    async def outbox(limit: int = 100) -> dict[str, Any]:
        entries = await store.entries(max(1, min(limit, 1000)))
        return {
            "depth": await store.depth(),
            "entries": [{k: v for k, v in e.__dict__.items() if k != "body"} for e in entries],
        }

    @api.get("/api/v1/receivers")
    async def receivers() -> dict[str, Any]:
        return {"receivers": [repr(r) for r in engine.config.receivers.values()]}

    return api
