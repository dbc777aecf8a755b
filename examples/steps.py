"""Seed: "Working with Steps" — a basic step, a step with rollback, step options."""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    # Basic step
    user = await ctx.step(
        "create-user",
        lambda: ctx.database.insert(
            {"database": "users-db", "event": "create-user", "data": {"email": ctx.input.email}}
        ),
    )
    # Use the result in subsequent steps
    ctx.log.info(f"Created user: {user.id}")

    # Step with rollback
    async def charge() -> Any:
        return await ctx.action.run(
            {
                "app": "stripe",
                "event": "create-charge",
                "input": {"body": {"amount": ctx.input.amount}},
            }
        )

    async def refund(result: Any) -> None:  # called if a later step fails
        await ctx.action.run(
            {"app": "stripe", "event": "refund", "input": {"body": {"chargeId": result.id}}}
        )

    charge_result = await ctx.step("charge-card", charge, refund)

    # Step options
    async def notify() -> None:
        await ctx.notification.email(
            {
                "notification": "transactional",
                "event": "welcome",
                "recipients": [ctx.input.email],
                "template": {"userId": user.id},
            }
        )

    await ctx.step(
        "send-notification",
        notify,
        None,  # No rollback
        {
            "allow_fail": True,  # Continue on failure
            "retries": 3,  # Retry count
            "retry_delay": 1000,  # Delay between retries (ms)
            "timeout": 30000,  # Step timeout (ms)
            "critical": False,  # Mark as critical for rollback
        },
    )
    return {"user": user.id, "charge": charge_result.id}


workflow = workflows.define(product="acme", tag="steps", name="Working with steps", handler=handler)
