"""Hostile text in the ops dashboard, in a real chromium (issue 28): every user-supplied string
shows as written, and none becomes markup, runs, or opens a dialog.

The API refuses HTML in deployment and model names (services/registry/limits.py), so the
payloads travel in what stays user-supplied, each by its real path into the registry process:

- a change request's reason and its approval's reason: the governance API;
- feature names, a category, a class, the estimator, a metric name and the imported file's name
  of a model: a signed ModelPublished on `models`, what `streamops models import` publishes for
  a table with such columns (the content is the credit model's, renamed; nothing here runs it);
- drift reports and breaches naming those features: `drift`, `breaches`;
- events carrying the hostile category, predictions the hostile class: `events`, `predictions`;
- dead letters with a hostile service and reason: `deadletter`;
- a Deployment named with HTML, written to `deployments` around the API (a producer with
  write access to the topic).

A dead letter's `error` text is on no dashboard page, so no payload is put there.
"""

from __future__ import annotations

import copy
import json
import random
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from services.common import serde
from tests.dashboard_support import (
    LOADED,
    Traffic,
    approve,
    breach,
    dead_letter,
    drift_reports,
    event,
    eventually,
    start_registry,
)
from tests.kafka_support import make_topics, produce
from tests.model_factory import credit_content, deployment, keypair, published

pytestmark = pytest.mark.e2e

TOKENS = "bo:owner:bo-token-16chars,ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars"
VIEWER = {"Authorization": "Bearer vi-token-16chars"}
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
# Plotly draws <a href> (and <b>, <br>, <span style>) from its text: this one shows whether a
# chart label became markup.
LINK = '<a href="javascript:window.__xss=3">link</a>'
NAMED = '<img src=x onerror="window.__xss=4">'  # a deployment's name: no `/`, it is a URL segment
# What must hold on every page: nothing ran, nothing became an element, only Plotly's own link.
CLEAN_JS = """() => ({
  xss: window.__xss === undefined ? null : window.__xss,
  images: document.querySelectorAll('img').length,
  scripts: [...document.scripts].map(s => s.getAttribute('src')),
  chartLinks: [...document.querySelectorAll('.js-plotly-plot a')]
    .filter(a => !a.classList.contains('modebar-btn')).length,
})"""
TEXT_JS = "id => document.getElementById(id).textContent"
DRAWN_JS = """([id, text]) => {
  const n = document.getElementById(id);
  return !!(n && n.data && n.textContent.includes(text));
}"""


def hostile_model(content: dict[str, Any]) -> dict[str, Any]:
    """The credit model's content with HTML in the names a model's publisher chooses."""
    body = copy.deepcopy(content)
    renamed = {"age": SCRIPT, "elevel": LINK}
    for f in body["signature_in"]["features"] + body["baseline"]["features"]:
        f["name"] = renamed.get(f["name"], f["name"])
    for f in body["signature_in"]["features"]:
        if f["name"] == LINK:
            f["categories"] = [IMG if c == "4" else c for c in f["categories"]]
    for f in body["baseline"]["features"]:
        if f["name"] == LINK:
            f["categories"] = {(IMG if c == "4" else c): n for c, n in f["categories"].items()}
    body["baseline"]["importances"] = {
        renamed.get(k, k): v for k, v in body["baseline"]["importances"].items()
    }
    no, yes = body["classes"]
    body["classes"] = [no, IMG]
    counts = body["baseline"]["prediction"]["class_counts"]
    body["baseline"]["prediction"]["class_counts"] = {no: counts[no], IMG: counts[yes]}
    body["estimator"] = LINK
    body["lineage"]["metrics"] = {**body["lineage"]["metrics"], IMG: 0.5}
    body["lineage"]["search_space"] = json.dumps(
        {"origin": "imported", "file": f"{SCRIPT}.skops", "sha256": "ab12"}
    )
    return body


def _clean(page: Any, dialogs: list[str], errors: list[str], where: str) -> None:
    found = page.evaluate(CLEAN_JS)
    assert found["xss"] is None, (where, found)
    assert found["images"] == 0 and found["chartLinks"] == 0, (where, found)
    assert found["scripts"] == ["/dashboard/static/plotly.min.js", "/dashboard/static/dashboard.js"]
    assert not dialogs, (where, dialogs)
    assert not errors, (where, errors)


def _has(page: Any, selector: str, *texts: str) -> None:
    shown = page.locator(selector).inner_text()
    for text in texts:
        assert text in shown, (selector, text, shown[:500])


def _chart_has(page: Any, chart: str, *texts: str) -> None:
    drawn = page.evaluate(TEXT_JS, chart)
    for text in texts:
        assert text in drawn, (chart, text, drawn[:500])


