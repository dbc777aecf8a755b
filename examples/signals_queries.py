"""Seed: "Signals" and "Queries".

``approve`` and ``cancel`` are declared with their payload schema; the handler parks on
``approve`` (a WAIT_SIGNAL step, no worker held) for up to 24 hours and logs who approved.
The ``getProgress`` query reads the run's completed and current steps.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    # Wait for approval signal
    approval = await ctx.wait_for_signal("approve", {"timeout": "24h"})
    ctx.log.info(f"Approved by: {approval.approver_id}")
    return {"approved_by": approval.approver_id, "comments": approval.comments}


workflow = workflows.define(
    product="acme",
    tag="approval",
    name="Approval",
    signals={
        "approve": {"input": {"approver_id": "string", "comments": "string"}},
        "cancel": {"input": {"reason": "string"}},
    },
    queries={
        "getProgress": {
            "handler": lambda ctx: {
                "completed_steps": ctx.completed_steps,
                "current_step": ctx.current_step,
            },
        },
    },
    handler=handler,
)
