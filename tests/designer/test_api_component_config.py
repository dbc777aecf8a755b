"""Component config API: config per environment, secrets write-only and encrypted."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from designer.models import AuditEntry, Component, ComponentConfig, Product
from designer.secrets import secrets_decrypt
from runtime.connectors.loader import component_cache_clear, component_for
from tests.conftest import client_for

URL = "/api/v1/products/acme/components/stripe/config/{env}"
SECRET = "sk-live-very-secret-42"


@pytest.fixture
def stripe(product: Product) -> Component:
    component_cache_clear()
    return Component.objects.create(
        product=product,
        kind="app",
        tag="stripe",
        events={"charge": {"method": "POST", "path": "/charges"}},
    )


def put(user: User, env: str, body: dict) -> object:
    return client_for(user).put(URL.format(env=env), body, format="json")


def test_an_admin_sets_config_and_secrets_which_are_never_returned(
    stripe: Component, admin_user: User, designer_user: User
) -> None:
    body = {
        "config": {
            "base_url": "https://api.stripe.com",
            "auth": {"type": "bearer", "token_secret": "stripe_key"},
        },
        "variables": {"api_version": "2024-06"},
        "constants": {"currency": "usd"},
        "secrets": {"stripe_key": SECRET},
    }
    response = put(admin_user, "prd", body)
    assert response.status_code == 200, response.content
    assert response.json()["secrets"] == {"stripe_key": "•••"}
    assert SECRET not in response.content.decode()
    read = client_for(designer_user).get(URL.format(env="prd"))
    assert read.status_code == 200
    assert read.json()["config"]["base_url"] == "https://api.stripe.com"
    assert read.json()["secrets"] == {"stripe_key": "•••"}
    assert SECRET not in read.content.decode()
    row = ComponentConfig.objects.get(component=stripe, environment__slug="prd")
    assert SECRET not in row.secrets_encrypted
    assert secrets_decrypt(row.secrets_encrypted) == {"stripe_key": SECRET}
    audit = AuditEntry.objects.filter(action="component.config").get()
    assert SECRET not in json.dumps([audit.before, audit.after])
    assert audit.after["secrets_changed"] == {"stripe_key": "•••"}


def test_secrets_merge_and_null_deletes(stripe: Component, admin_user: User) -> None:
    put(admin_user, "dev", {"secrets": {"a": "value-a", "b": "value-b"}})
    put(admin_user, "dev", {"secrets": {"b": None, "c": "value-c"}})
    response = put(admin_user, "dev", {"config": {"base_url": "http://x"}})
    assert response.json()["secrets"] == {"a": "•••", "c": "•••"}
    assert response.json()["config"] == {"base_url": "http://x"}


def test_the_loader_sees_a_change_at_once(stripe: Component, admin_user: User) -> None:
    put(admin_user, "dev", {"config": {"base_url": "http://one"}, "secrets": {"k": "v1-secret"}})
    product_id, env_id = stripe.product_id, stripe.product.environments.get(slug="dev").pk
    first = component_for(product_id=product_id, environment_id=env_id, tag="stripe")
    assert first.secrets == {"k": "v1-secret"} and first.config["base_url"] == "http://one"
    put(admin_user, "dev", {"secrets": {"k": "v2-secret"}})
    again = component_for(product_id=product_id, environment_id=env_id, tag="stripe")
    assert again.secrets == {"k": "v2-secret"}


def test_roles(
    stripe: Component,
    admin_user: User,
    designer_user: User,
    operator_user: User,
    viewer_user: User,
    outsider: User,
) -> None:
    body = {"config": {"base_url": "http://x"}}
    assert put(designer_user, "dev", body).status_code == 403
    assert put(operator_user, "dev", body).status_code == 403
    assert put(outsider, "dev", body).status_code == 404
    assert client_for(operator_user).get(URL.format(env="dev")).status_code == 403
    assert client_for(viewer_user).get(URL.format(env="dev")).status_code == 403
    assert client_for(outsider).get(URL.format(env="dev")).status_code == 404
    assert client_for(designer_user).get(URL.format(env="dev")).status_code == 200
    assert put(admin_user, "dev", body).status_code == 200


def test_bad_bodies_are_400s_naming_the_field(stripe: Component, admin_user: User) -> None:
    cases = [
        ({"config": "nope"}, "config"),
        ({"secrets": {"bad name!": "x"}}, "secrets"),
        ({"secrets": {"k": 5}}, "secrets"),
        ({"secrets": {"k": "x" * 10_001}}, "secrets"),
        ({"surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = put(admin_user, "dev", body)
        assert response.status_code == 400, body
        assert field in response.content.decode(), (body, response.content)
    assert put(admin_user, "nope", {"config": {}}).status_code == 404
    assert (
        client_for(admin_user)
        .put("/api/v1/products/acme/components/nope/config/dev", {}, format="json")
        .status_code
        == 404
    )
