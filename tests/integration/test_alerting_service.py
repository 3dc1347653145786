"""The alerting service on the real broker and Redis, delivering to receivers on 127.0.0.1.

R12 (receiver faults), R13 (storms, flapping, resolution, restart mid-group), kill -9 with
notifications pending, silences, the retrain policy, poison breaches, and the production policy
refusing a loopback receiver (R15).
"""

from __future__ import annotations

import functools
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.common import serde
from tests.alerting_support import SECRET, Alerting, breach, free_port, send_breaches, write_config
from tests.kafka_support import (
    REPO,
    ServiceProcess,
    make_topics,
    produce,
    read_all,
    wait_caught_up,
)
from tests.webhook_receiver import Receiver, Reply

pytestmark = pytest.mark.integration

TOPICS = ["breaches", "deployments", "retrain", "retrain_outcomes", "deadletter"]


def records(bootstrap: str, topic: str, name: str) -> list[dict]:
    """Every record on a topic, decoded as `name`."""
    return [serde.decode(v, expected=name)[1] for _p, _o, _k, v in read_all(bootstrap, topic)]


def statuses(deliveries) -> list[str]:
    return [d.payload["status"] for d in deliveries]


def test_r13_a_storm_makes_one_notification_and_one_resolution_across_a_restart(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url}, group_wait="4s")
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    try:
        features = [f"f{i}" for i in range(5)]
        storm = [breach(feature=features[i % 5], window=1 + i // 5) for i in range(100)]
        # Flapping inside the wait: f0 resolves and fires again before anything was sent.
        storm += [
            breach(feature="f0", status="resolved", window=30),
            breach(feature="f0", window=31),
        ]
        send_breaches(kafka_bootstrap, namer.breaches, storm)
        time.sleep(1.0)
        service.kill9()  # mid-group: consumed (or not), nothing sent yet
        assert rx.all() == []
        service.start()
        got = rx.wait_for(lambda d: len(d) >= 1, timeout_s=60)
        time.sleep(4.0)  # several group intervals: no repeat, no storm
        got = rx.all()
        assert statuses(got) == ["firing"], [d.payload for d in got]
        alerts = got[0].payload["alerts"]
        assert sorted(a["labels"]["feature"] for a in alerts) == features
        assert got[0].verified == "ok"

        send_breaches(
            kafka_bootstrap,
            namer.breaches,
            [breach(feature=f, status="resolved", window=40) for f in features],
        )
        rx.wait_for(lambda d: len(d) >= 2, timeout_s=30)
        time.sleep(3.0)
        got = rx.all()
        assert statuses(got) == ["firing", "resolved"], [d.payload["status"] for d in got]
        assert all(a["status"] == "resolved" for a in got[1].payload["alerts"])
        assert len({d.webhook_id for d in got}) == 2
        assert service.get("/api/v1/alerts") == {"groups": []}
    finally:
        service.stop()
        rx.close()


def test_r12_receiver_faults_are_retried_with_the_same_id_and_lag_is_unaffected(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    flaky = Receiver(SECRET, [Reply(500)] * 6 + [Reply(429, (("Retry-After", "2"),))])
    gone = Receiver(SECRET, default=Reply(410))
    hang = Receiver(SECRET, [Reply(204, delay_s=6.0)])
    refused_port = free_port()  # nothing listens here until later
    receivers = {
        "flaky": flaky.url,
        "gone": gone.url,
        "hang": hang.url,
        "refused": f"http://127.0.0.1:{refused_port}/hook",
    }
    cfg = write_config(tmp_path / "a.yaml", receivers, timeout="1s")
    service = Alerting(
        kafka_bootstrap,
        prefix,
        cfg,
        tmp_path / "alerting.log",
        max_attempts=30,
        circuit_cooldown_s=1,
    ).start()
    late = None
    try:
        # The flood below is silenced, so each receiver sees only the credit notification.
        service.post(
            "/api/v1/silences",
            {"matchers": ['deployment=~"d.*"'], "duration_s": 600, "created_by": "test"},
        )
        send_breaches(kafka_bootstrap, namer.breaches, [breach()])
        # While receivers fail and hang, the consumer keeps up with a flood of breaches.
        send_breaches(
            kafka_bootstrap,
            namer.breaches,
            [breach(deployment=f"d{i % 7}", feature=f"x{i}") for i in range(300)],
        )
        wait_caught_up(kafka_bootstrap, service.group, namer.breaches, timeout_s=20)
        time.sleep(2.0)
        late = Receiver(SECRET, port=refused_port)  # the refusing endpoint comes up

        flaky.wait_for(lambda d: any(x.status == 204 for x in d), timeout_s=60)
        hang.wait_for(lambda d: any(x.status == 204 and x is not d[0] for x in d), timeout_s=60)
        late.wait_for(lambda d: len(d) >= 1, timeout_s=60)

        credit = flaky.all()
        assert [d.status for d in credit[:8]] == [500] * 6 + [429, 204]
        assert len({d.webhook_id for d in credit}) == 1, "retries keep the webhook id"
        assert credit[7].at - credit[6].at >= 1.9, "Retry-After: 2 honoured"
        assert all(d.verified == "ok" for d in credit), "each attempt freshly signed"

        first_hang = hang.all()[0]
        later = [d for d in hang.all()[1:] if d.webhook_id == first_hang.webhook_id]
        assert later and later[0].at - first_hang.at < 6.0, "the hung attempt was abandoned"

        time.sleep(2.0)
        assert len(gone.all()) == 1, "410 is final: no retry"
        dead = records(kafka_bootstrap, namer.deadletter, "DeadLetter")
        gone_ids = {d.webhook_id for d in gone.all()}
        dead_ids = {d["source_key"].decode() for d in dead if d["source_topic"] == "webhook:gone"}
        assert gone_ids == dead_ids and all(d["reason"] == "delivery_failed" for d in dead)
        assert len({d.webhook_id for d in late.all()}) == 1, "refused, then delivered, one id"
        assert all(d.verified == "ok" for d in late.all())
    finally:
        service.stop()
        for r in (flaky, gone, hang, late):
            if r is not None:
                r.close()


def test_kill9_with_notifications_pending_delivers_every_one_after_restart(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET, default=Reply(503))
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url})
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    try:
        send_breaches(
            kafka_bootstrap, namer.breaches, [breach(deployment=f"d{i}") for i in range(3)]
        )
        rx.wait_for(lambda d: len({x.webhook_id for x in d}) >= 3, timeout_s=30)
        pending = {d.webhook_id for d in rx.all()}
        service.kill9()
        rx.set_default(Reply(204))
        service.start()
        rx.wait_for(lambda d: {x.webhook_id for x in d if x.status == 204} >= pending, 60)
        accepted = [d for d in rx.all() if d.status == 204]
        assert {d.webhook_id for d in accepted} == pending, "the same ids, nothing new or lost"
        assert {d.payload["groupLabels"]["deployment"] for d in accepted} == {"d0", "d1", "d2"}
    finally:
        service.stop()
        rx.close()


def test_a_silenced_alert_is_sent_when_the_silence_expires_while_still_firing(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url})
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    try:
        silence = service.post(
            "/api/v1/silences",
            {"matchers": ['deployment="quiet"'], "duration_s": 4, "created_by": "test"},
        )
        assert silence["status"] == "active"
        send_breaches(
            kafka_bootstrap, namer.breaches, [breach(deployment="quiet"), breach(deployment="loud")]
        )
        rx.wait_for(lambda d: len(d) >= 1, timeout_s=30)
        time.sleep(1.5)
        assert [d.payload["groupLabels"]["deployment"] for d in rx.all()] == ["loud"]
        ends = silence["ends_at"]
        got = rx.wait_for(lambda d: len(d) >= 2, timeout_s=30)
        assert got[1].payload["groupLabels"]["deployment"] == "quiet"
        assert got[1].at >= ends, "not before the silence ended"
        listed = service.get("/api/v1/silences?include_expired=true")["silences"]
        assert [s["status"] for s in listed] == ["expired"]
    finally:
        service.stop()
        rx.close()


