"""The ops dashboard in a real headless browser (Debian's chromium driven by playwright).

The registry runs as a process on the real broker and Redis; models come from the trainer's test
helpers, the deployment from governance requests through the API, drift reports, breaches,
events, predictions and dead letters through their real topics. The page must load with no
console errors, draw every chart with data and refresh itself; screenshots are saved under
var/artifacts/dashboard/.
"""

from __future__ import annotations

import time

import httpx
import pytest

from services.common import serde
from tests.dashboard_support import (
    LOADED,
    Traffic,
    approve,
    breach,
    drift_reports,
    eventually,
    start_registry,
)
from tests.kafka_support import REPO, make_topics, produce
from tests.model_factory import credit_content, keypair, published

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "var" / "artifacts" / "dashboard"
TOKENS = (
    "ana:owner:ana-token-16chars,bo:owner:bo-token-16chars,"
    "ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars"
)
CHARTS = [
    "c-throughput",
    "c-latency",
    "c-errors",
    "c-windows",
    "c-drift-importance",
    "c-drift-time",
    "c-distribution",
    "c-accuracy",
    "c-predictions",
    "c-alerts",
    "c-lineage",
]
# Per chart: how many data points its traces hold in all (what "rendered with data" means).
POINTS_JS = """ids => ids.map(id => {
  const n = document.getElementById(id);
  const data = (n && n.data) || [];
  const points = data.reduce((s, t) => s + ((t.y || []).filter(v => v !== null).length), 0);
  return [id, !!(n && n.classList.contains('js-plotly-plot')), data.length, points];
})"""


def test_dashboard_renders_live_data_in_chromium(
    kafka_bootstrap, settings, redis_password, prefix, tmp_path, browser
):
    started = time.monotonic()
    namer = make_topics(
        kafka_bootstrap,
        prefix,
        ["models", "deployments", "governance", "drift", "breaches"]
        + ["events", "predictions", "deadletter"],
    )
    key = keypair(tmp_path / "keys")
    v1 = credit_content()
    v2 = {**credit_content(estimator="rf"), "version": 2, "parent_id": v1["model_id"]}
    produce(
        kafka_bootstrap,
        namer.models,
        [(b"credit", serde.encode("ModelPublished", published(c, key))) for c in (v1, v2)],
    )

    registry, url = start_registry(
        kafka_bootstrap, prefix, settings, redis_password, TOKENS, tmp_path
    )
    http = httpx.Client(base_url=url, timeout=10)
    try:
        approve(
            http,
            "credit",
            {
                "action": "set_champion",
                "reason": "first",
                "model": {"name": "credit", "version": 1},
            },
            "ed-token-16chars",
            "bo-token-16chars",
            "looks good",
        )
        approve(
            http,
            "credit",
            {
                "action": "add_challenger",
                "reason": "shadow rf",
                "weight": 0.2,
                "model": {"name": "credit", "version": 2},
            },
            "ed-token-16chars",
            "ana-token-16chars",
            "looks good",
        )
        now = int(time.time() * 1000)
        reports = drift_reports(v1, now)
        produce(
            kafka_bootstrap,
            namer.drift,
            [(b"credit", serde.encode("DriftReport", r)) for r in reports],
        )
        transitions = [
            breach(v1, now - 300_000, "firing", "warning"),
            breach(v1, now - 240_000, "resolved", "warning"),
            breach(v1, now - 120_000, "firing", "critical"),
            breach(v1, now - 60_000, "firing", "warning", feature=None),
        ]
        produce(
            kafka_bootstrap,
            namer.breaches,
            [(b"credit", serde.encode("ThresholdBreach", b)) for b in transitions],
        )
        viewer = {"Authorization": "Bearer vi-token-16chars"}
        assert http.get("/dashboard/api/overview").status_code == 401  # reads need a token
        with Traffic(kafka_bootstrap, namer, v1) as traffic:
            eventually(
                lambda: (
                    (
                        row := http.get("/dashboard/api/overview", headers=viewer).json()[
                            "deployments"
                        ][0]
                    )["health"]["colour"]
                    == "red"
                    and (row["live"] or {}).get("latency_p99_ms") is not None
                ),
                40,
                "breaches applied and live latency sampled",
            )
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"{r.url} {r.failure}"))

            page.goto(f"{url}/dashboard#token=vi-token-16chars")
            page.wait_for_function(LOADED, arg=2, timeout=30_000)
            rows = page.locator("#inventory tbody tr")
            assert rows.count() == 1 and "credit" in rows.first.inner_text()
            assert page.locator("#inventory .dot.red").count() == 1
            overview = dict((i, (p, t, n)) for i, p, t, n in page.evaluate(POINTS_JS, ["c-rates"]))
            assert overview["c-rates"][0] and overview["c-rates"][1] > 0, overview
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            page.click("#inventory a")  # the deployment page alert payloads link to
            page.wait_for_url(f"{url}/dashboard/deployments/credit")
            page.wait_for_function(LOADED, arg=3, timeout=30_000)
            drawn = {i: (p, t, n) for i, p, t, n in page.evaluate(POINTS_JS, CHARTS)}
            assert all(p and t > 0 and n > 0 for p, t, n in drawn.values()), drawn
            assert drawn["c-drift-importance"][2] == len(v1["signature_in"]["features"])
            assert drawn["c-lineage"][2] >= 2  # both versions (and the parent edge)
            assert drawn["c-alerts"][2] == len(transitions)
            assert page.locator("#audit tbody tr").count() == 4  # two requests, two approvals
            assert page.locator("#firing tbody tr").count() == 2
            page.select_option("#feature", "age")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "deployment-credit.png"), full_page=True)
            assert not errors, errors
            assert traffic.sent > 0
    finally:
        http.close()
        code, _ = registry.terminate()
    assert code == 0, f"registry exited {code}:\n{registry.log_tail()}"
    print(f"\ndashboard e2e: {time.monotonic() - started:.1f} s; screenshots in {ARTIFACTS}")
