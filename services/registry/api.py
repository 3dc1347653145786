"""The registry's HTTP API (FastAPI; OpenAPI at /docs): reads of the view, governance writes.

Reads need a viewer token unless `public_reads` is set; requests need an editor, decisions an
owner (`Authorization: Bearer <token>`). Every error is JSON `{error, message}` where the message
says what to do next. Latency is observed per route template, so label values stay bounded.
"""

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from services.common.errors import RetryableError
from services.registry.compare import compare
from services.registry.dashboard import mount_dashboard
from services.registry.governance import Governor, Refused
from services.registry.lineage import lineage_graph
from services.registry.live import LiveStats
from services.registry.roles import ANONYMOUS, Principal, TokenTable
from services.registry.view import RegistryView, origin

API_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
STATUS = {"unauthorized": 401, "not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}


class ApiMetrics:
    """API latency by route template, and the view's sizes (set at scrape time)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.latency = Histogram(
            "streamops_registry_api_seconds",
            "API request latency by route template and method.",
            ["route", "method"],
            buckets=API_BUCKETS,
            registry=registry,
        )
        self.sizes = Gauge(
            "streamops_registry_view_size",
            "Entries in the registry view, by kind.",
            ["kind"],
            registry=registry,
        )


class ModelSpec(BaseModel):
    """A model by name and version, or by id."""

    name: str | None = None
    version: int | None = None
    model_id: str | None = None


class ChangeBody(BaseModel):
    """A change request to a deployment."""

    action: str = Field(
        description="set_champion | add_challenger | remove_challenger | rollback | set_mode | "
        "configure | apply"
    )
    reason: str = Field(description="Why: recorded in the audit trail.")
    model: ModelSpec | None = None
    weight: float = Field(0.0, description="Challenger traffic share in ab mode (0..1).")
    mode: str | None = Field(None, description="shadow | ab (set_mode).")
    to_revision: int | None = Field(None, description="Rollback target (default: previous).")
    setup: dict[str, Any] | None = Field(
        None,
        description="Configuration to set with the change: policy, thresholds, humility, "
        "window_seconds, label_delay_seconds, mode, external. With apply, the whole "
        "configuration (missing fields take their defaults).",
    )
    challengers: list[dict[str, Any]] | None = Field(
        None,
        description="apply only: the declared challengers, [{model: {name, version}, weight}].",
    )


class DecisionBody(BaseModel):
    """An approval or rejection."""

    reason: str = ""


def _error(status: int, kind: str, message: str, field: str | None = None) -> JSONResponse:
    body = {"error": kind, "message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status)


def create_app(
    view: RegistryView,
    governor: Governor,
    tokens: TokenTable,
    public_reads: bool,
    metrics: ApiMetrics,
    health: Callable[[], dict[str, Any]] = lambda: {"ok": True},
    live: LiveStats | None = None,
) -> FastAPI:
    """The FastAPI application, with the ops dashboard under /dashboard."""
    app = FastAPI(
        title="streamops registry",
        version="0.1.0",
        description="Models, lineage, deployments, approvals and the audit trail.",
    )

    def principal(request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        found = tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise Refused(
                "unauthorized",
                "the token is not valid; check --token or "
                "STREAMOPS_CLI_TOKEN against the registry's tokens",
            )
        return found

    def reader(who: Annotated[Principal | None, Depends(principal)]) -> Principal:
        if who is None:
            if public_reads:
                return ANONYMOUS
            raise Refused(
                "unauthorized",
                "reads need a token: send `Authorization: Bearer "
                "<token>` (or set public_reads on the registry)",
            )
        return who

    def writer(who: Annotated[Principal | None, Depends(principal)]) -> Principal:
        if who is None:
            raise Refused(
                "unauthorized",
                "this needs an editor or owner token: send `Authorization: Bearer <token>`",
            )
        return who

    Reader = Annotated[Principal, Depends(reader)]
    Writer = Annotated[Principal, Depends(writer)]

    @app.exception_handler(Refused)
    def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return _error(STATUS.get(exc.kind, 401), exc.kind, str(exc), exc.field)

    @app.exception_handler(RetryableError)
    def _retryable(_request: Request, exc: RetryableError) -> JSONResponse:
        return _error(503, "unavailable", f"{exc}; the change was not made, try again")

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(422, "invalid", f"fix the request body or query: {where}; see /docs")

    @app.middleware("http")
    async def _timed(request: Request, call_next: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.latency.labels(template, request.method).observe(time.perf_counter() - started)
        return response

    def found(value: Any, what: str) -> Any:
        if value is None:
            raise Refused(
                "not_found",
                f"{what} is not in the registry; list what exists with "
                "GET /models or GET /deployments",
            )
        return value

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        state = health()
        return JSONResponse(state, status_code=200 if state.get("ok") else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        for kind, size in view.sizes().items():
            metrics.sizes.labels(kind).set(size)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/models")
    def models(_: Reader) -> list[dict[str, Any]]:
        out = []
        for name in view.model_names():
            versions = view.versions(name)
            latest = view.model_by_id(versions[max(versions)]) if versions else None
            out.append(
                {
                    "name": name,
                    "versions": sorted(versions),
                    "latest": latest
                    and {k: latest[k] for k in ("version", "model_id", "created_at", "estimator")},
                }
            )
        return out

    @app.get("/models/{name}")
    def model_versions(name: str, _: Reader) -> dict[str, Any]:
        versions = found(view.versions(name) or None, f"model {name!r}")
        rows = [view.model_by_id(mid) for mid in versions.values()]
        return {
            "name": name,
            "versions": [
                {
                    k: r[k]
                    for k in (
                        "version",
                        "model_id",
                        "parent_id",
                        "created_at",
                        "estimator",
                        "onnx_size",
                    )
                }
                # Versions viewed before origins were recorded get theirs from the lineage.
                | {"metrics": r["lineage"]["metrics"], "origin": origin(r["lineage"])}
                for r in rows
                if r is not None
            ],
        }

    @app.get("/models/{name}/versions/{version}")
    def model_version(name: str, version: int, _: Reader) -> dict[str, Any]:
        return found(view.model(name, version), f"model {name} v{version}")

    @app.get("/lineage/{model_id}")
    def lineage(model_id: str, _: Reader) -> dict[str, Any]:
        graph = lineage_graph(model_id, view.model_by_id, view.children)
        return found(graph, f"model id {model_id}")

    @app.get("/compare/{name}")
    def compare_versions(
        name: str, _: Reader, a: Annotated[int, Query()], b: Annotated[int, Query()]
    ) -> dict[str, Any]:
        ma = found(view.model(name, a), f"model {name} v{a}")
        mb = found(view.model(name, b), f"model {name} v{b}")
        return compare(ma, mb)

    @app.get("/deployments")
    def deployments(_: Reader) -> list[dict[str, Any]]:
        return [d for d in (view.deployment(n) for n in view.deployment_names()) if d]

    @app.get("/deployments/{name}")
    def deployment(name: str, _: Reader) -> dict[str, Any]:
        current = found(view.deployment(name), f"deployment {name!r}")
        return {**current, "requests": view.requests(name), "drift": view.drift(name, 1)}

    @app.get("/deployments/{name}/history")
    def history(name: str, _: Reader) -> list[dict[str, Any]]:
        return found(view.history(name) or None, f"deployment {name!r}")

    @app.get("/deployments/{name}/at")
    def at(
        name: str,
        _: Reader,
        t: Annotated[int, Query(description="epoch milliseconds")],
    ) -> dict[str, Any]:
        return found(view.deployment_at(name, t), f"deployment {name!r} at t={t}")

    @app.get("/deployments/{name}/drift")
    def drift(
        name: str, _: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> list[dict[str, Any]]:
        return view.drift(name, limit)

    @app.get("/audit")
    def audit(
        _: Reader,
        deployment: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 200,
    ) -> list[dict[str, Any]]:
        return view.audit(deployment, limit)

    @app.get("/rejected")
    def rejected(_: Reader) -> dict[str, Any]:
        entries = view.rejected()
        by_reason: dict[str, int] = {}
        for e in entries:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
        return {"count": len(entries), "by_reason": by_reason, "records": entries}

    @app.get("/requests/{request_id}")
    def get_request(request_id: str, _: Reader) -> dict[str, Any]:
        return found(view.request(request_id), f"request {request_id}")

    @app.post("/deployments/{name}/requests", status_code=201)
    def file_request(name: str, body: ChangeBody, who: Writer) -> Any:
        answer = governor.request(name, body.model_dump(), who)
        # Nothing to change (e.g. applying the file that is already in force): no request filed.
        return JSONResponse(answer) if answer["status"] == "unchanged" else answer

    @app.post("/requests/{request_id}/approve")
    def approve(request_id: str, who: Writer, body: DecisionBody | None = None) -> dict[str, Any]:
        return governor.approve(request_id, who, (body or DecisionBody()).reason)

    @app.post("/requests/{request_id}/reject")
    def reject(request_id: str, body: DecisionBody, who: Writer) -> dict[str, Any]:
        return governor.reject(request_id, who, body.reason)

    mount_dashboard(app, view, live, Reader)
    return app
