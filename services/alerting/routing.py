"""The alerting config file: receivers, the routing tree and the retrain policy, validated.

```yaml
receivers:
  - {name: ops, url: "https://hooks.example.com/x", secret: "whsec_...", timeout: 10s}
route:
  receiver: ops
  group_by: [deployment]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - {matchers: ['severity="critical"'], receiver: pager, continue: false}
retrain: {after_windows: 3, kinds: [accuracy, data_drift]}
```

Errors name the file and line (the YAML is composed into nodes, which keep their marks); unknown
and duplicate keys are refused. Children inherit receiver, grouping and timers from their parent;
`match` follows Alertmanager: the deepest matching routes win, siblings stop at the first match
unless it says `continue`. Receiver URLs are checked for syntax and literal addresses here; names
are resolved and checked by the service (`ssrf.check_url`). Secrets never appear in a repr.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from services.alerting.alert import KINDS
from services.alerting.marked_yaml import MarkedDoc
from services.alerting.matchers import LABEL_NAME, Matcher, MatcherError, matches_all
from services.alerting.retrain_policy import RetrainConfig
from services.alerting.ssrf import (
    PRODUCTION,
    Policy,
    UnsafeDestination,
    check_address,
    numeric_host,
    parse_url,
)
from services.alerting.webhook_signing import decode_secret
from services.common.errors import ConfigError
from services.common.settings import Secret

DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 14_400.0}


@dataclasses.dataclass(frozen=True)
class Receiver:
    """A webhook endpoint and the secrets it is signed with (first is current)."""

    name: str
    url: str
    secrets: tuple[Secret, ...]
    timeout_s: float = 10.0

    def __repr__(self) -> str:
        # URLs often carry tokens in their path (chat webhooks): show only scheme and host.
        scheme, host, port = parse_url(self.url)
        return f"Receiver(name={self.name!r}, url='{scheme}://{host}:{port}/…', secrets=***)"


@dataclasses.dataclass(frozen=True)
class Route:
    """One node of the routing tree, with inherited values already filled in."""

    key: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    matchers: tuple[Matcher, ...] = ()
    continue_matching: bool = False
    routes: tuple[Route, ...] = ()
    line: int = 0

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with these labels goes to (Alertmanager's tree walk)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_matching:
                break
        return found or [self]

    def walk(self) -> list[Route]:
        """This route and every descendant, depth first."""
        return [self, *(r for child in self.routes for r in child.walk())]


@dataclasses.dataclass(frozen=True)
class AlertingConfig:
    """The whole validated file."""

    source: str
    receivers: dict[str, Receiver]
    route: Route
    retrain: RetrainConfig

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with these labels goes to."""
        return self.route.match(labels)

    def routes(self) -> list[Route]:
        """Every route, depth first (one grouper each)."""
        return self.route.walk()


def _receiver(doc: MarkedDoc, node: yaml.Node, policy: Policy) -> Receiver:
    fields = doc.mapping(
        node, "a receiver", {"name", "url", "secret", "timeout"}, {"name", "url", "secret"}
    )
    name = doc.scalar(fields["name"], "receiver name", str)
    url = doc.scalar(fields["url"], "receiver url", str)
    try:
        host = parse_url(url)[1]
        literal = numeric_host(host)
        if literal is not None:
            check_address(literal, policy)
    except UnsafeDestination as exc:
        raise doc.error(fields["url"], f"receiver {name!r} url refused: {exc}") from None
    secret_node = fields["secret"]
    raw = (
        [doc.scalar(n, "secret", str) for n in doc.sequence(secret_node, "secret")]
        if isinstance(secret_node, yaml.SequenceNode)
        else [doc.scalar(secret_node, "secret", str)]
    )
    for value in raw:
        try:
            decode_secret(value)
        except ValueError as exc:
            raise doc.error(secret_node, f"receiver {name!r}: {exc}") from None
    if not raw:
        raise doc.error(secret_node, f"receiver {name!r} needs a secret")
    timeout = doc.duration(fields["timeout"], "timeout") if "timeout" in fields else 10.0
    if not 0 < timeout <= 300:
        raise doc.error(fields["timeout"], "timeout must be above 0 and at most 5m")
    return Receiver(name, url, tuple(Secret(s) for s in raw), timeout)


_ROUTE_KEYS = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval"}


