"""Walk Avro binary data against its schema without building anything, to refuse size bombs.

fastavro trusts declared lengths: a record of a few bytes may declare fifty million array items,
and a large record may legally hold millions of tiny items that become millions of Python
objects. This walker checks every declared count and length against the bytes that remain and
counts collection items against a limit, so such data is refused before it is decoded.

>>> import fastavro
>>> s = fastavro.parse_schema({"type": "array", "items": "long"})
>>> walk(b"\\x04\\x02\\x04\\x00", s)
4
>>> try:
...     walk(b"\\x80\\x80\\x80\\x80\\x10\\x02", s)
... except SizeBomb as exc:
...     print(exc)
array declares 2147483648 items: over 1000000 in one record
"""

from __future__ import annotations

from typing import Any

MAX_ITEMS = 1_000_000  # collection items in one record, all collections together

# Fixed byte sizes and the least bytes any encoding of a type can take.
_FIXED = {"float": 4, "double": 8}


class SizeBomb(ValueError):
    """Declared sizes exceed what any message we accept could hold."""


class Malformed(ValueError):
    """The data cannot be a value of the schema (bad union branch, negative length)."""


class Truncated(Malformed):
    """The data ends before the schema says it should."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift, acc = 0, 0
    end = len(data)
    while True:
        if pos >= end:
            raise Truncated("data ends inside a number")
        b = data[pos]
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7
        if shift > 63:
            raise Malformed("number longer than 10 bytes")


def _min_size(schema: Any) -> int:
    """The fewest bytes one value of this schema can take (0 only for null)."""
    if isinstance(schema, str):
        return 0 if schema == "null" else _FIXED.get(schema, 1)
    if isinstance(schema, list):
        return 1
    kind = schema["type"]
    if kind == "record":
        return sum(_min_size(f["type"]) for f in schema["fields"])
    if kind == "fixed":
        return schema["size"]
    if kind in ("array", "map", "enum"):
        return 1
    return _min_size(kind)


class _Walker:
    def __init__(self, data: bytes, named: dict[str, Any], max_items: int, max_bytes: int) -> None:
        self.data = data
        self.named = named
        self.items = 0
        self.max_items = max_items
        self.max_bytes = max_bytes

    def _beyond(self, needed: int, pos: int, what: str) -> None:
        # More than any acceptable message could hold is a bomb; merely more than this one
        # holds is a message cut short.
        remaining = len(self.data) - pos
        if needed > self.max_bytes:
            raise SizeBomb(f"{what} but only {remaining} bytes remain")
        if needed > remaining:
            raise Truncated(f"{what} but only {remaining} bytes remain")

    def _length(self, pos: int, what: str) -> tuple[int, int]:
        n, pos = _varint(self.data, pos)
        if n < 0:
            raise Malformed(f"negative {what} length {n}")
        self._beyond(n, pos, f"{what} declares {n} bytes")
        return n, pos + n

    def _block(self, pos: int, item_min: int, what: str) -> tuple[int, int]:
        count, pos = _varint(self.data, pos)
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _size, pos = _varint(self.data, pos)
        self.items += count
        if self.items > self.max_items:
            raise SizeBomb(f"{what} declares {count} items: over {self.max_items} in one record")
        self._beyond(count * item_min, pos, f"{what} declares {count} items")
        return count, pos

    def value(self, schema: Any, pos: int) -> int:
        if isinstance(schema, list):
            index, pos = _varint(self.data, pos)
            if not 0 <= index < len(schema):
                raise Malformed(f"union branch {index} does not exist")
            return self.value(schema[index], pos)
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], pos)
            if schema == "null":
                return pos
            if schema == "boolean":
                if pos >= len(self.data):
                    raise Truncated("data ends inside a boolean")
                return pos + 1
            if schema in ("int", "long"):
                return _varint(self.data, pos)[1]
            if schema in _FIXED:
                end = pos + _FIXED[schema]
                if end > len(self.data):
                    raise Truncated(f"data ends inside a {schema}")
                return end
            if schema in ("bytes", "string"):
                return self._length(pos, schema)[1]
            raise Malformed(f"unknown type {schema}")
        kind = schema["type"]
        if kind == "record":
            for field in schema["fields"]:
                pos = self.value(field["type"], pos)
            return pos
        if kind in ("array", "map"):
            inner = schema["items"] if kind == "array" else schema["values"]
            item_min = _min_size(inner) + (1 if kind == "map" else 0)
            while True:
                count, pos = self._block(pos, item_min, kind)
                if count == 0:
                    return pos
                for _ in range(count):
                    if kind == "map":
                        pos = self._length(pos, "map key")[1]
                    pos = self.value(inner, pos)
        if kind == "enum":
            return _varint(self.data, pos)[1]
        if kind == "fixed":
            end = pos + schema["size"]
            if end > len(self.data):
                raise Truncated("data ends inside a fixed")
            return end
        return self.value(kind, pos)  # {"type": "long", "logicalType": ...}


def walk(
    data: bytes, parsed_schema: Any, max_items: int = MAX_ITEMS, max_bytes: int | None = None
) -> int:
    """Bytes the value at the start of data occupies; raises SizeBomb, Truncated or Malformed.

    A declared size beyond `max_bytes` (default: the data's own length) is a SizeBomb; one
    within it but beyond the data is Truncated.
    """
    named = (
        dict(parsed_schema.get("__named_schemas", {})) if isinstance(parsed_schema, dict) else {}
    )
    limit = len(data) if max_bytes is None else max_bytes
    return _Walker(data, named, max_items, limit).value(parsed_schema, 0)
