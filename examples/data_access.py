"""Seed: "Data Access" and "Logging" — variables, constants, defaults, transforms, logs."""

from __future__ import annotations

from typing import Any

from runtime import workflows


async def handler(ctx: Any) -> dict[str, Any]:
    # Access app variables and constants
    api_version = ctx.variable("stripe", "api_version")
    default_currency = ctx.constant("stripe", "default_currency")

    # Provide default values
    currency = ctx.default(ctx.input.currency, "usd")
    retries = ctx.default(ctx.input.retries, 3)

    # String transformations
    upper = ctx.transform.upper(ctx.input.name)
    lower = ctx.transform.lower(ctx.input.email)
    trimmed = ctx.transform.trim(ctx.input.text)

    # JSON operations (run-time values: small steps of their own)
    parsed = ctx.transform.parse_json(ctx.input.jsonString)
    stringified = ctx.transform.stringify(ctx.input.data)

    # Date operations
    now = ctx.transform.now()
    formatted = ctx.transform.format_date(ctx.transform.now(), "YYYY-MM-DD")

    # Array/object operations
    length = ctx.transform.length(ctx.input.items)
    size = ctx.transform.size(ctx.input.metadata)
    parts = ctx.transform.split(ctx.input.csv, ",")
    joined = ctx.transform.join(ctx.input.tags, ", ")

    # Log messages at different levels
    ctx.log.debug("Processing step", {"step": "create-user"})
    user = await ctx.step(
        "create-user",
        lambda: ctx.database.insert(database="users-db", event="create-user", data={"name": upper}),
    )
    ctx.log.info("User created", {"userId": user.id})
    ctx.log.warn("Retry attempt", {"attempt": 2, "maxRetries": 3})
    ctx.log.error("Step failed", {"error": "card declined"})

    return {
        "api_version": api_version,
        "currency": currency,
        "default_currency": default_currency,
        "retries": retries,
        "upper": upper,
        "lower": lower,
        "trimmed": trimmed,
        "parsed": parsed,
        "stringified": stringified,
        "now": now,
        "formatted": formatted,
        "length": length,
        "size": size,
        "parts": parts,
        "joined": joined,
    }


workflow = workflows.define(
    product="acme", tag="data-access", name="Data access and logging", handler=handler
)
