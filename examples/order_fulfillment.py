"""Seed: "Complete Example" — order fulfillment.

``branchOverrides`` records the payment and later steps although the handler returns early
when validation fails: at run time they only run when ``$Step{validate}{available}`` is
true. The early return is recorded too (the handler runs once per arm): a RETURN step
right after ``validate``, on ``$Step{validate}{available} != true``, ends the run with
``{"success": false, "reason": "items_unavailable"}``. Payment and inventory carry
rollbacks (refund, release); a checkpoint follows the payment; the confirmation email may
fail without failing the order.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    ctx.log.info("Starting order fulfillment", {"orderId": ctx.input.orderId})

    # Step 1: Validate order
    async def validate() -> Any:
        return await ctx.action.run(
            {
                "app": "inventory-api",
                "event": "check-availability",
                "input": {"body": {"items": ctx.input.items}},
            }
        )

    validation = await ctx.step("validate", validate)
    if not validation.available:
        return {"success": False, "reason": "items_unavailable"}

    # Step 2: Process payment (with rollback)
    async def charge() -> Any:
        return await ctx.action.run(
            {
                "app": "stripe",
                "event": "create-charge",
                "input": {"body": {"amount": ctx.input.amount, "customer": ctx.input.customerId}},
                "retries": 3,
            }
        )

    async def refund(result: Any) -> None:
        await ctx.action.run(
            {"app": "stripe", "event": "refund", "input": {"body": {"chargeId": result.id}}}
        )

    payment = await ctx.step("payment", charge, refund)

    # Checkpoint after payment
    await ctx.checkpoint("payment-complete", {"chargeId": payment.id})

    # Step 3: Reserve inventory (with rollback)
    async def reserve() -> Any:
        return await ctx.action.run(
            {
                "app": "inventory-api",
                "event": "reserve",
                "input": {"body": {"items": ctx.input.items}},
            }
        )

    async def release() -> None:
        await ctx.action.run(
            {
                "app": "inventory-api",
                "event": "release",
                "input": {"body": {"items": ctx.input.items}},
            }
        )

    await ctx.step("reserve-inventory", reserve, release)

    # Step 4: Create order record
    async def create_order() -> Any:
        return await ctx.database.insert(
            {
                "database": "orders-db",
                "event": "create",
                "data": {
                    "customer_id": ctx.input.customerId,
                    "items": ctx.input.items,
                    "total": ctx.input.amount,
                    "payment_id": payment.id,
                    "status": "processing",
                },
            }
        )

    order = await ctx.step("create-order", create_order)

    # Step 5: Send confirmation (non-critical)
    async def confirm() -> None:
        await ctx.notification.email(
            {
                "notification": "transactional",
                "event": "order-confirmed",
                "recipients": [ctx.input.email],
                "template": {
                    "orderId": order.id,
                    "items": ctx.input.items,
                    "total": ctx.input.amount,
                },
            }
        )

    await ctx.step("send-confirmation", confirm, None, {"allow_fail": True})

    # Step 6: Queue for fulfillment
    async def queue() -> None:
        await ctx.messaging.produce(
            {
                "event": "warehouse:new-order",
                "message": {"orderId": order.id, "items": ctx.input.items},
            }
        )

    await ctx.step("queue-fulfillment", queue)

    ctx.log.info("Order fulfilled successfully", {"orderId": order.id})
    return {"success": True, "orderId": order.id, "chargeId": payment.id}


workflow = workflows.define(
    product="acme",
    tag="order-fulfillment",
    name="Order Fulfillment",
    description="Complete order processing workflow",
    options={"timeout": 300000, "rollback_strategy": "reverse_all"},
    signals={"cancel-order": {"input": {"reason": "string"}}},
    # Record the "continue" branch so payment and later steps are in the schema
    branchOverrides={"validate": {"available": True}},
    handler=handler,
)
