"""A runtime loop: Smithers' ``<Loop>``, the seed's ``for (const item of ctx.input.items)``.

``ctx.foreach`` records ONE FOREACH step (``charge-lines``) over ``$Input{lines}``: at run
time each real line is charged, at most three at once, and the journal and the monitor show
``charge-line[0]``, ``charge-line[1]``... A line's refund is its compensation: when the
confirmation fails after the loop, every line already charged is refunded (newest first).
After the loop, ``charges.results`` is the list of each line's charge, in line order.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> Any:
    charges = ctx.foreach(ctx.input.lines, tag="charge-lines", max_concurrency=3)
    for line in charges:
        await ctx.step(
            "charge-line",
            lambda: ctx.action.run(
                {
                    "app": "stripe",
                    "event": "create-charge",
                    "input": {"body": {"sku": line.sku, "amount": line.amount}},  # noqa: B023
                }
            ),
            # The rollback: refund this line (runs only if a later step fails).
            lambda: ctx.action.run(
                {
                    "app": "stripe",
                    "event": "refund",
                    "input": {"body": {"sku": line.sku}},  # noqa: B023
                }
            ),
        )
    await ctx.step(
        "confirm",
        lambda: ctx.action.run(
            {
                "app": "orders-api",
                "event": "validate-order",
                "input": {"body": {"orderId": ctx.input.orderId, "charges": charges.results}},
            }
        ),
    )
    return {"orderId": ctx.input.orderId, "charges": charges.results}


workflow = workflows.define(
    product="acme",
    tag="batch-charges",
    name="Batch charges",
    handler=handler,
)