def test_hostile_strings_render_as_text_in_chromium(
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
    model = hostile_model(credit_content())
    record = published(model, key)
    produce(kafka_bootstrap, namer.models, [(b"credit", serde.encode("ModelPublished", record))])
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
                "reason": f"go {IMG} {SCRIPT}",
                "model": {"name": "credit", "version": 1},
            },
            "ed-token-16chars",
            "bo-token-16chars",
            LINK,
        )
        named = deployment(model, name=NAMED)
        produce(kafka_bootstrap, namer.deployments, [(NAMED, serde.encode("Deployment", named))])
        now = int(time.time() * 1000)
        produce(
            kafka_bootstrap,
            namer.drift,
            [(b"credit", serde.encode("DriftReport", r)) for r in drift_reports(model, now)],
        )
        transitions = [
            breach(model, now - 120_000, "firing", "critical", feature=SCRIPT),
            breach(model, now - 60_000, "firing", "warning", feature=LINK),
        ]
        produce(
            kafka_bootstrap,
            namer.breaches,
            [(b"credit", serde.encode("ThresholdBreach", b)) for b in transitions],
        )
        rng = random.Random(3)
        with Traffic(kafka_bootstrap, namer, model) as traffic:

            def sampled() -> bool:
                # Letters and the named deployment's events go in every round until sampled.
                letter = {
                    **dead_letter(event(model, rng), namer.events),
                    "service": LINK,
                    "reason": IMG,
                }
                produce(
                    kafka_bootstrap, namer.deadletter, [(None, serde.encode("DeadLetter", letter))]
                )
                evs = [event(model, rng, deployment=NAMED) for _ in range(20)]
                produce(
                    kafka_bootstrap,
                    namer.events,
                    [(None, serde.encode("FeatureEvent", e)) for e in evs],
                )
                seen = http.get("/dashboard/api/overview", headers=VIEWER).json()
                rows = {d["name"]: d for d in seen["deployments"]}
                return (
                    rows["credit"]["health"]["colour"] == "red"
                    and (rows["credit"]["live"] or {}).get("latency_p99_ms") is not None
                    and bool(seen["live"][NAMED])
                    and any(IMG in reason for reason in seen["deadletter_reasons"])
                )

            eventually(sampled, 40, "breaches applied; traffic, letters and named events sampled")
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            dialogs: list[str] = []
            errors: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))

            # The overview: the named deployment's row and chart legend, the dead letters.
            answer = page.goto(f"{url}/dashboard#token=vi-token-16chars")
            # Markup that slipped through would still not run: only the page's own scripts do.
            assert "script-src 'self';" in answer.headers["content-security-policy"]
            page.wait_for_function(LOADED, arg=1, timeout=30_000)
            _has(page, "#inventory", NAMED, f"critical: data_drift psi ({SCRIPT})")
            _has(page, "#reasons", f"{LINK}/validate {IMG}")
            _chart_has(page, "c-rates", NAMED)
            _clean(page, dialogs, errors, "overview")

            # The named deployment's own page, reached by its link.
            page.get_by_role("link", name=NAMED).click()
            page.wait_for_url("**/dashboard/deployments/%3Cimg*")
            page.wait_for_function(LOADED, arg=1, timeout=30_000)
            _has(page, "#title", NAMED)
            _has(page, "#crumbs", NAMED)
            _clean(page, dialogs, errors, "named deployment")

            # credit: every chart and table that shows the model's, the records' and the
            # requests' text.
            page.goto(f"{url}/dashboard/deployments/credit")
            page.wait_for_function(LOADED, arg=1, timeout=30_000)
            _has(page, "#audit", f"go {IMG} {SCRIPT}", LINK)
            _has(page, "#firing", f"data_drift psi ({SCRIPT})", f"data_drift psi ({LINK})")
            _has(page, "#versions", LINK, f"{IMG} 0.500", f"imported from {SCRIPT}.skops")
            options = page.locator("#feature option").all_inner_texts()
            assert SCRIPT in options and LINK in options, options
            _chart_has(page, "c-drift-importance", SCRIPT, LINK)
            _chart_has(page, "c-drift-time", SCRIPT, LINK)
            _chart_has(page, "c-alerts", f"data_drift psi ({SCRIPT})", f"data_drift psi ({LINK})")
            _chart_has(page, "c-lineage", f"v1 {LINK}")
            _chart_has(page, "c-predictions", f"class {IMG}", f"baseline {IMG}")
            # The first feature by importance is SCRIPT, whose `/` travels in the feature's URL.
            assert page.evaluate(DRAWN_JS, ["c-distribution", "current ("]), "no distribution"
            page.select_option("#feature", LINK)
            try:
                page.wait_for_function(DRAWN_JS, arg=["c-distribution", IMG], timeout=10_000)
            except PlaywrightTimeout:
                raise AssertionError(page.evaluate(TEXT_JS, "c-distribution")) from None
            _clean(page, dialogs, errors, "credit")
            assert traffic.sent > 0
    finally:
        http.close()
        code, _ = registry.terminate()
    assert code == 0, f"registry exited {code}:\n{registry.log_tail()}"
    print(f"\nhostile dashboard e2e: {time.monotonic() - started:.1f} s")
