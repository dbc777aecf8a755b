"""sync_workflows: code-first workflows become published workflows (source = code)."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from designer import services
from designer.models import Activation, Product, Source, VersionState, Workflow
from runtime.management.commands.sync_workflows import workflows_sync
from runtime.recorder import registry
from runtime.workflows import define


@pytest.fixture(autouse=True)
def isolated_registry() -> Any:
    # A fresh import each time, so the sample module defines its workflow again.
    sys.modules.pop("tests.examples.sync_sample", None)
    with registry.isolated():
        yield


def sync(*modules: str, strict: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = [a for m in modules for a in ("--module", m)] + (["--strict"] if strict else [])
    call_command("sync_workflows", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def code_workflow(tag: str = "coded", steps: int = 1, **kwargs: Any) -> Any:
    async def handler(ctx: Any) -> None:
        for i in range(steps):
            await ctx.step(f"s{i}", lambda: {"ok": True})

    return define(product="acme", tag=tag, handler=handler, **kwargs)


def test_it_creates_publishes_and_activates_a_code_workflow(product: Product) -> None:
    out, err = sync("tests.examples.sync_sample")
    assert err == ""
    assert "acme/sync-sample: created v1 (dev active, staging inactive)" in out
    workflow = Workflow.objects.get(product=product, tag="sync-sample")
    assert (workflow.source, workflow.name, workflow.description) == (
        Source.CODE,
        "Sync sample",
        "Two code steps",
    )
    version = workflow.versions.get(state=VersionState.PUBLISHED)
    assert version.spec["sequences"][0]["events"][0]["event"] == "runtime.workflows:run_code_step"
    activations = {a.environment.slug: (a.active, a.managed_by) for a in workflow.activations.all()}
    assert activations == {"dev": (True, "code"), "staging": (False, "code")}


def test_it_publishes_only_when_the_recorded_spec_changed(product: Product) -> None:
    results = workflows_sync(definitions=[code_workflow(steps=1)])
    assert [(r.status, r.version) for r in results] == [("created", 1)]
    assert [
        (r.status, r.version) for r in workflows_sync(definitions=[code_workflow(steps=1)])
    ] == [("unchanged", 1)]
    changed = workflows_sync(definitions=[code_workflow(steps=2, name="Renamed")])
    assert [(r.status, r.version) for r in changed] == [("published", 2)]
    workflow = Workflow.objects.get(product=product, tag="coded")
    assert workflow.name == "Renamed"
    assert list(workflow.versions.values_list("number", flat=True)) == [2, 1]


def test_envs_never_override_an_activation_set_by_hand(product: Product, admin_user: Any) -> None:
    workflows_sync(definitions=[code_workflow(envs=[{"slug": "dev", "active": True}])])
    workflow = Workflow.objects.get(product=product, tag="coded")
    dev = product.environments.get(slug="dev")
    services.activation_set(workflow=workflow, environment=dev, active=False, actor=admin_user)

    results = workflows_sync(
        definitions=[code_workflow(steps=2, envs=[{"slug": "dev", "active": True}])]
    )
    assert results[0].kept == ["dev"]
    activation = Activation.objects.get(workflow=workflow, environment=dev)
    assert (activation.active, activation.managed_by) == (False, "user")


def test_a_canvas_workflow_with_the_same_tag_is_left_alone(product: Product) -> None:
    services.workflow_create(product=product, tag="coded", name="Drawn", source=Source.CANVAS)
    (result,) = workflows_sync(definitions=[code_workflow()])
    assert result.status == "skipped"
    assert "a canvas workflow 'coded' already exists" in result.errors[0]
    assert Workflow.objects.get(product=product, tag="coded").name == "Drawn"


def test_a_workflow_for_an_unknown_product_is_skipped(db: None) -> None:
    (result,) = workflows_sync(definitions=[code_workflow()])
    assert (result.status, result.errors) == ("skipped", ["no product 'acme'"])


def test_a_spec_that_does_not_compile_is_reported_and_the_others_still_sync(
    product: Product,
) -> None:
    async def handler(ctx: Any) -> None:
        await ctx.action.run(app="nowhere-api", event="ping")

    broken = define(product="acme", tag="broken", handler=handler)
    results = workflows_sync(definitions=[broken, code_workflow()])
    assert [r.status for r in results] == ["failed", "created"]
    assert results[0].errors == ["sequences[0].events[0].app: unknown app component 'nowhere-api'"]
    assert not Workflow.objects.get(product=product, tag="broken").versions.exists()


def test_strict_mode_fails_the_command_when_a_workflow_is_not_synced(db: None) -> None:
    with pytest.raises(CommandError, match="not synced: acme/sync-sample"):
        sync("tests.examples.sync_sample", strict=True)
