"""Helpers for scorer tests: topics with a published, deployed model, and a scorer process."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from services.common import serde
from services.trainer.dataset import credit_rows
from tests.kafka_support import ServiceProcess, make_topics, produce
from tests.model_factory import credit_content, keypair, published

LOGICAL = ["events", "predictions", "models", "deployments", "deadletter", "review"]


@dataclasses.dataclass
class ScorerWorld:
    """Topics under a unique prefix, a trusted key, and helpers to publish and produce."""

    bootstrap: str
    prefix: str
    keys_dir: Path
    log_dir: Path

    def __post_init__(self) -> None:
        self.namer = make_topics(self.bootstrap, self.prefix, LOGICAL)
        self.key = keypair(self.keys_dir)

    def publish(self, *records: dict[str, Any]) -> None:
        """Put ModelPublished records on the models topic."""
        produce(
            self.bootstrap,
            self.namer.models,
            [(r["content"]["name"], serde.encode("ModelPublished", r)) for r in records],
        )

    def deploy(self, record: dict[str, Any]) -> None:
        """Put a Deployment record on the deployments topic."""
        produce(
            self.bootstrap,
            self.namer.deployments,
            [(record["name"], serde.encode("Deployment", record))],
        )

    def events(
        self,
        n: int,
        deployment: str = "credit",
        start: int = 0,
        seed: int = 5,
    ) -> list[str]:
        """Produce n credit events; returns their association ids."""
        ids, items = [], []
        for i, (features, _label) in enumerate(credit_rows(n, seed=seed), start):
            aid = f"{self.prefix}{i}"
            ids.append(aid)
            items.append(
                (
                    aid,
                    serde.encode(
                        "FeatureEvent",
                        {
                            "association_id": aid,
                            "deployment": deployment,
                            "event_time": 1_700_000_000_000 + i,
                            "features": features,
                            "attributes": {},
                        },
                    ),
                )
            )
        produce(self.bootstrap, self.namer.events, items)
        return ids

    def scorer(
        self,
        *extra: str,
        instance: str | None = "s1",
        group: str | None = None,
        log_name: str | None = None,
    ) -> ServiceProcess:
        """A scorer process (not started); instance=None means dynamic group membership."""
        args = [
            "--kafka-bootstrap",
            self.bootstrap,
            "--topic-prefix",
            self.prefix,
            "--trusted-keys-dir",
            str(self.keys_dir),
            "--group-id",
            group or f"scorer-{self.prefix}",
            "--metrics-port",
            "0",
            *extra,
        ]
        if instance:
            args += ["--instance-id", instance]
        name = log_name or instance or "dynamic"
        return ServiceProcess("services.scorer", args, self.log_dir / f"scorer-{name}.log")


def world(bootstrap: str, prefix: str, tmp_path: Path) -> ScorerWorld:
    """A fresh scorer world in tmp_path."""
    keys = tmp_path / f"keys-{uuid.uuid4().hex[:6]}"
    keys.mkdir()
    return ScorerWorld(bootstrap, prefix, keys, tmp_path)


def v1_signed(w: ScorerWorld) -> dict[str, Any]:
    """The credit v1 model, signed with the world's key."""
    return published(credit_content(1), w.key)
