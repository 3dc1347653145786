"""The registry on the real broker and Redis: replay, R9 rejections, governance writes through
Kafka transactions, rebuild equality, restart, the CLI against a real uvicorn, API latency.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from services.cli.__main__ import main as cli
from services.common import serde
from services.common.deployment_verifier import DeploymentVerifier
from services.registry import rebuild
from services.registry.app import Registry
from services.registry.config import RegistrySettings
from tests.kafka_support import free_port, make_topics, produce, read_all
from tests.model_factory import credit_content, keypair, published
from tests.registry_support import drift_report, eventually, registry_settings

pytestmark = pytest.mark.integration

TOKENS = (
    "ana:owner:ana-token-16chars,bo:owner:bo-token-16chars,"
    "ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars"
)
ANA, BO, ED, VI = (
    {"Authorization": f"Bearer {n}-token-16chars"} for n in ("ana", "bo", "ed", "vi")
)


@pytest.fixture()
def reg_settings(kafka_bootstrap, settings, redis_password, prefix, tmp_path) -> Iterator[Any]:
    make_topics(kafka_bootstrap, prefix, ["models", "deployments", "governance", "drift"])
    key = keypair(tmp_path / "keys")
    s = registry_settings(
        kafka_bootstrap, settings, redis_password, prefix, tmp_path / "keys", TOKENS
    )
    yield s, key, tmp_path
    from services.registry.app import redis_client
    from services.registry.view import RegistryView

    RegistryView(redis_client(s), prefix).clear()


def _publish_models(s: RegistrySettings, key, tmp_path) -> tuple[dict, dict]:
    v1 = credit_content()
    v2 = {**credit_content(estimator="rf"), "version": 2, "parent_id": v1["model_id"]}
    good = [published(v1, key), published(v2, key)]
    tampered = serde.encode("ModelPublished", good[0])
    at = tampered.index(b"salary")  # flip one byte inside the signed content
    tampered = tampered[:at] + b"S" + tampered[at + 1 :]
    wrong_key = published(v1, keypair(tmp_path / "other"), version=3)
    unsigned = {**published(v1, key, version=4), "signature": b""}
    values = [serde.encode("ModelPublished", r) for r in good]
    values += [tampered, serde.encode("ModelPublished", wrong_key)]
    values += [serde.encode("ModelPublished", unsigned), b"not a model at all"]
    produce(s.kafka_bootstrap, f"{s.topic_prefix}models", [(b"credit", v) for v in values])
    return v1, v2


def _decide(client: TestClient, who: dict, body: dict, approver: dict) -> dict:
    made = client.post("/deployments/credit/requests", json=body, headers=who)
    assert made.status_code == 201, made.text
    rid = made.json()["request_id"]
    done = client.post(f"/requests/{rid}/approve", headers=approver, json={})
    assert done.status_code == 200, done.text
    return done.json()


def test_replay_rejections_governance_rebuild_and_restart(reg_settings):
    s, key, tmp_path = reg_settings
    v1, v2 = _publish_models(s, key, tmp_path)
    registry = Registry(s).start()
    try:
        client = TestClient(registry.app)
        listed = client.get("/models", headers=VI).json()
        assert listed[0]["versions"] == [1, 2], listed  # versions 3, 4 were refused
        rejected = client.get("/rejected", headers=VI).json()
        assert rejected["count"] == 4, rejected
        assert rejected["by_reason"] == {"bad_signature": 3, "not_avro": 1}
        assert {r["key_id"] is None for r in rejected["records"]} == {True, False}
        sample = registry.metrics.get_sample_value
        labels = {"reason": "bad_signature"}
        assert sample("streamops_registry_models_rejected_total", labels) == 3
        diff = client.get("/compare/credit?a=1&b=2", headers=VI).json()
        assert diff["params"]["added"] and diff["estimator"]["b"] == "rf"

        # first deployment, a swap, a self-approval refused, a rollback
        _decide(
            client,
            ED,
            {
                "action": "set_champion",
                "reason": "start",
                "model": {"name": "credit", "version": 1},
            },
            BO,
        )
        swap = client.post(
            "/deployments/credit/requests",
            headers=ANA,
            json={
                "action": "set_champion",
                "reason": "rf",
                "model": {"name": "credit", "version": 2},
            },
        )
        own = client.post(f"/requests/{swap.json()['request_id']}/approve", headers=ANA)
        assert own.status_code == 403 and "another owner" in own.json()["message"]
        assert (
            client.post(f"/requests/{swap.json()['request_id']}/approve", headers=BO).status_code
            == 200
        )
        _decide(client, ED, {"action": "rollback", "reason": "v2 regressed"}, ANA)
        assert client.get("/deployments/credit", headers=VI).json()["champion"]["version"] == 1

        deployments = [
            serde.decode(v)[1]
            for *_, v in read_all(s.kafka_bootstrap, f"{s.topic_prefix}deployments", idle_s=0.5)
        ]
        assert [(d["revision"], d["champion"]["version"]) for d in deployments] == [
            (1, 1),
            (2, 2),
            (3, 1),
        ]
        # Each signed with the key the registry made at start, never the trainer's model key.
        verify = DeploymentVerifier.from_dir(tmp_path / "keys" / "registry")
        assert [verify(d)["revision"] for d in deployments] == [1, 2, 3]
        assert {d["key_id"] for d in deployments} == {registry.signer.key_id} != {key.key_id}
        events = [
            serde.decode(v)[1]
            for *_, v in read_all(s.kafka_bootstrap, f"{s.topic_prefix}governance", idle_s=0.5)
        ]
        assert [e["action"] for e in events].count("approve") == 3 and len(events) == 6

        produce(
            s.kafka_bootstrap,
            f"{s.topic_prefix}drift",
            [(b"credit", serde.encode("DriftReport", drift_report(v1["model_id"])))],
        )
        eventually(
            lambda: client.get("/deployments/credit/drift", headers=VI).json(),
            what="drift report in the view",
        )
        eventually(lambda: registry.follower.applied >= 5 + 3 + 6 + 1, what="follower caught up")

        assert rebuild.verify(s) == []  # replay into an empty namespace: identical state
        before = registry.view.snapshot()
    finally:
        registry.close()

    # restart: nothing lost, and the new instance (same transactional id) can write
    again = Registry(s).start()
    try:
        assert again.view.snapshot() == before
        client = TestClient(again.app)
        done = _decide(
            client,
            ED,
            {
                "action": "add_challenger",
                "weight": 0.5,
                "reason": "shadow",
                "model": {"name": "credit", "version": 2},
            },
            BO,
        )
        assert done["decision"]["new_revision"] == 4
        eventually(lambda: again.follower.applied >= 5 + 3 + 6 + 1 + 3, what="follower")
        after = again.view.snapshot()
    finally:
        again.close()
    assert rebuild.replace(s)["deployments"] == 1  # the live namespace, cleared and replayed
    from services.registry.app import redis_client
    from services.registry.view import RegistryView

    assert RegistryView(redis_client(s), s.topic_prefix).snapshot() == after


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli([*argv])
    return code, out.getvalue()


def test_cli_and_api_latency_on_a_real_server(reg_settings, monkeypatch, capsys):
    s, key, tmp_path = reg_settings
    v1, v2 = _publish_models(s, key, tmp_path)
    registry = Registry(s).start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(registry.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: server.started, 10, "uvicorn started")
        monkeypatch.setenv("STREAMOPS_CLI_REGISTRY_URL", url)
        monkeypatch.setenv("STREAMOPS_CLI_TOKEN", "ed-token-16chars")
        code, out = _cli(["models", "list"])
        assert code == 0 and "credit" in out and "[1, 2]" in out
        code, out = _cli(["models", "compare", "credit", "1", "2"])
        assert code == 0 and "estimator hgb -> rf" in out and "metric roc_auc" in out
        code, out = _cli(
            ["deploy", "request", "credit", "--model", "credit:1", "--reason", "cli start"]
        )
        assert code == 0 and "pending" in out
        rid = out.split()[1]
        assert _cli(["deploy", "approve", rid])[0] == 1  # editor cannot approve
        assert "approvals need an owner" in capsys.readouterr().err
        code, out = _cli(["deploy", "approve", rid, "--token", "bo-token-16chars"])
        assert code == 0 and "approved" in out
        code, out = _cli(["deploy", "history", "credit"])
        assert code == 0 and "r1" in out and "champion credit v1" in out
        assert _cli(["models", "list", "--registry-url", "http://127.0.0.1:1"])[0] == 1
        assert "not reachable" in capsys.readouterr().err

        routes = [
            "/models",
            "/models/credit",
            "/models/credit/versions/1",
            f"/lineage/{v2['model_id']}",
            "/compare/credit?a=1&b=2",
            "/deployments",
            "/deployments/credit",
            "/deployments/credit/history",
            "/audit",
            "/rejected",
        ]
        figures = {}
        with httpx.Client(base_url=url, headers=VI) as http:
            for route in routes:
                times = []
                for _ in range(60):
                    started = time.perf_counter()
                    assert http.get(route).status_code == 200
                    times.append(1000 * (time.perf_counter() - started))
                times.sort()
                label = route.replace(v2["model_id"], "{id}")
                figures[label] = (statistics.median(times), times[int(0.99 * len(times)) - 1])
        with capsys.disabled():
            print("\nregistry API latency over loopback (ms, 60 requests each):")
            for route, (p50, p99) in figures.items():
                print(f"  {route:40} p50 {p50:6.2f}  p99 {p99:6.2f}")
        # Latency is reported, not asserted: performance targets live in `make bench`.
        scraped = httpx.get(f"{url}/metrics").text
        assert (
            'streamops_registry_api_seconds_count{method="GET",route="/models/{name}"}' in scraped
        )
        assert 'streamops_registry_view_size{kind="rejected"} 4.0' in scraped
    finally:
        server.should_exit = True
        thread.join(10)
        registry.close()
