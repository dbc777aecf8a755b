from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer.models import AuditEntry, Product
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

P = "/api/v1/products/acme/"


def test_environments_are_listed_in_order(product: Product, viewer_user: User) -> None:
    rows = client_for(viewer_user).get(P + "environments/").json()
    assert [(e["slug"], e["order"], e["is_production"]) for e in rows] == [
        ("dev", 0, False),
        ("staging", 1, False),
        ("prd", 2, True),
    ]


def test_an_admin_creates_renames_and_deletes_an_environment(admin_user: User) -> None:
    admin = client_for(admin_user)
    created = admin.post(
        P + "environments/",
        {"slug": "qa", "name": "QA", "allowed_hosts": ["api.test"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["order"] == 3  # after prd unless told otherwise
    renamed = admin.patch(P + "environments/qa/", {"slug": "test", "name": "Test"}, format="json")
    assert (renamed.json()["slug"], renamed.json()["name"]) == ("test", "Test")
    assert admin.delete(P + "environments/test/").status_code == 204
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["environment.create", "environment.update", "environment.delete"]


def test_a_duplicate_environment_slug_names_slug(admin_user: User) -> None:
    response = client_for(admin_user).post(
        P + "environments/", {"slug": "dev", "name": "Dev 2"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "slug"
    renamed = client_for(admin_user).patch(
        P + "environments/staging/", {"slug": "dev"}, format="json"
    )
    assert renamed.status_code == 400 and renamed.json()["errors"][0]["path"] == "slug"


def test_the_production_environment_is_protected(admin_user: User) -> None:
    response = client_for(admin_user).delete(P + "environments/prd/")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "is_production"


def test_an_admin_adds_changes_and_removes_members(admin_user: User, viewer_user: User) -> None:
    admin = client_for(admin_user)
    User.objects.create_user("nina", password="pw")
    added = admin.post(P + "members/", {"username": "nina", "role": "operator"}, format="json")
    assert (added.status_code, added.json()["role"]) == (201, "operator")
    again = admin.post(P + "members/", {"username": "nina", "role": "designer"}, format="json")
    assert (again.status_code, again.json()["role"]) == (200, "designer")
    changed = admin.patch(P + "members/vera/", {"role": "designer"}, format="json")
    assert changed.json()["role"] == "designer"
    assert admin.delete(P + "members/nina/").status_code == 204
    assert [m["username"] for m in admin.get(P + "members/").json()] == ["alice", "vera"]
    audit = admin.get(P + "audit/?action=member").json()
    assert audit["count"] == 4
    assert audit["results"][0]["action"] == "member.remove"
    assert audit["results"][0]["actor"] == "alice"


def test_adding_an_unknown_user_names_username(admin_user: User) -> None:
    response = client_for(admin_user).post(
        P + "members/", {"username": "ghost", "role": "viewer"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "username"


def test_the_last_admin_cannot_demote_themselves(admin_user: User) -> None:
    response = client_for(admin_user).patch(P + "members/alice/", {"role": "viewer"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "role"


def test_a_demoted_member_loses_rights_at_once(admin_user: User, designer_user: User) -> None:
    dana = APIClient()  # a session: the user is loaded afresh on each request
    dana.force_login(designer_user)
    assert (
        dana.post(P + "components/", {"kind": "app", "tag": "a"}, format="json").status_code == 201
    )
    demoted = client_for(admin_user).patch(P + "members/dana/", {"role": "viewer"}, format="json")
    assert demoted.status_code == 200, demoted.json()
    assert (
        dana.post(P + "components/", {"kind": "app", "tag": "b"}, format="json").status_code == 403
    )


def test_audit_can_be_filtered_and_paged(admin_user: User, viewer_user: User) -> None:
    admin = client_for(admin_user)
    for n in range(3):
        admin.patch(P, {"name": f"Acme {n}"}, format="json")
    page = admin.get(P + "audit/?action=product&limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert page["results"][0]["after"] == {"name": "Acme 2"}
    assert admin.get(P + "audit/?actor=nobody").json()["count"] == 0
