"""The registry's HTTP API (FastAPI; OpenAPI at /docs): reads of the view, governance writes.

Reads need a viewer token unless `public_reads` is set; requests need an editor, decisions an
owner (`Authorization: Bearer <token>`). Every error is JSON `{error, message}` where the message
says what to do next (and `field`, naming the request field at fault, when there is one).
Latency is observed per route template and standard method, so label values stay bounded.

Input is bounded at the edge (`limits`): a body over 1 MiB gets 413 before it is parsed, a
`reason` over 2,000 characters 422, and a deployment or model name a request carries must follow
the name rule, else 422 and nothing is written. Reads do not check the rule: a name no write
accepts is simply not found (404), and a deployment named before the rule stays readable.
"""

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
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
from services.common.route_errors import answer_route_errors
from services.registry.compare import compare
from services.registry.config_fields import InvalidField
from services.registry.dashboard import mount_dashboard
from services.registry.governance import Governor, Refused
from services.registry.limits import (
    MAX_BODY_BYTES,
    MAX_REASON_CHARS,
    NAME_RULE,
    BodyLimit,
    check_names,
    method_label,
)
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

    name: str | None = Field(None, description=f"The model's name: {NAME_RULE}.")
    version: int | None = None
    model_id: str | None = None


class ChangeBody(BaseModel):
    """A change request to a deployment."""

    action: str = Field(
        description="set_champion | add_challenger | remove_challenger | rollback | set_mode | "
        "configure | apply"
    )
    reason: str = Field(
        description="Why: recorded in the audit trail.", max_length=MAX_REASON_CHARS
    )
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

    reason: str = Field("", max_length=MAX_REASON_CHARS)


def _error(status: int, kind: str, message: str, field: str | None = None) -> JSONResponse:
    body = {"error": kind, "message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status)


def _field(loc: tuple[Any, ...]) -> str | None:
    """A validation error's location as a request field path (`challengers[0].model`)."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path") else loc
    if not parts or not isinstance(parts[0], str):
        return None  # the body as a whole, or a position in text that is not JSON
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)[1:]


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
        description="Models, lineage, deployments, approvals and the audit trail. Deployment "
        f"and model names in requests: {NAME_RULE}. Request bodies: at most {MAX_BODY_BYTES} "
        f"bytes (413 beyond); reasons: at most {MAX_REASON_CHARS} characters.",
    )
    # Added before the timing middleware, so it runs inside it: refusals are timed too.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

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

    answer_route_errors(app)  # an unknown route or a wrong method: {error, message} too

    @app.exception_handler(Refused)
    def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return _error(STATUS.get(exc.kind, 401), exc.kind, str(exc), exc.field)

    @app.exception_handler(InvalidField)
    def _invalid_field(_request: Request, exc: InvalidField) -> JSONResponse:
        return _error(422, "invalid", str(exc), exc.field)

    @app.exception_handler(RetryableError)
    def _retryable(_request: Request, exc: RetryableError) -> JSONResponse:
        return _error(503, "unavailable", f"{exc}; the change was not made, try again")

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        field = _field(tuple(errors[0]["loc"])) if errors else None
        return _error(422, "invalid", f"fix the request body or query: {where}; see /docs", field)

    @app.middleware("http")
    async def _timed(request: Request, call_next: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = method_label(request.method)
        metrics.latency.labels(template, method).observe(time.perf_counter() - started)
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
    def file_request(
        name: Annotated[str, Path(description=f"The deployment's name: {NAME_RULE}.")],
        body: ChangeBody,
        who: Writer,
    ) -> Any:
        change = check_names(name, body.model_dump())
        answer = governor.request(name, change, who)
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
