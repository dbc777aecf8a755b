"""The recorder: a handler run once with recording proxies becomes the one spec (pure)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.compiler import compile_spec
from runtime.workflows import RecordingError, WorkflowDefinition, define

ROOT = Path(__file__).resolve().parents[2]


def record(handler: Any, **kwargs: Any) -> WorkflowDefinition:
    kwargs.setdefault("product", "acme")
    kwargs.setdefault("tag", "wf")
    return define(handler=handler, register=False, **kwargs)


def events(definition: WorkflowDefinition) -> list[dict[str, Any]]:
    return [e for seq in definition.spec_json()["sequences"] for e in seq["events"]]


def by_tag(definition: WorkflowDefinition) -> dict[str, dict[str, Any]]:
    return {e["tag"]: e for e in events(definition)}


def line_of(text: str) -> int:
    """The line number of ``text`` in this file (for error messages)."""
    for number, line in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(text)


# --- references and sequences -----------------------------------------------------------


def test_input_and_step_fields_become_references() -> None:
    async def handler(ctx: Any) -> Any:
        user = await ctx.step(
            "create-user",
            lambda: ctx.database.insert(
                database="users-db", event="create-user", data={"email": ctx.input.email}
            ),
        )
        await ctx.step(
            "welcome",
            lambda: ctx.notification.email(
                notification="mail",
                event="welcome",
                recipients=[ctx.input.email],
                template={"id": user.id},
            ),
        )
        return {"id": user.id, "email": ctx.input["email"], "whole": user}

    d = record(handler)
    spec = d.spec_json()
    assert spec["sequences"] == [
        {
            "tag": "main",
            "events": [
                {
                    "type": "DB_ACTION",
                    "event": "create-user",
                    "tag": "create-user",
                    "app": "users-db",
                    "input": {"data": {"email": "$Input{email}"}},
                },
                {
                    "type": "NOTIFICATION",
                    "event": "welcome",
                    "tag": "welcome",
                    "app": "mail",
                    "input": {
                        "recipients": ["$Input{email}"],
                        "template": {"id": "$Step{create-user}{id}"},
                    },
                },
            ],
        }
    ]
    assert spec["output"] == {
        "id": "$Step{create-user}{id}",
        "email": "$Input{email}",
        "whole": "$Step{create-user}",
    }
    compile_spec(spec)


def test_formatting_a_recorded_value_interpolates_it() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.action.run(
            app="docs",
            event="put",
            input={"name": f"invoice-{ctx.input.orderId}.pdf", "n": "#" + ctx.input.n},
        )

    assert events(record(handler))[0]["input"] == {
        "name": "invoice-$Input{orderId}.pdf",
        "n": "#$Input{n}",
    }


def test_gather_records_parallel_sequences_joined_by_the_next_step() -> None:
    async def handler(ctx: Any) -> Any:
        await ctx.step("start", lambda: ctx.action.run(app="x", event="start"))
        a, b = await asyncio.gather(
            ctx.step("a", lambda: ctx.action.run(app="x", event="a")),
            ctx.step("b", lambda: ctx.action.run(app="x", event="b")),
        )
        await ctx.step(
            "join", lambda: ctx.action.run(app="x", event="join", input={"a": a.v, "b": b.v})
        )

    seqs = record(handler).spec_json()["sequences"]
    shape = {s["tag"]: (s.get("parents", []), [e["tag"] for e in s["events"]]) for s in seqs}
    assert shape == {
        "main": ([], ["start"]),
        "seq-a": (["main"], ["a"]),
        "seq-b": (["main"], ["b"]),
        "seq-join": (["seq-a", "seq-b"], ["join"]),
    }
    plan = compile_spec(record(handler).spec_json())
    assert [s.level for s in plan.sequences] == [0, 1, 1, 2]


def test_branches_of_several_steps_stay_in_one_sequence_each() -> None:
    async def lane(ctx: Any, name: str) -> None:
        await ctx.step(f"{name}-1", lambda: ctx.action.run(app="x", event="e"))
        await ctx.step(f"{name}-2", lambda: ctx.action.run(app="x", event="e"))

    async def handler(ctx: Any) -> None:
        await asyncio.gather(lane(ctx, "left"), lane(ctx, "right"))
        await ctx.step("after", lambda: ctx.action.run(app="x", event="e"))

    seqs = record(handler).spec_json()["sequences"]
    assert [(s["tag"], s.get("parents", []), [e["tag"] for e in s["events"]]) for s in seqs] == [
        ("main", [], ["left-1", "left-2"]),
        ("seq-right-1", [], ["right-1", "right-2"]),
        ("seq-after", ["main", "seq-right-1"], ["after"]),
    ]


# --- branch_overrides ---------------------------------------------------------------------


def seed_branch_handler(ctx: Any) -> Any:
    async def run() -> Any:
        validation = await ctx.step(
            "validate",
            lambda: ctx.action.run(
                {
                    "app": "orders-api",
                    "event": "validate-order",
                    "input": {"body": {"orderId": ctx.input.orderId}},
                }
            ),
        )
        if not validation.valid:  # the branch
            return {"success": False, "error": validation.reason}
        payment = await ctx.step(
            "process-payment",
            lambda: ctx.action.run(
                {
                    "app": "stripe",
                    "event": "create-charge",
                    "input": {"body": {"amount": ctx.input.amount}},
                }
            ),
        )
        return {"success": True, "orderId": ctx.input.orderId, "chargeId": payment.id}

    return run()


def test_branch_overrides_record_the_continue_path_with_the_seed_condition() -> None:
    d = record(seed_branch_handler, branch_overrides={"validate": {"valid": True}})
    steps = by_tag(d)
    assert "condition" not in steps["validate"]
    assert steps["process-payment"]["condition"] == "$Step{validate}{valid} == true"
    assert d.spec.output == {
        "success": True,
        "orderId": "$Input{orderId}",
        "chargeId": "$Step{process-payment}{id}",
    }


def test_truthiness_without_override_names_the_line_and_suggests_branch_overrides() -> None:
    with pytest.raises(RecordingError) as err:
        record(seed_branch_handler)
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("if not validation.valid:  # the branch")
    assert "branch_overrides={'validate'" in str(err.value)
    assert "test_recorder.py" in str(err.value)


def test_a_condition_only_covers_its_if_block_unless_the_other_branch_returns() -> None:
    async def handler(ctx: Any) -> None:
        check = await ctx.step("check", lambda: ctx.action.run(app="x", event="check"))
        if check.score > 0.8:
            await ctx.step("review", lambda: ctx.action.run(app="x", event="review"))
        await ctx.step("always", lambda: ctx.action.run(app="x", event="always"))
        if check.ok == "yes":
            pass
        else:
            return
        await ctx.step("when-ok", lambda: ctx.action.run(app="x", event="ok"))

    steps = by_tag(record(handler, branch_overrides={"check": {"score": 0.9, "ok": "yes"}}))
    assert steps["review"]["condition"] == "$Step{check}{score} > 0.8"
    assert "condition" not in steps["always"]
    assert steps["when-ok"]["condition"] == "$Step{check}{ok} == 'yes'"


def test_a_false_comparison_records_its_negation() -> None:
    async def handler(ctx: Any) -> None:
        check = await ctx.step("check", lambda: ctx.action.run(app="x", event="check"))
        if check.score >= 5:
            return
        await ctx.step("low", lambda: ctx.action.run(app="x", event="low"))

    steps = by_tag(record(handler, branch_overrides={"check": {"score": 1}}))
    assert steps["low"]["condition"] == "$Step{check}{score} < 5"


def test_overrides_can_name_references_such_as_state() -> None:
    async def handler(ctx: Any) -> None:
        ctx.set_state("retries", 0)
        if ctx.get_state("retries") < 3:
            ctx.set_state("retries", ctx.transform.add(ctx.get_state("retries"), 1))

    steps = by_tag(record(handler, branch_overrides={"$State{retries}": 0}))
    assert steps["set-retries"]["input"] == {"retries": 0}
    assert steps["set-retries-2"] == {
        "type": "SET_STATE",
        "event": "set_state",
        "tag": "set-retries-2",
        "input": {"retries": "$Add($State{retries}, 1)"},
        "condition": "$State{retries} < 3",
    }


def test_an_override_for_a_step_that_never_runs_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("validate", lambda: ctx.action.run(app="x", event="v"))

    with pytest.raises(RecordingError, match="no step 'valdate' was recorded"):
        record(handler, branch_overrides={"valdate": {"valid": True}})


# --- record_input -------------------------------------------------------------------------


def loop_handler(ctx: Any) -> Any:
    async def run() -> None:
        for item in ctx.input.items:  # the loop
            await ctx.step(
                f"process-{item.id}",
                lambda: ctx.action.run(
                    {
                        "app": "orders-api",
                        "event": "process-item",
                        "input": {"body": {"id": item.id}},
                    }
                ),
            )

    return run()


def test_record_input_records_a_loop_over_input_as_one_foreach_step() -> None:
    d = record(loop_handler, recordInput={"items": [{"id": "1"}, {"id": "2"}]})
    assert events(d) == [
        {
            "type": "FOREACH",
            "event": "for each item of $Input{items}",
            "tag": "each-items",
            "loop": {
                "items": "$Input{items}",
                "body": [
                    {
                        "type": "ACTION",
                        "event": "process-item",
                        "tag": "process",  # f"process-{item.id}": the item's part is dropped
                        "app": "orders-api",
                        "input": {"body": {"id": "$Item{id}"}},
                    }
                ],
            },
        }
    ]
    assert d.spec.recording is not None
    assert d.spec.recording["record_input"] == {"items": [{"id": "1"}, {"id": "2"}]}
    # The body is recorded once, whatever the sample's length.
    one = record(loop_handler, recordInput={"items": []})
    assert events(one) == events(d)


def test_ctx_foreach_names_the_loop_and_bounds_its_concurrency() -> None:
    async def handler(ctx: Any) -> Any:
        rows = await ctx.step(
            "fetch", lambda: ctx.action.run({"app": "api", "event": "rows", "input": {}})
        )
        for row in ctx.foreach(rows.items, tag="charge-all", max_concurrency=5):
            charged = await ctx.step(
                "charge",
                lambda: ctx.action.run(
                    {"app": "api", "event": "charge", "input": {"body": {"n": row.n}}}
                ),
            )
            await ctx.step(
                "receipt",
                lambda: ctx.action.run(
                    {"app": "api", "event": "mail", "input": {"body": {"id": charged.id}}}
                ),
            )
        await ctx.step("done", lambda: ctx.action.run({"app": "api", "event": "done"}))

    d = record(handler)
    found = by_tag(d)
    assert list(found) == ["fetch", "charge-all", "done"]
    loop = found["charge-all"]["loop"]
    assert loop["items"] == "$Step{fetch}{items}"
    assert loop["max_concurrency"] == 5
    assert [b["tag"] for b in loop["body"]] == ["charge", "receipt"]
    assert loop["body"][1]["input"] == {"body": {"id": "$Step{charge}{id}"}}
    compile_spec(d.spec)  # the body's own references compile


def test_a_loop_left_early_or_nested_or_branching_on_its_item_is_refused() -> None:
    async def early(ctx: Any) -> None:
        for item in ctx.input.items:
            await ctx.sleep(1)
            break
        await ctx.sleep(2)

    with pytest.raises(RecordingError, match="runs to its end"):
        record(early, record_input={"items": [{}]})

    async def nested(ctx: Any) -> None:
        for order in ctx.input.orders:
            for line in ctx.foreach(order.lines):
                await ctx.sleep(1)

    with pytest.raises(RecordingError, match="loops do not nest"):
        record(nested, record_input={"orders": [{"lines": []}]})

    async def branching(ctx: Any) -> None:
        for item in ctx.input.items:
            if item.express == True:  # noqa: E712
                await ctx.sleep(1)

    with pytest.raises(RecordingError, match="inside a loop"):
        record(branching, record_input={"items": [{"express": True}]})


def test_a_loop_over_input_without_record_input_names_the_line() -> None:
    with pytest.raises(RecordingError) as err:
        record(loop_handler)
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("for item in ctx.input.items:  # the loop")
    assert "record_input" in err.value.message


def test_record_input_values_cannot_steer_branches() -> None:
    async def handler(ctx: Any) -> None:
        for item in ctx.input.items:
            if item.express:
                await ctx.sleep(1)

    with pytest.raises(RecordingError, match="cannot branch on \\$Item\\{express\\} inside a loop"):
        record(handler, record_input={"items": [{"express": True}]})


# --- record_scenarios ---------------------------------------------------------------------


def test_record_scenarios_give_each_step_its_scenario_condition() -> None:
    async def handler(ctx: Any) -> None:
        match ctx.input.type:
            case "a":
                await ctx.step(
                    "handle-a",
                    lambda: ctx.action.run({"app": "api", "event": "handle-a", "input": {}}),
                )
            case "b":
                await ctx.step(
                    "handle-b",
                    lambda: ctx.action.run({"app": "api", "event": "handle-b", "input": {}}),
                )

    d = record(handler, recordScenarios=[{"type": "a"}, {"type": "b"}])
    steps = by_tag(d)
    assert steps["handle-a"]["condition"] == "$Input{type} == 'a'"
    assert steps["handle-b"]["condition"] == "$Input{type} == 'b'"
    compile_spec(d.spec_json())


def test_a_step_recorded_in_several_scenarios_joins_their_conditions_with_or() -> None:
    async def handler(ctx: Any) -> None:
        if ctx.input.type == "c":
            await ctx.step("special", lambda: ctx.action.run(app="api", event="special"))
        await ctx.step(
            "common", lambda: ctx.action.run(app="api", event="common", input={"t": ctx.input.type})
        )

    d = record(handler, record_scenarios=[{"type": "a"}, {"type": "b"}, {"type": "c"}])
    steps = by_tag(d)
    assert steps["special"]["condition"] == "$Input{type} == 'c'"
    assert steps["common"]["condition"] == (
        "$Input{type} == 'a' || $Input{type} == 'b' || $Input{type} == 'c'"
    )
    assert steps["common"]["input"] == {"t": "$Input{type}"}


def test_scenarios_with_several_keys_and_overrides_group_their_clauses() -> None:
    async def handler(ctx: Any) -> None:
        check = await ctx.step("check", lambda: ctx.action.run(app="api", event="check"))
        if not check.ok:
            return
        await ctx.step("go", lambda: ctx.action.run(app="api", event="go"))

    steps = by_tag(
        record(
            handler,
            record_scenarios=[{"tier": "gold", "n": 1}, {"tier": "basic", "n": 2}],
            branch_overrides={"check": {"ok": True}},
        )
    )
    assert steps["go"]["condition"] == (
        "($Input{tier} == 'gold' && $Input{n} == 1 && $Step{check}{ok} == true)"
        " || ($Input{tier} == 'basic' && $Input{n} == 2 && $Step{check}{ok} == true)"
    )


def test_the_same_tag_recorded_differently_in_two_scenarios_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        event = "fast" if ctx.input.type == "a" else "slow"
        await ctx.step("ship", lambda: ctx.action.run(app="api", event=event))

    with pytest.raises(RecordingError, match="recorded differently in two scenarios"):
        record(handler, record_scenarios=[{"type": "a"}, {"type": "b"}])


# --- what cannot be recorded ----------------------------------------------------------------


def test_arithmetic_on_a_recorded_value_names_the_line_and_suggests_transform() -> None:
    async def handler(ctx: Any) -> None:
        total = ctx.input.amount * 100  # arithmetic
        await ctx.action.run(app="x", event="y", input={"total": total})

    with pytest.raises(RecordingError) as err:
        record(handler)
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("total = ctx.input.amount * 100  # arithmetic")
    assert "`*`" in err.value.message
    assert "ctx.transform" in err.value.message
    assert "total = ctx.input.amount * 100" in str(err.value)


def test_comparing_a_step_result_without_override_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        score = await ctx.step("score", lambda: ctx.action.run(app="x", event="score"))
        if score.value >= 5:
            await ctx.sleep(1)

    with pytest.raises(
        RecordingError, match=r"cannot compare .*\$Step\{score\}\{value\}.*branch_overrides"
    ):
        record(handler)


def test_duplicate_step_tags_name_both_lines() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("pay", lambda: ctx.action.run(app="x", event="a"))  # first pay
        await ctx.step("pay", lambda: ctx.action.run(app="x", event="b"))  # second pay

    with pytest.raises(RecordingError) as err:
        record(handler)
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("# second pay")
    assert f":{line_of('# first pay')}" in err.value.message
    assert "duplicate step tag 'pay'" in err.value.message


def test_waiting_for_an_undeclared_signal_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.wait_for_signal("aprove", {"timeout": "1h"})

    with pytest.raises(RecordingError, match=r"signal 'aprove' is not declared.*declared: approve"):
        record(handler, signals={"approve": {"input": {"by": "string"}}})


def test_a_non_json_value_in_a_step_input_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.action.run(app="x", event="y", input={"tags": {"a", "b"}})

    with pytest.raises(
        RecordingError, match=r"input.tags: a set is not JSON-serialisable \(use a list\)"
    ):
        record(handler)


def test_a_code_step_returning_a_set_is_refused_at_define_time() -> None:
    async def handler(ctx: Any) -> None:
        def collect() -> Any:
            return {1, 2}  # a set

        await ctx.step("collect", collect)

    with pytest.raises(RecordingError) as err:
        record(handler)
    assert "step 'collect' returns a set, which is not JSON-serialisable" in err.value.message
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("return {1, 2}  # a set")


def test_a_connector_call_never_awaited_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        ctx.action.run(app="x", event="forgotten")

    with pytest.raises(RecordingError, match=r"ctx.action.run\(...\) at .* was never awaited"):
        record(handler)


def test_an_exception_in_the_handler_names_its_line() -> None:
    async def handler(ctx: Any) -> None:
        raise ValueError("boom")  # handler raises

    with pytest.raises(RecordingError) as err:
        record(handler)
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("# handler raises")
    assert "raised ValueError while recording: boom" in err.value.message


def test_an_unknown_step_option_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("x", lambda: ctx.action.run(app="x", event="y"), None, {"retry": 3})

    with pytest.raises(RecordingError, match="unknown option 'retry'"):
        record(handler)


# --- step functions: one connector call, or code -----------------------------------------


def test_a_single_connector_call_becomes_that_event_with_step_options_and_rollback() -> None:
    async def handler(ctx: Any) -> None:
        async def charge() -> Any:
            return await ctx.action.run(
                {
                    "app": "stripe",
                    "event": "create-charge",
                    "input": {"body": {"amount": ctx.input.amount}},
                    "retries": 3,
                }
            )

        async def refund(result: Any) -> None:
            await ctx.action.run(
                {"app": "stripe", "event": "refund", "input": {"body": {"chargeId": result.id}}}
            )

        await ctx.step(
            "charge-card", charge, refund, {"allowFail": True, "retryDelay": 1000, "timeout": "30s"}
        )

    (event,) = events(record(handler))
    assert event == {
        "type": "ACTION",
        "event": "create-charge",
        "tag": "charge-card",
        "app": "stripe",
        "input": {"body": {"amount": "$Input{amount}"}},
        "retries": 3,
        "retry_delay": 1000,
        "timeout": "30s",
        "allow_fail": True,
        "rollback": {
            "type": "ACTION",
            "event": "refund",
            "app": "stripe",
            "input": {"body": {"chargeId": "$Step{charge-card}{id}"}},
        },
    }


def test_arbitrary_python_becomes_a_code_step_with_its_captured_references() -> None:
    async def handler(ctx: Any) -> None:
        order = await ctx.step("order", lambda: ctx.action.run(app="x", event="order"))
        factor = 2

        async def compute() -> Any:
            subtotal = order.amount * factor
            return {"total": subtotal + ctx.input.shipping}

        await ctx.step("compute", compute, retries=2)

    d = record(handler)
    compute = by_tag(d)["compute"]
    assert compute == {
        "type": "CODE",
        "event": "runtime.workflows:run_code_step",
        "tag": "compute",
        "input": {
            "workflow": "acme/wf",
            "module": __name__,
            "step": "compute",
            "refs": {"order": "$Step{order}"},
            "ctx": {"input": "$Input"},
        },
        "retries": 2,
    }
    assert d.code_steps["compute"].fn is not None
    compile_spec(d.spec_json())


def test_a_code_step_reading_steps_gets_only_the_steps_that_ran_before_it() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.step("first", lambda: ctx.action.run(app="x", event="a"))
        await asyncio.gather(
            ctx.step("side", lambda: ctx.action.run(app="x", event="b")),
            ctx.step("report", lambda: {"done": list(ctx.steps)}),
        )

    report = by_tag(record(handler))["report"]
    assert report["input"]["ctx"] == {"steps": {"first": "$Step{first}"}}


def test_connector_calls_made_directly_are_steps_named_after_their_event() -> None:
    async def handler(ctx: Any) -> None:
        await ctx.action.run(app="stripe", event="create-charge")
        await ctx.action.run(app="stripe", event="create-charge")
        await ctx.messaging.produce(event="order-events:order-created", message={"id": 1})
        await ctx.quota.execute(quota="api-rate-limit", input={"key": ctx.input.user})
        await ctx.action.run(app="stripe", event="refund", tag="give-back")

    steps = by_tag(record(handler))
    assert list(steps) == [
        "create-charge",
        "create-charge-2",
        "order-events-order-created",
        "api-rate-limit",
        "give-back",
    ]
    assert steps["order-events-order-created"]["app"] == "order-events"
    assert steps["api-rate-limit"]["event"] == "api-rate-limit"


# --- control flow, state, data -------------------------------------------------------------


def test_control_flow_calls_map_to_engine_events() -> None:
    async def handler(ctx: Any) -> Any:
        await ctx.sleep("5m")
        approval = await ctx.waitForSignal(["approved", "rejected"], {"timeout": "48h"})
        await ctx.checkpoint("approved", {"by": approval.approvedBy})
        child = await ctx.workflow(
            "child-1",
            "payment-processing",
            {"amount": ctx.input.amount},
            {"timeout": "5m", "retries": 2, "parentClosePolicy": "abandon"},
        )
        ctx.set_state("child", child.id)
        await ctx.trigger_rollback("done")
        return {"signal": approval._signal}

    d = record(handler, signals={"approved": {}, "rejected": {}})
    assert events(d) == [
        {"type": "SLEEP", "event": "sleep", "tag": "sleep", "input": {"duration": "5m"}},
        {
            "type": "WAIT_SIGNAL",
            "event": "approved,rejected",
            "tag": "wait-approved-rejected",
            "input": {"signals": ["approved", "rejected"], "timeout": "48h"},
        },
        {
            "type": "CHECKPOINT",
            "event": "approved",
            "tag": "approved",
            "input": {
                "name": "approved",
                "data": {"by": "$Step{wait-approved-rejected}{approvedBy}"},
            },
        },
        {
            "type": "FEATURE",
            "event": "payment-processing",
            "tag": "child-1",
            "input": {
                "child_id": "child-1",
                "input": {"amount": "$Input{amount}"},
                "parent_close_policy": "abandon",
            },
            "retries": 2,
            "timeout": "5m",
        },
        {
            "type": "SET_STATE",
            "event": "set_state",
            "tag": "set-child",
            "input": {"child": "$Step{child-1}{id}"},
        },
        {"type": "ROLLBACK", "event": "rollback", "tag": "rollback", "input": {"reason": "done"}},
    ]
    assert d.spec.output == {"signal": "$Step{wait-approved-rejected}{_signal}"}
    compile_spec(d.spec_json())


def test_data_access_and_transforms_become_expressions() -> None:
    async def handler(ctx: Any) -> Any:
        return {
            "version": ctx.variable("stripe", "api_version"),
            "currency": ctx.default(ctx.input.currency, "usd"),
            "default": ctx.constant("stripe", "default_currency"),
            "upper": ctx.transform.upper(ctx.input.name),
            "date": ctx.transform.format_date(ctx.transform.now(), "YYYY-MM-DD"),
            "count": ctx.transform.length(ctx.input.items),
            "joined": ctx.transform.join(ctx.input.tags, ", "),
            "part": ctx.transform.substring(ctx.input.code, 0, 3),
            "plain": ctx.transform.upper("abc"),
            "state": ctx.get_state("n", 0),
            "run": [ctx.completed_steps, ctx.current_step, ctx.workflow_id],
        }

    assert record(handler).spec.output == {
        "version": "$Variable{stripe}{api_version}",
        "currency": "$Default($Input{currency}, 'usd')",
        "default": "$Constant{stripe}{default_currency}",
        "upper": "$Uppercase($Input{name})",
        "date": "$Dateformat($Now, 'YYYY-MM-DD')",
        "count": "$Length($Input{items})",
        "joined": "$Join($Input{tags}, ', ')",
        "part": "$Substring($Input{code}, 0, 3)",
        "plain": "ABC",
        "state": "$Default($State{n}, 0)",
        "run": ["$Run{completed_steps}", "$Run{current_step}", "$Run{id}"],
    }


def test_json_transforms_of_run_time_values_are_small_code_steps() -> None:
    async def handler(ctx: Any) -> Any:
        parsed = ctx.transform.parse_json(ctx.input.payload)
        return {"id": parsed.id, "text": ctx.transform.stringify({"a": 1})}

    d = record(handler)
    assert events(d) == [
        {
            "type": "CODE",
            "event": "runtime.workflows:transform_step",
            "tag": "parse-json",
            "input": {"op": "parse_json", "value": "$Input{payload}"},
        }
    ]
    assert d.spec.output == {"id": "$Step{parse-json}{value.id}", "text": '{"a": 1}'}


def test_logs_are_journaled_by_small_code_steps() -> None:
    async def handler(ctx: Any) -> None:
        ctx.log.info("Starting", {"orderId": ctx.input.orderId})
        ctx.log.warn(f"Order {ctx.input.orderId}")

    assert events(record(handler)) == [
        {
            "type": "CODE",
            "event": "runtime.workflows:log_step",
            "tag": "log",
            "input": {
                "level": "info",
                "message": "Starting",
                "data": {"orderId": "$Input{orderId}"},
            },
        },
        {
            "type": "CODE",
            "event": "runtime.workflows:log_step",
            "tag": "log-2",
            "input": {"level": "warning", "message": "Order $Input{orderId}"},
        },
    ]


def test_queries_record_their_output_mapping() -> None:
    async def handler(ctx: Any) -> None:
        ctx.set_state("phase", "start")

    d = record(
        handler,
        queries={
            "getProgress": {
                "handler": lambda ctx: {
                    "completed_steps": ctx.completed_steps,
                    "current_step": ctx.current_step,
                }
            },
            "phase": lambda ctx: ctx.get_state("phase"),
        },
    )
    assert d.spec_json()["queries"] == {
        "getProgress": {
            "output": {
                "completed_steps": "$Run{completed_steps}",
                "current_step": "$Run{current_step}",
            }
        },
        "phase": {"output": "$State{phase}"},
    }


def test_a_query_cannot_run_steps() -> None:
    async def handler(ctx: Any) -> None:
        return None

    with pytest.raises(RecordingError, match="query 'bad' is read-only"):
        record(handler, queries={"bad": lambda ctx: ctx.set_state("x", 1)})


def test_importing_runtime_workflows_does_not_import_django() -> None:
    code = (
        "import sys; from runtime import workflows; import runtime.recorder; "
        "print('django' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_step_never_awaited_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        ctx.step("forgotten", lambda: ctx.action.run(app="x", event="y"))  # no await
        await ctx.sleep("1s")

    with pytest.raises(RecordingError) as err:
        record(handler)
    assert "ctx.step('forgotten', ...) was never awaited" in err.value.message
    assert err.value.site is not None
    assert err.value.site.lineno == line_of("# no await")


def test_a_task_still_running_when_the_handler_returns_is_refused() -> None:
    async def later(ctx: Any) -> None:
        await asyncio.sleep(0.01)
        await ctx.sleep("1s")

    async def handler(ctx: Any) -> None:
        ctx.background = asyncio.create_task(later(ctx))

    with pytest.raises(RecordingError, match="while a task it started was still running"):
        record(handler)


def test_a_loop_over_a_nested_input_list_in_either_form_is_a_foreach() -> None:
    async def handler(ctx: Any) -> None:
        for line in ctx.input["order"].lines:
            await ctx.step(
                "pack", lambda: ctx.action.run(app="api", event="pack", input={"n": line["qty"]})
            )

    d = record(handler, record_input={"order": {"lines": [{"qty": 1}]}})
    (loop,) = events(d)
    assert (loop["tag"], loop["loop"]["items"]) == ("each-lines", "$Input{order.lines}")
    assert loop["loop"]["body"][0]["input"] == {"n": "$Item{qty}"}
