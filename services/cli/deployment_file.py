"""The deployment file: one YAML document declaring a whole deployment.

`streamops apply -f FILE` reads it into one `apply` change request; `streamops get deployment
NAME -o yaml` writes the current revision in the same format, so a file can be fetched, edited
and applied back. Every value keeps the line it came from, so an error the registry reports for
a field (`thresholds[1].direction`) is shown at its line in the file.

>>> doc = parse("name: credit\\nchampion: credit:3\\nthresholds:\\n  - metric: psi\\n"
...             "    warning: 0.1\\n    critical: 0.2\\n", "d.yaml")
>>> doc.body["model"], doc.body["setup"]["thresholds"][0]["metric"]
({'name': 'credit', 'version': 3}, 'psi')
>>> doc.where("thresholds[0].critical")
'd.yaml:6'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import yaml

from services.common.errors import ConfigError

CONFIG = (
    "mode",
    "external",
    "window_seconds",
    "label_delay_seconds",
    "thresholds",
    "humility",
    "policy",
    "release",
)
FIELDS = ("name", "champion", "challengers", *CONFIG)
_MODEL = re.compile(r"(?P<name>[^:\s]+):(?P<version>\d+)")
# The registry names the champion of a request `model`; the file calls it `champion`.
_REQUEST_TO_FILE = {"model": "champion", "setup": ""}


@dataclasses.dataclass(frozen=True)
class DeploymentFile:
    """A parsed deployment file: the registry request body and the line of every field."""

    source: str
    name: str
    body: dict[str, Any]
    lines: dict[str, int]

    def where(self, field: str | None) -> str:
        """`file:line` of a field path the registry named (its nearest enclosing entry)."""
        path = _file_path(field or "")
        while path:
            if path in self.lines:
                return f"{self.source}:{self.lines[path]}"
            path = re.sub(r"(\.[^.\[\]]+|\[\d+\]|^[^.\[\]]+)$", "", path)
        return self.source


def _file_path(field: str) -> str:
    head, _, rest = field.partition(".")
    head_name = re.sub(r"\[\d+\]$", "", head)
    if head_name in _REQUEST_TO_FILE:
        mapped = _REQUEST_TO_FILE[head_name] + head[len(head_name) :]
        return ".".join(p for p in (mapped, rest) if p)
    return field


def _lines(node: yaml.Node, path: str, out: dict[str, int], source: str) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise ConfigError(f"{source}:{key.start_mark.line + 1}: {name!r} appears twice")
            seen.add(name)
            child = f"{path}.{name}" if path else name
            out[child] = key.start_mark.line + 1
            _lines(value, child, out, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, f"{path}[{i}]", out, source)


def _model(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str) and (m := _MODEL.fullmatch(value.strip())):
        return {"name": m["name"], "version": int(m["version"])}
    if isinstance(value, Mapping) and set(value) == {"name", "version"}:
        return {"name": str(value["name"]), "version": value["version"]}
    raise ConfigError(f"{where}: give the model as NAME:VERSION (e.g. credit:3), not {value!r}")


def parse(text: str, source: str) -> DeploymentFile:
    """Read a deployment file; raises ConfigError naming `file:line` and the field."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or node is None:
        raise ConfigError(f"{source}: a deployment file is a mapping with name and champion")
    lines: dict[str, int] = {}
    _lines(node, "", lines, source)

    def at(field: str) -> str:
        return f"{source}:{lines.get(field, 1)}: {field}"

    for key in data:
        if key not in FIELDS:
            raise ConfigError(f"{at(str(key))}: unknown field; known: {', '.join(FIELDS)}")
    for key in ("name", "champion"):
        if key not in data:
            raise ConfigError(f"{source}: {key} is missing")
    if not isinstance(data["name"], str) or not data["name"]:
        raise ConfigError(f"{at('name')}: the deployment's name, a string")
    challengers = data.get("challengers") or []
    if not isinstance(challengers, list):
        raise ConfigError(f"{at('challengers')}: a list of {{model: NAME:VERSION, weight}}")
    declared = []
    for i, c in enumerate(challengers):
        where = f"challengers[{i}]"
        if not isinstance(c, Mapping) or not set(c) <= {"model", "weight"} or "model" not in c:
            raise ConfigError(f"{at(where)}: give model: NAME:VERSION and optionally weight")
        declared.append(
            {"model": _model(c["model"], at(f"{where}.model")), "weight": c.get("weight", 0.0)}
        )
    body = {
        "action": "apply",
        "model": _model(data["champion"], at("champion")),
        "challengers": declared,
        "setup": {k: data[k] for k in CONFIG if k in data},
    }
    return DeploymentFile(source, data["name"], body, lines)


THRESHOLD_ORDER = ("metric", "feature", "warning", "critical", "hysteresis", "direction")
HUMILITY_ORDER = ("kind", "feature", "low", "high", "margin", "action", "override_value")
RELEASE_ORDER = (
    "action",
    "approval",
    "min_windows",
    "min_labels",
    "margin",
    "significance",
    "max_windows",
    "rollback_windows",
    "rollback_margin",
    "retrain_every_seconds",
    "retrain_after_labels",
    "retrain_on",
)


def _ordered(entry: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {k: entry[k] for k in order if k in entry} | dict(entry)


def to_yaml(record: Mapping[str, Any]) -> str:
    """A Deployment record (as the registry serves it) in the deployment file format."""

    def model(ref: Mapping[str, Any]) -> str:
        return f"{ref['model_name']}:{ref['version']}"

    doc = {
        "name": record["name"],
        "champion": model(record["champion"]),
        "challengers": [
            {"model": model(c["model"]), "weight": c["weight"]} for c in record["challengers"]
        ],
    }
    doc |= {k: record[k] for k in CONFIG if k in record}
    # Entries in the order people write them (the API answers with sorted keys).
    doc["thresholds"] = [_ordered(t, THRESHOLD_ORDER) for t in doc.get("thresholds", [])]
    doc["humility"] = [_ordered(r, HUMILITY_ORDER) for r in doc.get("humility", [])]
    if doc.get("release"):
        doc["release"] = _ordered(doc["release"], RELEASE_ORDER)
    reason = " ".join(str(record["reason"]).split())[:200]
    header = (
        f"# deployment {record['name']} revision {record['revision']}, approved by "
        f"{record['updated_by']}: {reason}\n"
        "# edit and apply with `streamops apply -f FILE`\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
