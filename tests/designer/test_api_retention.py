"""An environment's retention through the API: admins set it (audited), others may not,
a bad value is a 400 naming the field, and the answer says what applies."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer.models import AuditEntry, Environment, Product
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/acme/environments/dev/"


def test_an_admin_sets_the_retention_and_the_rest_takes_the_product_default(
    api: APIClient, product: Product, settings: Any
) -> None:
    settings.TRELLIS_RETENTION_FAILED_DAYS = 45
    response = api.patch(URL, {"retention": {"completed_days": 7, "keep_last": 3}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["retention"] == {"completed_days": 7, "keep_last": 3}
    assert body["retention_effective"] == {
        "completed_days": 7,
        "failed_days": 45,
        "keep_last": 3,
        "audit_days": 365,
    }
    assert Environment.objects.get(product=product, slug="dev").retention == body["retention"]
    assert AuditEntry.objects.filter(action="environment.update").exists()
    # null puts a key back to the product default.
    again = api.patch(URL, {"retention": {"completed_days": None}}, format="json")
    assert again.json()["retention"] == {}
    assert again.json()["retention_effective"]["completed_days"] == 30


@pytest.mark.parametrize(
    ("retention", "path"),
    [
        ({"completed_days": -1}, "retention.completed_days"),
        ({"keep_last": "many"}, "retention.keep_last"),
        ({"keep_last": True}, "retention.keep_last"),
        ({"forever": 1}, "retention.forever"),
    ],
)
def test_a_bad_retention_is_a_400_naming_the_field(
    api: APIClient, product: Product, retention: dict[str, Any], path: str
) -> None:
    response = api.patch(URL, {"retention": retention}, format="json")
    assert response.status_code == 400, response.content
    assert path in [error["path"] for error in response.json()["errors"]]
    assert Environment.objects.get(product=product, slug="dev").retention == {}


def test_only_an_admin_changes_the_retention(designer_user: User, operator_user: User) -> None:
    for user in (designer_user, operator_user):
        response = client_for(user).patch(URL, {"retention": {"keep_last": 1}}, format="json")
        assert response.status_code == 403, response.content
    assert Environment.objects.get(slug="dev").retention == {}
