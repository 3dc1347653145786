"""The package list in pyproject.toml: every package under services/ is installed, and
`streamops` is the Python client (services/client) under its own name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_under_services_is_listed_and_streamops_is_the_client():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set(find_packages(str(ROOT), include=["services*"]))
    assert listed - {"streamops"} == found, "add (or remove) the package in pyproject.toml"
    assert config["package-dir"] == {"streamops": "services/client"}


def test_import_streamops_gives_the_client():
    import streamops

    from services import client

    assert streamops.publish_model.__doc__ == client.publish_model.__doc__
    assert Path(streamops.__file__).resolve() == Path(client.__file__).resolve()
