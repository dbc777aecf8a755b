"""Runs under governance: a run uses the version live in its environment (after a
promotion: the promoted one), an inactive workflow refuses new runs with a clear message,
only admins act in production, and every operator action is in the audit log with its
actor."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import services
from designer.models import AuditEntry, Component, Product, Workflow
from runtime.models import Run
from tests.conftest import client_for
from tests.designer.conftest import main_sequence

pytestmark = pytest.mark.django_db

P = "/api/v1/products/acme/"


@pytest.fixture
def workflow(product: Product, components: list[Component], admin_user: User) -> Workflow:
    workflow = services.workflow_create(product=product, tag="onboard", name="Onboard")
    spec = {**main_sequence(), "signals": {"approve": {"input": {"ok": "boolean"}}}}
    services.workflow_publish(workflow=workflow, author=admin_user, spec=spec)
    spec["sequences"][0]["events"][0]["retries"] = 4
    services.workflow_publish(workflow=workflow, author=admin_user, spec=spec)
    dev = product.environments.get(slug="dev")
    services.activation_set(
        workflow=workflow, environment=dev, active=True, version=workflow.versions.get(number=1)
    )
    return workflow


def start(client: APIClient, env: str, **input: Any) -> Any:
    body = {"workflow": "acme/onboard", "env": env, "input": input}
    return client.post("/api/v1/runs", body, format="json")


def last(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action!r}"
    return entry


def test_a_run_in_prd_uses_the_version_promoted_there(workflow: Workflow, admin_user: User) -> None:
    alice = client_for(admin_user)
    response = alice.post(
        P + "workflows/onboard/promote", {"from_env": "dev", "to_env": "prd"}, format="json"
    )
    assert response.status_code == 200, response.content
    response = start(alice, "prd", user_id="u1")
    assert response.status_code == 202, response.content
    assert response.json()["version"] == 1  # promoted v1, although v2 is the latest
    assert Run.objects.get(pk=response.json()["id"]).version.number == 1


def test_an_inactive_workflow_refuses_new_runs_with_a_clear_message(
    workflow: Workflow, admin_user: User
) -> None:
    alice = client_for(admin_user)
    response = start(alice, "staging")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "refused"
    assert body["field"] == "env"
    assert body["message"] == "workflow 'onboard' is not active in environment 'staging'"


def test_deactivating_stops_new_runs_and_lets_running_ones_be(
    workflow: Workflow, admin_user: User, operator_user: User
) -> None:
    otto, alice = client_for(operator_user), client_for(admin_user)
    running = start(otto, "dev", user_id="u1").json()["id"]
    response = alice.put(P + "workflows/onboard/activations/dev", {"active": False}, format="json")
    assert response.status_code == 200
    assert start(otto, "dev").status_code == 409
    run = Run.objects.get(pk=running)
    assert run.status not in ("cancelled", "failed")
    assert not run.cancel_requested


def test_only_admins_start_runs_in_production(
    workflow: Workflow, operator_user: User, designer_user: User, admin_user: User
) -> None:
    services.activation_set(
        workflow=workflow,
        environment=workflow.product.environments.get(slug="prd"),
        active=True,
        actor=admin_user,
    )
    for user in (operator_user, designer_user):
        response = start(client_for(user), "prd")
        assert response.status_code == 403, user
        assert response.json()["code"] == "permission_denied"
    assert start(client_for(operator_user), "dev").status_code == 202
    assert start(client_for(admin_user), "prd").status_code == 202


def test_every_operator_action_is_audited_with_its_actor(
    workflow: Workflow, operator_user: User
) -> None:
    otto = client_for(operator_user)
    response = start(otto, "dev", user_id="u1", password="hunter2-input")
    assert response.status_code == 202, response.content
    run = response.json()["id"]
    entry = last("run.start")
    assert (entry.actor, entry.target) == (operator_user, f"onboard@dev#{run}")
    assert entry.after["run"] == run and entry.after["version"] == 1
    assert entry.after["input"]["user_id"] == "u1"
    assert "hunter2-input" not in str(entry.after)

    response = otto.post(f"/api/v1/runs/{run}/signals/approve", {"ok": True}, format="json")
    assert response.status_code == 202, response.content
    entry = last("run.signal")
    assert (entry.actor, entry.after["signal"], entry.after["payload"]) == (
        operator_user,
        "approve",
        {"ok": True},
    )

    for action, url, body in [
        ("run.replay", "replay", {}),
        ("run.restart", "restart", {"input": {"user_id": "u2"}}),
        ("run.fork", "fork", {"step": "send_welcome_email"}),
    ]:
        response = otto.post(f"/api/v1/runs/{run}/{url}", body, format="json")
        assert response.status_code == 202, (action, response.content)
        entry = last(action)
        assert entry.actor == operator_user
        assert entry.after["from_run"] == run
        assert entry.after["run"] == response.json()["id"]

    response = otto.post(f"/api/v1/runs/{run}/cancel", {"reason": "wrong user"}, format="json")
    assert response.status_code == 202, response.content
    entry = last("run.cancel")
    assert (entry.actor, entry.after["reason"]) == (operator_user, "wrong user")

    # No worker runs here: finish the cancelled run as the worker would have.
    Run.objects.filter(pk=run).update(status="cancelled")
    response = otto.post(f"/api/v1/runs/{run}/resume", {}, format="json")
    assert response.status_code == 202, response.content
    entry = last("run.resume")
    assert (entry.actor, entry.after["from_run"]) == (operator_user, run)

    refused = client_for(operator_user).post(
        "/api/v1/runs", {"workflow": "acme/onboard", "env": "staging"}, format="json"
    )
    assert refused.status_code == 409
    assert AuditEntry.objects.filter(action="run.start").count() == 1


def test_a_run_and_its_audit_row_commit_together(
    workflow: Workflow, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runtime.api

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(runtime.api, "run_action_audit", broken)
    client = client_for(admin_user)
    client.raise_request_exception = False
    response = start(client, "dev", name="Ada", email="ada@example.com")
    assert response.status_code == 500
    assert not Run.objects.exists()  # no unaudited run
    monkeypatch.undo()
    assert start(client, "dev", name="Ada", email="ada@example.com").status_code == 202
    assert Run.objects.count() == 1 and last("run.start").actor == admin_user
