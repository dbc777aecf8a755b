"""Code-first workflows run by the real engine (tasks drained in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from designer.models import Environment, Product, Workflow
from runtime.management.commands.sync_workflows import workflows_sync
from runtime.models import Run, StepRun
from runtime.services import run_start
from runtime.workflows import define, registry
from tests.runtime.conftest import journal_kinds, run_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def isolated_registry() -> Any:
    with registry.isolated():
        yield


def publish(definition: Any) -> Workflow:
    (result,) = workflows_sync(definitions=[definition])
    assert result.status in {"created", "published", "unchanged"}, result.describe()
    return Workflow.objects.get(product__slug=definition.product, tag=definition.tag)


def start(definition: Any, env: Environment, **input: Any) -> Run:
    return run_start(workflow=publish(definition), environment=env, input=input)


def statuses(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(run=run).values_list("tag", "status"))


@pytest.fixture
def dev(product: Product) -> Environment:
    env = product.environments.get(slug="dev")
    return env


def test_code_steps_run_for_real_with_recorded_values_replaced(dev: Environment) -> None:
    async def handler(ctx: Any) -> Any:
        ctx.log.info("start", {"n": ctx.input.n})
        first = await ctx.step("first", lambda: {"double": ctx.input.n * 2})
        factor = 10

        async def second() -> Any:
            return {"total": first.double * factor + len(ctx.steps)}

        total = await ctx.step("second", second)
        return {"total": total.total}

    d = define(product="acme", tag="code-run", handler=handler, envs=[{"slug": "dev"}])
    run = run_until_done(start(d, dev, n=4))
    assert run.status == "completed", run.error
    assert run.output == {"total": 82}
    kinds = journal_kinds(run)
    assert ("log", "log") in kinds
