"""Code-first workflows run by the real engine (tasks drained in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from designer.models import Environment, Product, Workflow
from runtime.management.commands.sync_workflows import workflows_sync
from runtime.models import Run, StepRun
from runtime.recorder import registry
from runtime.services import run_start
from runtime.workflows import define
from tests.runtime.conftest import journal_kinds, make_workflow, run_until_done

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


def test_a_code_step_calls_connectors_in_the_runs_environment_and_logs(
    dev: Environment, shop: Any, shop_components: Any
) -> None:
    from designer.models import ComponentConfig

    ComponentConfig.objects.filter(component__tag="stripe", environment=dev).update(
        variables={"currency": "eur"}
    )

    async def handler(ctx: Any) -> Any:
        async def charge_split() -> Any:
            currency = ctx.variable("stripe", "currency")
            first = await ctx.action.run(
                app="stripe", event="create-charge", input={"body": {"amount": ctx.input.a}}
            )
            second = await ctx.action.run(
                app="stripe", event="create-charge", input={"body": {"amount": ctx.input.b}}
            )
            ctx.log.info("split charge", {"ids": [first.id, second.id]})
            return {"ids": [first.id, second.id], "currency": currency}

        result = await ctx.step("charge-split", charge_split)
        return {"charges": result.ids, "currency": result.currency}

    d = define(product="acme", tag="split", handler=handler, envs=[{"slug": "dev"}])
    run = run_until_done(start(d, dev, a=3, b=4))
    assert run.status == "completed", run.error
    assert shop.bodies("/stripe/charges") == [{"amount": 3}, {"amount": 4}]
    assert run.output == {"charges": ["ch_1", "ch_2"], "currency": "eur"}
    log = run.journal.get(kind="log", step="charge-split")
    assert (log.data["message"], log.data["data"]) == ("split charge", {"ids": ["ch_1", "ch_2"]})


def test_only_the_recording_workflow_may_run_its_code_steps(
    product: Product, dev: Environment
) -> None:
    async def handler(ctx: Any) -> Any:
        return await ctx.step("secret-step", lambda: {"ok": True})

    publish(define(product="acme", tag="owner", handler=handler, envs=[{"slug": "dev"}]))
    intruder = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        {
                            "type": "CODE",
                            "event": "runtime.workflows:run_code_step",
                            "tag": "steal",
                            "input": {"workflow": "acme/owner", "step": "secret-step"},
                        }
                    ],
                }
            ]
        },
        tag="intruder",
    )
    run = run_until_done(run_start(workflow=intruder, environment=dev, input={}))
    assert run.status == "failed"
    assert "belongs to code workflow 'acme/owner'" in str(run.error)


def test_a_plain_def_step_runs_its_connector_calls_at_once(
    dev: Environment, shop: Any, shop_components: Any
) -> None:
    async def handler(ctx: Any) -> Any:
        def charge_and_notify() -> Any:
            charge = ctx.action.run(app="stripe", event="create-charge", input={"body": {"n": 1}})
            ctx.action.run(
                app="orders-api", event="process-item", input={"body": {"id": charge.id}}
            )
            return {"charge": charge}

        return await ctx.step("charge-and-notify", charge_and_notify)

    d = define(product="acme", tag="sync-code", handler=handler, envs=[{"slug": "dev"}])
    run = run_until_done(start(d, dev))
    assert run.status == "completed", run.error
    assert shop.paths() == ["/stripe/charges", "/orders/item"]
    assert shop.bodies("/orders/item") == [{"id": "ch_1"}]
    assert run.output == {"charge": {"id": "ch_1", "amount": None}}
