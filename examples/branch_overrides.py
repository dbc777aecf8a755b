"""Seed: "If / else (early return) - branchOverrides".

Recording pretends ``validate`` returned ``{"valid": True}`` so the handler goes on and
records ``process-payment``, which gets the condition ``$Step{validate}{valid} == true``:
at run time it is skipped when the real validation says ``valid: false``. The early return
is recorded as well (a second recording takes the other arm): a RETURN step on
``$Step{validate}{valid} != true`` ends those runs with
``{"success": false, "error": $Step{validate}{reason}}``.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    async def validate() -> Any:
        return await ctx.action.run(
            {
                "app": "orders-api",
                "event": "validate-order",
                "input": {"body": {"orderId": ctx.input.orderId}},
            }
        )

    validation = await ctx.step("validate", validate)
    if not validation.valid:
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


workflow = workflows.define(
    product="acme",
    tag="order-validation",
    name="Order Fulfillment",
    # So the handler continues past the if and records process-payment
    branchOverrides={"validate": {"valid": True}},
    handler=handler,
)
