"""The live ctx of code steps: real values back in place of recorded ones (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.context import AttrDict, BareRuntime, run_code_step, run_step_function, wrap
from runtime.errors import StepError
from runtime.recorder import using
from runtime.workflows import define


def test_fields_read_as_attributes_and_win_over_dict_methods() -> None:
    value = wrap({"items": [{"id": 1}], "get": "field", "nested": {"a": {"b": 2}}})
    assert isinstance(value, AttrDict)
    assert value.items == [{"id": 1}]
    assert value.items[0].id == 1
    assert value.get == "field"
    assert value.nested.a.b == 2
    assert dict.items(value)
    with pytest.raises(AttributeError, match="no field 'missing'"):
        _ = value.missing


def definition_with(handler: Any) -> Any:
    return define(product="acme", tag="ctx-test", handler=handler, register=False)


def run_step(d: Any, step: str, data: dict[str, Any]) -> Any:
    events = [e for s in d.spec_json()["sequences"] for e in s["events"]]
    events += [b for e in events for b in (e.get("loop") or {}).get("body", [])]
    event = next(e for e in events if e["tag"] == step)
    payload = {**event["input"], **data}
    with using(d):
        return run_code_step(payload, BareRuntime(payload.get("ctx")))


def test_captured_values_helpers_and_default_arguments_are_rebound() -> None:
    async def handler(ctx: Any) -> None:
        order = await ctx.step("order", lambda: ctx.action.run(app="x", event="order"))
        discount = 0.5

        def shipping() -> Any:
            return order.shipping * discount

        for line in ctx.input.lines:
            await ctx.step(
                f"line-{line.sku}",
                lambda line=line: {"total": line.qty * line.unit + shipping()},
            )

    d = define(
        product="acme",
        tag="ctx-test",
        handler=handler,
        register=False,
        record_input={"lines": [{"sku": "a"}, {"sku": "b"}]},
    )
    loop = next(e for e in d.spec_json()["sequences"][0]["events"] if e["type"] == "FOREACH")
    event = loop["loop"]["body"][0]
    assert event["tag"] == "line"
    assert event["input"]["refs"] == {"shipping.order": "$Step{order}", "#0": "$Item"}
    # The engine resolves the refs (per iteration); here we hand them resolved.
    out = run_step(
        d, "line", {"refs": {"shipping.order": {"shipping": 4}, "#0": {"qty": 3, "unit": 2}}}
    )
    assert out == {"total": 8.0}


def test_a_recorded_value_hidden_from_the_worker_fails_without_retry() -> None:
    async def handler(ctx: Any) -> None:
        box = [ctx.input.n]  # a list of recorded values inside an object the worker keeps

        class Holder:
            value = box

        await ctx.step("odd", lambda: {"n": Holder.value[0] + 1})

    with pytest.raises(StepError) as err:
        run_step(definition_with(handler), "odd", {})
    assert err.value.retryable is False
    assert "used a value recorded at define time" in err.value.message


def test_a_code_step_reads_the_run_input_steps_and_state() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("first", lambda: ctx.action.run(app="x", event="first"))
        ctx.set_state("phase", "paid")
        await ctx.step(
            "report",
            lambda: {
                "who": ctx.input.customer.name,
                "first": ctx.steps["first"].id,
                "phase": ctx.get_state("phase"),
                "done": ctx.completed_steps,
            },
        )

    d = definition_with(handler)
    out = run_step(
        d,
        "report",
        {
            "ctx": {
                "input": {"customer": {"name": "Ada"}},
                "steps": {"first": {"id": 7}, "set-phase": {"phase": "paid"}},
                "state": {"phase": "paid"},
                "run": {
                    "id": 3,
                    "completed_steps": ["first", "set-phase"],
                    "current_step": "report",
                },
            }
        },
    )
    assert out == {"who": "Ada", "first": 7, "phase": "paid", "done": ["first", "set-phase"]}


def test_a_result_that_is_not_json_fails_without_retry() -> None:
    class Thing:
        pass

    async def handler(ctx: Any) -> None:
        await ctx.step("odd", lambda: {"thing": Thing()})

    d = definition_with(handler)
    with pytest.raises(StepError) as err:
        run_step(d, "odd", {})
    assert err.value.retryable is False
    assert "not JSON-serialisable" in err.value.message


def test_durable_calls_are_refused_inside_a_step_function() -> None:
    async def handler(ctx: Any) -> None:
        async def sneaky() -> Any:
            await ctx.sleep(10)
            return {}

        await ctx.step("sneaky", sneaky)

    with pytest.raises(StepError, match=r"ctx\.sleep cannot run inside a step function"):
        run_step(definition_with(handler), "sneaky", {})


def test_an_unknown_step_or_workflow_is_a_clear_error() -> None:
    with pytest.raises(StepError, match="is not defined in this process"):
        run_code_step({"workflow": "acme/nope", "step": "x"}, None)

    async def handler(ctx: Any) -> None:
        await ctx.step("real", lambda: {"ok": True})

    d = definition_with(handler)
    with using(d), pytest.raises(StepError, match="has no step 'gone'"):
        run_code_step({"workflow": "acme/ctx-test", "step": "gone"}, None)


def test_run_step_function_calls_rollbacks_with_the_step_result() -> None:
    seen: list[Any] = []

    def undo(result: Any) -> dict[str, Any]:
        seen.append(result.id)
        return {"undone": result.id}

    assert run_step_function(
        undo, refs={}, runtime=BareRuntime(), rollback=True, result={"id": 9}
    ) == {"undone": 9}
    assert seen == [9]
