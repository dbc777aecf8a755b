"""Environments, promotion, the configuration diff and the activation matrix
(designer/governance.py and designer/api/governance.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import governance, services
from designer.models import (
    Activation,
    AuditEntry,
    Component,
    ComponentConfig,
    Environment,
    Product,
    Workflow,
)
from designer.secrets import secrets_encrypt
from tests.conftest import client_for
from tests.designer.conftest import main_sequence

URL = "/api/v1/products/acme"


@pytest.fixture
def workflow(product: Product, components: list[Component], admin_user: User) -> Workflow:
    workflow = services.workflow_create(product=product, tag="onboard", name="Onboard")
    services.workflow_publish(workflow=workflow, author=admin_user, spec=main_sequence())
    spec = main_sequence()
    spec["sequences"][0]["events"][0]["retries"] = 5
    services.workflow_publish(workflow=workflow, author=admin_user, spec=spec)
    return workflow


def env(product: Product, slug: str) -> Environment:
    return product.environments.get(slug=slug)


def configure(
    component: Component,
    environment: Environment,
    *,
    secrets: dict[str, str] | None = None,
    **fields: Any,
) -> ComponentConfig:
    return ComponentConfig.objects.create(
        component=component,
        environment=environment,
        secrets_encrypted=secrets_encrypt(secrets or {}),
        **fields,
    )


# --- environments -------------------------------------------------------------------------


def test_marking_production_moves_the_mark(product: Product, admin_user: User) -> None:
    staging = env(product, "staging")
    governance.environment_mark_production(environment=staging, actor=admin_user)
    marked = list(product.environments.filter(is_production=True).values_list("slug", flat=True))
    assert marked == ["staging"]
    entry = AuditEntry.objects.get(action="environment.mark_production")
    assert entry.actor == admin_user
    assert entry.before == {"production": ["prd"]}
    assert entry.after == {"production": ["staging"]}


def test_production_environment_keeps_its_slug_and_cannot_be_deleted(
    api: APIClient, product: Product
) -> None:
    response = api.patch(f"{URL}/environments/prd/", {"slug": "live"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "slug"
    response = api.patch(f"{URL}/environments/prd/", {"name": "Production"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Production"
    response = api.delete(f"{URL}/environments/prd/")
    assert response.status_code == 400
    assert env(product, "prd").is_production


def test_patching_is_production_moves_the_mark(api: APIClient, product: Product) -> None:
    response = api.patch(f"{URL}/environments/staging/", {"is_production": True}, format="json")
    assert response.status_code == 200
    assert [e.slug for e in product.environments.filter(is_production=True)] == ["staging"]


def test_environment_slugs_that_name_endpoints_are_reserved(api: APIClient) -> None:
    response = api.post(f"{URL}/environments/", {"slug": "diff", "name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "slug"


def test_creating_a_production_environment_unmarks_the_old_one(
    api: APIClient, product: Product
) -> None:
    body = {"slug": "live", "name": "Live", "is_production": True}
    assert api.post(f"{URL}/environments/", body, format="json").status_code == 201
    assert [e.slug for e in product.environments.filter(is_production=True)] == ["live"]


def test_reorder_puts_environments_in_the_given_order(
    api: APIClient, product: Product, admin_user: User
) -> None:
    response = api.post(
        f"{URL}/environments/reorder", {"order": ["staging", "dev", "prd"]}, format="json"
    )
    assert response.status_code == 200
    assert [e["slug"] for e in response.json()] == ["staging", "dev", "prd"]
    entry = AuditEntry.objects.get(action="environment.reorder")
    assert entry.actor == admin_user
    assert entry.after == {"order": ["staging", "dev", "prd"]}


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["dev", "staging"], "missing"),
        (["dev", "staging", "prd", "qa"], "no environment 'qa'"),
        (["dev", "dev", "staging", "prd"], "only once"),
    ],
)
def test_reorder_refuses_an_incomplete_order(
    api: APIClient, order: list[str], message: str
) -> None:
    response = api.post(f"{URL}/environments/reorder", {"order": order}, format="json")
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_mark_production_endpoint(api: APIClient, product: Product) -> None:
    response = api.post(f"{URL}/environments/dev/production")
    assert response.status_code == 200
    assert response.json()["is_production"] is True
    assert not env(product, "prd").is_production
    response = api.delete(f"{URL}/environments/dev/production")
    assert response.json()["is_production"] is False


# --- promotion ----------------------------------------------------------------------------


def test_promotion_makes_the_source_version_live_and_pinned_in_the_target(
    api: APIClient, product: Product, workflow: Workflow, admin_user: User
) -> None:
    v1 = workflow.versions.get(number=1)
    services.activation_set(
        workflow=workflow, environment=env(product, "dev"), active=True, version=v1
    )
    response = api.post(
        f"{URL}/workflows/onboard/promote",
        {"version": 1, "from_env": "dev", "to_env": "prd"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["cells"]["prd"] == {
        "active": True,
        "live_version": 1,
        "pinned": True,
        "managed_by": "user",
    }
    activation = Activation.objects.get(workflow=workflow, environment=env(product, "prd"))
    assert activation.version == v1 and activation.active
    entry = AuditEntry.objects.get(action="workflow.promote")
    assert entry.actor == admin_user
    assert entry.target == "onboard@prd"
    assert entry.before["active"] is False
    assert entry.after["version"] == 1 and entry.after["from_env"] == "dev"


def test_preview_changes_nothing_and_shows_spec_and_config_differences(
    api: APIClient, product: Product, workflow: Workflow, components: list[Component]
) -> None:
    accounts = components[0]
    configure(
        accounts,
        env(product, "dev"),
        config={"base_url": "http://dev.local", "auth": {"token": "dev-token-123"}},
        variables={"region": "eu"},
        secrets={"api_key": "dev-secret-value", "shared": "same-value"},
    )
    configure(
        accounts,
        env(product, "prd"),
        config={"base_url": "https://prd.example", "auth": {"token": "prd-token-456"}},
        variables={"region": "eu"},
        secrets={"shared": "same-value", "only_prd": "prd-only-value"},
    )
    prd = env(product, "prd")
    services.activation_set(
        workflow=workflow, environment=prd, active=True, version=workflow.versions.get(number=1)
    )
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    response = api.post(
        f"{URL}/workflows/onboard/promote?preview=1",
        {"from_env": "dev", "to_env": "prd"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    text = response.content.decode()
    assert body["preview"] is True and body["version"] == 2
    # Nothing changed: v1 is still live in prd.
    assert Activation.objects.get(workflow=workflow, environment=prd).version.number == 1
    (target,) = body["environments"]
    assert target["before"]["version"] == 1 and target["after"]["version"] == 2
    changes = target["spec_diff"]["changes"]
    assert changes == [
        {
            "path": "sequences[main_sequence].events[validate_user].retries",
            "change": "changed",
            "before": 2,
            "after": 5,
        }
    ]
    (accounts_diff,) = target["config_diff"]  # mailer is used too, but configured nowhere
    assert target["unconfigured"] == ["mailer"]
    assert accounts_diff["component"] == "accounts"
    paths = {c["path"]: c for c in accounts_diff["config"]}
    assert paths["base_url"]["before"] == "http://dev.local"
    assert paths["auth.token"]["before"] == "•••"
    assert accounts_diff["variables"] == []
    assert accounts_diff["secrets"] == [
        {"name": "api_key", "in_a": True, "in_b": False, "differs": True},
        {"name": "only_prd", "in_a": False, "in_b": True, "differs": True},
    ]
    for secret in (
        "dev-token-123",
        "prd-token-456",
        "dev-secret-value",
        "same-value",
        "prd-only-value",
    ):
        assert secret not in text


def test_promoting_a_version_that_is_not_live_in_the_source_is_refused(
    api: APIClient, product: Product, workflow: Workflow
) -> None:
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    response = api.post(
        f"{URL}/workflows/onboard/promote",
        {"version": 1, "from_env": "dev", "to_env": "prd"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "version"
    assert "v2 is live there" in response.json()["message"]


def test_promoting_from_an_inactive_environment_is_refused(
    api: APIClient, workflow: Workflow
) -> None:
    response = api.post(
        f"{URL}/workflows/onboard/promote", {"from_env": "dev", "to_env": "prd"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "from_env"


def test_promoting_through_sets_every_environment_on_the_way(
    api: APIClient, product: Product, workflow: Workflow
) -> None:
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    response = api.post(
        f"{URL}/workflows/onboard/promote",
        {"from_env": "dev", "to_env": "prd", "through": True},
        format="json",
    )
    assert response.status_code == 200
    cells = response.json()["cells"]
    assert cells["staging"]["live_version"] == 2 and cells["staging"]["active"]
    assert cells["prd"]["live_version"] == 2 and cells["prd"]["pinned"]
    targets = set(
        AuditEntry.objects.filter(action="workflow.promote").values_list("target", flat=True)
    )
    assert targets == {"onboard@staging", "onboard@prd"}


# --- matrix -------------------------------------------------------------------------------


def test_matrix_shows_each_workflow_in_each_environment(
    product: Product, workflow: Workflow, viewer_user: User
) -> None:
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    services.activation_set(
        workflow=workflow,
        environment=env(product, "staging"),
        active=False,
        version=workflow.versions.get(number=1),
        managed_by="code",
    )
    response = client_for(viewer_user).get(f"{URL}/matrix")
    assert response.status_code == 200
    body = response.json()
    assert [e["slug"] for e in body["environments"]] == ["dev", "staging", "prd"]
    (row,) = body["workflows"]
    assert row["tag"] == "onboard" and row["latest_version"] == 2
    assert row["cells"] == {
        "dev": {"active": True, "live_version": 2, "pinned": False, "managed_by": "user"},
        "staging": {"active": False, "live_version": 1, "pinned": True, "managed_by": "code"},
        "prd": {"active": False, "live_version": 2, "pinned": False, "managed_by": ""},
    }


# --- environment diff ---------------------------------------------------------------------


def test_environment_diff_compares_configuration_and_activation(
    api: APIClient, product: Product, workflow: Workflow, components: list[Component]
) -> None:
    accounts, mailer = components
    configure(accounts, env(product, "dev"), constants={"limit": 5}, secrets={"k": "value-one"})
    configure(accounts, env(product, "prd"), constants={"limit": 5}, secrets={"k": "value-two"})
    configure(mailer, env(product, "dev"), config={"host": "smtp.dev"})
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    response = api.get(f"{URL}/environments/diff?a=dev&b=prd")
    assert response.status_code == 200
    body = response.json()
    by_tag = {c["component"]: c for c in body["components"]}
    assert by_tag["accounts"]["constants"] == []
    assert by_tag["accounts"]["secrets"] == [
        {"name": "k", "in_a": True, "in_b": True, "differs": True}
    ]
    assert by_tag["mailer"]["configured_in_b"] is False
    assert by_tag["mailer"]["config"][0]["path"] == "host"
    assert body["workflows"] == [
        {
            "workflow": "onboard",
            "a": {"active": True, "version": 2},
            "b": {"active": False, "version": 2},
        }
    ]
    assert "value-one" not in response.content.decode()


def test_environment_diff_names_an_unknown_environment(api: APIClient) -> None:
    response = api.get(f"{URL}/environments/diff?a=dev&b=nope")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "b"


# --- json diff ----------------------------------------------------------------------------


def test_json_diff_matches_list_items_by_tag() -> None:
    before = {"sequences": [{"tag": "a", "events": [{"event": "x"}, {"event": "y"}]}]}
    after = {
        "sequences": [{"tag": "a", "events": [{"event": "x"}, {"event": "new"}, {"event": "y"}]}]
    }
    changes = governance.json_diff(before, after)
    assert [(c.path, c.change) for c in changes] == [("sequences[a].events[new]", "added")]
    swapped = {"sequences": [{"tag": "a", "events": [{"event": "y"}, {"event": "x"}]}]}
    changes = governance.json_diff(before, swapped)
    assert [(c.path, c.change) for c in changes] == [("sequences[a].events (order)", "changed")]


# --- bad requests name the field ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("environments/reorder", {"order": "dev"}, "order"),
        ("environments/reorder", {"order": ["dev", 3]}, "order[1]"),
        ("environments/reorder", {"order": [], "extra": 1}, "extra"),
        ("workflows/onboard/promote", {"from_env": "dev"}, "to_env"),
        (
            "workflows/onboard/promote",
            {"from_env": "dev", "to_env": "prd", "version": "1"},
            "version",
        ),
        (
            "workflows/onboard/promote",
            {"from_env": "dev", "to_env": "prd", "through": "yes"},
            "through",
        ),
        ("workflows/onboard/promote", {"from_env": "dev", "to_env": "nope"}, "to_env"),
        ("workflows/onboard/promote", {"from_env": "dev", "to_env": "dev"}, "to_env"),
        ("workflows/onboard/promote", {"from_env": "dev", "to_env": "prd", "x": 1}, "x"),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field(
    api: APIClient, product: Product, workflow: Workflow, url: str, body: dict, path: str
) -> None:
    services.activation_set(workflow=workflow, environment=env(product, "dev"), active=True)
    response = api.post(f"{URL}/{url}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["path"] == path


def test_promoting_through_backwards_is_refused(
    api: APIClient, product: Product, workflow: Workflow
) -> None:
    services.activation_set(workflow=workflow, environment=env(product, "prd"), active=True)
    body = {"from_env": "prd", "to_env": "dev", "through": True}
    response = api.post(f"{URL}/workflows/onboard/promote", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "through"
