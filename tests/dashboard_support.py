"""The dashboard tests' registry process and data, published through the real topics in the
real record formats."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from services.common import serde
from tests import kafka_login
from tests.kafka_support import ServiceProcess, free_port, make_topics
from tests.registry_support import REGISTRY_TOPICS

# Page refreshes done at least `arg` times. A function, not an expression: the page's
# Content-Security-Policy forbids the eval() playwright would run an expression with.
LOADED = "n => Number(document.body.dataset.loaded || 0) >= n"


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, KeyError, IndexError) as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s: {what} (last error: {last!r})")


def start_registry(
    bootstrap: str,
    prefix: str,
    settings: Any,
    redis_password: str,
    tokens: str,
    folder: Path,
) -> tuple[ServiceProcess, str]:
    """The registry as a process (trusting the keys in `folder/keys`, sampling every second),
    answering on its URL; secrets go by environment, not argv. Its topics are made here, as
    admin: on the secured broker the registry may not create them itself."""
    make_topics(bootstrap, prefix, REGISTRY_TOPICS)
    port = free_port()
    flags = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": prefix,
        "redis_host": settings.redis_host,
        "redis_port": settings.redis_port,
        "trusted_keys_dir": folder / "keys",
        "transactional_id": f"{prefix}registry",
        "http_port": port,
        "metrics_port": 0,
        "sample_interval_s": 1,
    }
    args = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    env = {"STREAMOPS_REGISTRY_TOKENS": tokens, "STREAMOPS_REDIS_PASSWORD": redis_password}
    registry = ServiceProcess("services.registry", args, folder / "registry.log", env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: registry.alive() and httpx.get(f"{url}/healthz", timeout=5).status_code == 200,
            60,
            "registry up",
        )
    except AssertionError as exc:
        if registry.alive():
            registry.terminate()
        raise AssertionError(f"{exc}\n{registry.log_tail()}") from None
    return registry, url


def approve(
    http: httpx.Client, deployment: str, body: dict[str, Any], by: str, approver: str, why: str
) -> None:
    """A change request to `deployment` by token `by`, approved by token `approver` for `why`."""
    made = http.post(
        f"/deployments/{deployment}/requests",
        json=body,
        headers={"Authorization": f"Bearer {by}"},
    )
    assert made.status_code == 201, made.text
    done = http.post(
        f"/requests/{made.json()['request_id']}/approve",
        json={"reason": why},
        headers={"Authorization": f"Bearer {approver}"},
    )
    assert done.status_code == 200, done.text


def drift_reports(content: dict[str, Any], now_ms: int, windows: int = 8) -> list[dict]:
    """One DriftReport per minute up to now: `age` drifts away, accuracy sags, labels arrive."""
    importances = content["baseline"]["importances"]
    names = [f["name"] for f in content["signature_in"]["features"]]
    end = now_ms - now_ms % 60_000
    out = []
    for i in range(windows):
        start = end - (windows - i) * 60_000
        step = i / max(windows - 1, 1)
        features = [
            {
                "name": name,
                "psi": round((0.02 + 0.4 * step) if name == "age" else 0.01 + 0.01 * (i % 3), 4),
                "ks": 0.5,
                "js": 0.05,
                "chi2_p": None,
                "importance": float(importances.get(name, 0.0)),
                "missing_rate": 0.01 * (i % 2),
                "out_of_range_rate": 0.05 * step if name == "age" else 0.0,
                "unseen_rate": 0.0,
            }
            for name in names
        ]
        out.append(
            {
                "deployment": "credit",
                "model_id": content["model_id"],
                "model_version": content["version"],
                "window_start": start,
                "window_end": start + 60_000,
                "event_count": 1200 + 10 * i,
                "prediction_count": 1190 + 10 * i,
                "features": features,
                "weighted_drift": round(0.02 + 0.4 * step, 4),
                "prediction_psi": round(0.01 + 0.1 * step, 4),
                "metrics": {"accuracy": round(0.95 - 0.15 * step, 4), "f1": 0.9},
                "label_coverage": round(0.3 + 0.6 * step, 3),
                "label_delay_ms_p50": 2000.0,
                "schema_violations": 3 * (i % 3),
                "late_events": i,
                "change_point": False,
                "challengers": [],
            }
        )
    return out


def breach(
    content: dict[str, Any], at_ms: int, status: str, severity: str, feature: str | None = "age"
) -> dict[str, Any]:
    """A ThresholdBreach transition of the `credit` deployment."""
    kind, metric = ("data_drift", "psi") if feature else ("accuracy", "accuracy")
    return {
        "breach_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}{feature}{at_ms}{status}").hex,
        "deployment": "credit",
        "kind": kind,
        "metric": metric,
        "feature": feature,
        "severity": severity,
        "status": status,
        "value": 0.31 if feature else 0.8,
        "threshold": 0.2 if feature else 0.85,
        "window_start": at_ms - 60_000,
        "window_end": at_ms,
        "model_id": content["model_id"],
        "model_version": content["version"],
        "observed_at": at_ms,
        "labels": {},
    }


def event(
    content: dict[str, Any], rng: random.Random, shift: float = 0.0, deployment: str = "credit"
) -> dict[str, Any]:
    """A FeatureEvent drawn near the model's baseline (numbers moved by `shift` sd)."""
    features: dict[str, Any] = {}
    for f in content["baseline"]["features"]:
        if f["kind"] == "numeric":
            value = rng.gauss(f["mean"] + shift * f["std"], f["std"])
            features[f["name"]] = min(max(value, f["min"]), f["max"] * 1.2)
        else:
            features[f["name"]] = rng.choice(sorted(f["categories"]))
    return {
        "association_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "deployment": deployment,
        "event_time": int(time.time() * 1000) - rng.randint(5, 200),
        "features": features,
        "attributes": {},
    }


