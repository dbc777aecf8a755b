"""Who may call what: for every authoring endpoint, anonymous → 401, an outsider → 404
(the product's existence is not revealed), a member whose role is too small → 403, and
the smallest role that is enough → success."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import services
from designer.models import Component, Product, Role
from tests.conftest import client_for
from tests.designer.conftest import main_sequence, two_level_spec

pytestmark = pytest.mark.django_db

P = "/api/v1/products/acme/"
W = P + "workflows/onboarding/"
ROLES = [Role.VIEWER, Role.OPERATOR, Role.DESIGNER, Role.ADMIN]

# (method, url, body, smallest role that may call it)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, Role]] = [
    ("get", P, None, Role.VIEWER),
    ("patch", P, {"name": "Acme Inc"}, Role.ADMIN),
    ("get", P + "environments/", None, Role.VIEWER),
    ("post", P + "environments/", {"slug": "qa", "name": "QA"}, Role.ADMIN),
    ("get", P + "environments/dev/", None, Role.VIEWER),
    ("patch", P + "environments/dev/", {"name": "Development"}, Role.ADMIN),
    ("delete", P + "environments/staging/", None, Role.ADMIN),
    ("get", P + "members/", None, Role.VIEWER),
    ("post", P + "members/", {"username": "newbie", "role": "viewer"}, Role.ADMIN),
    ("get", P + "members/vera/", None, Role.VIEWER),
    ("patch", P + "members/vera/", {"role": "operator"}, Role.ADMIN),
    ("delete", P + "members/vera/", None, Role.ADMIN),
    ("get", P + "audit/", None, Role.ADMIN),
    ("get", P + "components/", None, Role.VIEWER),
    ("post", P + "components/", {"kind": "app", "tag": "billing"}, Role.DESIGNER),
    ("get", P + "components/accounts/", None, Role.VIEWER),
    ("patch", P + "components/accounts/", {"name": "Accounts"}, Role.DESIGNER),
    ("delete", P + "components/mailer/", None, Role.DESIGNER),
    ("get", P + "workflows/", None, Role.VIEWER),
    ("post", P + "workflows/", {"tag": "signup", "name": "Signup"}, Role.DESIGNER),
    ("get", W, None, Role.VIEWER),
    ("patch", W, {"name": "Welcome"}, Role.DESIGNER),
    ("delete", W, None, Role.DESIGNER),
    ("get", W + "draft", None, Role.VIEWER),
    ("put", W + "draft", {"spec": two_level_spec()}, Role.DESIGNER),
    ("delete", W + "draft", None, Role.DESIGNER),
    ("post", W + "validate", {"spec": two_level_spec()}, Role.VIEWER),
    ("post", W + "publish", {"spec": two_level_spec()}, Role.DESIGNER),
    ("get", W + "versions/", None, Role.VIEWER),
    ("get", W + "versions/1/", None, Role.VIEWER),
    ("get", W + "activations/", None, Role.VIEWER),
    ("get", W + "activations/dev", None, Role.VIEWER),
    ("put", W + "activations/dev", {"active": True}, Role.ADMIN),
    ("put", W + "activations/prd", {"active": True, "version": 1}, Role.ADMIN),
]


@pytest.fixture
def members(product: Product, components: list[Component]) -> dict[str, User]:
    users = {}
    for role in ROLES:
        user = User.objects.create_user(username=f"{role}-user", password="pw")
        services.member_set(product=product, user=user, role=role, actor=None)
        users[role] = user
    # Targets of the member endpoints.
    vera = User.objects.create_user(username="vera", password="pw")
    services.member_set(product=product, user=vera, role=Role.VIEWER, actor=None)
    User.objects.create_user(username="newbie", password="pw")
    users["outsider"] = User.objects.create_user(username="mallory", password="pw")
    workflow = services.workflow_create(product=product, tag="onboarding", name="Onboarding")
    services.workflow_publish(workflow=workflow, author=None, spec=main_sequence())
    services.draft_save(workflow=workflow, spec=two_level_spec(), author=None)
    return users


def call(client: APIClient, method: str, url: str, body: dict[str, Any] | None) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize(
    ("method", "url", "body", "needed"),
    ENDPOINTS,
    ids=[f"{m.upper()} {u.removeprefix(P)}" for m, u, _, _ in ENDPOINTS],
)
def test_each_role_gets_what_it_should(
    members: dict[str, User], method: str, url: str, body: dict[str, Any] | None, needed: Role
) -> None:
    anonymous = call(APIClient(), method, url, body)
    assert anonymous.status_code == 401, anonymous.content
    assert anonymous.json()["code"] == "not_authenticated"

    outsider = call(client_for(members["outsider"]), method, url, body)
    assert outsider.status_code == 404, outsider.content

    for role in ROLES[: ROLES.index(needed)]:
        refused = call(client_for(members[role]), method, url, body)
        assert refused.status_code == 403, (role, refused.content)
        assert refused.json()["code"] == "permission_denied"

    allowed = call(client_for(members[needed]), method, url, body)
    assert 200 <= allowed.status_code < 300, (needed, allowed.content)


def test_an_outsider_cannot_tell_a_product_exists(members: dict[str, User]) -> None:
    outsider = client_for(members["outsider"])
    existing = outsider.get(P)
    missing = outsider.get("/api/v1/products/no-such-product/")
    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()


def test_products_list_shows_only_the_callers_products(
    members: dict[str, User], product: Product
) -> None:
    services.product_create(slug="other", name="Other")
    assert [
        p["slug"] for p in client_for(members[Role.VIEWER]).get("/api/v1/products/").json()
    ] == ["acme"]
    assert client_for(members["outsider"]).get("/api/v1/products/").json() == []
    root = User.objects.create_superuser("root", password="pw")
    assert [p["slug"] for p in client_for(root).get("/api/v1/products/").json()] == [
        "acme",
        "other",
    ]


def test_only_staff_create_products_and_become_their_admin(members: dict[str, User]) -> None:
    admin = client_for(members[Role.ADMIN])
    assert (
        admin.post("/api/v1/products/", {"slug": "b", "name": "B"}, format="json").status_code
        == 403
    )
    staff = User.objects.create_user("stef", password="pw", is_staff=True)
    created = client_for(staff).post("/api/v1/products/", {"slug": "b", "name": "B"}, format="json")
    assert created.status_code == 201
    members_of_b = client_for(staff).get("/api/v1/products/b/members/").json()
    assert [(m["username"], m["role"]) for m in members_of_b] == [("stef", "admin")]


def test_only_a_superuser_deletes_a_product(members: dict[str, User]) -> None:
    assert client_for(members[Role.ADMIN]).delete(P).status_code == 403
    root = User.objects.create_superuser("root", password="pw")
    assert client_for(root).delete(P).status_code == 204
    assert client_for(root).get(P).status_code == 404


def test_superusers_are_admins_everywhere(members: dict[str, User]) -> None:
    root = client_for(User.objects.create_superuser("root", password="pw"))
    assert root.put(W + "activations/dev", {"active": True}, format="json").status_code == 200
    assert root.get(P + "audit/").status_code == 200


def test_the_spec_schema_needs_a_login(members: dict[str, User]) -> None:
    assert APIClient().get("/api/v1/spec-schema").status_code == 401
    assert client_for(members["outsider"]).get("/api/v1/spec-schema").status_code == 200
