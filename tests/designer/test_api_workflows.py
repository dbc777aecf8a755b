from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import services
from designer.models import AuditEntry, Component, Product, Source, Workflow
from tests.conftest import client_for
from tests.designer.conftest import main_sequence, two_level_spec

pytestmark = pytest.mark.django_db

BASE = "/api/v1/products/acme/workflows/"


@pytest.fixture
def designer(designer_user: User) -> APIClient:
    return client_for(designer_user)


@pytest.fixture
def workflow(product: Product, designer_user: User, components: list[Component]) -> Workflow:
    return services.workflow_create(
        product=product, tag="onboarding", name="Onboarding", author=designer_user
    )


def test_a_designer_creates_a_workflow_with_a_draft(
    designer: APIClient, components: list[Component]
) -> None:
    response = designer.post(
        BASE, {"tag": "onboarding", "name": "Onboarding", "spec": main_sequence()}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["tag"] == "onboarding" and body["product"] == "acme"
    assert body["source"] == "canvas"
    assert body["draft"]["sequences"][0]["tag"] == "main_sequence"
    assert body["latest_version"] is None
    assert [(a["env"], a["active"]) for a in body["activations"]] == [
        ("dev", False),
        ("staging", False),
        ("prd", False),
    ]


def test_a_duplicate_workflow_tag_is_a_400_naming_tag(
    designer: APIClient, workflow: Workflow
) -> None:
    response = designer.post(BASE, {"tag": "onboarding", "name": "Again"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "tag"


def test_the_seeds_main_sequence_saves_validates_and_publishes(
    designer: APIClient, workflow: Workflow
) -> None:
    url = BASE + "onboarding/"
    saved = designer.put(url + "draft", {"spec": main_sequence()}, format="json")
    assert saved.status_code == 200, saved.json()
    assert saved.json()["author"] == "dana"
    assert designer.get(url + "draft").json()["spec"]["sequences"][0]["tag"] == "main_sequence"

    validated = designer.post(url + "validate", {"spec": two_level_spec()}, format="json")
    assert validated.status_code == 200, validated.json()
    assert validated.json() == {
        "ok": True,
        "levels": [["main_sequence"], ["follow_up"]],
        "sequences": 2,
        "steps": 3,
    }

    published = designer.post(url + "publish", {"note": "first"}, format="json")
    assert published.status_code == 201, published.json()
    version = published.json()
    assert (version["number"], version["author"], version["note"]) == (1, "dana", "first")
    assert version["unchanged"] is False
    assert len(version["checksum"]) == 64
    assert version["plan"]["sequences"][0]["tag"] == "main_sequence"
    # The compiler found the components that declare each event.
    steps = version["plan"]["sequences"][0]["events"]
    assert [s["app"] for s in steps] == ["accounts", "mailer"]
    assert designer.get(url + "draft").json()["spec"] is None
    assert designer.get(url).json()["latest_version"] == 1
    assert AuditEntry.objects.filter(action="workflow.publish", actor__username="dana").exists()


def test_publishing_the_same_spec_again_says_unchanged(
    designer: APIClient, workflow: Workflow
) -> None:
    url = BASE + "onboarding/publish"
    assert designer.post(url, {"spec": main_sequence()}, format="json").status_code == 201
    again = designer.post(url, {"spec": main_sequence()}, format="json")
    assert again.status_code == 200
    assert (again.json()["number"], again.json()["unchanged"]) == (1, True)
    changed = designer.post(url, {"spec": two_level_spec()}, format="json")
    assert (changed.status_code, changed.json()["number"]) == (201, 2)


def test_publish_without_draft_or_spec_names_spec(designer: APIClient, workflow: Workflow) -> None:
    response = designer.post(BASE + "onboarding/publish", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "spec"


def test_versions_list_and_detail(designer: APIClient, workflow: Workflow) -> None:
    url = BASE + "onboarding/"
    designer.post(url + "publish", {"spec": main_sequence()}, format="json")
    designer.post(url + "publish", {"spec": two_level_spec(), "note": "two"}, format="json")

    listed = designer.get(url + "versions/").json()
    assert [(v["number"], v["note"]) for v in listed] == [(2, "two"), (1, "")]
    assert "spec" not in listed[0]

    detail = designer.get(url + "versions/1/").json()
    assert detail["number"] == 1 and detail["spec"]["sequences"][0]["tag"] == "main_sequence"
    assert detail["plan"]["sequences"][0]["level"] == 0
    assert designer.get(url + "versions/9/").status_code == 404


def test_an_admin_activates_pins_and_deactivates(
    workflow: Workflow, admin_user: User, designer: APIClient
) -> None:
    url = BASE + "onboarding/"
    designer.post(url + "publish", {"spec": main_sequence()}, format="json")
    designer.post(url + "publish", {"spec": two_level_spec()}, format="json")
    admin = client_for(admin_user)

    on = admin.put(url + "activations/dev", {"active": True}, format="json")
    assert on.status_code == 200, on.json()
    assert on.json() == {
        "env": "dev",
        "active": True,
        "version": 2,
        "pinned": False,
        "managed_by": "user",
    }
    pinned = admin.put(url + "activations/prd", {"active": True, "version": 1}, format="json")
    assert (pinned.json()["version"], pinned.json()["pinned"]) == (1, True)
    off = admin.put(url + "activations/dev", {"active": False}, format="json")
    assert off.json()["active"] is False

    rows = admin.get(url + "activations/").json()
    assert [(r["env"], r["active"], r["version"]) for r in rows] == [
        ("dev", False, 2),
        ("staging", False, 2),
        ("prd", True, 1),
    ]
    assert admin.get(url + "activations/prd").json()["pinned"] is True
    assert AuditEntry.objects.filter(action="activation.set", actor=admin_user).count() == 3


def test_pinning_a_version_that_does_not_exist_names_version(
    workflow: Workflow, admin_user: User
) -> None:
    response = client_for(admin_user).put(
        BASE + "onboarding/activations/dev", {"active": True, "version": 7}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "version"


def test_activating_an_unpublished_workflow_names_active(
    workflow: Workflow, admin_user: User
) -> None:
    response = client_for(admin_user).put(
        BASE + "onboarding/activations/dev", {"active": True}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "active"


def test_activation_in_an_unknown_environment_is_404(workflow: Workflow, admin_user: User) -> None:
    response = client_for(admin_user).put(
        BASE + "onboarding/activations/qa", {"active": False}, format="json"
    )
    assert response.status_code == 404


def test_a_code_defined_workflow_cannot_be_edited_here(
    product: Product, designer: APIClient, components: list[Component]
) -> None:
    services.workflow_create(product=product, tag="coded", name="Coded", source=Source.CODE)
    for method, path, body in [
        ("put", "draft", {"spec": main_sequence()}),
        ("post", "publish", {"spec": main_sequence()}),
    ]:
        response = getattr(designer, method)(BASE + "coded/" + path, body, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "defined_in_code"


def test_workflow_update_and_delete(designer: APIClient, workflow: Workflow) -> None:
    url = BASE + "onboarding/"
    updated = designer.patch(url, {"name": "Welcome", "description": "d"}, format="json")
    assert (updated.status_code, updated.json()["name"]) == (200, "Welcome")
    assert designer.delete(url).status_code == 204
    assert designer.get(url).status_code == 404


def test_the_spec_schema_is_served(designer: APIClient) -> None:
    schema = designer.get("/api/v1/spec-schema").json()
    assert "sequences" in schema["properties"]
    assert "SequenceSpec" in schema["$defs"]


# --- specs that must be refused, each with the JSON path of its error ---------------------


def _with(change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(two_level_spec())
    change(spec)
    return spec


def _cycle(spec: dict[str, Any]) -> None:
    spec["sequences"][0]["parents"] = ["follow_up"]


def _missing_parent(spec: dict[str, Any]) -> None:
    spec["sequences"][1]["parents"] = ["main_sequence", "nowhere"]


def _duplicate_tag(spec: dict[str, Any]) -> None:
    spec["sequences"][1]["tag"] = "main_sequence"
    spec["sequences"][1]["parents"] = []


def _forward_step_reference(spec: dict[str, Any]) -> None:
    spec["sequences"][0]["events"][0]["input"]["userId"] = "$Step{revalidate}{id}"


def _malformed_condition(spec: dict[str, Any]) -> None:
    spec["sequences"][0]["events"][1]["condition"] = "$Step{validate_user}{ok} == "


def _unknown_operator(spec: dict[str, Any]) -> None:
    spec["sequences"][1]["events"][0]["input"]["name"] = "$Frobnicate($Input{name})"


def _loop(spec: dict[str, Any], **loop: Any) -> None:
    body = [{"type": "CODE", "event": "tests.runtime.steps:record", "tag": "each-one"}]
    spec["sequences"][1]["events"].append(
        {"type": "FOREACH", "event": "each", "tag": "loop", "loop": {"body": body, **loop}}
    )


def _loop_items_not_an_expression(spec: dict[str, Any]) -> None:
    _loop(spec, items="items")


def _loop_concurrency_zero(spec: dict[str, Any]) -> None:
    _loop(spec, items="$Input{items}", max_concurrency=0)


def _item_outside_a_loop(spec: dict[str, Any]) -> None:
    spec["sequences"][1]["events"][0]["input"]["name"] = "$Item{name}"


BAD_SPECS = {
    "cycle": (_cycle, "sequences[0].parents"),
    "missing parent": (_missing_parent, "sequences[1].parents[1]"),
    "duplicate tag": (_duplicate_tag, "sequences[1].tag"),
    "forward $Step reference": (_forward_step_reference, "sequences[0].events[0].input.userId"),
    "malformed condition": (_malformed_condition, "sequences[0].events[1].condition"),
    "unknown operator": (_unknown_operator, "sequences[1].events[0].input.name"),
    "loop items": (_loop_items_not_an_expression, "sequences[1].events[1].loop.items"),
    "loop concurrency": (_loop_concurrency_zero, "sequences[1].events[1].loop.max_concurrency"),
    "$Item outside a loop": (_item_outside_a_loop, "sequences[1].events[0]"),
}


@pytest.mark.parametrize("endpoint", ["validate", "publish"])
@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_a_bad_spec_is_a_400_naming_the_json_path(
    designer: APIClient, workflow: Workflow, endpoint: str, case: str
) -> None:
    change, path = BAD_SPECS[case]
    response = designer.post(
        BASE + f"onboarding/{endpoint}", {"spec": _with(change)}, format="json"
    )
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid_spec"
    paths = [e["path"] for e in body["errors"]]
    assert any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in paths), (
        paths
    )
    assert all(e["message"] for e in body["errors"])
    assert not workflow.versions.exists()


def test_every_problem_is_reported_at_once(designer: APIClient, workflow: Workflow) -> None:
    def everything(spec: dict[str, Any]) -> None:
        _missing_parent(spec)
        _malformed_condition(spec)
        _unknown_operator(spec)

    response = designer.post(
        BASE + "onboarding/validate", {"spec": _with(everything)}, format="json"
    )
    paths = {e["path"] for e in response.json()["errors"]}
    assert {
        "sequences[1].parents[1]",
        "sequences[0].events[1].condition",
        "sequences[1].events[0].input.name",
    } <= paths


def test_a_draft_with_a_bad_shape_names_the_path(designer: APIClient, workflow: Workflow) -> None:
    spec = main_sequence()
    spec["sequences"][0]["events"][1]["retries"] = "many"
    response = designer.put(BASE + "onboarding/draft", {"spec": spec}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_spec"
    assert response.json()["errors"][0]["path"] == "sequences[0].events[1].retries"
