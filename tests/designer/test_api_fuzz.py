"""The API does what its OpenAPI schema says: schemathesis generates requests for every
operation of /api/schema/ and checks each answer — never a server error, a documented
status code and content type, a body that matches the documented schema.

Every operation runs against a seeded product (environments, components with config, a
workflow with a draft, a published version active in dev, a finished run and a waiting
one), as that product's admin with an API token. Half the examples aim at the seeded
objects (real slugs, tags, run ids), half at whatever the generator makes up (mostly
404s). Each example runs in a transaction rolled back afterwards, so a DELETE of the
product or a token revocation does not starve the examples after it.

One test per operation (each within pytest-timeout's 300 s, like any test), bounded:
FUZZ_EXAMPLES (200) examples per operation (TRELLIS_FUZZ_EXAMPLES changes it;
TRELLIS_FUZZ_EXPLORE=1 draws new examples).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from designer import services
from designer.models import Membership, Product, Role
from designer.wsgi import application
from runtime.executor import plan_cache_clear
from tests.runtime.conftest import _fresh_plan_cache, drain  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

FUZZ_EXAMPLES = int(os.environ.get("TRELLIS_FUZZ_EXAMPLES", "200"))
# The same examples on every run (a failure reproduces); TRELLIS_FUZZ_EXPLORE=1 draws new ones.
DERANDOMIZE = not os.environ.get("TRELLIS_FUZZ_EXPLORE")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # What the schema forbids (a null body, an unknown field, a wrong type) is refused.
    negative_data_rejection,
    # Not positive_data_acceptance: a body valid by the schema can still be refused with a
    # 400 for what no JSON schema can say (a spec that does not compile, a run input
    # against the workflow's own input schema, an environment order naming unknown slugs).
]

SPEC: dict[str, Any] = {
    "sequences": [
        {
            "tag": "main",
            "events": [
                {"type": "SET_STATE", "event": "count", "input": {"count": "$Input{n}"}},
                {"type": "CHECKPOINT", "event": "half", "input": {"data": {"n": 1}}},
            ],
        }
    ],
    "input": {"n": "integer"},
    "signals": {"approve": {"input": {"by": "string"}}},
    "queries": {"progress": {"output": {"done": "$Run{completed_steps}"}}},
    "output": {"count": "$State{count}"},
}


@pytest.fixture
def world(product: Product, admin_user: Any, viewer_user: Any) -> dict[str, Any]:
    from runtime import services as run_services

    services.component_create(
        product=product,
        kind="app",
        tag="accounts",
        actor=admin_user,
        events={"validate_user": {"method": "POST", "path": "/users/validate"}},
    )
    workflow = services.workflow_create(product=product, tag="orders", name="Orders")
    version = services.workflow_publish(workflow=workflow, author=admin_user, spec=SPEC)
    services.draft_save(workflow=workflow, spec=SPEC, author=admin_user)
    dev = product.environments.get(slug="dev")
    services.activation_set(workflow=workflow, environment=dev, active=True, version=version)
    finished = run_services.run_start(workflow=workflow, environment=dev, input={"n": 3})
    drain()
    waiting = run_services.run_start(workflow=workflow, environment=dev, input={"n": 4})
    User.objects.create_user(username="newbie", password="pw-newbie")
    token = Token.objects.create(user=admin_user)
    assert Membership.objects.filter(user=admin_user, role=Role.ADMIN).exists()
    return {
        "token": token.key,
        "path": {
            "slug": "acme",
            "tag": "orders",
            "env": "dev",
            "username": "vera",
            "number": "1",
            "run_id": str(finished.pk),
            "other_id": str(waiting.pk),
            "name": "progress",
        },
        # Requests known to succeed, so the fuzzer also walks the success paths (its own
        # bodies name workflows, steps and users that do not exist).
        "valid": {
            "POST /api/v1/auth/token": {"body": {"username": "alice", "password": "pw-alice"}},
            "POST /api/v1/runs": {
                "body": {"workflow": "acme/orders", "env": "dev", "input": {"n": 1}}
            },
            "POST /api/v1/runs/{run_id}/signals/{name}": {"body": {"by": "otto"}},
            "POST /api/v1/runs/{run_id}/fork": {"body": {"step": "half"}},
            "POST /api/v1/runs/{run_id}/replay-from-step": {"body": {"step": "half"}},
            "POST /api/v1/products/{slug}/members/": {
                "body": {"username": "newbie", "role": "operator"}
            },
            "POST /api/v1/products/{slug}/workflows/{tag}/promote": {
                "body": {"from_env": "dev", "to_env": "staging"}
            },
            "POST /api/v1/products/{slug}/environments/reorder": {
                "body": {"order": ["staging", "dev", "prd"]}
            },
            "GET /api/v1/products/{slug}/environments/diff": {
                "query": {"a": "dev", "b": "staging"}
            },
            "PUT /api/v1/products/{slug}/workflows/{tag}/draft": {"body": {"spec": SPEC}},
            "POST /api/v1/products/{slug}/workflows/{tag}/validate": {"body": {"spec": SPEC}},
            "POST /api/v1/products/{slug}/workflows/{tag}/publish": {
                "body": {"spec": {**SPEC, "output": {}}}
            },
        },
        "by_operation": {
            # The tag of a component, where the path has one.
            "/components/{tag}": {"tag": "accounts"},
            "/signals/{name}": {"name": "approve", "run_id": str(waiting.pk)},
            "/cancel": {"run_id": str(waiting.pk)},
        },
    }


@contextmanager
def in_process_transport() -> Iterator[None]:
    """Requests go through the real WSGI app in this process, on the test's database
    connection: as Django's test client does, the connection is not closed per request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@contextmanager
