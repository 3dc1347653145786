"""Retrain requests: train on a deployment's fresh stream slice, gate, sign, hand over to publish.

A runner `Handler` over `retrain`: the runner produces what this returns, waits for delivery and
only then commits, so a request's offset is committed once its outcome is durable. Per batch,
requests for one deployment are coalesced into one training (the newest request's ``last_n``
wins); a request made before the last training of its deployment finished, or before the
newest model of its name was created, is already answered: it is not trained for, and gets
that model (or that training's answer) as its outcome, with 0 attempts. That also answers a
request whose model went out and whose outcome did not (a kill between the two deliveries).

Each training answers its request (the newest of those coalesced) with a `RetrainOutcome` on
`retrain_outcomes`, returned after the model when there is one: "published" (model id and
version); "rejected" by the gate (nothing is published: a rejected candidate never becomes a
model anyone could deploy); "refused" (data validation or ONNX parity failed, the deployment is
external, its model running in the user's service, or its champion is unknown); or "failed".
Reading the slice and training are tried again after a transient error (`RetryableError` and
whatever else the shell calls transient, the Kafka client's errors) up to ``attempts`` times in
all, waiting ``backoff_s`` and then twice as long each time (at most MAX_BACKOFF_S). Errors that
outlast the tries, and any other error at once, answer "failed" with the error: the requests
are not dead-lettered, the outcome reports them. A FatalError propagates (the process exits).
A request for a deployment that does not exist, or asking for a number of rows outside
1..MAX_LAST_N, is malformed and dead-lettered. Deployments are handled one by one, so a failing
one never costs the other deployments' outcomes in the same batch, which a retry of the whole
batch would lose (their requests would then count as answered).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from services.common import serde
from services.common.errors import FatalError, PoisonMessage, Reason, RetryableError
from services.common.messages import Inbound, Outbound, Rejected
from services.common.signing import SigningKey
from services.trainer.dataset import Dataset
from services.trainer.gate import ChampionGate
from services.trainer.metrics import TrainerMetrics
from services.trainer.model_build import BuiltModel, TrainOptions, build_model
from services.trainer.onnx_export import ExportError
from services.trainer.publisher import signed_record
from services.trainer.retrain_outcome import Answer, error_text, outcome_message
from services.trainer.summary import TrainingSummary, render_summary, summarize
from services.trainer.validation import DataValidationError
from services.trainer.versions import ModelLedger, VersionPlan

log = logging.getLogger(__name__)

Build = Callable[..., BuiltModel]

MAX_LAST_N = 1_000_000  # rows a request may ask for (the slice reader scans at most this many)
MAX_BACKOFF_S = 30.0  # longest wait between two tries of one retrain


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


@dataclasses.dataclass
class _Tries:
    made: int = 1  # a request refused before its slice is read was still tried once


class RetrainHandler:
    """Turns RetrainRequest batches into at most one gated, signed model per deployment, and
    one RetrainOutcome per training."""

    def __init__(
        self,
        ledger: ModelLedger,
        slices: SliceSource,
        key: SigningKey,
        models_topic: str,
        *,
        outcomes_topic: str,
        options: TrainOptions,
        gate: ChampionGate,
        default_last_n: int,
        metrics: TrainerMetrics,
        attempts: int,
        backoff_s: float,
        transient: tuple[type[Exception], ...] = (RetryableError,),
        sleep: Callable[[float], None] = time.sleep,
        build: Build = build_model,
    ) -> None:
        self.ledger = ledger
        self.slices = slices
        self.key = key
        self.models_topic = models_topic
        self.outcomes_topic = outcomes_topic
        self.options = options
        self.gate = gate
        self.default_last_n = default_last_n
        self.metrics = metrics
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._transient = transient
        self._sleep = sleep
        self._build = build
        self._finished_at: dict[str, int] = {}  # deployment -> epoch ms of its last outcome
        self._last_answer: dict[str, Answer] = {}  # deployment -> its last training's answer
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
                # A training's errors are outcomes; this is a bug before one started, with no
                # request chosen to answer: the requests can be sent again.
                log.exception("retrain %s failed", deployment)
                self.metrics.outcome("failed")
                error = error_text(exc)
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
            return self._already_answered(deployment, name, requests[-1].record)
        return self._answer(deployment, dep, name, fresh[-1].record)

    def _already_answered(
        self, deployment: str, name: str, request: Mapping[str, Any]
    ) -> list[Outbound | Rejected]:
        """The outcome of a request made before the newest model of its name, or before this
        process's last training of its deployment ended: that model, or that training's answer,
        with no training (attempts 0). The first outcome may have been lost (a kill between the
        model's delivery and the outcome's) or given to another request of the same training;
        saying it again is harmless, since readers keep one outcome per request."""
        latest = self.ledger.latest(name)
        answer = self._last_answer.get(deployment)
        if latest is not None and request["requested_at"] < self.ledger.last_published_at(name):
            version, model_id = latest
            detail = f"answered by {name} v{version}, published after this request was made"
            answer = Answer("published", detail, model_id, version)
        if answer is None:
            return []
        return [outcome_message(self.outcomes_topic, deployment, request["request_id"], answer, 0)]

    def _answer(
        self, deployment: str, dep: Mapping[str, Any], name: str, request: Mapping[str, Any]
    ) -> list[Outbound | Rejected]:
        """Train for one request; the model if published, then the request's outcome."""
        tries = _Tries()
        models: list[Outbound | Rejected] = []
        try:
            answer, models = self._retrain(deployment, dep, name, request, tries)
        except (FatalError, PoisonMessage):
            raise
        except self._transient as exc:
            answer = Answer("failed", f"gave up after {tries.made} attempt(s): {error_text(exc)}")
            log.error("retrain %s failed: %s", deployment, answer.detail)
        except Exception as exc:
            log.exception("retrain %s failed", deployment)
            answer = Answer("failed", error_text(exc))
        finally:
            self._finished_at[deployment] = int(time.time() * 1000)
        self._last_answer[deployment] = answer
        self.metrics.outcome(answer.outcome)
        log.info(
            "retrain %s: %s (request %s, %d attempt(s))",
            deployment,
            answer.outcome,
            request.get("request_id"),
            tries.made,
        )
        outcome = outcome_message(
            self.outcomes_topic, deployment, request["request_id"], answer, tries.made
        )
        return [*models, outcome]

    def _retrain(
        self,
        deployment: str,
        dep: Mapping[str, Any],
        name: str,
        request: Mapping[str, Any],
        tries: _Tries,
    ) -> tuple[Answer, list[Outbound | Rejected]]:
        champion_id = dep["champion"]["model_id"]
        champion = self.ledger.content(champion_id)
        if dep.get("external") or (champion is not None and not champion["onnx"]):
            detail = (
                "its model runs in the user's service (an external deployment); retrain it "
                "there and publish the new version with `streamops models describe`"
            )
            log.warning("retrain %s refused: %s", deployment, detail)
            return Answer("refused", detail), []
        if champion is None:
            detail = (
                f"champion {champion_id[:12]} is unknown or unverified, so the gate cannot run "
                "(trust its signing key with STREAMOPS_TRAINER_TRUSTED_KEYS_DIR)"
            )
            log.warning("retrain %s refused: %s", deployment, detail)
            return Answer("refused", detail), []
        last_n = int(request.get("last_n") or self.default_last_n)
        try:
            started, plan, built = self._read_and_build(
                deployment, name, last_n, champion, request, tries
            )
        except (DataValidationError, ExportError) as exc:
            log.warning("retrain %s refused: %s", deployment, exc)
            return Answer("refused", str(exc)), []
        seconds = time.perf_counter() - started
        self.metrics.seconds.observe(seconds)
        verdict = self.gate(built.result, champion)
        note = f"gate: {verdict.detail}"
        common = {"parent_source": plan.parent_source, "train_seconds": built.result.train_seconds}
        if not verdict.passed:
            self._remember(
                summarize(
                    built.content, outcome="rejected", total_seconds=seconds, note=note, **common
                )
            )
            return Answer("rejected", note), []
        value = serde.encode("ModelPublished", signed_record(built.content, self.key))
        # Versions must not collide with the next request's, before the topic echoes this one.
        self.ledger.note_published(built.content)
        self.metrics.model_bytes.observe(len(value))
        self._remember(
            summarize(
                built.content,
                outcome="published",
                total_seconds=seconds,
                record_bytes=len(value),
                location=self.models_topic,
                note=note,
                **common,
            )
        )
        header = serde.fingerprint_header("ModelPublished")
        model = Outbound(self.models_topic, name, value, headers=(header,))
        content = built.content
        return Answer("published", note, content["model_id"], content["version"]), [model]

    def _read_and_build(
        self,
        deployment: str,
        name: str,
        last_n: int,
        champion: Mapping[str, Any],
        request: Mapping[str, Any],
        tries: _Tries,
    ) -> tuple[float, VersionPlan, BuiltModel]:
        """Read the slice and train, trying again after transient errors; returns when the
        successful try started, its version plan and the model."""
        specs = champion["signature_in"]["features"]
        delay = self.backoff_s
        while True:
            started = time.perf_counter()  # training time excludes the waits between tries
            try:
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
                built = self._build(
                    ds,
                    name=name,
                    version=plan.version,
                    parent_id=plan.parent_id,
                    options=self.options,
                )
                return started, plan, built
            except self._transient as exc:
                if tries.made >= self.attempts:
                    raise
                self.metrics.retries.inc()
                log.warning(
                    "retrain %s: attempt %d of %d failed (%s); trying again in %.1f s",
                    deployment,
                    tries.made,
                    self.attempts,
                    error_text(exc),
                    delay,
                )
                self._sleep(delay)
                delay = min(2 * delay, MAX_BACKOFF_S)
                tries.made += 1

    def _remember(self, summary: TrainingSummary) -> None:
        log.info("retrain outcome:\n%s", render_summary(summary))
        self.summaries = [*self.summaries[-19:], summary]
