"""Turn a micro-batch of events into Prediction records: route, validate, predict, apply humility.

One onnxruntime run per model per batch. Events whose deployment is unknown, or whose features
do not match the model signature, are rejected (dead-lettered by the runner) without holding
back the rest of the batch. Events of an external deployment (its model runs in the user's
service, which reports the predictions itself) are skipped: no output, no dead letter, counted;
the runner commits their offsets with the rest of the batch. Every Prediction names the exact
model (name, version, id) and its role, so nothing can be mistaken for the champion's answer.

A shadow challenger never costs the champion its answers: whatever its run or its humility
rules raise, its rows are skipped, the failure is counted and logged, and the champion's
predictions go out. A served model's failure (the champion, or an A/B variant, which is the
answer for its rows) is raised instead, so the runner isolates the event that causes it and
dead-letters it rather than answering those events with no prediction at all.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from services.common.errors import PoisonMessage, Reason
from services.common.messages import Inbound, Outbound, Rejected
from services.common.onnx_inputs import category_text, numeric_value
from services.scorer.humility import Verdict, apply_rules
from services.scorer.inference import LoadedModel, predict
from services.scorer.model_store import Snapshot, is_external
from services.scorer.routing import Variant, assign, shadow_plan

log = logging.getLogger(__name__)

NO_VERDICT = Verdict()  # shared, never mutated: rows with no rules to apply
Encode = Callable[[str, dict[str, Any]], bytes]
Observer = Callable[[LoadedModel, str, int, list[int]], None]  # model, role, rows, event times
FailureCounter = Callable[[str], None]  # deployment name
SkipCounter = Callable[[str, int], None]  # deployment name, events skipped


def check_features(features: Mapping[str, Any], specs: Sequence[Mapping[str, Any]]) -> None:
    """Refuse an event whose features do not fit the model signature (PoisonMessage)."""
    for spec in specs:
        name = spec["name"]
        if name not in features:
            raise PoisonMessage(Reason.SCHEMA_MISMATCH, f"feature {name!r} is absent")
        if spec["kind"] == "numeric":
            numeric_value(features[name], name)


def _columns(
    rows: Sequence[Mapping[str, Any]], specs: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for spec in specs:
        name = spec["name"]
        if spec["kind"] == "numeric":
            cols[name] = np.array([numeric_value(r.get(name), name) for r in rows], dtype=float)
        else:
            cols[name] = np.array([category_text(r.get(name)) for r in rows], dtype=object)
    return cols


class ScoringHandler:
    """The scorer's runner handler."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        predictions_topic: str,
        review_topic: str,
        encode: Encode,
        observe: Observer | None = None,
        challenger_failed: FailureCounter | None = None,
        external_skipped: SkipCounter | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.predictions_topic = predictions_topic
        self.review_topic = review_topic
        self.encode = encode
        self.observe = observe
        self.challenger_failed = challenger_failed
        self.external_skipped = external_skipped
        self.challenger_failures: dict[str, int] = {}  # deployment -> count
        self.skipped: dict[str, int] = {}  # external deployment -> events skipped

    def handle(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """Score a batch; one output list in input order per deployment group."""
        view = self.snapshot()
        out: list[Outbound | Rejected] = []
        by_deployment: dict[str, list[Inbound]] = defaultdict(list)
        for item in batch:
            name = item.record.get("deployment", "")
            if name not in view.deployments:
                out.append(
                    Rejected(
                        item, Reason.UNKNOWN_DEPLOYMENT, f"no deployment named {name!r} is active"
                    )
                )
                continue
            by_deployment[name].append(item)
        skipped = {}
        for name, items in by_deployment.items():
            deployment = view.deployments[name]
            if is_external(deployment):
                skipped[name] = len(items)
            else:
                out.extend(self._score_deployment(view, deployment, items))
        for name, n in skipped.items():  # once the batch is through: a retried one counts once
            self._skip(name, n)
        return out

    def _skip(self, deployment: str, n: int) -> None:
        """Count events of an external deployment: the user's service answers them."""
        self.skipped[deployment] = self.skipped.get(deployment, 0) + n
        if self.external_skipped:
            self.external_skipped(deployment, n)

    def _score_deployment(
        self, view: Snapshot, deployment: Mapping[str, Any], items: list[Inbound]
    ) -> list[Outbound | Rejected]:
        champion = view.models[deployment["champion"]["model_id"]]
        out: list[Outbound | Rejected] = []
        good: list[Inbound] = []
        for item in items:
            try:
                check_features(item.record["features"], champion.feature_specs)
                good.append(item)
            except PoisonMessage as exc:
                out.append(Rejected(item, exc.reason, exc.detail))
        if not good:
            return out
        if deployment.get("mode") == "ab":
            variants = assign([m.record["association_id"] for m in good], deployment)
            groups: dict[Variant, list[int]] = defaultdict(list)
            for i, v in enumerate(variants):
                groups[v].append(i)
            plan = list(groups.items())
        else:
            plan = [(v, list(range(len(good)))) for v in shadow_plan(deployment)]
        review: set[int] = set()
        for variant, idx in plan:
            model = view.models[variant.model_id]
            try:
                out.extend(self._score_variant(deployment, model, variant, good, idx, review))
            except Exception as exc:
                if variant.served:  # the runner isolates the event that causes it
                    raise
                # A shadow's fault is never the champion's.
                self._count_challenger_failure(deployment["name"], model, len(idx), exc)
        for i in sorted(review):
            out.append(Outbound(self.review_topic, good[i].key, good[i].value))
        return out

    def _score_variant(
        self,
        deployment: Mapping[str, Any],
        model: LoadedModel,
        variant: Variant,
        good: list[Inbound],
        idx: list[int],
        review: set[int],
    ) -> list[Outbound]:
        """One model's predictions for the events at `idx`; adds served rows to `review`."""
        rows = [good[i].record["features"] for i in idx]
        result = predict(model, rows)
        verdicts = self._humility(deployment, model, rows, result.top_probability())
        scored = int(time.time() * 1000)
        out = [
            self._prediction(good[i], model, variant, result, j, verdicts[j], scored)
            for j, i in enumerate(idx)
        ]
        if variant.served:
            review.update(idx[j] for j, v in enumerate(verdicts) if v.route)
        if self.observe:
            self.observe(model, variant.role, len(idx), [good[i].record["event_time"] for i in idx])
        return out

    def _count_challenger_failure(
        self, deployment: str, model: LoadedModel, rows: int, exc: Exception
    ) -> None:
        n = self.challenger_failures.get(deployment, 0) + 1
        self.challenger_failures[deployment] = n
        if self.challenger_failed:
            self.challenger_failed(deployment)
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th...: a broken challenger cannot flood the log
            log.warning(
                "challenger %s v%s of %s failed on %d rows (failure %d), rows skipped: %r",
                model.name,
                model.version,
                deployment,
                rows,
                n,
                exc,
            )

    @staticmethod
    def _humility(
        deployment: Mapping[str, Any],
        model: LoadedModel,
        rows: list[Mapping[str, Any]],
        top: np.ndarray | None,
    ) -> list[Verdict]:
        rules = deployment.get("humility") or []
        if not rules:
            return [NO_VERDICT] * len(rows)
        return apply_rules(
            rules, _columns(rows, model.feature_specs), top, model.baseline, len(rows)
        )

    def _prediction(
        self,
        item: Inbound,
        model: LoadedModel,
        variant: Variant,
        result: Any,
        j: int,
        verdict: Verdict,
        scored: int,
    ) -> Outbound:
        probs = {}
        if result.probabilities is not None:
            probs = {
                c: float(p) for c, p in zip(model.classes, result.probabilities[j], strict=False)
            }
        prediction = verdict.override if verdict.overridden else result.predictions[j]
        record = {
            "association_id": item.record["association_id"],
            "deployment": item.record["deployment"],
            "model_name": model.name,
            "model_version": model.version,
            "model_id": model.model_id,
            "role": variant.role,
            "served": variant.served,
            "prediction": prediction,
            "probabilities": probs,
            "humility": verdict.flags,
            "overridden": verdict.overridden,
            "event_time": item.record["event_time"],
            "scored_time": scored,
            "input_partition": item.partition,
            "input_offset": item.offset,
        }
        return Outbound(self.predictions_topic, item.key, self.encode("Prediction", record))
