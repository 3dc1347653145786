"""Signed Deployment records and the revision rule, on the real broker (issue 28).

A scorer serves champion v1 at revision 2 (revision 1 named v2). Then it receives a forged
unsigned Deployment naming v2, a replay of the signed revision 1, a signed revision that skips
one, and a revision signed with the trainer's model key instead of the registry's: after each the
events it scores are still answered by v1, and the refusal is counted (`streamops_deadletter_total`
by reason) and dead-lettered. The next revision the registry signs is applied at once.
"""

from __future__ import annotations

import pytest

from services.common import deployment_verifier, serde
from tests.drift_service import metric_value
from tests.kafka_support import free_port, read_all, wait_caught_up
from tests.model_factory import credit_content, deployment, published
from tests.registry_support import eventually
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def _models_of(w, ids: list[str]) -> set[str]:
    wanted = set(ids)
    rows = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.predictions)
    ]
    answered = [r for r in rows if r["association_id"] in wanted]
    assert sorted(r["association_id"] for r in answered) == sorted(ids), "events not answered"
    return {r["model_id"] for r in answered}


def test_forged_replayed_skipping_and_model_key_deployments_are_refused_and_v1_keeps_serving(
    kafka_bootstrap, prefix, tmp_path
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1, v2 = v1_signed(w), published(credit_content(2, estimator="rf"), w.key)
    w.publish(v1, v2)
    r1 = deployment_verifier.sign(deployment(v2["content"], revision=1), w.registry_key)
    w.deploy_as_is(r1)
    w.deploy(deployment(v1["content"], revision=2))
    champion, other = v1["content"]["model_id"], v2["content"]["model_id"]
    group, port = f"{prefix}scorer", free_port()
    proc = w.scorer("--metrics-port", str(port), group=group).start()

    def refused(reason: str) -> float:
        labels = {"service": "scorer", "topic": w.namer.deployments, "reason": reason}
        return metric_value(port, "streamops_deadletter_total", labels) or 0.0

    hostile = [
        # (a) forged: the next revision, naming another model, without any signature
        ("forged unsigned", deployment(v2["content"], revision=3), "bad_signature"),
        # (b) the registry's own revision 1, signed, played again
        ("replayed r1", r1, "replayed_revision"),
        # (c) signed by the registry, but revision 3 and 4 were never seen
        (
            "r5 after r2",
            deployment_verifier.sign(deployment(v2["content"], revision=5), w.registry_key),
            "revision_gap",
        ),
        # (d) signed, but by the trainer's model key, which may not sign deployments
        (
            "signed by a model key",
            deployment_verifier.sign(deployment(v2["content"], revision=3), w.key),
            "bad_signature",
        ),
    ]
    try:
        proc.wait_for_log("deployment credit r2: champion credit v1", timeout_s=90)
        ids = w.events(100, start=0)
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
        assert _models_of(w, ids) == {champion}
        for step, (what, record, reason) in enumerate(hostile, 1):
            before = refused(reason)
            w.deploy_as_is(record)
            eventually(lambda r=reason, b=before: refused(r) == b + 1, 30, f"{what} counted")
            ids = w.events(100, start=step * 1000)
            wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=60)
            assert _models_of(w, ids) == {champion}, f"after the {what} record"
        # The revision in force is still 2: the registry's next one is applied at once.
        w.deploy(deployment(v2["content"], revision=3))
        proc.wait_for_log("deployment credit r3: champion credit v2", timeout_s=30)
        ids = w.events(100, start=9000)
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=60)
        assert _models_of(w, ids) == {other}
        assert proc.alive(), proc.log_tail()
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()
    letters = [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.deadletter)
    ]
    assert sorted((d["source_topic"], d["reason"]) for d in letters) == sorted(
        (w.namer.deployments, reason) for _what, _record, reason in hostile
    )
    assert {d["original"] for d in letters} == {
        serde.encode("Deployment", record) for _what, record, _reason in hostile
    }
    log = proc.log_path.read_text()
    assert "restart it: it reads the compacted topic afresh" in log, proc.log_tail(60)
    assert "copy its .pub (from the registry's deployment keys directory) into" in log
