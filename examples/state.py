"""Seed: "State Management" — set_state / get_state / state, and step results."""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    user = await ctx.step(
        "create-user",
        lambda: ctx.database.insert(
            database="users-db", event="create-user", data={"email": ctx.input.email}
        ),
    )
    # Save state
    ctx.set_state("retryCount", 0)
    ctx.set_state("lastError", None)

    # Later, retrieve state
    retry_count = ctx.get_state("retryCount")
    if retry_count < 3:  # recorded with branch_overrides={"$State{retryCount}": 0}
        ctx.set_state("retryCount", ctx.transform.add(retry_count, 1))
        # Retry logic...

    # Access all state
    ctx.log.info("Current state", ctx.state)

    # Access results from previous steps
    user_result = ctx.steps["create-user"]
    ctx.log.info(f"User ID: {user_result.id}")
    # Check completed steps
    ctx.log.info("Progress", {"completed": ctx.completed_steps, "current": ctx.current_step})

    # A code step reading state and steps at run time
    summary = await ctx.step(
        "summary",
        lambda: {
            "user": ctx.steps["create-user"]["id"],
            "retries": ctx.get_state("retryCount", 0),
            "done": len(ctx.completed_steps),
        },
    )
    return {"user": user.id, "summary": summary}


workflow = workflows.define(
    product="acme",
    tag="state-management",
    name="State management",
    branch_overrides={"$State{retryCount}": 0},
    handler=handler,
)
