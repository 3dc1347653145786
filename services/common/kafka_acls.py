"""Who may read and write which topic on the secured broker: the table, spelled once.

Least privilege per principal. Topics are named logically (`models`) and resolved under the
stack's topic prefix when the ACLs are applied (`services/common/admin.py`, `apply_acls`). Each
service also owns the consumer groups and transactional ids that start with its own name
(`streamops-scorer...`, or `<prefix>scorer...` as the demo names them). `admin` (the CLI's admin
tasks) and `broker` (the nodes) are super users in the broker's configuration and need no rows.
docs/security.md shows this table; `tests/integration/test_secured_broker.py` tries every cell.

>>> GRANTS["scorer"].writes
('predictions', 'deadletter', 'review')
>>> sorted(p for p, g in GRANTS.items() if "deployments" in g.writes)
['registry']
>>> owned_prefixes("scorer", "demo-1.")
('streamops-scorer', 'demo-1.scorer')
"""

from __future__ import annotations

import dataclasses

from services.common.topics import TOPIC_SPECS

SUPER_USERS = ("admin", "broker")


@dataclasses.dataclass(frozen=True)
class Grants:
    """The logical topics one principal may read and write."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    # Every principal owns the groups and transactional ids starting with its own names
    # (owned_prefixes); one with owns_topics also the topics starting with them: Faust
    # (alerting) makes its own assignor topic.
    owns_topics: bool = False


GRANTS: dict[str, Grants] = {
    "trainer": Grants(
        reads=("events", "actuals", "models", "deployments", "retrain"),
        writes=("models", "retrain_outcomes", "deadletter"),
    ),
    "scorer": Grants(
        reads=("events", "models", "deployments"),
        writes=("predictions", "deadletter", "review"),
    ),
    "drift": Grants(
        reads=("events", "predictions", "actuals", "models", "deployments"),
        writes=("drift", "breaches", "deadletter"),
    ),
    "alerting": Grants(
        reads=("breaches", "deployments", "retrain_outcomes"),
        writes=("retrain", "deadletter"),
        owns_topics=True,
    ),
    "registry": Grants(
        reads=(
            "models",
            "deployments",
            "governance",
            "drift",
            "breaches",
            "retrain_outcomes",
            "events",
            "predictions",
            "deadletter",
        ),
        writes=("deployments", "governance", "retrain", "deadletter"),
    ),
    # Users' applications (streamops.Client, kcat): send events and labels, report an external
    # deployment's predictions, read predictions (in groups named streamops-client...).
    "client": Grants(
        reads=("predictions",),
        writes=("events", "actuals", "predictions"),
    ),
}

PRINCIPALS = (*SUPER_USERS, *GRANTS)


def owned_prefixes(principal: str, topic_prefix: str) -> tuple[str, ...]:
    """Group and transactional-id prefixes a principal owns (its defaults and the demo's)."""
    return (f"streamops-{principal}", f"{topic_prefix}{principal}")


def _check() -> None:
    known = {spec.logical for spec in TOPIC_SPECS}
    for principal, grants in GRANTS.items():
        unknown = set(grants.reads + grants.writes) - known
        if unknown:
            raise AssertionError(f"kafka_acls: {principal} names unknown topics {sorted(unknown)}")


_check()