def test_retrain_is_requested_once_after_k_windows_and_poison_is_dead_lettered(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url}, after_windows=3)
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    try:
        produce(kafka_bootstrap, namer.breaches, [(b"credit", b"\xc3\x01not a breach")])
        windows = [breach(window=w) for w in (1, 2, 2, 3, 4, 5)]  # window 2 twice (replay)
        send_breaches(kafka_bootstrap, namer.breaches, windows)
        wait_caught_up(kafka_bootstrap, service.group, namer.breaches, timeout_s=30)
        time.sleep(1.0)
        requests = records(kafka_bootstrap, namer.retrain, "RetrainRequest")
        assert len(requests) == 1, requests
        assert requests[0]["deployment"] == "credit"
        assert requests[0]["breach_ids"] == [windows[0]["breach_id"], windows[1]["breach_id"],
                                             windows[3]["breach_id"]]  # fmt: skip
        dead = records(kafka_bootstrap, namer.deadletter, "DeadLetter")
        assert [(d["source_topic"], d["original"]) for d in dead] == [
            (namer.breaches, b"\xc3\x01not a breach")
        ]
        rx.wait_for(lambda d: len(d) >= 1, timeout_s=10)

        # The trainer answers: failed for good. That is a critical alert, and the retrain is no
        # longer in flight, so three more breached windows ask again.
        failed = {
            "outcome_id": "o-1",
            "request_id": requests[0]["request_id"],
            "deployment": "credit",
            "outcome": "failed",
            "detail": "KafkaException: broker down",
            "model_id": None,
            "version": None,
            "attempts": 3,
            "at": int(time.time() * 1000),
        }
        value = serde.encode("RetrainOutcome", failed)
        produce(kafka_bootstrap, namer.retrain_outcomes, [(b"credit", value)])

        def retrain_alert(got) -> bool:
            alerts = [a for d in got if d.verified == "ok" for a in d.payload["alerts"]]
            return any(a["labels"].get("metric") == "retrain_failed" for a in alerts)

        got = rx.wait_for(retrain_alert, timeout_s=20)
        (alert,) = [
            a for d in got for a in d.payload["alerts"] if a["labels"]["metric"] == "retrain_failed"
        ]
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["kind"] == "retrain"
        assert "broker down" in alert["annotations"]["description"]
        send_breaches(kafka_bootstrap, namer.breaches, [breach(window=w) for w in (6, 7, 8)])
        wait_caught_up(kafka_bootstrap, service.group, namer.breaches, timeout_s=30)
        time.sleep(1.0)
        assert len(records(kafka_bootstrap, namer.retrain, "RetrainRequest")) == 2
    finally:
        service.stop()
        rx.close()


