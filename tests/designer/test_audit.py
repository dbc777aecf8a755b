"""The audit log: every publish, activation change, promotion, configuration or secret
change and membership change is recorded with the right actor and before/after (secrets
masked), and the log can be filtered by actor, action and date."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from designer.models import AuditEntry, Component, Product
from tests.conftest import client_for
from tests.designer.conftest import main_sequence

pytestmark = pytest.mark.django_db

P = "/api/v1/products/acme/"


@pytest.fixture
def users(
    product: Product,
    components: list[Component],
    admin_user: User,
    designer_user: User,
    operator_user: User,
    viewer_user: User,
) -> dict[str, User]:
    return {u.username: u for u in (admin_user, designer_user, operator_user, viewer_user)}


def last(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action!r}"
    return entry


def test_each_change_is_recorded_with_its_actor(users: dict[str, User]) -> None:
    dana, alice = client_for(users["dana"]), client_for(users["alice"])
    assert (
        dana.post(P + "workflows/", {"tag": "wf", "name": "Wf"}, format="json").status_code == 201
    )
    response = dana.post(P + "workflows/wf/publish", {"spec": main_sequence()}, format="json")
    assert response.status_code == 201
    entry = last("workflow.publish")
    assert (entry.actor, entry.target, entry.after["version"]) == (users["dana"], "wf", 1)

    assert (
        alice.put(P + "workflows/wf/activations/dev", {"active": True}, format="json").status_code
        == 200
    )
    entry = last("activation.set")
    assert (entry.actor, entry.target) == (users["alice"], "wf@dev")
    assert entry.before is None and entry.after["active"] is True

    assert (
        alice.put(P + "workflows/wf/activations/dev", {"active": False}, format="json").status_code
        == 200
    )
    entry = last("activation.set")
    assert entry.before["active"] is True and entry.after["active"] is False
    alice.put(P + "workflows/wf/activations/dev", {"active": True}, format="json")

    response = alice.post(
        P + "workflows/wf/promote", {"from_env": "dev", "to_env": "prd"}, format="json"
    )
    assert response.status_code == 200, response.content
    entry = last("workflow.promote")
    assert (entry.actor, entry.target) == (users["alice"], "wf@prd")
    assert entry.before["active"] is False and entry.after["version"] == 1

    response = alice.put(
        P + "components/accounts/config/prd",
        {
            "config": {"base_url": "https://prd.example", "password": "hunter2-config"},
            "secrets": {"api_key": "very-secret-value"},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    entry = last("component.config")
    assert (entry.actor, entry.target) == (users["alice"], "accounts@prd")
    assert entry.after["config"]["base_url"] == "https://prd.example"
    stored = str(entry.before) + str(entry.after)
    assert "very-secret-value" not in stored and "hunter2-config" not in stored
    assert entry.after["secrets_changed"] == {"api_key": "•••"}

    response = alice.post(P + "members/", {"username": "otto", "role": "designer"}, format="json")
    assert response.status_code == 200
    entry = last("member.set")
    assert (entry.actor, entry.target) == (users["alice"], "otto")
    assert (entry.before, entry.after) == ({"role": "operator"}, {"role": "designer"})
    assert alice.delete(P + "members/vera/").status_code == 204
    entry = last("member.remove")
    assert (entry.actor, entry.target, entry.before) == (users["alice"], "vera", {"role": "viewer"})

    assert alice.post(P + "environments/staging/production").status_code == 200
    entry = last("environment.mark_production")
    assert entry.actor == users["alice"]


def test_the_log_filters_by_actor_action_and_date(users: dict[str, User]) -> None:
    alice = client_for(users["alice"])
    dana = client_for(users["dana"])
    dana.post(P + "workflows/", {"tag": "wf", "name": "Wf"}, format="json")
    dana.post(P + "workflows/wf/publish", {"spec": main_sequence()}, format="json")
    alice.put(P + "workflows/wf/activations/dev", {"active": True}, format="json")
    old = AuditEntry.objects.create(
        product_id=users["alice"].memberships.get().product_id,
        actor=users["alice"],
        action="activation.set",
        target="old",
    )
    AuditEntry.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=10))

    def targets(query: str) -> list[str]:
        response = alice.get(P + "audit/?" + query)
        assert response.status_code == 200, response.content
        return [e["target"] for e in response.json()["results"]]

    assert set(targets("actor=dana")) == {"wf"}
    assert targets("action=activation") == ["wf@dev", "old"]
    today = timezone.now().date()
    assert targets(f"action=activation&since={today.isoformat()}") == ["wf@dev"]
    week_ago = (today - timedelta(days=7)).isoformat()
    assert targets(f"action=activation&until={week_ago}") == ["old"]
    response = alice.get(P + "audit/?since=yesterday")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "since"


def test_the_log_is_for_admins_only(users: dict[str, User]) -> None:
    assert client_for(users["dana"]).get(P + "audit/").status_code == 403
