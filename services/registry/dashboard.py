"""The ops dashboard: a static page and script, Plotly.js from the plotly wheel, JSON endpoints.

The page, its script and Plotly.js carry no data and are served to anyone (no external network:
Plotly.js comes from the installed `plotly` package). The JSON under `/dashboard/api/` follows
the API's read rule: a viewer token, or `public_reads`.

Names, reasons and feature values come from records anyone with a token or a topic can write:
the script puts every one on the page as text (see static/dashboard.js), and the page's
Content-Security-Policy runs no script but the two files served here, so markup that slipped
through would still not run.
"""

# No `from __future__ import annotations`: FastAPI must see the `reader` dependency itself, and a
# string annotation naming a local variable cannot be resolved.
import importlib.util
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse

from services.registry.dashboard_data import (
    distribution,
    feature_drift,
    health,
    lineage_rows,
    window_series,
)
from services.registry.governance import Refused
from services.registry.live import LiveStats
from services.registry.view import RegistryView, origin

STATIC = Path(__file__).with_name("static")
FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
WINDOWS_SHOWN = 60  # drift windows on the charts
AUDIT_SHOWN = 50
# Only the page's own files run; Plotly sets inline styles, so those stay allowed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def plotly_js() -> Path:
    """`plotly.min.js` as shipped inside the plotly wheel (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "plotly.min.js not found in the plotly package: reinstall with `pip install -e .`"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class DashboardData:
    """Assembles the dashboard's JSON from the view and the live figures."""

    def __init__(self, view: RegistryView, live: LiveStats | None) -> None:
        self.view = view
        self.live = live or LiveStats()

    def _health(self, deployment: dict[str, Any], reports: list[dict[str, Any]]) -> dict:
        firing = self.view.breaches.firing(deployment["name"])
        latest = reports[-1] if reports else None
        return health(firing, latest, _now_ms(), deployment.get("window_seconds") or 60)

    def row(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """One inventory row."""
        name = deployment["name"]
        reports = self.view.drift(name, 1)
        last = window_series(reports)[-1] if reports else None
        champion = deployment["champion"]
        return {
            "name": name,
            "revision": deployment["revision"],
            "mode": deployment["mode"],
            "champion": f"{champion['model_name']} v{champion['version']}",
            "challengers": [
                f"{c['model']['model_name']} v{c['model']['version']}"
                for c in deployment["challengers"]
            ],
            "health": self._health(deployment, reports),
            "live": self.live.latest(name),
            "window": last,
        }

    def overview(self) -> dict[str, Any]:
        """Inventory and system-wide figures."""
        deps = [d for d in (self.view.deployment(n) for n in self.view.deployment_names()) if d]
        now = _now_ms()
        return {
            "now": now,
            "topic_rates": self.live.topic_rates,
            "sampling_rounds": self.live.rounds,
            "deadletter_reasons": self.live.deadletter_reasons(now - 5 * 60_000),
            "deadletter_sources": self.live.deadletter_sources(now - 5 * 60_000),
            "deployments": [self.row(d) for d in deps],
            "live": {d["name"]: self.live.series(d["name"]) for d in deps},
        }

    def deployment(self, name: str) -> dict[str, Any] | None:
        """Everything the deployment page draws."""
        current = self.view.deployment(name)
        if current is None:
            return None
        reports = self.view.drift(name, WINDOWS_SHOWN)
        model_name = current["champion"]["model_name"]
        versions = [self.view.model_by_id(m) for m in self.view.versions(model_name).values()]
        rows = [
            {**v, "metrics": v["lineage"]["metrics"], "origin": origin(v["lineage"])}
            for v in versions
            if v is not None
        ]
        champion = self.view.model_by_id(current["champion"]["model_id"])
        return {
            "deployment": current,
            "health": self._health(current, reports),
            "live": self.live.series(name),
            "windows": window_series(reports),
            "features": feature_drift(reports),
            "importances": (champion or {}).get("baseline_summary", {}).get("importances", {}),
            "baseline_classes": (champion or {})
            .get("baseline_summary", {})
            .get("class_counts", {}),
            "breaches": self.view.breaches.timeline(name),
            "firing": self.view.breaches.firing(name),
            "lineage": {"model": model_name, **lineage_rows(rows, current["champion"]["model_id"])},
            "history": self.view.history(name),
            "audit": self.view.audit(name, AUDIT_SHOWN),
        }

    def feature(self, name: str, feature: str) -> dict[str, Any] | None:
        """A feature's baseline distribution beside its recently sampled values."""
        current = self.view.deployment(name)
        if current is None:
            return None
        baseline = self.view.baseline(current["champion"]["model_id"]) or {"features": []}
        found = next((f for f in baseline["features"] if f["name"] == feature), None)
        if found is None:
            return None
        values = self.live.feature_values(name, feature)
        return {"feature": feature, **distribution(found, values)}


def mount_dashboard(app: FastAPI, view: RegistryView, live: LiveStats | None, reader: Any) -> None:
    """Add the page, its static files and its JSON endpoints to `app` (`reader`: the read rule)."""
    data = DashboardData(view, live)
    page = STATIC / "dashboard.html"

    def missing(what: str) -> Refused:
        return Refused("not_found", f"{what} is not in the registry; see /dashboard")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(page, media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/dashboard/deployments/{name}", include_in_schema=False)
    def deployment_page(name: str) -> FileResponse:
        return FileResponse(page, media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/dashboard/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/dashboard/static/{filename}", include_in_schema=False)
    def static(filename: str) -> FileResponse:
        if filename not in FILES:
            raise missing(f"static file {filename!r}")
        return FileResponse(STATIC / filename, media_type=FILES[filename])

    @app.get("/dashboard/api/overview")
    def overview(_: reader) -> dict[str, Any]:
        return data.overview()

    @app.get("/dashboard/api/deployments/{name}")
    def deployment(name: str, _: reader) -> dict[str, Any]:
        found = data.deployment(name)
        if found is None:
            raise missing(f"deployment {name!r}")
        return found

    # `:path`: a feature (a column of an imported model's table) may hold a `/`.
    @app.get("/dashboard/api/deployments/{name}/features/{feature:path}")
    def feature(name: str, feature: str, _: reader) -> dict[str, Any]:
        found = data.feature(name, feature)
        if found is None:
            raise missing(f"feature {feature!r} of deployment {name!r}")
        return found
