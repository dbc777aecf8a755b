"""Seed: "Loops (for) - recordInput".

Recording runs with ``ctx.input.items = [{id: '1'}, {id: '2'}]``, so the steps
``process-1`` and ``process-2`` are recorded. Inside the loop ``item.id`` is still a
reference (``$Input{items.0.id}``): at run time each step reads the real item at its
position; only the step tags use the sample values.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> None:
    for item in ctx.input.items:
        await ctx.step(
            f"process-{item.id}",
            # The recorder reads `item` when the step is recorded: no late-binding trap.
            lambda: ctx.action.run(
                {
                    "app": "orders-api",
                    "event": "process-item",
                    "input": {"body": {"id": item.id}},  # noqa: B023
                }
            ),
        )


workflow = workflows.define(
    product="acme",
    tag="process-orders",
    name="Process Orders",
    recordInput={"items": [{"id": "1"}, {"id": "2"}]},
    handler=handler,
)
