"""Writes BENCHMARKS.md from loadtest/results/*.json, with the machine and versions."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Render every result file as a table."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; every figure is measured side by side with its baseline in "
        "the same run, on the same machine and broker.",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- python {platform.python_version()}, confluent-kafka "
        f"{metadata.version('confluent-kafka')}, Kafka 4.1.2 (single KRaft node, loopback)",
        "",
    ]
    for path in sorted((ROOT / "loadtest" / "results").glob("*.json")):
        data = json.loads(path.read_text())
        lines += [f"## {path.stem}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in data.items()]
        lines.append("")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("wrote BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
