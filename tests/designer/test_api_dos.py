"""Denial of service through the API (issue 13, item 5): a backtracking pattern in a
user schema, integers too large to print, and the answers stay fast 4xx naming the field."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import services
from designer.models import Component, Product, Workflow
from tests.conftest import client_for
from tests.designer.conftest import main_sequence
from tests.runtime.conftest import make_workflow

pytestmark = pytest.mark.django_db

W = "/api/v1/products/acme/workflows/onboarding/"
REDOS = "^(a+)+$"
ATTACK = "a" * 27 + "!"  # 6 s with Python's re, doubling per extra "a"
HUGE = "9" * 5000


@pytest.fixture(autouse=True)
def _fresh_plan_cache() -> Iterator[None]:
    # Runs started here cache plans by version id; the test database rolls back.
    from runtime.engine.plans import plan_cache_clear

    plan_cache_clear()
    yield
    plan_cache_clear()


@pytest.fixture
def designer(designer_user: User) -> APIClient:
    return client_for(designer_user)


@pytest.fixture
def workflow(product: Product, designer_user: User, components: list[Component]) -> Workflow:
    return services.workflow_create(
        product=product, tag="onboarding", name="Onboarding", author=designer_user
    )


def paths(response: Any) -> list[str]:
    return [e["path"] for e in response.json().get("errors", [])]


def with_literal(literal: str) -> dict[str, Any]:
    spec = main_sequence()
    spec["sequences"][0]["events"][0]["input"]["n"] = f"$Add({literal}, 1)"
    return spec


@pytest.mark.parametrize("action", ["validate", "publish"])
def test_a_5000_digit_literal_is_a_400_naming_the_field(
    designer: APIClient, workflow: Workflow, action: str
) -> None:
    response = designer.post(W + action, {"spec": with_literal(HUGE)}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "sequences[0].events[0].input.n" in paths(response)  # a path in the spec
    assert "more than 300 digits" in json.dumps(response.json())


@pytest.mark.parametrize("action", ["validate", "publish"])
def test_a_5000_digit_json_number_is_a_400_naming_the_field(
    designer: APIClient, workflow: Workflow, action: str
) -> None:
    spec = json.dumps({"spec": main_sequence()})
    body = spec.replace('"sequences"', f'"options": {{"max_concurrency": {HUGE}}}, "sequences"', 1)
    response = designer.post(W + action, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "spec.options.max_concurrency" in paths(response)
    assert "more than 300 digits" in json.dumps(response.json())


def test_an_out_of_range_float_is_a_400_naming_the_field(
    designer: APIClient, workflow: Workflow
) -> None:
    body = json.dumps({"spec": main_sequence()}).replace('"sequences"', '"x": 1e999, "sequences"')
    response = designer.post(W + "validate", body, content_type="application/json")
    assert response.status_code == 400
    assert "spec.x" in paths(response)


def test_a_pattern_re2_cannot_run_is_refused_naming_the_field(
    designer: APIClient, workflow: Workflow
) -> None:
    spec = main_sequence()
    spec["input"] = {"type": "object", "properties": {"name": {"pattern": "^(?=a)(a+)+$"}}}
    spec["signals"] = {"ok": {"input": {"type": "object", "patternProperties": {"(\\w)\\1": {}}}}}
    for action in ("validate", "publish"):
        response = designer.post(W + action, {"spec": spec}, format="json")
        assert response.status_code == 400, response.content[:300]
        found = paths(response)
        assert "input.properties.name.pattern" in found
        assert "signals.ok.input.patternProperties.(\\w)\\1" in found


def redos_workflow(product: Product) -> None:
    spec = {
        "sequences": [{"tag": "m", "events": [{"type": "SET_STATE", "event": "s"}]}],
        "input": {"type": "object", "properties": {"name": {"type": "string", "pattern": REDOS}}},
        "signals": {
            "go": {
                "input": {
                    "type": "object",
                    "patternProperties": {REDOS: {"type": "integer"}},
                    "additionalProperties": False,
                }
            }
        },
    }
    make_workflow(product, spec, tag="flow")


def test_the_redos_schema_answers_fast_on_run_start(api: APIClient, product: Product) -> None:
    redos_workflow(product)
    body = {"workflow": "acme/flow", "env": "dev", "input": {"name": ATTACK}}
    started = time.perf_counter()
    response = api.post("/api/v1/runs", body, format="json")
    took = time.perf_counter() - started
    assert response.status_code == 400, response.content[:300]
    assert took < 0.5, took  # was 6 s; RE2 answers in microseconds
    assert "input.name" in json.dumps(response.json())
    # a long input is no slower: RE2 is linear in it
    body["input"] = {"name": "a" * 100_000 + "!"}
    started = time.perf_counter()
    assert api.post("/api/v1/runs", body, format="json").status_code == 400
    assert time.perf_counter() - started < 0.5
    body["input"] = {"name": "aaaa"}
    assert api.post("/api/v1/runs", body, format="json").status_code == 202


def test_the_redos_pattern_properties_answer_fast_on_a_signal(
    api: APIClient, product: Product
) -> None:
    redos_workflow(product)
    run = api.post(
        "/api/v1/runs", {"workflow": "acme/flow", "env": "dev", "input": {}}, format="json"
    ).json()
    started = time.perf_counter()
    response = api.post(f"/api/v1/runs/{run['id']}/signals/go", {ATTACK: 1}, format="json")
    assert time.perf_counter() - started < 0.5
    assert response.status_code == 400, response.content[:300]
    ok = api.post(f"/api/v1/runs/{run['id']}/signals/go", {"aaa": 1}, format="json")
    assert ok.status_code in (200, 201, 202), ok.content[:300]


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"allOf": [{"$ref": "#"}]},
        {"type": "object", "$ref": "#/nowhere"},
    ],
)
def test_a_schema_that_cannot_be_evaluated_is_refused_at_publish(
    designer: APIClient, workflow: Workflow, schema: dict[str, Any]
) -> None:
    spec = main_sequence()
    spec["input"] = schema
    response = designer.post(W + "publish", {"spec": spec}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "input" in paths(response)
    assert "cannot be evaluated" in json.dumps(response.json())


def test_a_stored_schema_that_loops_is_a_400_at_run_start() -> None:
    from runtime.errors import RunRefused
    from runtime.services import input_validate

    with pytest.raises(RunRefused, match="refers back to itself"):
        input_validate({"$ref": "#"}, {"a": 1})


@pytest.mark.parametrize("timeout", [10**200, "9" * 250 + "d", "99999999999d"])
def test_a_duration_past_a_century_is_a_400_naming_the_field(
    designer: APIClient, workflow: Workflow, timeout: Any
) -> None:
    spec = main_sequence()
    spec["options"] = {"timeout": timeout}
    spec["sequences"][0]["events"][0]["timeout"] = timeout
    response = designer.post(W + "validate", {"spec": spec}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert {"options.timeout", "sequences[0].events[0].timeout"} <= set(paths(response))
    assert "longer than 100 years" in json.dumps(response.json())


def test_a_huge_number_in_a_run_input_is_a_400_naming_the_field(
    api: APIClient, product: Product
) -> None:
    redos_workflow(product)
    body = '{"workflow": "acme/flow", "env": "dev", "input": {"n": ' + HUGE + "}}"
    response = api.post("/api/v1/runs", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "input.n" in json.dumps(response.json())
