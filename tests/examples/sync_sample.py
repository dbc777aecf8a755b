"""A code-first module for the sync_workflows tests: CODE steps only (no components)."""

from __future__ import annotations

from typing import Any

from runtime import workflows


@workflows.workflow(
    product="acme",
    tag="sync-sample",
    name="Sync sample",
    description="Two code steps",
    envs=[{"slug": "dev", "active": True}, {"slug": "staging", "active": False}],
)
async def sync_sample(ctx: Any) -> dict[str, Any]:
    first = await ctx.step("first", lambda: {"n": 1})
    await ctx.sleep("1s")
    return {"first": first.n}
