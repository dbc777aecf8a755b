"""Resolving JSON values: every string template evaluated, or with the expressions that
involve a ``$Secret`` masked."""

from __future__ import annotations

from typing import Any

from runtime.expressions._nodes import Ref, Scope
from runtime.expressions._secrets import involves_secret
from runtime.expressions._templates import Template, parse
from runtime.expressions._values import as_text

REDACTED = "•••"


def resolve(value: Any, scope: Scope) -> Any:
    """Deep-resolve every string in a JSON value (dict keys are left as they are)."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        return parse(value).evaluate(scope)
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    return value


def _masked(template: Template, scope: Scope) -> Any:
    """A template with a secret, as it may be stored: every expression that involves a
    secret, at any depth of operators, reads ``•••`` and is never evaluated. Redacting the
    expression rather than the secret's value is what keeps transforms out too
    (``$Lowercase``, ``$Substring``, ``$Split`` of a secret, or a comparison with one)."""
    if template.exact is not None:
        return REDACTED
    return "".join(
        [
            p if isinstance(p, str) else REDACTED if involves_secret(p) else as_text(p.eval(scope))
            for p in template.parts
        ]
    )


def resolve_masked(value: Any, scope: Scope) -> Any:
    """Deep-resolve like :func:`resolve`, but every expression that involves a ``$Secret``
    reads ``•••`` (no secret is looked up): the input of a step that stores or shows it."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        template = parse(value)
        return _masked(template, scope) if template.has_secret else template.evaluate(scope)
    if isinstance(value, dict):
        return {k: resolve_masked(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_masked(v, scope) for v in value]
    return value


def resolve_redacted(value: Any, scope: Scope) -> tuple[Any, Any]:
    """``(resolved, redacted)``: the same value twice, but in the second (what the journal
    and StepRun.input may store) every expression involving a ``$Secret`` reads ``•••``;
    one that takes a secret apart (``Template.secret_cut_by``) reads ``•••`` in both."""
    if isinstance(value, str):
        if "$" not in value:
            return value, value
        template = parse(value)
        if template.secret_cut_by is not None:
            masked = _masked(template, scope)  # a piece of a secret is never sent either
            return masked, masked
        resolved = template.evaluate(scope)
        if not template.has_secret:
            return resolved, resolved
        return resolved, _masked(template, scope)
    if isinstance(value, dict):
        resolved_d: dict[Any, Any] = {}
        redacted_d: dict[Any, Any] = {}
        for k, v in value.items():
            resolved_d[k], redacted_d[k] = resolve_redacted(v, scope)
        return resolved_d, redacted_d
    if isinstance(value, list):
        pairs = [resolve_redacted(v, scope) for v in value]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return value, value


def references(value: Any) -> list[Ref]:
    """Every reference in a (nested) JSON value; raises ExpressionError on a malformed string."""
    found: list[Ref] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "$" in item:
                found.extend(parse(item).refs)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found
