"""The registry's materialized view in Redis: models, deployments, audit, drift, breaches.

Every write is idempotent and keyed by something inside the record (model id, revision, event
id, a digest of a rejected record's bytes, a drift window), so replaying the topics from the
beginning into an empty namespace reproduces the live state exactly; `snapshot()` serializes the
whole namespace canonically to prove it. Keys live under `<prefix>registry:` so tests and
rebuilds can use their own namespace. ONNX bytes are never stored: only their size and hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import redis

from services.common import deployment_verifier
from services.common.errors import PoisonMessage, Reason
from services.registry.breaches import BREACHES_KEPT, BreachLog

DRIFT_KEPT = 100  # reports kept per deployment (the dashboard shows recent windows)
OUTCOMES_KEPT = 50  # retrain outcomes kept per deployment (until the audit trail has them)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def origin(lineage: Mapping[str, Any]) -> str:
    """Where a version came from, in words: imported from a file, described by the training data
    of a model served elsewhere, or trained on a data set.

    >>> origin({"search_space": '{"origin": "imported", "file": "m.skops", "sha256": "ab12"}'})
    'imported from m.skops (sha256 ab12)'
    >>> origin({"search_space": '{"origin": "described", "file": "t.csv", "sha256": "cd34"}'})
    'described from t.csv (sha256 cd34), served outside streamops'
    >>> origin({"search_space": "{}", "dataset": {"kind": "stream", "uri": "stream:e+a"}})
    'trained on stream stream:e+a'
    """
    try:
        space = json.loads(lineage["search_space"])
    except ValueError:
        space = {}
    if isinstance(space, dict) and space.get("origin") == "imported":
        return f"imported from {space.get('file')} (sha256 {space.get('sha256')})"
    if isinstance(space, dict) and space.get("origin") == "described":
        where = f"{space.get('file')} (sha256 {space.get('sha256')})"
        return f"described from {where}, served outside streamops"
    data = lineage.get("dataset") or {}
    return f"trained on {data.get('kind')} {data.get('uri')}"


def model_summary(content: Mapping[str, Any], key_id: str) -> dict[str, Any]:
    """Everything the registry shows about a model, without the ONNX bytes."""
    onnx = content["onnx"]
    baseline = content["baseline"]
    return {
        "model_id": content["model_id"],
        "name": content["name"],
        "version": content["version"],
        "parent_id": content["parent_id"],
        "created_at": content["created_at"],
        "task": content["task"],
        "estimator": content["estimator"],
        "onnx_size": len(onnx),
        "onnx_sha256": hashlib.sha256(onnx).hexdigest(),
        "signature_in": content["signature_in"],
        "classes": content["classes"],
        "lineage": content["lineage"],
        "baseline_summary": {
            "features": [
                {k: f[k] for k in ("name", "kind", "count", "missing_rate", "min", "max", "mean")}
                | {"bins": len(f["bin_counts"]), "categories": len(f["categories"])}
                for f in baseline["features"]
            ],
            "importances": baseline["importances"],
            "class_counts": baseline["prediction"]["class_counts"],
        },
        "key_id": key_id,
    }


class RegistryView:
    """Reads and idempotent writes of the registry state in one Redis namespace."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        drift_kept: int = DRIFT_KEPT,
        breaches_kept: int = BREACHES_KEPT,
    ) -> None:
        self.r = client
        self.ns = f"{prefix}registry:"
        self.drift_kept = drift_kept
        self.breaches = BreachLog(client, self.ns, breaches_kept)

    def _k(self, *parts: str) -> str:
        return self.ns + ":".join(parts)

    def _json(self, key: str) -> Any:
        raw = self.r.get(key)
        return None if raw is None else json.loads(raw)

    # ---- writes (each idempotent) ----

    def apply_model(self, content: Mapping[str, Any], key_id: str) -> dict[str, Any]:
        """Record a verified model version."""
        summary = model_summary(content, key_id)
        mid, name = summary["model_id"], summary["name"]
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self._k("model", mid), _dumps(summary))
        pipe.set(self._k("baseline", mid), _dumps(content["baseline"]))
        pipe.hset(self._k("versions", name), str(summary["version"]), mid)
        pipe.sadd(self._k("models"), name)
        if summary["parent_id"]:
            pipe.sadd(self._k("children", summary["parent_id"]), mid)
        pipe.execute()
        return summary

    def apply_rejected(self, raw: bytes, entry: Mapping[str, Any]) -> None:
        """Record a refused model record (keyed by a digest of its bytes, so replays count once)."""
        digest = hashlib.sha256(raw).hexdigest()
        self.r.hset(self._k("rejected"), digest, _dumps({**entry, "digest": digest}))

    def apply_deployment(self, record: Mapping[str, Any]) -> None:
        """Record one revision of a deployment (without its signature: the registry's own
        writes are applied before they are signed, and must read the same)."""
        record = deployment_verifier.unsigned(record)
        name = record["name"]
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._k("deployment", name), str(record["revision"]), _dumps(record))
        pipe.sadd(self._k("deployments"), name)
        pipe.execute()

    def apply_governance(self, event: Mapping[str, Any]) -> None:
        """Record one audit event; requests and their decisions become queryable. The trail is
        append-only: the same event again changes nothing, and an event reusing an id (or a
        second decision of a request) is refused with PoisonMessage (dead-lettered, counted),
        never applied."""
        eid, dep = event["event_id"], event["deployment"]
        stored = self.r.get(self._k("event", eid))
        if stored is not None:
            if _text(stored) == _dumps(event):
                return  # replayed
            raise PoisonMessage(
                Reason.REWRITE, f"audit event {eid} exists with other content: not rewritten"
            )
        request_id = event.get("request_id")
        taken = {"request": "request", "approve": "decision", "reject": "decision"}
        slot = taken.get(event["action"]) if request_id else None
        holder = self.r.get(self._k(slot, request_id)) if slot else None
        # The registry applies its own writes while its follower applies them from the topic:
        # the slot may already name this very event, written by the other thread a moment ago.
        if holder is not None and _text(holder) != eid:
            raise PoisonMessage(
                Reason.REWRITE, f"request {request_id} has its {slot} already: not a second one"
            )
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self._k("event", eid), _dumps(event))
        pipe.zadd(self._k("audit"), {eid: event["at"]})
        pipe.zadd(self._k("audit", dep), {eid: event["at"]})
        if request_id:
            if event["action"] == "request":
                pipe.set(self._k("request", request_id), eid)
                pipe.zadd(self._k("requests", dep), {request_id: event["at"]})
            elif event["action"] in ("approve", "reject"):
                pipe.set(self._k("decision", request_id), eid)
        pipe.execute()

    def apply_drift(self, report: Mapping[str, Any]) -> None:
        """Keep the latest drift reports of a deployment, one per window."""
        key = self._k("drift", report["deployment"])
        self.r.hset(key, str(report["window_start"]), _dumps(report))
        fields = sorted((int(_text(f)) for f in self.r.hkeys(key)), reverse=True)
        old = [str(f) for f in fields[self.drift_kept :]]
        if old:
            self.r.hdel(key, *old)

    def apply_retrain_outcome(self, outcome: Mapping[str, Any]) -> None:
        """Keep the latest retrain outcomes of a deployment, one per request answered."""
        key = self._k("outcomes", outcome["deployment"])
        self.r.zadd(key, {_dumps(dict(outcome)): outcome["at"]})
        self.r.zremrangebyrank(key, 0, -OUTCOMES_KEPT - 1)

    def retrain_outcomes(self, deployment: str) -> list[dict[str, Any]]:
        """The newest retrain outcomes of a deployment, oldest first."""
        return [json.loads(v) for v in self.r.zrange(self._k("outcomes", deployment), 0, -1)]

    def has_event(self, event_id: str) -> bool:
        """True when the audit trail holds this event."""
        return bool(self.r.exists(self._k("event", event_id)))

    def clear(self) -> int:
        """Delete the whole namespace (rebuild); returns the number of keys removed."""
        keys = list(self.r.scan_iter(match=self.ns + "*", count=500))
        for start in range(0, len(keys), 500):
            self.r.delete(*keys[start : start + 500])
        return len(keys)

    # ---- reads ----

    def model_names(self) -> list[str]:
        """Every model name."""
        return sorted(_text(n) for n in self.r.smembers(self._k("models")))

    def versions(self, name: str) -> dict[int, str]:
        """Version -> model id for one name."""
        raw = self.r.hgetall(self._k("versions", name))
        return {int(_text(v)): _text(m) for v, m in sorted(raw.items(), key=lambda i: int(i[0]))}

    def model_by_id(self, model_id: str) -> dict[str, Any] | None:
        """A model summary by id."""
        return self._json(self._k("model", model_id))

    def model(self, name: str, version: int) -> dict[str, Any] | None:
        """A model summary by name and version."""
        mid = self.r.hget(self._k("versions", name), str(version))
        return None if mid is None else self.model_by_id(_text(mid))

    def baseline(self, model_id: str) -> dict[str, Any] | None:
        """The full monitoring baseline of a model (for the dashboard)."""
        return self._json(self._k("baseline", model_id))

    def children(self, model_id: str) -> list[str]:
        """Ids of models trained to replace this one."""
        return sorted(_text(c) for c in self.r.smembers(self._k("children", model_id)))

    def deployment_names(self) -> list[str]:
        """Every deployment name."""
        return sorted(_text(n) for n in self.r.smembers(self._k("deployments")))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every revision of a deployment, oldest first."""
        raw = self.r.hgetall(self._k("deployment", name))
        return [json.loads(raw[k]) for k in sorted(raw, key=int)]

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The current (highest) revision of a deployment."""
        revisions = self.history(name)
        return revisions[-1] if revisions else None

    def deployment_at(self, name: str, t_ms: int) -> dict[str, Any] | None:
        """The revision in force at time `t_ms` (the last one approved at or before it)."""
        current = None
        for record in self.history(name):
            if record["updated_at"] <= t_ms:
                current = record
        return current

    def _events(self, ids: list[Any]) -> list[dict[str, Any]]:
        if not ids:
            return []
        values = self.r.mget([self._k("event", _text(i)) for i in ids])
        return [json.loads(v) for v in values if v is not None]

    def audit(self, deployment: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit events first, for one deployment or all."""
        key = self._k("audit", deployment) if deployment else self._k("audit")
        return self._events(self.r.zrevrange(key, 0, limit - 1))

    def request(self, request_id: str) -> dict[str, Any] | None:
        """A change request with its status (pending | approved | rejected) and decision."""
        eid = self.r.get(self._k("request", request_id))
        if eid is None:
            return None
        event = self._json(self._k("event", _text(eid)))
        if event is None:
            return None
        did = self.r.get(self._k("decision", request_id))
        decision = None if did is None else self._json(self._k("event", _text(did)))
        status = "pending"
        if decision is not None:
            status = "approved" if decision["action"] == "approve" else "rejected"
        return {
            "request_id": request_id,
            "deployment": event["deployment"],
            "requested_by": event["actor"],
            "requested_at": event["at"],
            "reason": event["reason"],
            "change": json.loads(event["payload"]),
            "status": status,
            "decision": decision,
        }

    def requests(self, deployment: str) -> list[dict[str, Any]]:
        """Every change request of a deployment, newest first."""
        ids = self.r.zrevrange(self._k("requests", deployment), 0, -1)
        found = (self.request(_text(i)) for i in ids)
        return [r for r in found if r is not None]

    def rejected(self) -> list[dict[str, Any]]:
        """Refused model records, by name then version."""
        entries = [json.loads(v) for v in self.r.hvals(self._k("rejected"))]
        return sorted(
            entries, key=lambda e: (str(e.get("name")), e.get("version") or 0, e["digest"])
        )

    def drift(self, deployment: str, limit: int = DRIFT_KEPT) -> list[dict[str, Any]]:
        """The newest drift reports of a deployment, oldest first."""
        raw = self.r.hgetall(self._k("drift", deployment))
        keys = sorted(raw, key=int)[-limit:]
        return [json.loads(raw[k]) for k in keys]

    def sizes(self) -> dict[str, int]:
        """How many models, deployments, audit events, rejections and breaches the view holds."""
        names = self.model_names()
        return {
            "models": len(names),
            "versions": sum(self.r.hlen(self._k("versions", n)) for n in names),
            "deployments": self.r.scard(self._k("deployments")),
            "audit_events": self.r.zcard(self._k("audit")),
            "rejected": self.r.hlen(self._k("rejected")),
            "breaches": self.breaches.count(),
        }

    def snapshot(self) -> str:
        """The whole namespace as canonical JSON (keys relative to it): equal state, equal text."""
        out: dict[str, Any] = {}
        for raw_key in self.r.scan_iter(match=self.ns + "*", count=500):
            key = _text(raw_key)
            kind = _text(self.r.type(key))
            if kind == "string":
                value: Any = _text(self.r.get(key))
            elif kind == "hash":
                value = {_text(k): _text(v) for k, v in self.r.hgetall(key).items()}
            elif kind == "set":
                value = sorted(_text(m) for m in self.r.smembers(key))
            elif kind == "zset":
                value = [[_text(m), s] for m, s in self.r.zrange(key, 0, -1, withscores=True)]
            else:
                value = f"<{kind}>"
            out[key[len(self.ns) :]] = value
        return _dumps(out)
