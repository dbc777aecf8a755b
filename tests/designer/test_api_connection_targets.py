"""Issue 13, item 3: only admins say where the server connects. A designer's event
definition may not name a connection target; per-environment config and allowed hosts are
admin-only; allow-list entries are checked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from designer.models import Component, Product
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

C = "/api/v1/products/acme/components/"


def paths(response: object) -> set[str]:
    return {e["path"] for e in response.json()["errors"]}  # type: ignore[attr-defined]


def test_a_designer_cannot_put_a_base_url_in_an_event(
    designer_user: User, product: Product
) -> None:
    dana = client_for(designer_user)
    events = {"steal": {"method": "GET", "base_url": "http://127.0.0.1:8000/api/v1", "path": "/"}}
    response = dana.post(C, {"kind": "app", "tag": "billing", "events": events}, format="json")
    assert response.status_code == 400, response.json()
    assert paths(response) == {"events.steal.base_url"}
    assert "admin sets it in the component's per-environment config" in response.json()["message"]
    assert not Component.objects.filter(tag="billing").exists()

    created = dana.post(C, {"kind": "app", "tag": "billing", "events": {}}, format="json")
    assert created.status_code == 201
    response = dana.patch(C + "billing/", {"events": events}, format="json")
    assert response.status_code == 400 and paths(response) == {"events.steal.base_url"}
    assert Component.objects.get(tag="billing").events == {}


@pytest.mark.parametrize(
    ("kind", "events", "path"),
    [
        ("app", {"a": {"path": "/", "url": "http://10.0.0.1"}}, "events.a.url"),
        ("database", {"q": {"op": "query", "sql": "SELECT 1", "dsn": "x"}}, "events.q.dsn"),
        ("database", {"q": {"op": "query", "host": "127.0.0.1", "port": 5432}}, "events.q.host"),
        ("storage", {"up": {"op": "upload", "endpoint_url": "http://x"}}, "events.up.endpoint_url"),
        ("notification", {"m": {"channel": "sms", "url": "http://x"}}, "events.m.url"),
        ("notification", {"m": {"channel": "send", "email": {"host": "x"}}}, "events.m.email.host"),
        ("app", {"a": {"path": "/", "token_url": "http://x"}}, "events.a.token_url"),
    ],
)
def test_no_event_of_any_kind_names_a_connection_target(
    designer_user: User, product: Product, kind: str, events: dict, path: str
) -> None:
    response = client_for(designer_user).post(
        C, {"kind": kind, "tag": "c", "events": events}, format="json"
    )
    assert response.status_code == 400
    assert path in paths(response)


def test_a_payload_may_still_carry_a_url(designer_user: User, product: Product) -> None:
    # Only the definition's own keys are connection targets, not the data it sends.
    events = {"hook": {"method": "POST", "path": "/hooks", "body": {"url": "https://x.io"}}}
    response = client_for(designer_user).post(
        C, {"kind": "app", "tag": "hooks", "events": events}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_connection_targets_and_allowed_hosts_are_admin_only(
    designer_user: User, admin_user: User, product: Product
) -> None:
    Component.objects.create(product=product, kind="app", tag="billing")
    dana = client_for(designer_user)
    put = dana.put(
        C + "billing/config/dev",
        {"config": {"base_url": "http://127.0.0.1:6379"}},
        format="json",
    )
    assert put.status_code == 403
    patch = dana.patch(
        "/api/v1/products/acme/environments/dev/", {"allowed_hosts": ["127.0.0.1"]}, format="json"
    )
    assert patch.status_code == 403
    assert product.environments.get(slug="dev").allowed_hosts == []


def test_an_allow_list_entry_is_checked(admin_user: User, product: Product) -> None:
    alice = client_for(admin_user)
    response = alice.patch(
        "/api/v1/products/acme/environments/dev/",
        {"allowed_hosts": ["api.stripe.com", "http://x.com/", "127.0.0.1:8000"]},
        format="json",
    )
    assert response.status_code == 400
    assert paths(response) == {"allowed_hosts[1]"}
    ok = alice.patch(
        "/api/v1/products/acme/environments/dev/",
        {"allowed_hosts": ["*.stripe.com", "10.0.0.0/8", "127.0.0.1:8000", "[::1]:8000"]},
        format="json",
    )
    assert ok.status_code == 200, ok.json()