def _route(
    doc: MarkedDoc,
    node: yaml.Node,
    parent: Route | None,
    key: str,
    receivers: Mapping[str, Receiver],
) -> Route:
    allowed = _ROUTE_KEYS | {"routes"} | ({"matchers", "continue"} if parent else set())
    fields = doc.mapping(node, "a route", allowed, set() if parent else {"receiver"})
    values: dict[str, Any] = dataclasses.asdict(parent) if parent else dict(DEFAULTS)
    if "receiver" in fields:
        values["receiver"] = doc.scalar(fields["receiver"], "receiver", str)
        if values["receiver"] not in receivers:
            raise doc.error(fields["receiver"], f"unknown receiver {values['receiver']!r}")
    if "group_by" in fields:
        names = [
            doc.scalar(n, "group_by", str) for n in doc.sequence(fields["group_by"], "group_by")
        ]
        for n in names:
            if n != "..." and not LABEL_NAME.fullmatch(n):
                raise doc.error(fields["group_by"], f"group_by: {n!r} is not a label name")
        values["group_by"] = tuple(names)
    elif parent is None:
        values["group_by"] = ("deployment",)
    for timer in ("group_wait", "group_interval", "repeat_interval"):
        if timer in fields:
            values[timer] = doc.duration(fields[timer], timer)
            if timer != "group_wait" and values[timer] <= 0:
                raise doc.error(fields[timer], f"{timer} must be above 0")
    matchers: tuple[Matcher, ...] = ()
    if "matchers" in fields:
        try:
            matchers = tuple(
                Matcher.parse(doc.scalar(n, "matcher", str))
                for n in doc.sequence(fields["matchers"], "matchers")
            )
        except MatcherError as exc:
            raise doc.error(fields["matchers"], str(exc)) from None
    cont = doc.scalar(fields["continue"], "continue", bool) if "continue" in fields else False
    route = Route(
        key=key,
        receiver=values["receiver"],
        group_by=tuple(values["group_by"]),
        group_wait=values["group_wait"],
        group_interval=values["group_interval"],
        repeat_interval=values["repeat_interval"],
        matchers=matchers,
        continue_matching=cont,
        line=node.start_mark.line + 1,
    )
    children: list[Route] = []
    seen: set[str] = set()
    for i, child_node in enumerate(doc.sequence(fields.get("routes", _EMPTY), "routes")):
        child_fields = child_node.value if isinstance(child_node, yaml.MappingNode) else []
        spelled = next(
            (
                [m.value for m in v.value if isinstance(m, yaml.ScalarNode)]
                for k, v in child_fields
                if k.value == "matchers" and isinstance(v, yaml.SequenceNode)
            ),
            [],
        )
        child_key = f"{key}/{{{','.join(spelled)}}}"
        # Alertmanager-like keys stay stable when siblings are added; duplicates get an index.
        child_key = child_key if child_key not in seen else f"{child_key}#{i}"
        seen.add(child_key)
        children.append(_route(doc, child_node, route, child_key, receivers))
    return dataclasses.replace(route, routes=tuple(children))


_EMPTY = yaml.SequenceNode("tag:yaml.org,2002:seq", [])


def _retrain(doc: MarkedDoc, node: yaml.Node | None) -> RetrainConfig:
    if node is None:
        return RetrainConfig()
    fields = doc.mapping(node, "retrain", {"after_windows", "kinds"})
    config = RetrainConfig()
    if "after_windows" in fields:
        k = doc.scalar(fields["after_windows"], "after_windows", int)
        if not 1 <= k <= 1000:
            raise doc.error(fields["after_windows"], "after_windows must be between 1 and 1000")
        config = dataclasses.replace(config, after_windows=k)
    if "kinds" in fields:
        kinds = [doc.scalar(n, "kind", str) for n in doc.sequence(fields["kinds"], "kinds")]
        for kind in kinds:
            if kind not in KINDS:
                raise doc.error(fields["kinds"], f"unknown kind {kind!r} (one of {sorted(KINDS)})")
        config = dataclasses.replace(config, kinds=frozenset(kinds))
    return config


def parse_config(
    text: str, source: str = "<alerting config>", policy: Policy = PRODUCTION
) -> AlertingConfig:
    """Validate the YAML text; ConfigError naming `source` and the line on any problem."""
    doc = MarkedDoc(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem}") from None
    if root is None:
        raise ConfigError(f"{source}:1: the alerting config is empty")
    top = doc.mapping(
        root, "the alerting config", {"receivers", "route", "retrain"}, {"receivers", "route"}
    )
    receivers: dict[str, Receiver] = {}
    for node in doc.sequence(top["receivers"], "receivers"):
        receiver = _receiver(doc, node, policy)
        if receiver.name in receivers:
            raise doc.error(node, f"duplicate receiver name {receiver.name!r}")
        receivers[receiver.name] = receiver
    route = _route(doc, top["route"], None, "{}", receivers)
    return AlertingConfig(source, receivers, route, _retrain(doc, top.get("retrain")))


def load_config(path: str | Path, policy: Policy = PRODUCTION) -> AlertingConfig:
    """Read and validate the alerting config file at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the alerting config: {exc.strerror}") from None
    return parse_config(text, str(path), policy)
