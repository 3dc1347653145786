"""Starlette's own 404 and 405 in the APIs' `{error, message}` shape (issue 28; no network).

Before, `GET /api/v1/nope` on the alerting API answered `{"detail": "Not Found"}` and a wrong
method `{"detail": "Method Not Allowed"}`: a shape no client of these APIs reads.
"""

from __future__ import annotations

import doctest

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from services.alerting.api import create_api
from services.common import route_errors
from services.common.route_errors import answer_route_errors
from services.common.settings import Secret

pytestmark = pytest.mark.unit


async def _persist() -> None:
    return None


@pytest.fixture()
def alerting() -> TestClient:
    """The alerting API; no route under test reaches its engine or store."""
    return TestClient(create_api(None, None, _persist, Secret("t" * 24)))  # type: ignore[arg-type]


def test_the_examples_hold():
    assert doctest.testmod(route_errors).failed == 0


def test_an_unknown_route_names_itself_and_points_at_the_docs(alerting):
    answer = alerting.get("/api/v1/nope")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "not_found",
        "message": "no route GET /api/v1/nope; see /docs for the routes",
    }


def test_a_wrong_method_names_the_allowed_ones(alerting):
    answer = alerting.put("/api/v1/silences", json={})
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}
    body = answer.json()
    assert body["error"] == "method_not_allowed" and set(body) == {"error", "message"}
    assert body["message"].startswith("PUT is not allowed on /api/v1/silences; use ")
    assert "GET" in body["message"] and "POST" in body["message"]


def test_a_long_path_is_quoted_back_cut_short(alerting):
    answer = alerting.get("/" + "x" * 5000)
    assert answer.status_code == 404 and len(answer.json()["message"]) < 300


def test_an_http_exception_raised_by_a_route_keeps_its_status_and_detail():
    app = FastAPI()
    answer_route_errors(app)

    @app.get("/busy")
    def busy() -> None:
        raise HTTPException(409, "taken by another request", headers={"X-Why": "lock"})

    answer = TestClient(app).get("/busy")
    assert answer.status_code == 409 and answer.headers["x-why"] == "lock"
    assert answer.json() == {
        "error": "conflict",
        "message": "taken by another request (GET /busy); see /docs",
    }
