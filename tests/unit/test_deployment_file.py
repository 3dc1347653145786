"""The deployment file: parsed with every field's line, printed back in the same format."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from services.cli import deployment_file
from services.cli.deployment_file import parse, to_yaml
from services.common.errors import ConfigError
from services.registry import release_policy

pytestmark = pytest.mark.unit

RECORD = {
    "name": "credit",
    "revision": 4,
    "updated_at": 1,
    "updated_by": "bo",
    "reason": "two\nlines",
    "champion": {"model_name": "credit", "model_id": "a" * 64, "version": 3},
    "challengers": [
        {"model": {"model_name": "credit", "model_id": "b" * 64, "version": 4}, "weight": 0.2}
    ],
    "mode": "ab",
    "label_delay_seconds": 7200,
    "release": release_policy.normalize(
        {"approval": "auto", "retrain_every_seconds": 86400, "retrain_on": ["change_point"]}
    ),
    "humility": [
        {
            "kind": "uncertain",
            "feature": None,
            "low": 0.4,
            "high": 0.6,
            "margin": 0.0,
            "action": "flag",
            "override_value": None,
        }
    ],
    "thresholds": [
        {
            "metric": "psi",
            "feature": "age",
            "warning": 0.1,
            "critical": 0.2,
            "hysteresis": 0.0,
            "direction": "above",
        }
    ],
    "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
    "window_seconds": 60,
    "external": False,
}


def test_doctests():
    assert doctest.testmod(deployment_file).failed == 0


def test_what_get_prints_parses_back_into_the_same_deployment():
    text = to_yaml(RECORD)
    assert text.startswith("# deployment credit revision 4, approved by bo: two lines\n")
    doc = parse(text, "f.yaml")
    assert doc.name == "credit"
    assert doc.body["model"] == {"name": "credit", "version": 3}
    assert doc.body["challengers"] == [{"model": {"name": "credit", "version": 4}, "weight": 0.2}]
    assert doc.body["setup"] == {k: RECORD[k] for k in deployment_file.CONFIG}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: d\nchampion: m:1\ncolour: red\n", "f.yaml:3: colour: unknown field"),
        ("name: d\nchampion: m:1\nmode: ab\nmode: shadow\n", "f.yaml:4: 'mode' appears twice"),
        ("name: d\nchampion: m\n", "f.yaml:2: champion: give the model as NAME:VERSION"),
        ("name: d\n", "champion is missing"),
        ("name: d\nchampion: m:1\nchallengers: m:2\n", "f.yaml:3: challengers: a list"),
        ("name: d\nchampion: m:1\nchallengers:\n  - weight: 1\n", "f.yaml:4: challengers[0]"),
        ("name: d\nchampion: m:1\nchallengers:\n  - model: m\n", "f.yaml:4: challengers[0].model"),
        ("- just\n- a list\n", "a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: 3\nchampion: m:1\n", "f.yaml:1: name"),
    ],
)
def test_a_bad_file_is_refused_at_its_line(text, words):
    with pytest.raises(ConfigError) as caught:
        parse(text, "f.yaml")
    assert words in str(caught.value)


def test_a_field_the_registry_names_is_found_in_the_file():
    doc = parse(to_yaml(RECORD), "f.yaml")
    lines = to_yaml(RECORD).splitlines()
    assert (
        lines[int(doc.where("thresholds[0].critical").split(":")[1]) - 1].strip() == "critical: 0.2"
    )
    assert lines[int(doc.where("model").split(":")[1]) - 1].startswith("champion:")
    assert (
        lines[int(doc.where("challengers[0].model").split(":")[1]) - 1]
        .strip()
        .startswith("- model:")
    )
    assert doc.where("setup.colour") == "f.yaml"  # not in the file: the file itself


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
)
def test_every_example_file_parses_and_its_configuration_is_valid(path):
    from services.registry.deployment_config import normalize

    doc = parse(path.read_text(), path.name)
    assert doc.body["model"]["version"] >= 1
    normalize(doc.body["setup"], None)  # raises InvalidField naming the field
