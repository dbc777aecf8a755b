"""Seed: "Workflow Definition" and "Definition Options"."""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def minimal(ctx: Any) -> dict[str, Any]:
    # Your workflow logic
    return {"result": "data"}


workflow = workflows.define(
    product="acme",  # Target product
    tag="workflow-tag",  # Unique identifier
    name="Workflow Name",  # Display name
    description="Description",  # Optional
    handler=minimal,
)


@workflows.workflow(
    product="acme",
    tag="order-process",
    name="Order Processing",
    description="Handles complete order fulfillment",
    # Workflow options
    options={
        "timeout": 300000,  # 5 minutes max
        "rollback_strategy": "reverse_all",  # How to handle failures
    },
    # Environment configurations
    envs=[
        {"slug": "dev", "active": True},
        {"slug": "staging", "active": True},
        {"slug": "prd", "active": True},
    ],
)
async def order_process(ctx: Any) -> None:
    await ctx.step("noop", lambda: {"ok": True})
