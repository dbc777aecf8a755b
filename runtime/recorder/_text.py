"""Expression text the recorder writes: references, literals, the CODE targets' names."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from runtime.spec import LOG_EVENT as LOG_EVENT  # kept here for the recorder's users

# CODE events emitted by the recorder call back into the worker (runtime.context): these
# names are stored in published specs, so they stay as they were when the targets lived
# in runtime.workflows.
CODE_STEP_EVENT = "runtime.workflows:run_code_step"
TRANSFORM_EVENT = "runtime.workflows:transform_step"


class _Missing:
    """No value is known for a recorded reference during this recording."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def ref_text(kind: str, args: tuple[str, ...], path: str) -> str:
    """``$Input{a.b}``, ``$Step{tag}{a.b}``, ``$State{k}``, ``$Variable{app}{k}``, ``$Run{x}``."""
    text = "$" + kind + "".join("{" + a + "}" for a in args)
    if path:
        text += "{" + path + "}"
    return text


def literal(value: Any) -> str:
    """A Python scalar as an expression literal: true, false, null, 3, 'text'."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        return json.dumps(value)
    if isinstance(value, str):
        if "'" not in value:
            return f"'{value}'"
        if '"' not in value:
            return f'"{value}"'
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise ValueError(f"a {type(value).__name__} cannot be written as a literal")


NEGATE = {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}

PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def hint_for(text: str, kind: str, args: tuple[str, ...]) -> str:
    """How to give the recorder a value it cannot know (for an error message)."""
    if kind == "Step" and args:
        return (
            f"the result of step {args[0]!r} is not known until the workflow runs; add "
            f"branch_overrides={{'{args[0]}': {{...}}}} to record the path you want "
            "(later steps then get a condition on it)"
        )
    if kind == "Input":
        return (
            "the input is not known until the workflow runs; use record_scenarios to branch "
            "on input (each branch gets a condition), record_input for loops"
        )
    return f"its value is not known until the workflow runs; add branch_overrides={{'{text}': ...}}"
