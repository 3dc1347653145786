"""Rebuild the view from the topics: replay everything into an empty namespace.

`verify` replays into a scratch namespace and compares it with the live one (the registry's
promise that its state is a pure function of the topics); `replace` clears the live namespace and
replays into it, for a view that was lost or corrupted.
"""

from __future__ import annotations

import difflib
import json
import logging

from services.common.kafka_config import KafkaConfig
from services.common.model_verifier import ModelVerifier
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import TopicFollower
from services.common.topics import TopicNamer
from services.registry.app import FOLLOWED, redis_client, trusted_keys
from services.registry.config import RegistrySettings
from services.registry.ingest import Ingest
from services.registry.view import RegistryView

log = logging.getLogger(__name__)

SCRATCH = "rebuild."  # appended to the prefix for the scratch namespace


def replay(settings: RegistrySettings, key_prefix: str) -> RegistryView:
    """Clear the namespace `<key_prefix>registry:` and replay every followed topic into it."""
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, "streamops-registry-rebuild")
    view = RegistryView(
        redis_client(settings), key_prefix, settings.drift_reports_kept, settings.breaches_kept
    )
    view.clear()
    ingest = Ingest(view, ModelVerifier(trusted_keys(settings)), namer)
    follower = TopicFollower(
        kafka.consumer("streamops-registry-rebuild"),
        [namer.name(t) for t in FOLLOWED],
        TopicDecoder(namer),
        ingest,
        ingest.on_poison,
    ).start()
    try:
        follower.wait_ready(settings.replay_timeout_s)
    finally:
        follower.stop()
    return view


def diff(live: str, rebuilt: str, limit: int = 40) -> list[str]:
    """The first lines where two snapshots differ (empty when equal)."""
    if live == rebuilt:
        return []
    a = json.dumps(json.loads(live), indent=1, sort_keys=True).splitlines()
    b = json.dumps(json.loads(rebuilt), indent=1, sort_keys=True).splitlines()
    lines = difflib.unified_diff(a, b, "live", "rebuilt", lineterm="", n=1)
    return list(lines)[:limit]


def verify(settings: RegistrySettings) -> list[str]:
    """Replay into a scratch namespace; the differences from the live view (empty = identical)."""
    scratch = replay(settings, settings.topic_prefix + SCRATCH)
    try:
        live = RegistryView(
            scratch.r, settings.topic_prefix, settings.drift_reports_kept, settings.breaches_kept
        )
        return diff(live.snapshot(), scratch.snapshot())
    finally:
        scratch.clear()


def replace(settings: RegistrySettings) -> dict[str, int]:
    """Clear the live namespace and replay into it; returns the rebuilt view's sizes."""
    return replay(settings, settings.topic_prefix).sizes()
