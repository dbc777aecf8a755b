from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from designer.models import AuditEntry, Component, Product
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

C = "/api/v1/products/acme/components/"


def test_a_designer_declares_a_component_and_its_events(
    designer_user: User, product: Product
) -> None:
    dana = client_for(designer_user)
    created = dana.post(
        C,
        {
            "kind": "app",
            "tag": "billing",
            "name": "Billing API",
            "events": {"charge": {"method": "POST", "path": "/charges"}},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["events"] == {"charge": {"method": "POST", "path": "/charges"}}
    updated = dana.patch(C + "billing/", {"events": {"charge": {}, "refund": {}}}, format="json")
    assert sorted(updated.json()["events"]) == ["charge", "refund"]
    assert [c["tag"] for c in dana.get(C).json()] == ["billing"]
    assert dana.delete(C + "billing/").status_code == 204
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "component.create",
        "component.update",
        "component.delete",
    ]


def test_event_tags_and_definitions_are_checked(designer_user: User, product: Product) -> None:
    response = client_for(designer_user).post(
        C,
        {"kind": "app", "tag": "billing", "events": {"bad tag!": {}, "ok": "not an object"}},
        format="json",
    )
    assert response.status_code == 400
    assert {e["path"] for e in response.json()["errors"]} == {"events.bad tag!", "events.ok"}


def test_a_duplicate_component_tag_names_tag(
    designer_user: User, components: list[Component]
) -> None:
    response = client_for(designer_user).post(C, {"kind": "app", "tag": "accounts"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "tag"


def test_an_unknown_kind_names_kind(designer_user: User, product: Product) -> None:
    response = client_for(designer_user).post(C, {"kind": "toaster", "tag": "t"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "kind"
