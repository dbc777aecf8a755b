"""Small code-first workflows for the real-worker tests (short sleeps, code steps)."""

from __future__ import annotations

from typing import Any

from runtime import workflows


@workflows.workflow(product="acme", tag="nap", name="Nap")
async def nap(ctx: Any) -> dict[str, Any]:
    before = await ctx.step("before", lambda: {"n": ctx.input.n})
    await ctx.sleep("1500ms")
    after = await ctx.step("after", lambda: {"n": before.n + 1})
    return {"n": after.n}
