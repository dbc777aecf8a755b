"""Bounds on what an expression may hold or produce, and the value budget of one
resolution."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runtime.errors import ExpressionError

# Bounds on what an expression may hold or produce. A value past them is an
# ExpressionError (the step fails, no retry), never an exception that crashes the worker:
# - integers of more than MAX_INT_DIGITS digits (Python refuses to print those over 4,300,
#   and no JSON peer reads them), and non-finite floats (inf, nan: no JSON, no jsonb);
# - strings and lists longer than max_length (a few doubling $Concat steps would
#   otherwise fill the worker's memory); the engine sets it from TRELLIS_MAX_VALUE_LENGTH;
# - nesting of operators, arrays and parentheses deeper than MAX_DEPTH (the parser and
#   the evaluator recurse).
MAX_INT_DIGITS = 300
_INT_BOUND = 10**MAX_INT_DIGITS
MAX_DEPTH = 64


class _Limits:
    max_length = 1_000_000


LIMITS = _Limits()


def set_limits(*, max_length: int) -> None:
    """Set how long a string or list an operator may produce (the engine calls it)."""
    LIMITS.max_length = max_length


def check_number(value: Any, where: str) -> None:
    """Refuse a non-finite float or an integer of more than MAX_INT_DIGITS digits."""
    if value.__class__ is float:
        if not math.isfinite(value):
            raise ExpressionError(f"{where}: the result is not a finite number")
    elif value.__class__ is int and not -_INT_BOUND < value < _INT_BOUND:
        raise ExpressionError(f"{where}: the number has more than {MAX_INT_DIGITS} digits")


# What the expressions of one resolution (a step's input, a run's output) may still
# produce in all, in characters/items: each value is under max_length, but many of them in
# one input ("$Step{big}x" a thousand times) would still fill the worker's memory.
_budget = threading.local()


@contextmanager
def value_budget(length: int) -> Iterator[None]:
    """Within this block, operators and interpolated text may produce ``length``
    characters (or list items) in all; past that, an ExpressionError."""
    previous = getattr(_budget, "left", None)
    _budget.left = length
    try:
        yield
    finally:
        _budget.left = previous


def spend(length: int) -> None:
    """Count ``length`` against the value budget of the open :func:`value_budget` block."""
    left = getattr(_budget, "left", None)
    if left is not None:
        left -= length
        if left < 0:
            raise ExpressionError("the expressions produce too much text in all")
        _budget.left = left


def check_result(name: str, value: Any) -> Any:
    """An operator's result, refused when it is out of bounds (counted against the budget)."""
    cls = value.__class__
    if cls is float or cls is int:
        check_number(value, f"${name}")
    elif cls is str or cls is list:
        if len(value) > LIMITS.max_length:
            raise ExpressionError(
                f"${name}: the result is longer than {LIMITS.max_length} "
                + ("characters" if cls is str else "items")
            )
        spend(len(value))
    return value
