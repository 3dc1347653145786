"""Guardrails: refuse a model a deployment cannot serve in place of (or beside) its champion.

Scorers feed every model of a deployment the same events, drift compares them with one baseline
layout and accuracy joins one label space, so a candidate must take the same inputs (names and
kinds), do the same task and predict the same classes as the champion. New categories are fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _features(content: Mapping[str, Any]) -> dict[str, str]:
    return {f["name"]: f["kind"] for f in content["signature_in"]["features"]}


def _label(content: Mapping[str, Any]) -> str:
    return f"{content['name']} v{content['version']}"


def incompatibilities(champion: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """Every reason `candidate` cannot serve beside `champion` (empty when compatible)."""
    problems: list[str] = []
    if candidate["task"] != champion["task"]:
        problems.append(f"task is {candidate['task']!r}, champion's is {champion['task']!r}")
    theirs, ours = _features(champion), _features(candidate)
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    if missing:
        problems.append(f"missing input features {missing}")
    if extra:
        problems.append(f"unexpected input features {extra}")
    for name in sorted(set(theirs) & set(ours)):
        if theirs[name] != ours[name]:
            problems.append(f"feature {name!r} is {ours[name]}, champion's is {theirs[name]}")
    if list(candidate["classes"]) != list(champion["classes"]):
        problems.append(
            f"classes {candidate['classes']} differ from champion's {champion['classes']}"
        )
    return problems


def refusal(
    deployment: str, champion: Mapping[str, Any], candidate: Mapping[str, Any]
) -> str | None:
    """A message naming every mismatch, or None when the candidate is compatible."""
    problems = incompatibilities(champion, candidate)
    if not problems:
        return None
    return (
        f"{_label(candidate)} is incompatible with deployment {deployment!r} "
        f"(champion {_label(champion)}): "
        + "; ".join(problems)
        + ". Train the candidate on the same inputs, task and classes, or deploy it under a "
        "new deployment name."
    )
