"""Seed: "Loops (for) - recordInput".

``record_input`` tells the recorder that ``ctx.input.items`` is a list, so the ``for`` loop
records ONE FOREACH step (``each-items``) over ``$Input{items}`` whose body is the step
``process`` (the item's part of ``f"process-{item.id}"`` is dropped), reading
``$Item{id}``. At run time the loop runs once per real item, however many there are:
the journal and the monitor show ``process[0]``, ``process[1]``... (the seed unrolled the
sample instead, so a shorter or longer real list was processed wrongly).
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
