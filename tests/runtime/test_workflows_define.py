"""workflows.define() and @workflows.workflow: arguments, aliases, registry."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import workflows
from runtime.recorder import registry
from runtime.testing import Fail, WorkflowTestEnvironment
from runtime.workflows import RecordingError, define


@pytest.fixture(autouse=True)
def isolated() -> Any:
    with registry.isolated():
        yield


async def one_step(ctx: Any) -> None:
    await ctx.step("only", lambda: ctx.action.run(app="x", event="y"))


def test_the_readme_example_records_and_its_test_passes() -> None:
    @workflows.workflow(
        product="acme",
        tag="order-fulfillment",
        name="Order Fulfillment",
        branch_overrides={"validate": {"available": True}},
    )
    async def order_fulfillment(ctx: Any) -> Any:
        validation = await ctx.step(
            "validate",
            lambda: ctx.action.run(
                app="inventory-api",
                event="check-availability",
                input={"body": {"items": ctx.input.items}},
            ),
        )
        if not validation.available:
            return {"success": False}
        payment = await ctx.step(
            "payment",
            lambda: ctx.action.run(
                app="stripe", event="create-charge", input={"body": {"amount": ctx.input.amount}}
            ),
            lambda result: ctx.action.run(
                app="stripe", event="refund", input={"body": {"chargeId": result.id}}
            ),
        )
        return {"success": True, "chargeId": payment.id}

    assert isinstance(order_fulfillment, workflows.WorkflowDefinition)
    assert registry.get("acme", "order-fulfillment") is order_fulfillment
    events = order_fulfillment.spec_json()["sequences"][0]["events"]
    assert [e["tag"] for e in events] == ["validate", "return", "payment"]
    assert events[1]["type"] == "RETURN"
    assert events[1]["condition"] == "$Step{validate}{available} != true"
    assert events[1]["input"] == {"output": {"success": False}}
    payment = events[2]
    assert payment["condition"] == "$Step{validate}{available} == true"
    assert payment["rollback"]["input"] == {"body": {"chargeId": "$Step{payment}{id}"}}

    # The README's tests, as written there.
    env = WorkflowTestEnvironment(fakes={"validate": {"available": False}})
    run = env.run(order_fulfillment, {"items": [], "amount": 42})
    assert run.status == "completed" and run.output == {"success": False}
    assert run.steps["payment"].status == "not_run"  # the run returned before it
    env = WorkflowTestEnvironment(
        fakes={"validate": {"available": True}, "payment": Fail("card declined")}
    )
    assert env.run(order_fulfillment, {"items": [], "amount": 42}).status == "failed"


def test_seed_camel_case_names_are_accepted() -> None:
    async def handler(ctx: Any) -> None:
        v = await ctx.step("v", lambda: ctx.action.run(app="x", event="v"))
        if not v.ok:
            return
        for item in ctx.input.items:
            await ctx.step(
                f"i-{item.id}",
                lambda: ctx.action.run(app="x", event="i"),
                None,
                {"allowFail": True, "retryDelay": "1s"},
            )
        await ctx.waitForSignal("go", {"timeout": "1h"})

    d = define(
        product="acme",
        tag="camel",
        handler=handler,
        options={"rollbackStrategy": "critical_only", "maxConcurrency": 3},
        branchOverrides={"v": {"ok": True}},
        recordInput={"items": [{"id": 1}]},
        signals={"go": {}},
    )
    spec = d.spec_json()
    assert spec["options"] == {"rollback_strategy": "critical_only", "max_concurrency": 3}
    events = spec["sequences"][0]["events"]
    assert events[1]["type"] == "FOREACH"
    body = events[1]["loop"]["body"][0]
    assert body["tag"] == "i"  # the item's part of the tag is dropped in a loop body
    assert (body["allow_fail"], body["retry_delay"]) == (True, "1s")
    assert events[2]["type"] == "WAIT_SIGNAL"


def test_definition_options_envs_and_input_schema_are_kept() -> None:
    d = define(
        product="acme",
        tag="order-process",
        name="Order Processing",
        description="Handles complete order fulfillment",
        options={"timeout": 300000, "rollback_strategy": "reverse_all"},
        envs=[{"slug": "dev", "active": True}, {"slug": "prd", "active": False}],
        input_schema={"orderId": "string"},
        handler=one_step,
    )
    assert (d.name, d.description, d.key) == (
        "Order Processing",
        "Handles complete order fulfillment",
        "acme/order-process",
    )
    assert d.spec.options.timeout == 300000
    assert [(e.slug, e.active) for e in d.spec.envs] == [("dev", True), ("prd", False)]
    assert d.spec.input == {"orderId": "string"}


def test_the_name_defaults_to_the_tag() -> None:
    assert define(product="acme", tag="nightly-report", handler=one_step).name == "Nightly report"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tag": "Bad Tag"}, "invalid tag 'Bad Tag'"),
        ({"options": {"timeout": 1, "retries": 3}}, "unknown option 'retries'"),
        ({"recordScenario": [{}]}, "unknown argument 'recordScenario'"),
        ({"record_scenarios": {"type": "a"}}, "record_scenarios must be a list of dicts"),
        ({"branch_overrides": {"only": {1, 2}}}, "branch_overrides must be JSON"),
        ({"options": {"rollback_strategy": "sideways"}}, "options.rollback_strategy"),
        ({"handler": "not a function"}, "handler must be a function"),
    ],
)
def test_bad_arguments_fail_at_define_time_naming_the_cause(
    kwargs: dict[str, Any], message: str
) -> None:
    args = {"product": "acme", "tag": "wf", "handler": one_step, **kwargs}
    with pytest.raises(RecordingError, match=message) as err:
        define(**args)
    assert err.value.site is not None and err.value.site.filename == __file__


def test_a_tag_defined_twice_in_different_places_is_refused() -> None:
    define(product="acme", tag="twice", handler=one_step)
    with pytest.raises(RecordingError, match="'acme/twice' is defined twice"):
        define(product="acme", tag="twice", handler=one_step)


def test_an_unregistered_definition_stays_out_of_the_registry() -> None:
    d = define(product="acme", tag="private", handler=one_step, register=False)
    assert "acme/private" not in registry
    assert d.spec.sequences[0].events[0].tag == "only"


def test_the_decorator_refuses_unknown_arguments() -> None:
    with pytest.raises(RecordingError, match="unknown argument 'retries'"):

        @workflows.workflow(product="acme", tag="deco", retries=3)
        async def deco(ctx: Any) -> None:
            return None
