"""Seed: "If/else or switch on input - recordScenarios".

The handler is recorded once per scenario; ``handle-a`` gets ``$Input{type} == 'a'`` and
``handle-b`` gets ``$Input{type} == 'b'``, so at run time only the matching one runs.
"""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> None:
    match ctx.input.type:
        case "a":
            await ctx.step(
                "handle-a", lambda: ctx.action.run({"app": "api", "event": "handle-a", "input": {}})
            )
        case "b":
            await ctx.step(
                "handle-b", lambda: ctx.action.run({"app": "api", "event": "handle-b", "input": {}})
            )


workflow = workflows.define(
    product="acme",
    tag="handle-by-type",
    name="Handle by type",
    recordScenarios=[{"type": "a"}, {"type": "b"}],
    handler=handler,
)


async def if_else(ctx: Any) -> None:
    # The same with if / elif, as the seed allows.
    if ctx.input.type == "a":
        await ctx.step("handle-a", lambda: ctx.action.run(app="api", event="handle-a", input={}))
    elif ctx.input.type == "b":
        await ctx.step("handle-b", lambda: ctx.action.run(app="api", event="handle-b", input={}))


if_else_workflow = workflows.define(
    product="acme",
    tag="handle-by-type-if",
    name="Handle by type (if/elif)",
    record_scenarios=[{"type": "a"}, {"type": "b"}],
    handler=if_else,
)