def test_r15_the_service_refuses_a_loopback_receiver_and_no_setting_allows_it(tmp_path):
    cfg = write_config(tmp_path / "a.yaml", {"ops": "http://127.0.0.1:9/hook"})
    run = [sys.executable, "-m", "services.alerting", "--config-file", str(cfg)]
    refused = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "loopback" in refused.stderr
    env_try = subprocess.run(
        run,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin", "STREAMOPS_ALERTING_ALLOW_LOOPBACK_FOR_TESTS": "true"},
    )
    assert env_try.returncode == 2 and "unknown setting" in env_try.stderr, env_try.stderr[-500:]


def _streamops(*args: str, var_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would (on the stack whose var/ is `var_dir`)."""
    env = dict(os.environ)
    if var_dir is not None:
        env["STREAMOPS_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_repeats_follow_the_repeat_interval_until_acknowledged_with_the_cli(
    kafka_bootstrap, prefix, tmp_path
):
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url}, repeat_interval="2s")
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    url = service.url("")
    # The CLI finds the service's token in the stack's var/alerting/token by itself.
    streamops = functools.partial(_streamops, var_dir=service.var_dir)
    try:
        send_breaches(kafka_bootstrap, namer.breaches, [breach()])
        got = rx.wait_for(lambda d: len(d) >= 2, timeout_s=30)
        # Arrival times: the repeat is scheduled from the first send, whose own delivery may
        # arrive late on a busy machine (1.87 s apart in one clean-clone run). 1.5 s still tells
        # the repeat interval (2 s) from the group interval (1 s).
        assert got[1].at - got[0].at >= 1.5, "a repeat only after repeat_interval"
        assert got[0].webhook_id != got[1].webhook_id
        listed = streamops("alerts", "list", "--alerting-url", url)
        assert listed.returncode == 0, listed.stderr
        fingerprint = got[0].payload["alerts"][0]["fingerprint"]
        assert fingerprint in listed.stdout
        acked = streamops("alerts", "ack", fingerprint, "--comment", "on it", "--alerting-url", url)
        assert acked.returncode == 0 and "acknowledged" in acked.stdout, acked.stderr
        before = len(rx.all())
        time.sleep(5.0)
        assert len(rx.all()) <= before + 1, "at most one repeat was already on its way"
        later = len(rx.all())
        time.sleep(3.0)
        assert len(rx.all()) == later, "no repeats while acknowledged"

        sil = streamops("silences", "add", "deployment=other", "--duration", "1h", "--by", "t",
                        "--alerting-url", url)  # fmt: skip
        assert sil.returncode == 0 and "active" in sil.stdout, sil.stderr
        silence_id = sil.stdout.split()[1]
        assert silence_id in streamops("silences", "list", "--alerting-url", url).stdout
        expired = streamops("silences", "expire", silence_id, "--alerting-url", url)
        assert expired.returncode == 0 and "expired" in expired.stdout
        bad = streamops("silences", "add", "deployment=~.*", "--by", "t", "--alerting-url", url)
        assert bad.returncode == 1 and "empty string" in bad.stderr
        elsewhere = _streamops("silences", "add", "deployment=x", "--by", "t", "--alerting-url",
                               url, var_dir=tmp_path / "another-stack")  # fmt: skip
        assert elsewhere.returncode == 1 and "401" in elsewhere.stderr, elsewhere.stderr
        assert "STREAMOPS_CLI_ALERTING_TOKEN" in elsewhere.stderr
    finally:
        service.stop()
        rx.close()


def test_retrain_follows_the_deployments_k_and_retrain_on(kafka_bootstrap, prefix, tmp_path):
    """A Deployment saying K=2 on change points wins over the config's 3 windows of drift."""
    namer = make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url}, after_windows=3)
    service = Alerting(kafka_bootstrap, prefix, cfg, tmp_path / "alerting.log").start()
    try:
        record = {
            "name": "credit", "revision": 1, "updated_at": int(time.time() * 1000),
            "updated_by": "tests", "reason": "retrain on change points after 2 windows",
            "champion": {"model_name": "credit", "model_id": "sha256:" + "ab" * 32, "version": 1},
            "challengers": [], "mode": "shadow", "humility": [], "thresholds": [],
            "policy": {"auto_approve": False, "retrain_after_windows": 2, "review_topic": None},
            "release": {"retrain_on": ["change_point"]},
        }  # fmt: skip
        produce(
            kafka_bootstrap, namer.deployments, [(b"credit", serde.encode("Deployment", record))]
        )
        wait_caught_up(kafka_bootstrap, service.group, namer.deployments, timeout_s=30)
        drift = [breach(window=w) for w in (1, 2, 3)]  # psi: not in credit's retrain_on
        points = [
            breach(window=w, kind="accuracy", metric="change_point", feature=None, value=1.0)
            for w in (1, 2)
        ]
        unseen = [breach("other", window=w) for w in (1, 2)]  # no Deployment: the config's 3
        send_breaches(kafka_bootstrap, namer.breaches, drift + points + unseen)
        wait_caught_up(kafka_bootstrap, service.group, namer.breaches, timeout_s=30)
        time.sleep(1.0)
        requests = records(kafka_bootstrap, namer.retrain, "RetrainRequest")
        assert [(r["deployment"], r["breach_ids"]) for r in requests] == [
            ("credit", [p["breach_id"] for p in points])
        ], requests
        assert requests[0]["reason"] == (
            "accuracy change_point breached for 2 windows (K=2, policy.retrain_after_windows)"
        )
    finally:
        service.stop()
        rx.close()


