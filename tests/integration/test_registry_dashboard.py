"""The dashboard's data on the real Redis and broker: breaches in the view (bounded, idempotent,
order-independent, rebuildable), the read rule on /dashboard/api, static files without network.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from fastapi.testclient import TestClient

from services.common import serde
from services.registry import rebuild
from services.registry.app import Registry, redis_client
from services.registry.breaches import BreachLog
from services.registry.view import RegistryView
from tests.dashboard_support import Traffic, breach, drift_reports
from tests.kafka_support import make_topics, produce
from tests.model_factory import credit_content, keypair, published
from tests.registry_support import registry_settings

pytestmark = pytest.mark.integration

VI = {"Authorization": "Bearer vi-token-16chars"}


def _transitions(n: int = 8) -> list[dict]:
    content = credit_content()
    out = []
    for i in range(n):
        status = "firing" if i % 2 == 0 else "resolved"
        out.append(breach(content, 1_000_000 + i * 60_000, status, "warning"))
    out.append(breach(content, 1_000_000, "firing", "critical", feature=None))
    return out


def test_breach_log_is_bounded_and_independent_of_order_and_repeats(redis_client, prefix):
    records = _transitions()
    snapshots = []
    for attempt in range(3):
        view = RegistryView(redis_client, f"{prefix}{attempt}.", breaches_kept=4)
        shuffled = records * 2  # every record twice: replays count once
        random.Random(attempt).shuffle(shuffled)
        for record in shuffled:
            view.breaches.apply(record)
        snapshots.append(view.snapshot())
        kept = view.breaches.timeline("credit")
        assert [b["observed_at"] for b in kept] == sorted(b["observed_at"] for b in kept)
        assert len(kept) == 4 and kept[-1]["observed_at"] == 1_420_000
        current = {b["kind"]: b["status"] for b in view.breaches.current("credit")}
        assert current == {"data_drift": "resolved", "accuracy": "firing"}
        assert [b["kind"] for b in view.breaches.firing("credit")] == ["accuracy"]
        view.clear()
    assert len({s.replace(f"{prefix}{i}.", "") for i, s in enumerate(snapshots)}) == 1
    with pytest.raises(ValueError, match="kept"):
        BreachLog(redis_client, "x:", 0)


@pytest.fixture()
def registry(kafka_bootstrap, settings, redis_password, prefix, tmp_path):
    namer = make_topics(
        kafka_bootstrap,
        prefix,
        ["models", "deployments", "governance", "drift", "breaches", "events", "predictions"]
        + ["deadletter"],
    )
    key = keypair(tmp_path / "keys")
    s = registry_settings(
        kafka_bootstrap,
        settings,
        redis_password,
        prefix,
        tmp_path / "keys",
        "ana:owner:ana-token-16chars,bo:owner:bo-token-16chars,vi:viewer:vi-token-16chars",
        breaches_kept=3,
        sample_interval_s=0.5,
    )
    v1 = credit_content()
    produce(
        kafka_bootstrap,
        namer.models,
        [(b"credit", serde.encode("ModelPublished", published(v1, key)))],
    )
    started = Registry(s).start()
    yield started, s, namer, v1
    started.close()
    RegistryView(redis_client(s), prefix).clear()


def test_api_auth_static_files_breaches_live_figures_and_rebuild(registry, kafka_bootstrap):
    reg, s, namer, v1 = registry
    client = TestClient(reg.app)
    assert client.get("/dashboard").status_code == 200  # the page holds no data: public
    assert "plotly.min.js" in client.get("/dashboard/deployments/credit").text
    js = client.get("/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and js.text.startswith("/**") and "plotly.js" in js.text[:200]
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    assert client.get("/dashboard/static/../app.py").status_code == 404
    assert client.get("/dashboard/static/secrets.txt").status_code == 404
    refused = client.get("/dashboard/api/overview")
    assert refused.status_code == 401 and "token" in refused.json()["message"]
    assert client.get("/dashboard/api/deployments/credit", headers=VI).status_code == 404

    made = client.post(
        "/deployments/credit/requests",
        headers={"Authorization": "Bearer ana-token-16chars"},
        json={"action": "set_champion", "reason": "go", "model": {"name": "credit", "version": 1}},
    )
    approved = client.post(
        f"/requests/{made.json()['request_id']}/approve",
        headers={"Authorization": "Bearer bo-token-16chars"},
    )
    assert approved.status_code == 200, approved.text
    now = int(time.time() * 1000)
    produce(
        kafka_bootstrap,
        namer.drift,
        [(b"credit", serde.encode("DriftReport", r)) for r in drift_reports(v1, now, 4)],
    )
    produce(
        kafka_bootstrap,
        namer.breaches,
        [(b"credit", serde.encode("ThresholdBreach", b)) for b in _transitions(6)],
    )
    with Traffic(kafka_bootstrap, namer, v1, per_s=400):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = client.get("/dashboard/api/deployments/credit", headers=VI).json()
            if (
                data.get("live")
                and data["live"][-1]["latency_p99_ms"]
                and len(data["breaches"]) == 3
            ):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"dashboard data incomplete: {json.dumps(data)[:500]}")
        age = client.get("/dashboard/api/deployments/credit/features/age", headers=VI).json()
        assert age["current_count"] > 0 and len(age["baseline"]) == len(age["current"])
        # Live figures are not part of the view: the rebuild is identical while traffic flows.
        assert rebuild.verify(s) == []
    assert data["health"]["colour"] == "red"  # the accuracy figure is still firing (critical)
    assert len(data["windows"]) == 4 and len(data["features"]["latest"]) == 9
    assert [n["version"] for n in data["lineage"]["nodes"]] == [1]
    assert [e["action"] for e in data["audit"]] == ["approve", "request"]
    point = data["live"][-1]
    assert 0 < point["latency_p50_ms"] <= point["latency_p99_ms"] < 5_000
    assert point["predictions_per_s"] > 0 and point["answers"]["classes"]
    overview = client.get("/dashboard/api/overview", headers=VI).json()
    assert overview["deployments"][0]["name"] == "credit"
    assert overview["topic_rates"]["predictions"] is not None
    assert reg.view.sizes()["breaches"] == 3
