"""runtime.testing: users run their workflows in-process with fake connector results."""

from __future__ import annotations

from typing import Any

import pytest

from examples import (
    branch_overrides,
    control_flow,
    order_fulfillment,
    record_input,
    record_scenarios,
    signals_queries,
    state,
)
from runtime.testing import Fail, WorkflowTestEnvironment
from runtime.workflows import define

ORDER = {
    "orderId": "o-1",
    "items": [{"sku": "a", "qty": 1}],
    "amount": 42,
    "customerId": "c-9",
    "email": "ada@example.com",
}
HAPPY = {
    "validate": {"available": True},
    "payment": {"id": "ch_1"},
    "reserve-inventory": {"reserved": True},
    "create-order": {"id": 77},
    "send-confirmation": {"sent": 1},
    "queue-fulfillment": {"message_id": 5},
}


def test_the_complete_example_fulfils_an_order() -> None:
    run = WorkflowTestEnvironment(fakes=HAPPY).run(order_fulfillment.workflow, ORDER)
    assert run.status == "completed", run.error
    assert run.output == {"success": True, "orderId": 77, "chargeId": "ch_1"}
    assert run.completed == [
        "log",
        "validate",
        "payment",
        "payment-complete",
        "reserve-inventory",
        "create-order",
        "send-confirmation",
        "queue-fulfillment",
        "log-2",
    ]
    assert run.steps["create-order"].input["data"]["payment_id"] == "ch_1"
    assert run.state["_checkpoints"]["payment-complete"]["data"] == {"chargeId": "ch_1"}
    assert [log["message"] for log in run.logs] == [
        "Starting order fulfillment",
        "Order fulfilled successfully",
    ]


def test_an_unavailable_order_returns_early_and_runs_nothing_after() -> None:
    run = WorkflowTestEnvironment(fakes={**HAPPY, "validate": {"available": False}}).run(
        order_fulfillment.workflow, ORDER
    )
    assert run.status == "completed"
    assert run.output == {"success": False, "reason": "items_unavailable"}
    assert run.completed == ["log", "validate", "return"]
    assert {t: s.status for t, s in run.steps.items() if t not in run.completed} == {
        t: "not_run"
        for t in [
            "payment",
            "payment-complete",
            "reserve-inventory",
            "create-order",
            "send-confirmation",
            "queue-fulfillment",
            "log-2",
        ]
    }


def test_a_failed_reservation_refunds_the_payment_and_ends_rolled_back() -> None:
    refunds: list[Any] = []
    run = WorkflowTestEnvironment().run(
        order_fulfillment.workflow,
        ORDER,
        fakes={
            **HAPPY,
            "reserve-inventory": Fail("out of stock"),
            "payment:rollback": lambda data: refunds.append(data) or {"refunded": True},
        },
    )
    assert run.status == "rolled_back"
    assert run.error is not None and run.error["step"] == "reserve-inventory"
    assert refunds == [{"body": {"chargeId": "ch_1"}}]
    assert run.steps["payment"].status == "rolled_back"
    assert ("step_rolled_back", "payment") in run.kinds()


def test_a_failing_confirmation_email_does_not_fail_the_order() -> None:
    run = WorkflowTestEnvironment(fakes={**HAPPY, "send-confirmation": Fail("smtp down")}).run(
        order_fulfillment.workflow, ORDER
    )
    assert run.status == "completed"
    assert run.steps["send-confirmation"].status == "failed_allowed"
    assert run.steps["queue-fulfillment"].status == "completed"


def test_retries_use_the_next_fake_for_each_attempt() -> None:
    run = WorkflowTestEnvironment(
        fakes={**HAPPY, "payment": [Fail("503", retryable=True), {"id": "ch_2"}]}
    ).run(order_fulfillment.workflow, ORDER)
    assert run.status == "completed"
    assert run.steps["payment"].attempts == 2
    assert run.output["chargeId"] == "ch_2"


def test_a_missing_fake_fails_the_step_and_says_which_fake_to_give() -> None:
    run = WorkflowTestEnvironment().run(order_fulfillment.workflow, ORDER)
    assert run.status == "failed"
    assert run.error is not None
    assert "pass fakes={'validate': ...}" in run.error["message"]


def test_branch_overrides_example_runs_both_ways() -> None:
    env = WorkflowTestEnvironment(fakes={"process-payment": {"id": "ch_9"}})
    ok = env.run(
        branch_overrides.workflow, {"orderId": 1, "amount": 5}, fakes={"validate": {"valid": True}}
    )
    assert (ok.status, ok.output["chargeId"]) == ("completed", "ch_9")
    bad = env.run(
        branch_overrides.workflow,
        {"orderId": 1},
        fakes={"validate": {"valid": False, "reason": "no stock"}},
    )
    assert bad.steps["process-payment"].status == "not_run"
    assert (bad.status, bad.output) == ("completed", {"success": False, "error": "no stock"})


