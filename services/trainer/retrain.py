"""Retrain requests: train on a deployment's fresh stream slice, gate, sign, hand over to publish.

A runner `Handler` over `retrain`: the runner produces what this returns, waits for delivery and
only then commits, so a request's offset is committed once its outcome is durable. Per batch,
requests for one deployment are coalesced into one training (the newest request's ``last_n``
wins); a request made before the last training of its deployment finished, or before the
newest model of its name was created, is already answered and is only counted.

A candidate the gate rejects is not published and no record is written: the registry owns
governance events, and a rejected candidate never becomes a model anyone could deploy. The
rejection is a log line with the full summary and `streamops_trainer_trainings_total{outcome=
"rejected"}`. Data the trainer refuses (validation, ONNX parity) is handled the same way with
outcome "refused", and so is a request for an external deployment (its model runs in the
user's service); a request for a deployment that does not exist, or asking for a number of
rows outside 1..MAX_LAST_N, is dead-lettered. Deployments are handled one by one: a training
that fails unexpectedly dead-letters that deployment's requests (HANDLER_FAILED, with the error;
they can be sent again) and never the other deployments' outcomes in the same batch, which a
retry of the whole batch would lose (their requests would then count as answered).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from services.common import serde
from services.common.errors import FatalError, PoisonMessage, Reason
from services.common.messages import Inbound, Outbound, Rejected
from services.common.signing import SigningKey
from services.trainer.dataset import Dataset
from services.trainer.gate import ChampionGate
from services.trainer.metrics import TrainerMetrics
from services.trainer.model_build import BuiltModel, TrainOptions, build_model
from services.trainer.onnx_export import ExportError
from services.trainer.publisher import signed_record
from services.trainer.summary import TrainingSummary, render_summary, summarize
from services.trainer.validation import DataValidationError
from services.trainer.versions import ModelLedger

log = logging.getLogger(__name__)

Build = Callable[..., BuiltModel]

MAX_LAST_N = 1_000_000  # rows a request may ask for (the slice reader scans at most this many)


class SliceSource(Protocol):
    """Where training rows come from: the newest N labelled events of a deployment."""

    def read(
        self,
        deployment: str,
        last_n: int,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        task: str | None = None,
    ) -> Dataset:
        """A stream Dataset whose version records the offset ranges it was read from."""
        ...


class RetrainHandler:
    """Turns RetrainRequest batches into at most one gated, signed model per deployment."""

    def __init__(
        self,
        ledger: ModelLedger,
        slices: SliceSource,
        key: SigningKey,
        models_topic: str,
        *,
        options: TrainOptions,
        gate: ChampionGate,
        default_last_n: int,
        metrics: TrainerMetrics,
        build: Build = build_model,
    ) -> None:
        self.ledger = ledger
        self.slices = slices
        self.key = key
        self.models_topic = models_topic
        self.options = options
        self.gate = gate
        self.default_last_n = default_last_n
        self.metrics = metrics
        self._build = build
        self._finished_at: dict[str, int] = {}  # deployment -> epoch ms of its last outcome
        self.summaries: list[TrainingSummary] = []  # recent outcomes, newest last

    def handle(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """One training per deployment named in the batch, in order of first appearance."""
        grouped: dict[str, list[Inbound]] = {}
        out: list[Outbound | Rejected] = []
        for item in batch:
            last_n = item.record.get("last_n")
            if last_n is not None and not 1 <= last_n <= MAX_LAST_N:
                detail = f"last_n {last_n} is outside 1..{MAX_LAST_N}"
                out.append(Rejected(item, Reason.OUT_OF_RANGE, detail))
                continue
            grouped.setdefault(item.record["deployment"], []).append(item)
        for deployment, requests in grouped.items():
            try:
                out.extend(self._deployment(deployment, requests))
            except FatalError:
                raise
            except PoisonMessage as exc:
                out.extend(Rejected(r, exc.reason, exc.detail) for r in requests)
            except Exception as exc:
                log.exception("retrain %s failed", deployment)
                self.metrics.outcome("failed")
                error = f"{type(exc).__name__}: {exc}"
                out.extend(Rejected(r, Reason.HANDLER_FAILED, error) for r in requests)
        return out

    def _deployment(self, deployment: str, requests: list[Inbound]) -> list[Outbound | Rejected]:
        dep = self.ledger.deployment(deployment)
        if dep is None:
            detail = f"no deployment {deployment!r} on the deployments topic"
            return [Rejected(r, Reason.UNKNOWN_DEPLOYMENT, detail) for r in requests]
        name = dep["champion"]["model_name"]
        answered = max(self._finished_at.get(deployment, 0), self.ledger.last_published_at(name))
        fresh = [r for r in requests if int(r.record["requested_at"]) > answered]
        for _ in range(len(requests) - min(len(fresh), 1)):
            self.metrics.outcome("coalesced")
        if not fresh:
            log.info("retrain %s: %d request(s) already answered", deployment, len(requests))
            return []
        request = fresh[-1].record
        last_n = int(request.get("last_n") or self.default_last_n)
        try:
            return self._retrain(deployment, dep, name, last_n, request)
        finally:
            self._finished_at[deployment] = int(time.time() * 1000)

    def _retrain(
        self,
        deployment: str,
        dep: Mapping[str, Any],
        name: str,
        last_n: int,
        request: Mapping[str, Any],
    ) -> list[Outbound | Rejected]:
        started = time.perf_counter()
        champion_id = dep["champion"]["model_id"]
        champion = self.ledger.content(champion_id)
        if dep.get("external") or (champion is not None and not champion["onnx"]):
            self.metrics.outcome("refused")
            log.warning(
                "retrain %s refused: its model runs in the user's service (an external "
                "deployment); retrain it there and publish the new version with "
                "`streamops models describe`",
                deployment,
            )
            return []
        if champion is None:
            self.metrics.outcome("refused")
            log.warning(
                "retrain %s refused: champion %s is unknown or unverified, so the gate cannot "
                "run (trust its signing key with STREAMOPS_TRAINER_TRUSTED_KEYS_DIR)",
                deployment,
                champion_id[:12],
            )
            return []
        specs = champion["signature_in"]["features"]
        ds = self.slices.read(
            deployment,
            last_n,
            feature_names=[s["name"] for s in specs],
            categorical=[s["name"] for s in specs if s["kind"] == "categorical"],
            task=champion["task"],
        )
        plan = self.ledger.plan(name, deployment)
        log.info(
            "retrain %s (request %s, %s): %d rows, training %s v%d",
            deployment,
            request.get("request_id"),
            request.get("reason"),
            ds.rows,
            name,
            plan.version,
        )
        try:
            built = self._build(
                ds, name=name, version=plan.version, parent_id=plan.parent_id, options=self.options
            )
        except (DataValidationError, ExportError) as exc:
            self.metrics.outcome("refused")
            log.warning("retrain %s refused: %s", deployment, exc)
            return []
        seconds = time.perf_counter() - started
        self.metrics.seconds.observe(seconds)
        verdict = self.gate(built.result, champion)
        common = {"parent_source": plan.parent_source, "train_seconds": built.result.train_seconds}
        if not verdict.passed:
            self.metrics.outcome("rejected")
            self._remember(
                summarize(
                    built.content,
                    outcome="rejected",
                    total_seconds=seconds,
                    note=f"gate: {verdict.detail}",
                    **common,
                )
            )
            return []
        value = serde.encode("ModelPublished", signed_record(built.content, self.key))
        # Versions must not collide with the next request's, before the topic echoes this one.
        self.ledger.note_published(built.content)
        self.metrics.outcome("published")
        self.metrics.model_bytes.observe(len(value))
        self._remember(
            summarize(
                built.content,
                outcome="published",
                total_seconds=seconds,
                record_bytes=len(value),
                location=self.models_topic,
                note=f"gate: {verdict.detail}",
                **common,
            )
        )
        header = serde.fingerprint_header("ModelPublished")
        return [Outbound(self.models_topic, name, value, headers=(header,))]

    def _remember(self, summary: TrainingSummary) -> None:
        log.info("retrain outcome:\n%s", render_summary(summary))
        self.summaries = [*self.summaries[-19:], summary]
