"""`streamops version`: the package version and the versions of the parts it runs on."""

from __future__ import annotations

import argparse
from importlib import metadata

PARTS = ("confluent-kafka", "fastavro", "scikit-learn", "onnxruntime", "faust-streaming", "redis")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `version`."""
    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Print versions, one per line."""
    try:
        print(f"streamops {metadata.version('streamops')}")
    except metadata.PackageNotFoundError:
        print("streamops (source tree, not installed: run `make venv`)")
    for part in PARTS:
        try:
            print(f"  {part} {metadata.version(part)}")
        except metadata.PackageNotFoundError:
            print(f"  {part} (not installed)")
    return 0
