"""Where the handler is: which steps the next one waits for (the frontier, the tasks
forked and joined) and which branch conditions hold at this line."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.recorder._sites import is_user_file
from runtime.recorder._source import code_node


@dataclass
class TaskInfo:
    """A task the handler forked: once done, the steps it ended on (what a join waits for)."""

    done: bool = False
    final: frozenset[str] = frozenset()


# The steps the next recorded step waits for (in this task).
FRONTIER: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "trellis_frontier", default=frozenset()
)


@dataclass(frozen=True)
class Clause:
    """A branch condition; with a frame, it only holds while that frame's current line
    is within ``first..last`` (the body of the ``if`` branch taken)."""

    text: str
    frame: types.FrameType | None = field(default=None, compare=False)
    first: int = 0
    last: int = 0


CLAUSES: contextvars.ContextVar[tuple[Clause, ...]] = contextvars.ContextVar(
    "trellis_clauses", default=()
)

NOWHERE: Any = object()  # a branch whose body records nothing: no clause at all


def _user_frame() -> types.FrameType | None:
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


def _branch_arms(
    outcome: bool,
) -> tuple[types.FrameType, list[ast.stmt], list[ast.stmt]] | None:
    """The user's ``if`` whose test is deciding now: (frame, arm taken, arm not taken), or
    None when it cannot be told (no source, not an ``if``, and/or in the test...)."""
    frame = _user_frame()
    if frame is None:
        return None
    func = code_node(frame.f_code, frame.f_globals)
    if func is None:
        return None
    line = frame.f_lineno
    found: ast.If | None = None
    for node in _own_nodes(func):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        if test.lineno <= line <= (test.end_lineno or test.lineno):
            if found is None or node.lineno >= found.lineno:
                found = node
    if found is None:
        return None
    test, negate = found.test, False
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, negate = test.operand, not negate
    if not isinstance(test, ast.Name | ast.Attribute | ast.Subscript | ast.Compare):
        return None  # and/or, calls...: cannot tell which branch this decided
    if outcome != negate:
        return frame, found.body, found.orelse
    return frame, found.orelse, found.body


def branch_scope(outcome: bool) -> tuple[types.FrameType, int, int] | Any | None:
    """Where a decision made in the user's ``if`` test holds (see :meth:`Recording.assume`):
    None = for the rest of the recording; (frame, first, last) = while that frame runs
    the lines of the branch taken; ``NOWHERE`` = the branch taken is empty."""
    arms = _branch_arms(outcome)
    if arms is None:
        return None
    frame, taken, untaken = arms
    if untaken and _terminates(untaken):
        return None
    if not taken:
        return NOWHERE
    last = max(stmt.end_lineno or stmt.lineno for stmt in taken)
    return frame, taken[0].lineno, last


def other_arm_matters(outcome: bool) -> bool:
    """Whether the other outcome of the decision being made can end the handler another
    way: the arm not taken has code, or the arm taken leaves the block (the code after
    the ``if`` is then only reached the other way). A plain ``if x: step()`` does not:
    its other arm runs the same code without the step (which gets a condition)."""
    arms = _branch_arms(outcome)
    if arms is None:
        return True  # cannot tell: record it
    _, taken, untaken = arms
    return bool(untaken) or _terminates(taken)


def _own_nodes(func: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of functions defined inside it."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _terminates(body: list[ast.stmt]) -> bool:
    """Every path through ``body`` leaves it (return, raise, break, continue)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ast.Return | ast.Raise | ast.Break | ast.Continue):
        return True
    if isinstance(last, ast.If):
        return _terminates(last.body) and _terminates(last.orelse)
    return False


def active_clauses() -> tuple[Clause, ...]:
    """The branch conditions that hold at this point; drop those whose block has ended."""
    clauses = CLAUSES.get()
    if not clauses:
        return clauses
    on_stack: dict[int, int] = {}
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        on_stack.setdefault(id(frame), frame.f_lineno)
        frame = frame.f_back
    kept = []
    for clause in clauses:
        if clause.frame is not None and id(clause.frame) in on_stack:
            if not clause.first <= on_stack[id(clause.frame)] <= clause.last:
                continue  # the frame has left the branch: later code runs either way
        # Not on the stack: a task forked inside the branch, still bound by it.
        kept.append(clause)
    if len(kept) != len(clauses):
        CLAUSES.set(tuple(kept))
    return tuple(kept)


def current_task() -> asyncio.Task[Any] | None:
    """The running asyncio task, or None outside an event loop."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
