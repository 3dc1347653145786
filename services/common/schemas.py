"""The Avro contract: every `.avsc` in `schemas/`, parsed once, with its fingerprint.

A fingerprint is the 8-byte CRC-64-AVRO of the schema's Parsing Canonical Form, little-endian,
as the Avro single-object encoding carries it. Earlier versions of a record, kept in
`schemas/previous/<Record>.v<N>.avsc`, are writer schemas only: data they wrote is read into the
current schema (new fields take their defaults), and nothing is written with them. Nested named
records (ModelContent inside ModelPublished) can be looked up by name too, and a record without
some of its fields (Deployment without its signature), for canonical encodings that sign a part.

>>> s = SchemaSet()
>>> s.name_for(s.fingerprint("Actual"))
'Actual'
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _plain(node: Any) -> Any:
    """The schema without logical types: timestamps stay epoch-millisecond ints in Python.

    The Parsing Canonical Form (hence the fingerprint) ignores logical types anyway.
    """
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _find_named(node: Any, name: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if node.get("type") == "record" and node.get("name") == name:
            return node
        for value in node.values():
            found = _find_named(value, name)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find_named(value, name)
            if found is not None:
                return found
    return None


class SchemaSet:
    """Parsed top-level schemas by name and by fingerprint."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.directory = directory
        self._raw: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, Any] = {}
        self._fingerprints: dict[str, bytes] = {}
        paths = sorted(directory.glob("*.avsc"))
        if not paths:
            raise FileNotFoundError(f"no .avsc files in {directory}")
        for path in paths:
            raw = json.loads(path.read_text())
            name = raw["name"]
            if name in self._raw:
                raise ValueError(f"schema {name} defined twice")
            self._raw[name] = raw
            self._parsed[name] = fastavro.parse_schema(_plain(raw))
            canonical = to_parsing_canonical_form(self._parsed[name])
            self._fingerprints[name] = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        self._by_fingerprint = {fp: name for name, fp in self._fingerprints.items()}
        # fingerprint -> parsed writer schema of an earlier version of a record
        self._earlier: dict[bytes, Any] = {}
        for path in sorted((directory / "previous").glob("*.avsc")):
            raw = json.loads(path.read_text())
            name = raw["name"]
            if name not in self._raw:
                raise ValueError(f"{path} is an earlier {name}, but there is no {name}.avsc")
            parsed = fastavro.parse_schema(_plain(raw))
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
            if fp in self._by_fingerprint or fp in self._earlier:
                raise ValueError(f"{path} has the fingerprint of another schema")
            self._earlier[fp] = parsed
            self._by_fingerprint[fp] = name

    def names(self) -> list[str]:
        """Top-level record names."""
        return sorted(self._raw)

    def raw(self, name: str) -> dict[str, Any]:
        """The schema as written in its file."""
        return self._raw[name]

    def parsed(self, name: str) -> Any:
        """The fastavro-parsed schema of a top-level record."""
        return self._parsed[name]

    def fingerprint(self, name: str) -> bytes:
        """8-byte CRC-64-AVRO fingerprint (little-endian) of a top-level record."""
        return self._fingerprints[name]

    def name_for(self, fp: bytes) -> str | None:
        """The record with this fingerprint (current or earlier version), or None."""
        return self._by_fingerprint.get(fp)

    def earlier_writer(self, fp: bytes) -> Any | None:
        """The parsed schema of an earlier version with this fingerprint; None for current ones."""
        return self._earlier.get(fp)

    def earlier_fingerprints(self) -> list[bytes]:
        """Fingerprints of the earlier versions still readable."""
        return sorted(self._earlier)

    @functools.cache  # noqa: B019 (one SchemaSet lives for the whole process)
    def nested(self, name: str) -> Any:
        """A parsed named record defined inside a top-level schema (e.g. ModelContent)."""
        if name in self._parsed:
            return self._parsed[name]
        for raw in self._raw.values():
            found = _find_named(raw, name)
            if found is not None:
                return fastavro.parse_schema(_plain(found))
        raise KeyError(f"no record named {name} in {self.directory}")

    @functools.cache  # noqa: B019 (as above)
    def without(self, name: str, fields: tuple[str, ...]) -> Any:
        """A top-level record's parsed schema without some of its fields (e.g. the signature
        fields of a record signed in place)."""
        raw = self._raw[name]
        kept = [f for f in raw["fields"] if f["name"] not in fields]
        return fastavro.parse_schema(_plain({**raw, "fields": kept}))


@functools.cache
def default_schemas() -> SchemaSet:
    """The project's schemas, loaded once per process."""
    return SchemaSet()