def test_changes_need_the_token_made_at_first_start_and_a_short_token_stops_the_start(
    kafka_bootstrap, prefix, tmp_path
):
    """Issue 28: the API never runs open; the first start makes var/alerting/token (0600);
    a configured token shorter than 16 characters is refused at start, saying how to make one."""
    make_topics(kafka_bootstrap, prefix, TOPICS)
    rx = Receiver(SECRET)
    cfg = write_config(tmp_path / "a.yaml", {"ops": rx.url})
    log = tmp_path / "alerting.log"
    service = Alerting(kafka_bootstrap, prefix, cfg, log).start()
    silence = {"matchers": ['deployment="x"'], "duration_s": 60, "created_by": "test"}
    try:
        made = tmp_path / "alerting" / "token"
        assert stat.S_IMODE(made.stat().st_mode) == 0o600
        token = made.read_text().strip()
        assert len(token) >= 16
        assert str(made) in log.read_text() and token not in log.read_text()

        anonymous = httpx.post(service.url("/api/v1/silences"), json=silence, timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["error"] == "unauthorized"
        wrong = {"Authorization": "Bearer " + "w" * len(token)}
        guessed = httpx.post(service.url("/api/v1/silences"), json=silence, headers=wrong)
        assert guessed.status_code == 401
        assert httpx.post(service.url("/api/v1/alerts/abc/ack"), json={"created_by": "t"}
                          ).status_code == 401  # fmt: skip
        assert service.get("/api/v1/silences") == {"silences": []}, "reads stay open"

        owner = {"Authorization": f"Bearer {token}"}
        added = httpx.post(service.url("/api/v1/silences"), json=silence, headers=owner)
        assert added.status_code == 201, added.text
        path = f"/api/v1/silences/{added.json()['id']}"
        assert httpx.delete(service.url(path), timeout=10).status_code == 401
        assert httpx.delete(service.url(path), headers=owner, timeout=10).status_code == 200
        service.stop()
        service.start()  # a restart keeps the token it made
        assert service.token == token
        assert service.post("/api/v1/silences", silence)["status"] == "active"
    finally:
        service.stop()
        rx.close()

    short_log = tmp_path / "short.log"
    short = {**service.env, "STREAMOPS_ALERTING_API_TOKEN": "0123456789"}  # environment, not argv
    refused = ServiceProcess("services.cli.demo_alerting", service.args, short_log, short).start()
    assert refused.proc is not None
    assert refused.proc.wait(60) == 2, refused.log_tail()
    said = short_log.read_text()
    assert "api_token (STREAMOPS_ALERTING_API_TOKEN) is shorter than 16 characters" in said, said
    assert 'python -c "import secrets; print(secrets.token_urlsafe(24))"' in said
    assert "0123456789" not in said