def test_record_input_example_processes_items_by_position() -> None:
    seen: list[Any] = []
    fake = lambda data: seen.append(data["body"]["id"]) or {"ok": True}  # noqa: E731
    run = WorkflowTestEnvironment(fakes={"process": fake}).run(
        record_input.workflow, {"items": [{"id": "x"}, {"id": "y"}, {"id": "z"}]}
    )
    assert run.status == "completed"
    assert seen == ["x", "y", "z"]  # one iteration per real item, however many
    assert [run.steps[f"process[{i}]"].status for i in range(3)] == ["completed"] * 3


@pytest.mark.parametrize(
    ("kind", "ran", "skipped"), [("a", "handle-a", "handle-b"), ("b", "handle-b", "handle-a")]
)
def test_record_scenarios_example_runs_only_the_matching_step(
    kind: str, ran: str, skipped: str
) -> None:
    env = WorkflowTestEnvironment(fakes={"handle-a": {}, "handle-b": {}})
    for definition in (record_scenarios.workflow, record_scenarios.if_else_workflow):
        run = env.run(definition, {"type": kind})
        assert (run.steps[ran].status, run.steps[skipped].status) == ("completed", "skipped")


def test_a_workflow_waits_for_its_signal_and_answers_queries() -> None:
    env = WorkflowTestEnvironment()
    waiting = env.run(signals_queries.workflow, {})
    assert (waiting.status, waiting.waiting_for) == ("waiting", ["approve"])
    assert waiting.query("getProgress") == {"completed_steps": [], "current_step": "wait-approve"}

    done = env.run(
        signals_queries.workflow, {}, signals={"approve": {"approver_id": "u-7", "comments": "ok"}}
    )
    assert done.status == "completed"
    assert done.output == {"approved_by": "u-7", "comments": "ok"}
    assert done.logs[0]["message"] == "Approved by: u-7"


def test_child_workflows_run_and_manual_rollback_compensates() -> None:
    env = WorkflowTestEnvironment(fakes={"charge": {"id": "ch_3"}})
    parent = env.run(control_flow.parent_workflow, {"amount": 12})
    assert parent.status == "completed", parent.error
    assert parent.output == {"charged": 12}

    fraud = env.run(
        control_flow.rollback_workflow,
        {"amount": 12},
        fakes={"payment": {"id": "ch_4"}, "fraud-check": {"score": 0.95}, "payment:rollback": {}},
    )
    # trigger_rollback compensates, hands the steps back, and the handler returns.
    assert fraud.status == "rolled_back"
    assert fraud.steps["payment"].status == "rolled_back"
    assert fraud.steps["rollback"].output["rolled_back_steps"] == ["payment"]
    assert fraud.output == {"success": False, "reason": "fraud_detected"}
    assert fraud.logs[0]["data"] == {"steps": ["payment"]}
    fine = env.run(
        control_flow.rollback_workflow,
        {"amount": 12},
        fakes={"payment": {"id": "ch_4"}, "fraud-check": {"score": 0.1}},
    )
    assert (fine.status, fine.steps["rollback"].status) == ("completed", "not_run")
    assert fine.output == {"success": True, "chargeId": "ch_4"}


def test_sleeps_are_instant_and_state_code_steps_see_real_values() -> None:
    slept = WorkflowTestEnvironment().run(control_flow.sleep_workflow, {})
    assert (slept.status, slept.output) == ("completed", {"woke": True})

    run = WorkflowTestEnvironment(fakes={"create-user": {"id": 3}}).run(
        state.workflow, {"email": "a@b.c"}
    )
    assert run.status == "completed", run.error
    assert run.state["retryCount"] == 1
    # create-user and three set-state steps; the three ctx.log lines are not steps.
    assert run.output["summary"] == {"user": 3, "retries": 1, "done": 4}


def test_code_steps_can_call_connectors_through_fakes() -> None:
    async def handler(ctx: Any) -> Any:
        async def two_calls() -> Any:
            a = await ctx.action.run(app="stripe", event="create-charge", input={"body": {"n": 1}})
            b = await ctx.action.run(app="stripe", event="create-charge", input={"body": {"n": 2}})
            ctx.log.info("charged twice", {"ids": [a.id, b.id]})
            return {"ids": [a.id, b.id]}

        result = await ctx.step("charge-twice", two_calls)
        return result

    definition = define(product="acme", tag="two-calls", handler=handler, register=False)
    run = WorkflowTestEnvironment(
        fakes={"stripe:create-charge": lambda data: {"id": f"ch_{data['body']['n']}"}}
    ).run(definition)
    assert run.status == "completed", run.error
    assert run.output == {"ids": ["ch_1", "ch_2"]}
    assert run.logs == [
        {"level": "info", "message": "charged twice", "data": {"ids": ["ch_1", "ch_2"]}}
    ]
