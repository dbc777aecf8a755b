"""Code-first ``envs=[{slug, active}]`` fills activation only where no admin decided by hand
(Activation.managed_by), through sync_workflows and designer.services.activation_set; the
matrix says who decided each cell."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from designer import services
from designer.models import Activation, Product, Workflow
from runtime.management.commands.sync_workflows import workflows_sync
from runtime.recorder import registry
from runtime.workflows import define
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

P = "/api/v1/products/acme/"


@pytest.fixture(autouse=True)
def isolated_registry() -> Any:
    with registry.isolated():
        yield


def coded(envs: list[dict[str, Any]], steps: int = 1) -> Any:
    async def handler(ctx: Any) -> None:
        for i in range(steps):
            await ctx.step(f"s{i}", lambda: {"ok": True})

    return define(product="acme", tag="coded", handler=handler, envs=envs, register=False)


def cells(user: User) -> dict[str, tuple[bool, str]]:
    response = client_for(user).get(P + "matrix")
    assert response.status_code == 200
    (row,) = response.json()["workflows"]
    return {env: (c["active"], c["managed_by"]) for env, c in row["cells"].items()}


def test_code_fills_only_the_environments_nobody_managed_by_hand(
    product: Product, admin_user: User
) -> None:
    workflows_sync(definitions=[coded([{"slug": "dev", "active": True}])])
    assert cells(admin_user) == {
        "dev": (True, "code"),
        "staging": (False, ""),
        "prd": (False, ""),
    }
    # An admin decides staging by hand (deactivate) and promotes to prd.
    alice = client_for(admin_user)
    response = alice.put(
        P + "workflows/coded/activations/staging", {"active": False}, format="json"
    )
    assert response.status_code == 200
    response = alice.post(
        P + "workflows/coded/promote", {"from_env": "dev", "to_env": "prd"}, format="json"
    )
    assert response.status_code == 200, response.content

    every = [{"slug": s, "active": s != "dev"} for s in ("dev", "staging", "prd")]
    (result,) = workflows_sync(definitions=[coded(every, steps=2)])
    assert sorted(result.kept) == ["prd", "staging"]
    assert cells(admin_user) == {
        "dev": (False, "code"),  # code may change what code decided
        "staging": (False, "user"),
        "prd": (True, "user"),
    }
    workflow = Workflow.objects.get(product=product, tag="coded")
    prd = Activation.objects.get(workflow=workflow, environment__slug="prd")
    assert prd.version is not None and prd.version.number == 1  # the promoted pin stays


def test_activation_set_by_code_never_overrides_a_decision_by_hand(
    product: Product, admin_user: User
) -> None:
    workflow = services.workflow_create(product=product, tag="wf", name="Wf")
    services.workflow_publish(
        workflow=workflow,
        author=admin_user,
        spec={"sequences": [{"tag": "s", "events": [{"type": "SLEEP", "event": "5m"}]}]},
    )
    dev = product.environments.get(slug="dev")
    services.activation_set(workflow=workflow, environment=dev, active=True, actor=admin_user)
    kept = services.activation_set(
        workflow=workflow, environment=dev, active=False, managed_by="code"
    )
    assert (kept.active, kept.managed_by, kept.updated_by) == (True, "user", admin_user)
    staging = product.environments.get(slug="staging")
    filled = services.activation_set(
        workflow=workflow, environment=staging, active=True, managed_by="code"
    )
    assert (filled.active, filled.managed_by) == (True, "code")