def prediction(content: dict[str, Any], ev: dict[str, Any], rng: random.Random) -> dict:
    """The champion's served Prediction for an event, one of the model's two classes."""
    p = rng.random()
    no, yes = content["classes"]
    return {
        "association_id": ev["association_id"],
        "deployment": ev["deployment"],
        "model_name": content["name"],
        "model_version": content["version"],
        "model_id": content["model_id"],
        "role": "champion",
        "served": True,
        "prediction": yes if p > 0.35 else no,
        "probabilities": {no: 1 - p, yes: p},
        "humility": [],
        "overridden": False,
        "event_time": ev["event_time"],
        "scored_time": int(time.time() * 1000),
        "input_partition": 0,
        "input_offset": 0,
    }


def dead_letter(ev: dict[str, Any], events_topic: str, stage: str = "validate") -> dict[str, Any]:
    """A DeadLetter for an event the scorer gave up on (JSON original, attributable)."""
    return {
        "source_topic": events_topic,
        "source_partition": 0,
        "source_offset": 0,
        "source_key": ev["association_id"].encode(),
        "original": json.dumps(ev).encode(),
        "stage": stage,
        "reason": "schema_mismatch" if stage == "validate" else "handler_failed",
        "error": "feature car is not a category of the model",
        "service": "scorer",
        "failed_at": int(time.time() * 1000),
        "attempts": 1,
    }


class Traffic:
    """Events, predictions and a few dead letters at a steady trickle, on a background thread."""

    def __init__(self, bootstrap: str, namer: Any, content: dict[str, Any], per_s: int = 200):
        self.producer = Producer({**kafka_login.conf(bootstrap), "linger.ms": 20})
        self.namer, self.content, self.per_s = namer, content, per_s
        self.rng = random.Random(7)
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, topic: str, key: str, name: str, record: dict[str, Any]) -> None:
        self.producer.produce(topic, serde.encode(name, record), key)

    def _run(self) -> None:
        tick = 0.25
        while not self.stop.wait(tick):
            for i in range(int(self.per_s * tick)):
                ev = event(self.content, self.rng, shift=0.6)
                self._send(self.namer.events, ev["association_id"], "FeatureEvent", ev)
                row = prediction(self.content, ev, self.rng)
                self._send(self.namer.predictions, ev["association_id"], "Prediction", row)
                if i % 25 == 0:
                    stage = "handle" if self.sent % 3 == 0 else "validate"
                    letter = dead_letter(ev, self.namer.events, stage)
                    self._send(self.namer.deadletter, ev["association_id"], "DeadLetter", letter)
                self.sent += 1
            self.producer.poll(0)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.producer.flush(10)
