"""Seed: "Control Flow" — sleep, signals, checkpoints, manual rollback, child workflows."""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def pause(ctx: Any) -> dict[str, Any]:
    """ctx.sleep(): the run parks, no worker waits."""
    await ctx.sleep(5000)  # Wait 5 seconds
    await ctx.sleep("5m")  # 5 minutes
    await ctx.sleep("1h")  # 1 hour
    await ctx.sleep("1d")  # 1 day
    return {"woke": True}


sleep_workflow = workflows.define(product="acme", tag="sleepy", name="Sleep", handler=pause)


async def wait(ctx: Any) -> dict[str, Any]:
    """ctx.wait_for_signal(): one signal, or the first of several."""
    approval = await ctx.wait_for_signal("order-approved", {"timeout": "24h"})
    result = await ctx.wait_for_signal(["approved", "rejected"], timeout="48h")
    # Access signal payload
    ctx.log.info(f"Approved by: {result.approvedBy}")
    return {"first": approval, "decision": result._signal}


signal_workflow = workflows.define(
    product="acme",
    tag="wait-for-signals",
    name="Wait for signals",
    signals={
        "order-approved": {"input": {"approvedBy": "string"}},
        "approved": {"input": {"approvedBy": "string"}},
        "rejected": {"input": {"reason": "string"}},
    },
    handler=wait,
)


async def fraud_guarded(ctx: Any) -> dict[str, Any]:
    """ctx.checkpoint() after payment; ctx.trigger_rollback() on a high fraud score."""
    payment = await ctx.step(
        "payment",
        lambda: ctx.action.run(
            app="stripe", event="create-charge", input={"body": {"amount": ctx.input.amount}}
        ),
        lambda result: ctx.action.run(
            app="stripe", event="refund", input={"body": {"chargeId": result.id}}
        ),
    )
    # Save state for recovery
    await ctx.checkpoint(
        "payment-complete",
        {"chargeId": payment.id, "amount": ctx.input.amount, "timestamp": ctx.transform.now()},
    )
    fraud_check = await ctx.step(
        "fraud-check",
        lambda: ctx.action.run(
            app="risk-api", event="score", input={"body": {"chargeId": payment.id}}
        ),
    )
    # Manually trigger rollback: the payment is refunded, the handler goes on.
    if fraud_check.score > 0.8:
        result = await ctx.trigger_rollback("High fraud risk detected")
        ctx.log.info("Rolled back steps", {"steps": result.rolled_back_steps})
        return {"success": False, "reason": "fraud_detected"}
    return {"success": True, "chargeId": payment.id}


rollback_workflow = workflows.define(
    product="acme",
    tag="fraud-guarded-payment",
    name="Fraud-guarded payment",
    # Both arms are recorded: the rollback step gets $Step{fraud-check}{score} > 0.8, the
    # other path's return a RETURN step with $Step{fraud-check}{score} <= 0.8. A run that
    # rolled back ends `rolled_back` with the handler's output.
    branch_overrides={"fraud-check": {"score": 0.9}},
    handler=fraud_guarded,
)


async def pay_with_child(ctx: Any) -> dict[str, Any]:
    """ctx.workflow(): run another workflow of the product as a child run."""
    payment_result = await ctx.workflow(
        "child-payment-123",  # Child workflow ID
        "payment-processing",  # Workflow tag
        {"amount": ctx.input.amount},  # Input
        {"timeout": "5m", "retries": 2, "parent_close_policy": "terminate"},
    )
    return {"charged": payment_result.charged}


parent_workflow = workflows.define(
    product="acme", tag="checkout", name="Checkout (parent)", handler=pay_with_child
)


async def payment_processing(ctx: Any) -> dict[str, Any]:
    charge = await ctx.step(
        "charge",
        lambda: ctx.action.run(
            app="stripe", event="create-charge", input={"body": {"amount": ctx.input.amount}}
        ),
    )
    return {"charged": ctx.input.amount, "chargeId": charge.id}


child_workflow = workflows.define(
    product="acme", tag="payment-processing", name="Payment processing", handler=payment_processing
)
