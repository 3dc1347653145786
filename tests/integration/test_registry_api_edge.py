"""The registry API's edge on the real Redis (no broker): hostile names, bodies and methods.

Each input here is one found by trying the product (issue 28): before the edge checks, every
hostile name below created a change request, a 50 MB body was read and parsed whole (and its
reason then failed to fit a Kafka message: 503, "try again"), and a made-up method became a
label value of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.common import signing
from services.common.model_verifier import ModelVerifier
from services.common.settings import Secret
from services.common.topics import TopicNamer
from services.registry.api import ApiMetrics, create_app
from services.registry.governance import Governor
from services.registry.ingest import Ingest
from services.registry.limits import MAX_BODY_BYTES, MAX_REASON_CHARS, NAME_PATTERN
from services.registry.roles import TokenTable
from services.registry.view import RegistryView
from tests.model_factory import credit_content, keypair, published

pytestmark = pytest.mark.integration

TOKENS = Secret("bo:owner:bo-token-16chars,ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars")
BO, ED, VI = ({"Authorization": f"Bearer {n}-token-16chars"} for n in ("bo", "ed", "vi"))
HOSTILE = ["..", "n" * 5000, "<img src=x onerror=alert(1)>", "a\x07b"]
START = {"action": "set_champion", "reason": "start", "model": {"name": "credit", "version": 1}}


class Written:
    """A publisher that keeps what it is asked to write."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def publish(self, records: list[Any]) -> None:
        self.records.extend(records)


@pytest.fixture()
def edge(redis_client, prefix, tmp_path) -> Iterator[dict[str, Any]]:
    view = RegistryView(redis_client, prefix)
    namer = TopicNamer(prefix)
    key = keypair(tmp_path / "keys")
    ingest = Ingest(view, ModelVerifier(signing.load_public_keys(tmp_path / "keys")), namer)
    ingest(namer.models, published(credit_content(), key))
    written = Written()
    metrics = ApiMetrics(CollectorRegistry())
    app = create_app(view, Governor(view, written), TokenTable.parse(TOKENS), False, metrics)
    yield {"view": view, "written": written, "client": TestClient(app)}
    view.clear()


def _path(name: str) -> str:
    # Dots encoded too: a client would otherwise resolve `/deployments/../requests` itself.
    return quote(name, safe="").replace(".", "%2E")


def _nothing_written(edge: dict[str, Any], names: list[str]) -> None:
    view = edge["view"]
    assert edge["written"].records == []
    assert view.deployment_names() == []
    assert all(view.requests(n) == [] for n in [*names, "credit"])


def test_a_hostile_deployment_name_is_refused_on_a_write_and_not_found_on_a_read(edge):
    client = edge["client"]
    for name in HOSTILE:
        answer = client.post(f"/deployments/{_path(name)}/requests", json=START, headers=ED)
        assert answer.status_code == 422, (name[:20], answer.text[:300])
        body = answer.json()
        assert (body["error"], body["field"]) == ("invalid", "deployment")
        assert NAME_PATTERN in body["message"] and len(body["message"]) < 400
        read = client.get(f"/deployments/{_path(name)}", headers=VI)
        assert read.status_code == 404, read.text[:300]
    _nothing_written(edge, HOSTILE)
    made = client.post("/deployments/credit/requests", json=START, headers=ED)
    assert made.status_code == 201, made.text  # the same request, under a valid name


def test_a_hostile_model_name_is_refused_with_its_field_named(edge):
    client = edge["client"]
    for name in HOSTILE:
        bad_model = {**START, "model": {"name": name, "version": 1}}
        answer = client.post("/deployments/credit/requests", json=bad_model, headers=ED)
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["field"] == "model.name" and NAME_PATTERN in answer.json()["message"]
        declared = {
            **START,
            "action": "apply",
            "challengers": [{"model": {"name": name, "version": 1}, "weight": 0.1}],
        }
        answer = client.post("/deployments/credit/requests", json=declared, headers=ED)
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["field"] == "challengers[0].model.name"
        assert client.get(f"/models/{_path(name)}", headers=VI).status_code == 404
    _nothing_written(edge, [])


def test_a_50_mb_body_gets_413_before_it_is_parsed(edge):
    client = edge["client"]
    huge = json.dumps({**START, "reason": "x" * (50 * 1024 * 1024)}).encode()
    headers = {**ED, "content-type": "application/json"}
    answer = client.post("/deployments/credit/requests", content=huge, headers=headers)
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"] == "too_large"
    assert str(MAX_BODY_BYTES) in answer.json()["message"]
    # without a Content-Length (chunked) the bytes are counted instead
    chunked = client.post(
        "/deployments/credit/requests", content=iter([huge[: 2 * MAX_BODY_BYTES]]), headers=headers
    )
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and chunked.json()["error"] == "too_large"
    _nothing_written(edge, [])
    # a body of exactly the limit is read and parsed as any other
    padded = json.dumps(START).encode()
    padded += b" " * (MAX_BODY_BYTES - len(padded))
    made = client.post("/deployments/credit/requests", content=padded, headers=headers)
    assert made.status_code == 201, made.text


def test_a_reason_over_2000_characters_is_refused_with_the_field_named(edge):
    client, view = edge["client"], edge["view"]
    long = {**START, "reason": "r" * (MAX_REASON_CHARS + 1)}
    answer = client.post("/deployments/credit/requests", json=long, headers=ED)
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["field"] == "reason" and "2000" in answer.json()["message"]
    _nothing_written(edge, [])
    made = client.post(
        "/deployments/credit/requests",
        json={**START, "reason": "r" * MAX_REASON_CHARS},
        headers=ED,
    )
    assert made.status_code == 201, made.text
    rid = made.json()["request_id"]
    for decision in ("approve", "reject"):
        refused = client.post(
            f"/requests/{rid}/{decision}",
            json={"reason": "d" * (MAX_REASON_CHARS + 1)},
            headers=BO,
        )
        assert refused.status_code == 422 and refused.json()["field"] == "reason", refused.text
    assert view.request(rid)["status"] == "pending"


def test_a_made_up_method_is_counted_as_other(edge):
    client = edge["client"]
    brewed = client.request("BREW", "/models", headers=VI)
    assert brewed.status_code == 405
    assert client.get("/models", headers=VI).status_code == 200
    scraped = client.get("/metrics").text
    assert "BREW" not in scraped
    assert 'streamops_registry_api_seconds_count{method="other",route="/models"} 1.0' in scraped
    assert 'streamops_registry_api_seconds_count{method="GET",route="/models"} 1.0' in scraped


def test_an_unknown_route_or_a_wrong_method_answers_in_the_api_shape(edge):
    client = edge["client"]
    nope = client.get("/api/v1/nope", headers=VI)
    assert nope.status_code == 404
    assert nope.json() == {
        "error": "not_found",
        "message": "no route GET /api/v1/nope; see /docs for the routes",
    }
    wrong = client.get("/requests/r1/approve", headers=BO)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {
        "error": "method_not_allowed",
        "message": "GET is not allowed on /requests/r1/approve; use POST (see /docs)",
    }
    brewed = client.request("BREW", "/deployments/credit/requests", headers=ED)
    assert brewed.status_code == 405 and brewed.headers["allow"] == "POST"
    assert brewed.json()["message"].startswith("BREW is not allowed on /deployments/credit/req")
    assert client.get("/dashboard/nope", headers=VI).json()["error"] == "not_found"
    _nothing_written(edge, [])