def undone() -> Iterator[None]:
    """Whatever the request changed is rolled back afterwards (and the process's plan
    cache forgotten: SQLite hands a rolled-back version's id to the next one)."""
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        plan_cache_clear()


def aimed(operation: Any, world: dict[str, Any]) -> dict[str, str]:
    """The seeded objects' values for the operation's path parameters."""
    values = dict(world["path"])
    for fragment, extra in world["by_operation"].items():
        if fragment in operation.path:
            values.update(extra)
    names = {p.name for p in operation.path_parameters}
    return {name: value for name, value in values.items() if name in names}


def operation_labels() -> list[str]:
    """The label ("GET /api/v1/runs/{run_id}") of every operation /api/schema/ serves, from
    drf-spectacular's generator at collection time: no request, no database."""
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    return [
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    ]


OPERATIONS = operation_labels()

_loaded: dict[str, Any] = {}


def api_operations() -> dict[str, Any]:
    """schemathesis' operations of the served /api/schema/, by label (loaded once: the
    schema does not depend on the database)."""
    if not _loaded:
        with in_process_transport():
            schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
            for result in schema.get_all_operations():
                operation = result.ok()
                _loaded[operation.label] = operation
    return _loaded


def test_the_fuzzer_covers_every_operation_of_the_served_schema() -> None:
    # One fuzz test per operation below; they are listed at collection, so this checks the
    # list is the schema the API actually serves (none missed, none made up).
    assert len(OPERATIONS) >= 60
    assert len(set(OPERATIONS)) == len(OPERATIONS)
    assert set(OPERATIONS) == set(api_operations())


# One test per operation, not one test for all of them: pytest-timeout (300 s a test) then
# bounds one operation's examples, as for any other test. A single test over ~60
# operations x 200 examples outlived the timeout on a loaded machine, and its SIGALRM
# raised inside whichever example was running: Hypothesis took it for that example
# failing, replayed it (passing), and reported "FlakyFailure" (or, raised mid-draw,
# "FlakyStrategyDefinition") under an innocent operation's name.
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_does_what_the_schema_says(label: str, world: dict[str, Any]) -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)  # 4xx by the thousand
    operation = api_operations()[label]
    headers = {"Authorization": f"Token {world['token']}"}
    statuses: Counter[int] = Counter()
    path = aimed(operation, world)
    cases = st.one_of(
        # Valid requests at the seeded objects, and at made-up ones (404s mostly).
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path),
        operation.as_strategy(GenerationMode.POSITIVE),
        # Invalid bodies and query strings at the seeded objects: 4xx, never 5xx.
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path),
        # A request known to succeed, where generated ones hardly can.
        *(
            [operation.as_strategy(path_parameters=path, **world["valid"][label])]
            if label in world["valid"]
            else []
        ),
    )

    @given(case=cases)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the bound
    )
    def check(case: Any) -> None:
        cache.clear()  # the login throttle counts per test, not per fuzz run
        with undone():
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

    with in_process_transport():
        try:
            check()
        finally:
            if os.environ.get("TRELLIS_FUZZ_REPORT"):
                print(label, dict(sorted(statuses.items())))


# --- the request bodies say what the API accepts ------------------------------------------

# Bodies documented as free-form objects on purpose: a signal's payload is checked against
# that signal's own input schema, which the workflow declares (not the API's schema).
FREE_FORM = {"POST /api/v1/runs/{run_id}/signals/{name}"}


def body_operations(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, URL at the seeded objects, resolved body schema) of every operation with a
    JSON request body."""
    from django.test import Client

    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            body = content["application/json"]["schema"]
            if "$ref" in body:
                body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            label = f"{method.upper()} {path}"
            values = dict(world["path"])
            for fragment, extra in world["by_operation"].items():
                if fragment in path:
                    values.update(extra)
            found.append((label, path.format(**values), body))
    return found


@pytest.fixture
def root_api(world: dict[str, Any]) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="pw-root"))
    return client


def send(client: Any, label: str, url: str, body: Any) -> Any:
    method = label.split()[0]
    with undone():
        return client.generic(method, url, json.dumps(body), content_type="application/json")


def test_every_request_body_is_an_object_and_null_is_refused(
    world: dict[str, Any], root_api: Any
) -> None:
    operations = body_operations(world)
    assert len(operations) >= 25
    for label, url, body in operations:
        assert body.get("type") == "object" and not body.get("nullable"), label
        response = send(root_api, label, url, None)  # the JSON text `null`
        assert response.status_code == 400, (label, response.content)
        assert response.json()["code"] in ("invalid", "refused"), label


def test_every_body_documented_as_closed_refuses_an_unknown_field(
    world: dict[str, Any], root_api: Any
) -> None:
    for label, url, body in body_operations(world):
        if label in FREE_FORM:
            assert body.get("additionalProperties", True) is not False, label
            continue
        # The schema says "no other fields"...
        assert body.get("additionalProperties") is False, f"{label}: extra fields allowed?"
        # ...and the API refuses one, naming it.
        response = send(root_api, label, url, {"zz_unknown": 1})
        assert response.status_code == 400, (label, response.content)
        assert "zz_unknown" in response.content.decode(), label
