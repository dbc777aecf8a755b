"""How values compare, test and read as text: JSON-typed, no coercion."""

from __future__ import annotations

import json
from typing import Any

from runtime.errors import ExpressionError

COMPARISONS = ("===", "!==", "==", "!=", ">=", "<=", ">", "<")


def is_number(value: Any) -> bool:
    """True for an int or a float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """Truthiness: ``None``, ``false``, ``0``, ``''`` and empty containers are false."""
    return bool(value)


def equal(a: Any, b: Any) -> bool:
    """JSON-typed equality: ``1 == 1.0``, ``1 != '1'``, ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    a_num, b_num = is_number(a), is_number(b)
    if a_num or b_num:
        return a_num and b_num and a == b
    return bool(a == b)


def compare(a: Any, op: str, b: Any) -> bool:
    """Apply a comparison operator (one of :data:`COMPARISONS`)."""
    if op in ("==", "==="):
        return equal(a, b)
    if op in ("!=", "!=="):
        return not equal(a, b)
    if is_number(a) and is_number(b):
        pass
    elif not (isinstance(a, str) and isinstance(b, str)):
        return False
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    raise ExpressionError(f"unknown comparison {op!r}")


def as_text(value: Any) -> str:
    """How a value reads when interpolated into text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)
