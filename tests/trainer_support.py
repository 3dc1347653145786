"""The trainer on the real broker in tests: labelled stream data, a published champion and its
deployment, retrain requests and outcomes, and the trainer run as a process."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from services.cli.__main__ import main
from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from services.common.topics import TopicNamer
from services.trainer.credit import credit_rows
from tests.kafka_support import ServiceProcess, make_topics, produce, read_all
from tests.model_factory import deployment
from tests.signing_support import deployment_bytes

T0 = 1_700_000_000_000
RETRAIN_TOPICS = [
    "models",
    "deployments",
    "events",
    "actuals",
    "retrain",
    "retrain_outcomes",
    "deadletter",
]


def produce_labelled(
    bootstrap: str, namer: TopicNamer, n: int, seed: int = 3, start: int = 0
) -> list[tuple[str, int, str]]:
    """n credit events (1 in 10 for another deployment), actuals for 9 in 10, some poison.

    Returns (association id, event time, label) of the labelled events of "credit".
    """
    events, actuals, labelled = [], [], []
    for i, (features, label) in enumerate(credit_rows(n, seed=seed, start=start), start):
        aid = f"s{seed}-{i}"
        dep = "other" if i % 10 == 3 else "credit"
        t = T0 + i * 1000
        event = {
            "association_id": aid,
            "deployment": dep,
            "event_time": t,
            "features": features,
            "attributes": {},
        }
        events.append((aid, serde.encode("FeatureEvent", event)))
        if i % 10 != 7:
            actual = {"association_id": aid, "deployment": dep, "label": label, "actual_time": t}
            actuals.append((aid, serde.encode("Actual", actual)))
            if dep == "credit":
                labelled.append((aid, t, label))
        if i % 250 == 0:
            events.append((aid, b"\x00garbage"))  # poison is skipped, never fatal
    produce(bootstrap, namer.events, events)
    produce(bootstrap, namer.actuals, actuals)
    return labelled


@dataclasses.dataclass(frozen=True)
class Champion:
    """A deployment "credit" whose champion v1 is published, with labelled events to retrain on."""

    namer: TopicNamer
    keys: Path
    verify: ModelVerifier
    v1: dict[str, Any]  # the champion's verified ModelContent


def deployed_champion(
    bootstrap: str, prefix: str, tmp_path: Path, labelled: int = 1500, seed: int = 5
) -> Champion:
    """Topics, a key pair, credit v1 trained by the CLI and deployed as "credit", and
    `labelled` stream events (about 81% of them labelled events of "credit")."""
    namer = make_topics(bootstrap, prefix, RETRAIN_TOPICS)
    keys = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(keys)]) == 0
    argv = ["train", "--dataset", "builtin:credit?rows=2000", "--model-name", "credit"]
    assert main([*argv, "--prefix", prefix, "--keys-dir", str(keys)]) == 0
    verify = ModelVerifier(signing.load_public_keys(keys))
    ((_p, _o, _k, value),) = read_all(bootstrap, namer.models, idle_s=0.5)
    v1 = verify(serde.decode(value, expected="ModelPublished")[1])
    produce(
        bootstrap,
        namer.deployments,
        [("credit", deployment_bytes(deployment(v1, name="credit")))],
    )
    produce_labelled(bootstrap, namer, labelled, seed=seed)
    return Champion(namer, keys, verify, dict(v1))


def retrain_request(rid: str, deployment_name: str = "credit") -> tuple[str, bytes]:
    """A (key, value) RetrainRequest asked now, for the trainer's default number of rows."""
    record = {
        "request_id": rid,
        "deployment": deployment_name,
        "reason": "accuracy breach",
        "requested_by": "tests",
        "requested_at": int(time.time() * 1000),
        "breach_ids": ["b1"],
        "last_n": None,
    }
    return deployment_name, serde.encode("RetrainRequest", record)


def outcomes(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """The RetrainOutcome records on the topic, oldest first."""
    return [
        serde.decode(v, expected="RetrainOutcome")[1]
        for _p, _o, _k, v in read_all(bootstrap, topic, idle_s=0.5)
    ]


def start_trainer(
    bootstrap: str, prefix: str, keys: Path, group: str, log_path: Path, **settings: Any
) -> ServiceProcess:
    """Start `python -m services.trainer` (the retrain consumer) with test settings."""
    flags = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": prefix,
        "keys_dir": str(keys),
        "group_id": group,
        "metrics_port": 0,
        **settings,
    }
    args = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    return ServiceProcess("services.trainer", args, log_path).start()
