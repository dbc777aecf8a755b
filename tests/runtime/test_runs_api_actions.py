"""Safer run actions through the API: the optional reason of cancel, replay, restart,
resume and fork reaches the audit log and the runs' journals; the run detail says whether
the asking user may act (so pages hide what the server would refuse) and a refusal says
why; the 403 page says why too."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from designer.models import AuditEntry, Product
from runtime.models import JournalEntry, Run
from tests.conftest import client_for
from tests.runtime.conftest import code, drain, make_workflow, run_until_done

pytestmark = pytest.mark.django_db

FLOW = {
    "sequences": [
        {
            "tag": "m",
            "events": [
                code("add", tag="first", input={"a": "$Input{n}", "b": 1}),
                {"type": "WAIT_SIGNAL", "event": "approve", "tag": "wait"},
            ],
        }
    ],
    "input": {"n": "integer"},
    "signals": {"approve": {}},
}


@pytest.fixture
def workflow(product: Product) -> Any:
    return make_workflow(product, FLOW, tag="flow", envs=("dev", "prd"))


def start(client: APIClient, env: str = "dev", n: int = 1) -> int:
    response = client.post(
        "/api/v1/runs", {"workflow": "acme/flow", "env": env, "input": {"n": n}}, format="json"
    )
    assert response.status_code == 202, response.content
    return int(response.json()["id"])


def audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, action
    return entry


def logs(run_id: int) -> list[dict[str, Any]]:
    return [e.data for e in JournalEntry.objects.filter(run_id=run_id, kind="log").order_by("seq")]


def test_a_cancel_reason_reaches_the_audit_log_and_the_run(
    api: APIClient, workflow: Any, operator_user: User
) -> None:
    run_id = start(api)
    drain()
    otto = client_for(operator_user)
    response = otto.post(
        f"/api/v1/runs/{run_id}/cancel", {"reason": "  duplicate order  "}, format="json"
    )
    assert response.status_code == 202, response.content
    entry = audit("run.cancel")
    assert entry.after["reason"] == "duplicate order"
    assert entry.actor == operator_user
    run = run_until_done(Run.objects.get(pk=run_id))
    assert run.status == "cancelled"
    assert run.error["message"] == "duplicate order"
    assert any(d.get("message") == "duplicate order" for d in logs(run_id))


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("replay", {}),
        ("restart", {"input": {"n": 5}, "merge": False}),
        ("resume", {}),
        ("fork", {"step": "wait"}),
    ],
)
def test_the_reason_of_an_action_that_makes_a_run_is_audited_and_journaled_on_both(
    api: APIClient, workflow: Any, action: str, body: dict[str, Any]
) -> None:
    run_id = start(api)
    drain()
    api.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json")
    run_until_done(Run.objects.get(pk=run_id))
    reason = f"{action}: the customer asked again"
    response = api.post(
        f"/api/v1/runs/{run_id}/{action}", {**body, "reason": reason}, format="json"
    )
    assert response.status_code == 202, response.content
    new_id = response.json()["id"]
    assert response.json()["origin"] == run_id
    entry = audit(f"run.{action}")
    assert entry.after["reason"] == reason
    assert entry.after["from_run"] == run_id and entry.after["run"] == new_id
    (on_new,) = [d for d in logs(new_id) if d.get("action") == f"run.{action}"]
    assert on_new["reason"] == reason and on_new["origin_run"] == run_id
    assert reason in on_new["message"] and str(run_id) in on_new["message"]
    (on_old,) = [d for d in logs(run_id) if d.get("action") == f"run.{action}"]
    assert on_old["derived_run"] == new_id


def test_an_action_without_a_reason_is_audited_without_one(api: APIClient, workflow: Any) -> None:
    run_id = start(api)
    response = api.post(f"/api/v1/runs/{run_id}/replay", format="json")
    assert response.status_code == 202, response.content
    assert "reason" not in audit("run.replay").after


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("cancel", {"reason": 5}),
        ("cancel", {"reason": None}),
        ("replay", {"reason": ["x"]}),
        ("restart", {"reason": "x" * 1001}),
        ("fork", {"step": "wait", "reason": {"a": 1}}),
    ],
)
def test_a_bad_reason_is_a_400_naming_the_field_and_makes_nothing(
    api: APIClient, workflow: Any, action: str, body: dict[str, Any]
) -> None:
    run_id = start(api)
    before = Run.objects.count()
    response = api.post(f"/api/v1/runs/{run_id}/{action}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "reason"
    assert Run.objects.count() == before


def test_the_run_detail_says_who_may_act_and_why_not(
    api: APIClient,
    workflow: Any,
    operator_user: User,
    designer_user: User,
    viewer_user: User,
) -> None:
    dev_run, prd_run = start(api, "dev"), start(api, "prd")

    def actions(user_client: APIClient, run_id: int) -> dict[str, Any]:
        response = user_client.get(f"/api/v1/runs/{run_id}")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()["actions"]
        return result

    otto, dana, vera = (client_for(u) for u in (operator_user, designer_user, viewer_user))
    assert actions(api, dev_run) == {"allowed": True, "why": ""}
    assert actions(api, prd_run) == {"allowed": True, "why": ""}
    assert actions(otto, dev_run) == {"allowed": True, "why": ""}
    for who in (otto, dana):
        refused = actions(who, prd_run)
        assert refused["allowed"] is False
        assert "production" in refused["why"] and "admin" in refused["why"]
    viewer = actions(vera, dev_run)
    assert viewer["allowed"] is False and "operator" in viewer["why"]
    # The page's promise holds: what it offers the operator in prd, the server refuses,
    # and the refusal says why.
    response = otto.post(f"/api/v1/runs/{prd_run}/cancel", {}, format="json")
    assert response.status_code == 403
    assert "production environment" in response.content.decode()
    assert otto.post(f"/api/v1/runs/{dev_run}/cancel", {}, format="json").status_code == 202


def test_the_403_page_says_why(product: Product, operator_user: User) -> None:
    browser = Client()
    browser.force_login(operator_user)
    response = browser.get("/p/acme/audit/")
    assert response.status_code == 403
    body = response.content.decode()
    assert 'data-testid="forbidden-why"' in body
    assert "This needs the admin role." in body


def test_related_links_both_ways(api: APIClient, workflow: Any) -> None:
    run_id = start(api)
    replay = api.post(f"/api/v1/runs/{run_id}/replay", {"reason": "again"}, format="json")
    new_id = replay.json()["id"]
    again = api.post(f"/api/v1/runs/{new_id}/replay", {}, format="json").json()["id"]
    middle = api.get(f"/api/v1/runs/{new_id}/related").json()
    assert [r["id"] for r in middle["origins"]] == [run_id]
    assert [(r["id"], r["origin_kind"]) for r in middle["derived"]] == [(again, "replay")]
    first = api.get(f"/api/v1/runs/{run_id}/related").json()
    assert [r["id"] for r in first["derived"]] == [new_id]
    last = api.get(f"/api/v1/runs/{again}/related").json()
    assert [r["id"] for r in last["origins"]] == [new_id, run_id]
