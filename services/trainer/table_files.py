"""Read a table file into rows: CSV, JSON lines or Parquet, chosen by the file's suffix.

Each reader returns the columns in file order and one dict per row; a missing value is None.
CSV cells are all text (numbers are parsed later); JSON lines and Parquet values keep their
types. Errors name the file and, where there is one, the line.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
>>> _ = path.write_text('{"a-b": 1, "c": "x"}\\n{"a-b": 2.5}\\n')
>>> t = read_table(path)
>>> t.header, t.records[1], t.text_cells
(['a-b', 'c'], {'a-b': 2.5, 'c': None}, False)
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from services.common.errors import ConfigError

JSON_LINES = (".jsonl", ".ndjson")
PARQUET = (".parquet", ".pq")


@dataclasses.dataclass(frozen=True)
class Table:
    """A file's columns, rows and content hash."""

    header: list[str]
    records: list[dict[str, Any]]
    content_hash: str
    text_cells: bool  # CSV: every cell is text and numbers are parsed from it


def _check_header(path: Path, header: list[str]) -> None:
    if not header:
        raise ConfigError(f"{path}: empty file; a data set needs a header row and data rows")
    if "" in header:
        raise ConfigError(f"{path}: column {header.index('') + 1} of the header has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ConfigError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)


def _csv(path: Path, data: bytes) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    _check_header(path, header)
    records = []
    for line_no, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise ConfigError(
                f"{path}:{line_no}: {len(cells)} cells, the header has {len(header)}; "
                "every row needs one cell per column (an empty cell is a missing value)"
            )
        records.append({h: (c.strip() or None) for h, c in zip(header, cells, strict=True)})
    return Table(header, records, hashlib.sha256(data).hexdigest(), text_cells=True)


def _scalar(path: Path, where: str, column: str, value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ConfigError(f"{path}:{where}: column {column!r} holds a nested value; flatten it")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_lines(path: Path, data: bytes) -> Table:
    header: dict[str, None] = {}
    records = []
    for line_no, line in enumerate(data.decode("utf-8-sig", errors="strict").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{path}:{line_no}: not a JSON object: {exc}") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{line_no}: each line must be a JSON object")
        header.update(dict.fromkeys(row))
        records.append({k: _scalar(path, str(line_no), k, v) for k, v in row.items()})
    _check_header(path, list(header))
    for record in records:
        for name in header:
            record.setdefault(name, None)
    return Table(list(header), records, hashlib.sha256(data).hexdigest(), text_cells=False)


def _parquet(path: Path, data: bytes) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"{path}: not a readable Parquet file: {exc}") from None
    header = list(table.column_names)
    _check_header(path, header)
    records = [
        {k: _scalar(path, f"row {i + 1}", k, v) for k, v in row.items()}
        for i, row in enumerate(table.to_pylist())
    ]
    return Table(header, records, hashlib.sha256(data).hexdigest(), text_cells=False)


def read_table(path: Path) -> Table:
    """The table in ``path``: ``.jsonl``/``.ndjson`` JSON lines, ``.parquet``, else CSV."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read data set {str(path)!r}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in JSON_LINES:
            return _json_lines(path, data)
        if suffix in PARQUET:
            return _parquet(path, data)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return _csv(path, data)
