"""Which model scores which event: champion, shadow challengers, or a sticky A/B/n split.

>>> d = {"mode": "ab", "champion": {"model_id": "m1"},
...      "challengers": [{"model": {"model_id": "m2"}, "weight": 0.5}]}
>>> sorted({v.model_id for v in assign(["a", "b", "c", "d", "e", "f"], d)})
['m1', 'm2']
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

CHAMPION, CHALLENGER, VARIANT = "champion", "challenger", "variant"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model's part in a deployment: its role and whether its rows are the answer."""

    model_id: str
    role: str
    served: bool


def bucket(association_id: str) -> float:
    """A stable number in [0, 1) from an association id (same in every process, every run)."""
    digest = hashlib.blake2b(association_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def shadow_plan(deployment: dict[str, Any]) -> list[Variant]:
    """Shadow mode: the champion answers; every challenger scores the same events silently."""
    plan = [Variant(deployment["champion"]["model_id"], CHAMPION, True)]
    plan += [
        Variant(c["model"]["model_id"], CHALLENGER, False)
        for c in deployment.get("challengers", [])
    ]
    return plan


def ab_weights(deployment: dict[str, Any]) -> list[tuple[Variant, float]]:
    """A/B/n mode: challengers take their weights, the champion the rest."""
    challengers = deployment.get("challengers", [])
    total = sum(max(0.0, c["weight"]) for c in challengers)
    if total > 1.0:
        raise ValueError(f"challenger weights sum to {total:.3f} > 1")
    weights = [(Variant(deployment["champion"]["model_id"], CHAMPION, True), 1.0 - total)]
    weights += [
        (Variant(c["model"]["model_id"], VARIANT, True), max(0.0, c["weight"])) for c in challengers
    ]
    return weights


def assign(association_ids: Sequence[str], deployment: dict[str, Any]) -> list[Variant]:
    """For A/B/n: the one variant serving each event, sticky by association id."""
    weights = ab_weights(deployment)
    edges, acc = [], 0.0
    for _variant, w in weights:
        acc += w
        edges.append(acc)
    out = []
    for aid in association_ids:
        b = bucket(aid)
        for (variant, _w), edge in zip(weights, edges, strict=True):
            if b < edge:
                out.append(variant)
                break
        else:
            out.append(weights[0][0])  # rounding at the top edge: the champion
    return out
