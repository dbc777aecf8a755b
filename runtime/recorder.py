"""Record a code-first workflow handler into the one spec (pure: no Django imports).

The handler runs once per recording with a *recording* ctx: ``ctx.input.x`` and step
results are :class:`Recorded` proxies that turn into ``$Input{x}`` / ``$Step{tag}{field}``
references wherever they end up (event inputs, conditions, the output mapping; an f-string
interpolates them). Every ``ctx.step`` / ``ctx.sleep`` / connector call becomes a node of a
DAG whose edges follow the code: straight-line awaits chain, ``asyncio.gather`` (or any
task) forks, and the next step after the tasks finished joins them. The DAG is then cut
into sequences (one per straight run of steps) with ``parents``.

A step function whose body is one connector call (``ctx.action.run(...)``...) is run at
define time (only that call is recorded, as the step's event); any other function is not
run: it becomes a CODE event (:data:`CODE_STEP_EVENT`) whose input names the workflow and
step, the recorded values the function captured (``refs``) and the run data it reads
(``ctx``), so the worker can rebuild it with real values (runtime.context).

What the recorder cannot know (a step's real result, the real input) it only learns from
the recording options: ``branch_overrides`` (what a step "returns" so an ``if`` takes the
path you want; steps in that branch get ``$Step{tag}{field} == value`` — and so do the
steps after the ``if`` when the other branch returns early), ``record_input`` (sample
input so loops unroll; items stay positional references ``$Input{items.0.id}``, only step
tags use the sample values) and ``record_scenarios`` (one recording per input scenario;
steps get ``$Input{key} == 'value'``, merged with ``||``). Anything else that needs a real
value (arithmetic, truthiness, comparisons, loops) fails with a :class:`RecordingError`
naming the file and line.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import inspect
import json
import linecache
import math
import os
import re
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import TrellisError
from runtime.spec import TAG_RE, EventType, duration_ms

# CODE events emitted by the recorder call back into runtime.workflows in the worker.
CODE_STEP_EVENT = "runtime.workflows:run_code_step"
LOG_EVENT = "runtime.workflows:log_step"
TRANSFORM_EVENT = "runtime.workflows:transform_step"

STEP_OPTION_KEYS = ("allow_fail", "retries", "retry_delay", "timeout", "critical", "backoff")
_CAMEL = {
    "allowFail": "allow_fail",
    "retryDelay": "retry_delay",
    "parentClosePolicy": "parent_close_policy",
    "rollbackStrategy": "rollback_strategy",
    "maxConcurrency": "max_concurrency",
}


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


# --- where in the user's code ---------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_INTERNAL_FILES = frozenset(
    os.path.join(_HERE, name)
    for name in ("recorder.py", "workflows.py", "context.py", "testing.py")
)
_STDLIB = sysconfig.get_paths()["stdlib"]


def _is_user_file(filename: str) -> bool:
    if filename in _INTERNAL_FILES or filename.startswith("<frozen"):
        return False
    return not filename.startswith(_STDLIB) or "site-packages" in filename


@dataclass(frozen=True)
class Site:
    """A place in the user's code: file, line and function."""

    filename: str
    lineno: int
    function: str = ""

    def __str__(self) -> str:
        name = self.filename
        try:
            rel = os.path.relpath(name)
            if not rel.startswith(".."):
                name = rel
        except ValueError:
            pass
        return f"{name}:{self.lineno}"

    @property
    def line(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()


def user_site(depth: int = 1) -> Site | None:
    """The innermost frame of user code calling into the recorder."""
    frame: types.FrameType | None = sys._getframe(depth)
    while frame is not None:
        if _is_user_file(frame.f_code.co_filename):
            return Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def _traceback_site(tb: types.TracebackType | None) -> Site | None:
    """The last user frame of a traceback (where user code raised)."""
    found: Site | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if _is_user_file(code.co_filename):
            found = Site(code.co_filename, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found


class RecordingError(TrellisError):
    """A handler does something the recorder cannot express; names the line."""

    code = "recording_error"

    def __init__(self, message: str, *, site: Site | None = None) -> None:
        self.message = message
        self.site = site
        text = message
        if site is not None:
            where = f"{site}" + (f" (in {site.function})" if site.function else "")
            text = f"{where}: {message}"
            if site.line:
                text += f"\n    {site.line}"
        super().__init__(text)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.site is not None:
            out["file"] = str(self.site)
            out["line"] = self.site.lineno
        return out


# --- expression text --------------------------------------------------------------------


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


_NEGATE = {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_SWAP = {"==": "==", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _hint_for(text: str, kind: str, args: tuple[str, ...]) -> str:
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


# --- recorded values --------------------------------------------------------------------


class Recorded:
    """A value that only exists when the workflow runs: a reference or an expression.

    Reading a field gives another reference (``$Step{pay}{id}``); formatting it into a
    string interpolates the expression; anything that needs the real value (truthiness,
    comparison, arithmetic, iteration) only works when the recording options supplied one.
    """

    __slots__ = ("_r_origin", "_r_rec", "_r_ref", "_r_sample", "_r_text")
    _r_origin: str | None
    _r_rec: Recording
    _r_ref: tuple[str, tuple[str, ...], str] | None
    _r_sample: Any
    _r_text: str

    def __init__(
        self,
        rec: Recording,
        text: str,
        *,
        ref: tuple[str, tuple[str, ...], str] | None = None,
        sample: Any = MISSING,
        origin: str | None = None,
    ) -> None:
        object.__setattr__(self, "_r_rec", rec)
        object.__setattr__(self, "_r_text", text)
        object.__setattr__(self, "_r_ref", ref)
        object.__setattr__(self, "_r_sample", sample)
        object.__setattr__(self, "_r_origin", origin)

    # fields ---------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Recorded:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._r_child(name)

    def __getitem__(self, key: Any) -> Recorded:
        if isinstance(key, Recorded):
            raise self._r_misuse("index a recorded value with another recorded value")
        if isinstance(key, slice):
            raise self._r_misuse("slice a recorded value (use ctx.transform)")
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise self._r_misuse(f"index a recorded value with a {type(key).__name__}")
        return self._r_child(key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise self._r_misuse("assign to a field of a recorded value (build a new dict instead)")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise self._r_misuse("assign to a field of a recorded value (build a new dict instead)")

    def _r_child(self, key: str | int) -> Recorded:
        if self._r_ref is None:
            raise self._r_misuse(f"read field {key!r} of a computed value")
        return self._r_rec.child_of(self, key)

    # strings ----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._r_text

    def __format__(self, spec: str) -> str:
        if spec:
            raise self._r_misuse(f"format a recorded value with {spec!r} (use ctx.transform)")
        return self._r_text

    def __repr__(self) -> str:
        return f"<recorded {self._r_text}>"

    def __hash__(self) -> int:
        return id(self)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return self._r_text + other
        raise self._r_misuse("use `+` on", op=True)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other + self._r_text
        raise self._r_misuse("use `+` on", op=True)

    # decisions ----------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self._r_rec.decide_truth(self)

    def __eq__(self, other: object) -> RecordedCondition:  # type: ignore[override]
        return RecordedCondition(self, "==", other)

    def __ne__(self, other: object) -> RecordedCondition:  # type: ignore[override]
        return RecordedCondition(self, "!=", other)

    def __lt__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, "<", other)

    def __le__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, "<=", other)

    def __gt__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, ">", other)

    def __ge__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, ">=", other)

    def __iter__(self) -> Iterator[Any]:
        return self._r_rec.iterate(self)

    def __len__(self) -> int:
        sample = self._r_sample
        if isinstance(sample, list | dict | str):
            return len(sample)
        raise self._r_misuse(
            "take len() of", hint="use ctx.transform.length(...) for a runtime value"
        )

    def __contains__(self, item: Any) -> bool:
        raise self._r_misuse("use `in` on", hint="test it inside a step function")

    def _r_misuse(self, what: str, *, op: bool = False, hint: str | None = None) -> RecordingError:
        if op:
            message = (
                f"cannot {what} a recorded value ({self._r_text}): it is not known until the "
                "workflow runs; use ctx.transform (e.g. ctx.transform.add) or compute it inside "
                "a step function"
            )
        else:
            message = f"cannot {what} a recorded value ({self._r_text})"
            if hint:
                message += f": {hint}"
        return RecordingError(message, site=user_site(2))


def _arith(symbol: str) -> Callable[..., Any]:
    def method(self: Recorded, *args: Any) -> Any:
        raise self._r_misuse(f"use `{symbol}` on", op=True)

    return method


for _name, _symbol in {
    "sub": "-",
    "mul": "*",
    "truediv": "/",
    "floordiv": "//",
    "mod": "%",
    "pow": "**",
    "matmul": "@",
    "and": "&",
    "or": "|",
    "xor": "^",
    "lshift": "<<",
    "rshift": ">>",
    "divmod": "divmod",
}.items():
    setattr(Recorded, f"__{_name}__", _arith(_symbol))
    setattr(Recorded, f"__r{_name}__", _arith(_symbol))
for _name, _symbol in {
    "neg": "unary -",
    "pos": "unary +",
    "abs": "abs()",
    "invert": "~",
    "int": "int()",
    "float": "float()",
    "index": "an index",
    "round": "round()",
    "complex": "complex()",
}.items():
    setattr(Recorded, f"__{_name}__", _arith(_symbol))


class RecordedCondition:
    """``recorded <op> value``: decided during recording from a known value, and kept as a
    step condition for the steps that follow (unless it only tests a scenario's input)."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: Recorded, op: str, right: Any) -> None:
        self.left = left
        self.op = op
        self.right = right

    def __bool__(self) -> bool:
        return self.left._r_rec.decide_comparison(self)

    def __repr__(self) -> str:
        return f"<recorded condition {self.left._r_text} {self.op} {self.right!r}>"

    __hash__ = object.__hash__


def contains_recorded(value: Any, _depth: int = 0) -> bool:
    if isinstance(value, Recorded | RecordedCondition):
        return True
    if _depth > 50:
        return False
    if isinstance(value, Mapping):
        return any(contains_recorded(v, _depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_recorded(v, _depth + 1) for v in value)
    return False


# --- the recording ---------------------------------------------------------------------


@dataclass
class Node:
    """One recorded event and what it waits for."""

    tag: str
    event: dict[str, Any]
    deps: tuple[str, ...]
    clauses: tuple[str, ...]
    site: Site | None


@dataclass
class CodeStep:
    """The Python behind a CODE event: found again in the worker by (workflow, step)."""

    fn: Callable[..., Any] | None = None
    rollback: Callable[..., Any] | None = None


@dataclass
class _TaskInfo:
    done: bool = False
    final: frozenset[str] = frozenset()


@dataclass
class _StepFrame:
    tag: str
    kind: str  # "step" | "rollback"
    calls: list[PendingCall] = field(default_factory=list)


_REC: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("trellis_rec", default=None)
_FRONTIER: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "trellis_frontier", default=frozenset()
)


@dataclass(frozen=True)
class _Clause:
    """A branch condition; with a frame, it only holds while that frame's current line
    is within ``first..last`` (the body of the ``if`` branch taken)."""

    text: str
    frame: types.FrameType | None = field(default=None, compare=False)
    first: int = 0
    last: int = 0


_CLAUSES: contextvars.ContextVar[tuple[_Clause, ...]] = contextvars.ContextVar(
    "trellis_clauses", default=()
)
_STEP_FRAME: contextvars.ContextVar[_StepFrame | None] = contextvars.ContextVar(
    "trellis_step_frame", default=None
)


def _to_tag_part(text: str) -> str:
    part = re.sub(r"[^A-Za-z0-9_\-\.]+", "-", text).strip("-") or "step"
    if not re.match(r"[A-Za-z_]", part):
        part = "s-" + part
    return part[:90]


class Recording:
    """The state of one run of a handler under the recorder."""

    def __init__(
        self,
        *,
        workflow: str,
        module: str,
        overrides: Mapping[str, Any],
        sample_input: Mapping[str, Any],
        scenario: Mapping[str, Any] | None,
        signals: frozenset[str] | None,
        read_only: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.module = module
        self.overrides = dict(overrides)
        self.sample_input = dict(sample_input)
        self.scenario = dict(scenario) if scenario is not None else None
        self.signals = signals
        self.read_only = read_only  # why steps are refused (queries), or None
        self.nodes: dict[str, Node] = {}
        self.code_steps: dict[str, CodeStep] = {}
        self.children: dict[asyncio.Task[Any] | None, list[_TaskInfo]] = {}
        self.unawaited: dict[int, PendingCall] = {}
        # ctx.step / ctx.sleep ... coroutines created but not awaited (yet).
        self.unstarted: dict[int, tuple[str, Site | None, Coroutine[Any, Any, Any], object]] = {}
        self.auto_counts: dict[str, int] = {}
        self.input_paths: set[str] = set()
        self.used_overrides: set[str] = set()
        self.state_keys: dict[str, None] = {}  # set so far, in order

    # references --------------------------------------------------------------------------
    def ref(
        self, kind: str, args: tuple[str, ...] = (), path: str = "", *, sample: Any = MISSING
    ) -> Recorded:
        text = ref_text(kind, args, path)
        origin: str | None = None
        if sample is not MISSING:
            origin = "known"
        elif kind == "Step" and args and not path and args[0] in self.overrides:
            sample, origin = self.overrides[args[0]], "override"
            self.used_overrides.add(args[0])
        elif text in self.overrides:
            sample, origin = self.overrides[text], "override"
            self.used_overrides.add(text)
        if kind == "Input" and path:
            self.input_paths.add(path)
        return Recorded(self, text, ref=(kind, args, path), sample=sample, origin=origin)

    def input_root(self) -> Recorded:
        return Recorded(self, "$Input", ref=("Input", (), ""), sample=MISSING, origin="input")

    def child_of(self, parent: Recorded, key: str | int) -> Recorded:
        kind, args, path = parent._r_ref or ("", (), "")
        new_path = f"{path}.{key}" if path else str(key)
        text = ref_text(kind, args, new_path)
        sample: Any = MISSING
        origin = parent._r_origin
        if kind == "Input" and not path:
            # The top-level key decides: a scenario key can steer branches, a record_input
            # key only drives loops and tags.
            if self.scenario is not None and key in self.scenario:
                sample, origin = self.scenario[key], "scenario"
            elif key in self.sample_input:
                sample, origin = self.sample_input[key], "sample"
            else:
                origin = None
        else:
            parent_sample = parent._r_sample
            if isinstance(parent_sample, Mapping) and isinstance(key, str) and key in parent_sample:
                sample = parent_sample[key]
            elif (
                isinstance(parent_sample, list)
                and isinstance(key, int)
                and -len(parent_sample) <= key < len(parent_sample)
            ):
                sample = parent_sample[key]
        if sample is MISSING and text in self.overrides:
            sample, origin = self.overrides[text], "override"
            self.used_overrides.add(text)
        if kind == "Input":
            self.input_paths.add(new_path)
        return Recorded(self, text, ref=(kind, args, new_path), sample=sample, origin=origin)

    def step_result(self, tag: str) -> Recorded:
        return self.ref("Step", (tag,))

    def expression(self, text: str) -> Recorded:
        return Recorded(self, text)

    # decisions -----------------------------------------------------------------------------
    def assume(self, text: str, outcome: bool) -> None:
        """Later steps run only when ``text`` holds at run time. Scoped to the ``if`` block
        that tested it, unless the branch not taken always exits (early return), in which
        case everything after the ``if`` depends on it too."""
        scope = _branch_scope(outcome)
        if scope is _NOWHERE:
            return
        clauses = _CLAUSES.get()
        for existing in clauses:
            if existing.text == text and (existing.frame is None or scope is None):
                if existing.frame is not None:  # now unconditional: widen it
                    clauses = tuple(c for c in clauses if c is not existing)
                    break
                return
        if scope is None:
            clause = _Clause(text)
        else:
            frame, first, last = scope
            clause = _Clause(text, frame, first, last)
        _CLAUSES.set((*clauses, clause))

    def decide_truth(self, value: Recorded) -> bool:
        site = user_site(3)
        kind, args, _ = value._r_ref or ("", (), "")
        sample, origin = value._r_sample, value._r_origin
        if origin == "scenario" and sample is not MISSING:
            return bool(sample)
        if origin == "sample":
            raise RecordingError(
                f"cannot branch on {value._r_text}: record_input values only drive loops and "
                "step tags; use record_scenarios to record each branch with a condition",
                site=site,
            )
        if sample is MISSING:
            raise RecordingError(
                f"cannot test the truth of a recorded value ({value._r_text}): "
                + _hint_for(value._r_text, kind, args),
                site=site,
            )
        if isinstance(sample, Mapping | list):
            raise RecordingError(
                f"cannot test the truth of a whole object ({value._r_text}); test one of its "
                "fields (e.g. `if result.ok:`) so the recorder can write a condition",
                site=site,
            )
        self.assume(f"{value._r_text} == {literal(sample)}", bool(sample))
        return bool(sample)

    def decide_comparison(self, cond: RecordedCondition) -> bool:
        site = user_site(3)
        left, op, right = cond.left, cond.op, cond.right
        sides = [left, right] if isinstance(right, Recorded) else [left]
        for side in sides:
            if side._r_sample is MISSING:
                kind, args, _ = side._r_ref or ("", (), "")
                raise RecordingError(
                    f"cannot compare a recorded value ({side._r_text} {op} ...): "
                    + _hint_for(side._r_text, kind, args),
                    site=site,
                )
            if side._r_origin == "sample":
                raise RecordingError(
                    f"cannot branch on {side._r_text}: record_input values only drive loops and "
                    "step tags; use record_scenarios to record each branch with a condition",
                    site=site,
                )
        if isinstance(right, RecordedCondition) or (
            contains_recorded(right) and not isinstance(right, Recorded)
        ):
            raise RecordingError("cannot compare a recorded value with a structure", site=site)
        right_value = right._r_sample if isinstance(right, Recorded) else right
        try:
            result = bool(_PY_OPS[op](left._r_sample, right_value))
        except TypeError as exc:
            raise RecordingError(
                f"cannot compare {left._r_text} {op} {right!r} with the recorded values: {exc}",
                site=site,
            ) from None
        if all(side._r_origin == "scenario" for side in sides):
            return result  # the scenario's own condition already covers this branch
        try:
            right_text = right._r_text if isinstance(right, Recorded) else literal(right)
        except ValueError:
            raise RecordingError(
                f"cannot compare {left._r_text} with a {type(right).__name__} in a condition",
                site=site,
            ) from None
        used = op if result else _NEGATE[op]
        self.assume(f"{left._r_text} {used} {right_text}", result)
        return result

    def iterate(self, value: Recorded) -> Iterator[Any]:
        sample = value._r_sample
        kind, args, path = value._r_ref or ("", (), "")
        if isinstance(sample, list) and value._r_ref is not None:
            return iter([self.child_of(value, i) for i in range(len(sample))])
        if isinstance(sample, Mapping):
            return iter(list(sample))
        site = user_site(3)
        if kind == "Input":
            raise RecordingError(
                f"cannot loop over {value._r_text}: the input is not known at define time; "
                f"add record_input={{'{path.split('.')[0] or 'items'}': [...]}} with sample "
                "items so the loop runs and records one step per item (use unique step tags, "
                "e.g. f'process-{item.id}')",
                site=site,
            )
        raise RecordingError(
            f"cannot loop over a recorded value ({value._r_text}): "
            + _hint_for(value._r_text, kind, args),
            site=site,
        )

    # conversion ----------------------------------------------------------------------------
    def to_spec(self, value: Any, site: Site | None, where: str) -> Any:
        """A value as spec JSON: recorded values become expressions; anything that is not
        JSON is refused, naming where it was found."""
        return _to_spec(value, site, where, 0)

    def concrete_text(self, value: Any, site: Site | None, what: str) -> str:
        """A step tag or name: recorded references are replaced by their sample values
        (record_input / scenarios / overrides), so ``f"process-{item.id}"`` → ``process-1``."""
        if isinstance(value, Recorded):
            value = value._r_text
        if not isinstance(value, str):
            raise RecordingError(f"{what} must be a string, not {type(value).__name__}", site=site)

        def substitute(match: re.Match[str]) -> str:
            found = self.sample_of_text(match.group(0))
            if found is MISSING or isinstance(found, Mapping | list):
                raise RecordingError(
                    f"{what} {value!r} uses {match.group(0)}, which has no value during recording; "
                    "supply it in record_input (or use a fixed tag)",
                    site=site,
                )
            if isinstance(found, bool):
                return "true" if found else "false"
            return str(found)

        return re.sub(r"\$(Input|Step|State)(\{[^{}]*\})+", substitute, value)

    def sample_of_text(self, text: str) -> Any:
        match = re.fullmatch(r"\$(Input|Step|State)((?:\{[^{}]*\})+)", text)
        if not match:
            return MISSING
        parts = re.findall(r"\{([^{}]*)\}", match.group(2))
        kind = match.group(1)
        root: Recorded
        if kind == "Input":
            root = self.input_root()
        elif kind == "Step":
            root = self.step_result(parts.pop(0))
        else:
            root = self.ref("State", (), parts.pop(0)) if parts else self.ref("State")
        for part in ".".join(parts).split(".") if parts else []:
            if part == "":
                continue
            root = self.child_of(root, int(part) if part.isdigit() else part)
        return root._r_sample

    # nodes ---------------------------------------------------------------------------------
    def auto_tag(self, base: str) -> str:
        base = _to_tag_part(base)
        while True:
            count = self.auto_counts.get(base, 0) + 1
            self.auto_counts[base] = count
            tag = base if count == 1 else f"{base}-{count}"
            if tag not in self.nodes:
                return tag

    def check_tag(self, tag: str, site: Site | None) -> None:
        if not TAG_RE.match(tag):
            raise RecordingError(
                f"invalid step tag {tag!r}: start with a letter or _, then letters, digits, "
                "_ - . (at most 100)",
                site=site,
            )
        if tag in self.nodes:
            first = self.nodes[tag].site
            raise RecordingError(
                f"duplicate step tag {tag!r}"
                + (f" (first used at {first})" if first else "")
                + ": every step needs its own tag; in a loop, put the item in the tag "
                "(e.g. f'process-{item.id}')",
                site=site,
            )

    def check_writable(self, what: str, site: Site | None) -> None:
        if self.read_only:
            raise RecordingError(f"{self.read_only} cannot {what}", site=site)
        if _STEP_FRAME.get() is not None:
            raise RecordingError(
                f"cannot {what} inside a step function; call it from the handler", site=site
            )

    def record(
        self,
        tag: str,
        event: dict[str, Any],
        *,
        site: Site | None,
        condition: str | None = None,
    ) -> None:
        self.check_tag(tag, site)
        task = _current_task()
        deps = set(_FRONTIER.get())
        pending: list[_TaskInfo] = []
        for info in self.children.get(task, []):
            if info.done:
                deps |= info.final
            else:
                pending.append(info)
        self.children[task] = pending
        texts = tuple(c.text for c in _active_clauses())
        if condition:
            texts = (*texts, condition)
        self.nodes[tag] = Node(tag, event, _reduce(deps, self.nodes), texts, site)
        _FRONTIER.set(frozenset({tag}))


_NOWHERE: Any = object()  # a branch whose body records nothing: no clause at all


def _user_frame() -> types.FrameType | None:
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if _is_user_file(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


def _branch_scope(outcome: bool) -> tuple[types.FrameType, int, int] | Any | None:
    """Where a decision made in the user's ``if`` test holds (see :meth:`Recording.assume`):
    None = for the rest of the recording; (frame, first, last) = while that frame runs
    the lines of the branch taken; ``_NOWHERE`` = the branch taken is empty."""
    frame = _user_frame()
    if frame is None:
        return None
    func = _code_node(frame.f_code, frame.f_globals)
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
    taken, untaken = (found.body, found.orelse) if outcome != negate else (found.orelse, found.body)
    if untaken and _terminates(untaken):
        return None
    if not taken:
        return _NOWHERE
    last = max(stmt.end_lineno or stmt.lineno for stmt in taken)
    return frame, taken[0].lineno, last


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


def _active_clauses() -> tuple[_Clause, ...]:
    """The branch conditions that hold at this point; drop those whose block has ended."""
    clauses = _CLAUSES.get()
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
        _CLAUSES.set(tuple(kept))
    return tuple(kept)


def _reduce(deps: set[str], nodes: Mapping[str, Any]) -> tuple[str, ...]:
    """Drop dependencies implied by others (``x`` when ``y`` already waits for ``x``)."""
    if len(deps) <= 1:
        return tuple(deps)  # the common case: a straight run of steps

    def ancestors(tag: str) -> set[str]:
        seen: set[str] = set()
        stack = list(_node_deps(nodes[tag])) if tag in nodes else []
        while stack:
            item = stack.pop()
            if item not in seen:
                seen.add(item)
                if item in nodes:
                    stack.extend(_node_deps(nodes[item]))
        return seen

    implied: set[str] = set()
    for dep in deps:
        implied |= ancestors(dep)
    order = list(nodes)
    return tuple(sorted(deps - implied, key=lambda t: order.index(t) if t in order else 0))


def _node_deps(node: Any) -> tuple[str, ...] | set[str]:
    return node.deps  # type: ignore[no-any-return]


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _to_spec(value: Any, site: Site | None, where: str, depth: int) -> Any:
    if depth > 64:
        raise RecordingError(f"{where}: nested too deeply", site=site)
    if isinstance(value, Recorded):
        return value._r_text
    if isinstance(value, RecordedCondition):
        raise RecordingError(
            f"{where}: a comparison of recorded values cannot be stored as data; conditions only "
            "steer if/else (compute the flag inside a step function)",
            site=site,
        )
    if isinstance(value, PendingCall):
        raise RecordingError(f"{where}: {value.describe()} was not awaited", site=site)
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise RecordingError(f"{where}: a coroutine was not awaited (missing `await`?)", site=site)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordingError(f"{where}: {value} is not valid JSON", site=site)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, Recorded):
                raise RecordingError(f"{where}: a recorded value cannot be a key", site=site)
            if not isinstance(key, str):
                raise RecordingError(
                    f"{where}: key {key!r} is a {type(key).__name__}; JSON keys are strings",
                    site=site,
                )
            out[key] = _to_spec(item, site, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_to_spec(item, site, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    hint = ""
    if type(value).__name__ in {"datetime", "date", "time"}:
        hint = " (use ctx.transform.now() for the run's time, or .isoformat())"
    elif isinstance(value, set | frozenset):
        hint = " (use a list)"
    raise RecordingError(
        f"{where}: a {type(value).__name__} is not JSON-serialisable{hint}; step inputs, "
        "results and outputs must be dicts, lists, strings, numbers, booleans or None",
        site=site,
    )


# --- connector calls --------------------------------------------------------------------


@dataclass
class _Call:
    type: EventType
    event: str
    app: str | None
    input: dict[str, Any]
    options: dict[str, Any]
    tag: str | None
    auto_base: str
    label: str

    def as_event(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value, "event": self.event}
        if self.app is not None:
            out["app"] = self.app
        out["input"] = self.input
        out.update(self.options)
        return out


class PendingCall:
    """A connector call made in the handler: recorded when awaited (a step of its own) or,
    inside ``ctx.step``, as that step's event."""

    def __init__(self, rec: Recording, call: _Call, site: Site | None) -> None:
        self._rec = rec
        self._call = call
        self._site = site
        self._done = False
        self._frame = _STEP_FRAME.get()
        if self._frame is not None:
            self._frame.calls.append(self)
        else:
            rec.check_writable(f"call {call.label}", site)
            rec.unawaited[id(self)] = self

    def describe(self) -> str:
        return f"ctx.{self._call.label}(...)" + (f" at {self._site}" if self._site else "")

    def __await__(self) -> Generator[Any, None, Any]:
        return self._claim().__await__()

    async def _claim(self) -> Any:
        if self._done:
            raise RecordingError(f"{self.describe()} awaited twice", site=self._site)
        self._done = True
        if self._frame is not None:
            if self._frame.kind == "rollback":
                return None
            return self._rec.step_result(self._frame.tag)
        self._rec.unawaited.pop(id(self), None)
        rec = self._rec
        if self._call.tag is not None:
            tag = rec.concrete_text(self._call.tag, self._site, "step tag")
        else:
            tag = rec.auto_tag(self._call.auto_base)
        rec.record(tag, self._call.as_event(), site=self._site)
        return rec.step_result(tag)


SAME_AS_COMPONENT = "<component>"


@dataclass(frozen=True)
class CallShape:
    """How a ctx connector method maps onto an event: its type, which argument names the
    component (``app`` of the event) and where the event name comes from."""

    type: EventType
    component: str
    event_key: str | None = "event"
    fixed_event: str | None = None


CALL_SHAPES: dict[str, CallShape] = {
    "action.run": CallShape(EventType.ACTION, "app"),
    **{
        f"database.{m}": CallShape(EventType.DB_ACTION, "database")
        for m in ("insert", "query", "execute", "update", "delete")
    },
    **{
        f"graph.{m}": CallShape(EventType.GRAPH, "graph", None, m)
        for m in (
            "create_node",
            "update_node",
            "delete_node",
            "create_relationship",
            "delete_relationship",
        )
    },
    "graph.query": CallShape(EventType.GRAPH, "graph", "action"),
    "graph.execute": CallShape(EventType.GRAPH, "graph", "action"),
    **{
        f"notification.{m}": CallShape(EventType.NOTIFICATION, "notification")
        for m in ("email", "sms", "push", "send")
    },
    **{
        f"storage.{m}": CallShape(EventType.STORAGE, "storage")
        for m in ("upload", "download", "delete")
    },
    "messaging.produce": CallShape(EventType.PUBLISH, "broker"),
    # The seed names only the component: the event is the component itself (its quota /
    # its chain of providers).
    "quota.execute": CallShape(EventType.QUOTA, "quota", None, SAME_AS_COMPONENT),
    "fallback.execute": CallShape(EventType.FALLBACK, "fallback", None, SAME_AS_COMPONENT),
}
CONNECTOR_NAMESPACES = frozenset(label.split(".")[0] for label in CALL_SHAPES)
CALL_OPTION_KEYS = ("retries", "retry_delay", "timeout", "backoff")


@dataclass
class SplitCall:
    shape: CallShape
    app: Any
    event: Any
    tag: Any
    options: dict[str, Any]
    payload: dict[str, Any]


def split_call(label: str, spec: Any, kwargs: Mapping[str, Any]) -> SplitCall:
    """Separate a connector call's routing (component, event, tag, retries, timeout) from
    its input. Raises ValueError with a message for the user."""
    shape = CALL_SHAPES[label]
    if spec is not None and not isinstance(spec, Mapping):
        raise ValueError(
            f"ctx.{label} takes a dict or keyword arguments, not {type(spec).__name__}"
        )
    args = {_CAMEL.get(k, k): v for k, v in {**(spec or {}), **kwargs}.items()}
    if label == "messaging.produce" and "broker" not in args:
        event = args.get("event")
        if not isinstance(event, str) or ":" not in event:
            raise ValueError(
                "ctx.messaging.produce needs event='broker:topic' "
                "(e.g. 'order-events:order-created')"
            )
        args["broker"] = event.split(":", 1)[0]
    needed = [shape.component] + ([shape.event_key] if shape.event_key else [])
    for key in needed:
        if key not in args:
            raise ValueError(f"ctx.{label} needs {key!r}")
    app = args.pop(shape.component)
    event = args.pop(shape.event_key) if shape.event_key else shape.fixed_event
    if event == SAME_AS_COMPONENT:
        event = app
    tag = args.pop("tag", None)
    options = {key: args.pop(key) for key in CALL_OPTION_KEYS if key in args}
    data = args.pop("input", None)
    payload: dict[str, Any] = {}
    if data is not None:
        if not isinstance(data, Mapping):
            raise ValueError(f"ctx.{label}: input must be a dict")
        payload.update(data)
    payload.update(args)
    return SplitCall(shape, app, event, tag, options, payload)


class CallNamespace:
    """``ctx.action``, ``ctx.database``…: one method per ``CALL_SHAPES`` entry (camelCase
    aliases included), for recording and for live code steps alike; a subclass says what
    a call does (``_make``)."""

    def __init__(self, ctx: Any, name: str) -> None:
        self._ctx = ctx
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        label = f"{self._name}.{_SNAKE.get(method, method)}"
        if label not in CALL_SHAPES:
            raise AttributeError(f"ctx.{self._name} has no method {method!r}")

        def call(spec: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
            return self._make(label, spec, kwargs)

        call.__name__ = method
        return call

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class _Namespace(CallNamespace):
    """Recording: each method records one connector call."""

    _ctx: RecordingContext

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> PendingCall:
        site = user_site(3)
        rec = self._ctx._rec
        try:
            split = split_call(label, spec, kwargs)
        except ValueError as exc:
            raise RecordingError(str(exc), site=site) from None
        component = split.shape.component
        app = rec.concrete_text(split.app, site, f"ctx.{label} {component}")
        event = rec.concrete_text(split.event, site, f"ctx.{label} event")
        options = {k: _option(k, v, site, f"ctx.{label}") for k, v in split.options.items()}
        call = _Call(
            type=split.shape.type,
            event=event,
            app=app,
            input=rec.to_spec(split.payload, site, f"ctx.{label} input"),
            options=options,
            tag=split.tag,
            # Direct calls are named after what they do: the event, or for components
            # with one fixed operation (quota, fallback, graph nodes) the component.
            auto_base=(
                event.replace(":", "-")
                if split.shape.event_key
                else f"{app}-{event}".replace("_", "-")
                if split.shape.type is EventType.GRAPH
                else app
            ),
            label=label,
        )
        return PendingCall(rec, call, site)


# The seed's camelCase method names (graph), for pasted code.
_SNAKE = {
    "createNode": "create_node",
    "updateNode": "update_node",
    "deleteNode": "delete_node",
    "createRelationship": "create_relationship",
    "deleteRelationship": "delete_relationship",
}


def _option(key: str, value: Any, site: Site | None, label: str) -> Any:
    if isinstance(value, Recorded):
        raise RecordingError(f"{label}: {key} must be a fixed value, not {value}", site=site)
    if key in {"retries"}:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RecordingError(f"{label}: retries must be a whole number ≥ 0", site=site)
        return value
    if key in {"retry_delay", "timeout"}:
        if value is None:
            return None
        try:
            duration_ms(value)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"{label}: {key}: {exc}", site=site) from None
        return value
    if key in {"allow_fail", "critical"}:
        if not isinstance(value, bool):
            raise RecordingError(f"{label}: {key} must be True or False", site=site)
        return value
    if key == "backoff":
        if value not in {"fixed", "exponential"}:
            raise RecordingError(f"{label}: backoff must be 'fixed' or 'exponential'", site=site)
        return value
    return value


# --- transforms -------------------------------------------------------------------------


_EXPRESSION_IN_TEXT = re.compile(r"\$[A-Z][A-Za-z]*[{(]")


class _Transform:
    """Data transformations as expression operators (``$Uppercase(...)``), so they run on the
    real values; with plain Python values they are computed at once."""

    def __init__(self, ctx: RecordingContext) -> None:
        self._ctx = ctx

    def _op(self, name: str, *args: Any) -> Recorded:
        site = user_site(3)
        parts = []
        for arg in args:
            if isinstance(arg, Recorded):
                parts.append(arg._r_text)
            else:
                try:
                    parts.append(literal(arg))
                except ValueError:
                    raise RecordingError(
                        f"ctx.transform: cannot pass a {type(arg).__name__} to ${name}", site=site
                    ) from None
        return self._ctx._rec.expression(f"${name}({', '.join(parts)})")

    @staticmethod
    def _plain(*args: Any) -> bool:
        for arg in args:
            if isinstance(arg, Recorded | RecordedCondition):
                return False
            if isinstance(arg, str) and _EXPRESSION_IN_TEXT.search(arg):
                raise RecordingError(
                    f"ctx.transform got text holding a recorded value ({arg!r}); pass the "
                    "recorded value itself, or use ctx.transform.concat(...)",
                    site=user_site(3),
                )
        return True

    def upper(self, value: Any) -> Any:
        return value.upper() if self._plain(value) else self._op("Uppercase", value)

    def lower(self, value: Any) -> Any:
        return value.lower() if self._plain(value) else self._op("Lowercase", value)

    def trim(self, value: Any) -> Any:
        return value.strip() if self._plain(value) else self._op("Trim", value)

    def _json_step(self, op: str, value: Any) -> Recorded:
        # The expression language has no JSON operators: a tiny CODE step does the work
        # at run time (tagged parse-json, stringify, ...), and its result is the value.
        site = user_site(3)
        rec = self._ctx._rec
        rec.check_writable(f"ctx.transform.{op}", site)
        payload = {"op": op, "value": rec.to_spec(value, site, f"ctx.transform.{op}")}
        event = {"type": EventType.CODE.value, "event": TRANSFORM_EVENT, "input": payload}
        tag = rec.auto_tag(op.replace("_", "-"))
        rec.record(tag, event, site=site)
        return rec.ref("Step", (tag,), "value")

    def parse_json(self, value: Any) -> Any:
        return json.loads(value) if self._plain(value) else self._json_step("parse_json", value)

    def stringify(self, value: Any) -> Any:
        if not contains_recorded(value):
            return json.dumps(value)
        return self._json_step("stringify", value)

    def now(self) -> Recorded:
        return self._ctx._rec.expression("$Now")

    def format_date(self, value: Any, fmt: str) -> Recorded:
        return self._op("Dateformat", value, fmt)

    def length(self, value: Any) -> Any:
        return len(value) if self._plain(value) else self._op("Length", value)

    def size(self, value: Any) -> Any:
        return len(value) if self._plain(value) else self._op("Size", value)

    def split(self, value: Any, separator: str) -> Any:
        return value.split(separator) if self._plain(value) else self._op("Split", value, separator)

    def join(self, value: Any, separator: str) -> Any:
        return separator.join(value) if self._plain(value) else self._op("Join", value, separator)

    def concat(self, *values: Any) -> Any:
        if self._plain(*values):
            return "".join(str(v) for v in values)
        return self._op("Concat", *values)

    def add(self, a: Any, b: Any) -> Any:
        return a + b if self._plain(a, b) else self._op("Add", a, b)

    def subtract(self, a: Any, b: Any) -> Any:
        return a - b if self._plain(a, b) else self._op("Subtract", a, b)

    def substring(self, value: Any, start: int, length: int | None = None) -> Any:
        """``$Substring(text, start, length?)``: ``length`` characters from ``start``."""
        if self._plain(value):
            return value[start:] if length is None else value[start : start + max(length, 0)]
        return self._op("Substring", value, start, *(() if length is None else (length,)))

    parseJson = parse_json
    formatDate = format_date


class LogLevels:
    """``ctx.log``'s levels, for recording and for live code steps alike: a subclass says
    what ``_log`` does with a line."""

    def _log(self, level: str, message: Any, data: Any = None) -> None:
        raise NotImplementedError

    def debug(self, message: Any, data: Any = None) -> None:
        self._log("debug", message, data)

    def info(self, message: Any, data: Any = None) -> None:
        self._log("info", message, data)

    def warn(self, message: Any, data: Any = None) -> None:
        self._log("warning", message, data)

    warning = warn

    def error(self, message: Any, data: Any = None) -> None:
        self._log("error", message, data)


class _Log(LogLevels):
    """``ctx.log.info(message, data)``: journaled at run time as a ``log`` entry (a small
    CODE event ``log``, ``log-2``… in the spec)."""

    def __init__(self, ctx: RecordingContext) -> None:
        self._ctx = ctx

    def _log(self, level: str, message: Any, data: Any = None) -> None:
        site = user_site(3)
        rec = self._ctx._rec
        if _STEP_FRAME.get() is not None:
            return  # inside a connector step function: logged by the step itself at run time
        rec.check_writable("log", site)
        payload: dict[str, Any] = {"level": level, "message": rec.to_spec(message, site, "log")}
        if data is not None:
            payload["data"] = rec.to_spec(data, site, "log data")
        event = {"type": EventType.CODE.value, "event": LOG_EVENT, "input": payload}
        rec.record(rec.auto_tag("log"), event, site=site)


class _Steps:
    def __init__(self, ctx: RecordingContext) -> None:
        self._ctx = ctx

    def __getitem__(self, tag: str) -> Recorded:
        return self._ctx._rec.step_result(tag)

    def __getattr__(self, tag: str) -> Recorded:
        if tag.startswith("__"):
            raise AttributeError(tag)
        return self[tag]


# --- the recording ctx -------------------------------------------------------------------


class RecordingContext:
    """The ``ctx`` a handler gets at define time. Same surface as the run-time ctx."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec
        self.input: Any = rec.input_root()
        self.action = _Namespace(self, "action")
        self.database = _Namespace(self, "database")
        self.graph = _Namespace(self, "graph")
        self.notification = _Namespace(self, "notification")
        self.storage = _Namespace(self, "storage")
        self.messaging = _Namespace(self, "messaging")
        self.quota = _Namespace(self, "quota")
        self.fallback = _Namespace(self, "fallback")
        self.transform = _Transform(self)
        self.log = _Log(self)
        self.steps = _Steps(self)

    # run info -------------------------------------------------------------------------------
    @property
    def workflow_id(self) -> Any:
        return self._rec.ref("Run", (), "id")

    run_id = workflow_id

    @property
    def completed_steps(self) -> Any:
        return self._rec.ref("Run", (), "completed_steps")

    @property
    def current_step(self) -> Any:
        return self._rec.ref("Run", (), "current_step")

    @property
    def state(self) -> Any:
        """The run state as known so far: ``{key: $State{key}}`` for every key set before
        this line (the language has no whole-state reference)."""
        return {key: self._rec.ref("State", (), key) for key in self._rec.state_keys}

    def get_state(self, key: str, default: Any = MISSING) -> Any:
        value = self._rec.ref("State", (), key)
        return value if default is MISSING else self.default(value, default)

    def variable(self, app: str, key: str) -> Any:
        return self._rec.ref("Variable", (app,), key)

    def constant(self, app: str, key: str) -> Any:
        return self._rec.ref("Constant", (app,), key)

    def secret(self, key: str) -> Any:
        return self._rec.ref("Secret", (), key)

    def default(self, value: Any, fallback: Any) -> Any:
        """``$Default(value, fallback)``: the fallback when the value is missing or null."""
        if not isinstance(value, Recorded):
            return fallback if value is None else value
        site = user_site(2)
        if isinstance(fallback, Recorded):
            fb = fallback._r_text
        else:
            try:
                fb = literal(fallback)
            except ValueError:
                raise RecordingError(
                    f"ctx.default: the fallback must be a scalar or a recorded value, not "
                    f"{type(fallback).__name__}",
                    site=site,
                ) from None
        sample = value._r_sample if value._r_sample is not MISSING else MISSING
        return Recorded(
            self._rec,
            f"$Default({value._r_text}, {fb})",
            sample=sample,
            origin=value._r_origin if sample is not MISSING else None,
        )

    # steps ------------------------------------------------------------------------------------
    def step(
        self,
        tag: Any,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """Record a step. ``fn`` is one connector call (the step becomes that event) or
        any Python (a CODE event that runs ``fn`` for real in the worker)."""
        site = user_site(2)
        return self._deferred(
            f"ctx.step({tag!r}, ...)",
            site,
            lambda: self._step(tag, fn, rollback, options, kwargs, site),
        )

    def _deferred(
        self, label: str, site: Site | None, make: Callable[[], Coroutine[Any, Any, Any]]
    ) -> Coroutine[Any, Any, Any]:
        """A coroutine that records when awaited; one never awaited is reported."""
        rec = self._rec
        key = object()

        async def run() -> Any:
            rec.unstarted.pop(id(key), None)
            return await make()

        coro = run()
        rec.unstarted[id(key)] = (label, site, coro, key)
        return coro

    async def _step(
        self,
        tag: Any,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None,
        options: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
        site: Site | None,
    ) -> Any:
        rec = self._rec
        rec.check_writable("run a step", site)
        tag = rec.concrete_text(tag, site, "step tag")
        if not callable(fn):
            raise RecordingError(f"ctx.step({tag!r}, fn): fn must be a function", site=site)
        if rollback is not None and not callable(rollback):
            raise RecordingError(f"ctx.step({tag!r}): rollback must be a function", site=site)
        opts = _step_options(options, kwargs, site, tag)
        condition = opts.pop("condition", None)
        description = opts.pop("description", None)
        rec.check_tag(tag, site)
        event = await self._step_event(tag, fn, site, kind="step")
        if rollback is not None:
            event["rollback"] = await self._step_event(tag, rollback, site, kind="rollback")
        event.update(opts)
        if description:
            event["description"] = description
        rec.record(tag, event, site=site, condition=condition)
        return rec.step_result(tag)

    async def _step_event(
        self, tag: str, fn: Callable[..., Any], site: Site | None, *, kind: str
    ) -> dict[str, Any]:
        rec = self._rec
        ctx_position = _ctx_position(fn, kind)
        if _connector_shaped(fn, self, ctx_position):
            frame = _StepFrame(tag, kind)
            token = _STEP_FRAME.set(frame)
            try:
                args = _step_args(fn, kind, self, rec.step_result(tag))
                out = fn(*args)
                while inspect.isawaitable(out):
                    out = await out
            except RecordingError:
                raise
            except Exception as exc:
                raise RecordingError(
                    f"the {kind} function of step {tag!r} raised {type(exc).__name__}: {exc}",
                    site=_traceback_site(exc.__traceback__) or site,
                ) from exc
            finally:
                _STEP_FRAME.reset(token)
            if len(frame.calls) == 1:
                call = frame.calls[0]
                if not call._done:
                    raise RecordingError(f"{call.describe()} was not awaited", site=call._site)
                event = call._call.as_event()
                if kind == "rollback":
                    event.pop("backoff", None)  # a rollback retries at a fixed pace
                return event
            # fall through: not exactly one call after all → run it as code
        _check_returns_json(fn, tag, site)
        code = rec.code_steps.setdefault(tag, CodeStep())
        if kind == "rollback":
            code.rollback = fn
        else:
            code.fn = fn
        payload: dict[str, Any] = {"workflow": rec.workflow, "module": rec.module, "step": tag}
        refs = closure_refs(fn, self, site)
        if refs:
            payload["refs"] = refs
        live = _live_needs(fn)
        if live:
            payload["ctx"] = live
        if kind == "rollback":
            payload["rollback"] = True
            payload["result"] = ref_text("Step", (tag,), "")
        return {"type": EventType.CODE.value, "event": CODE_STEP_EVENT, "input": payload}

    # control flow ---------------------------------------------------------------------------
    def _control(
        self, tag: str, event: dict[str, Any], site: Site | None, what: str
    ) -> Coroutine[Any, Any, Any]:
        async def control() -> Recorded:
            self._rec.check_writable(what, site)
            self._rec.record(tag, event, site=site)
            return self._rec.step_result(tag)

        label = {
            "sleep": "ctx.sleep(...)",
            "wait for a signal": "ctx.wait_for_signal(...)",
            "save a checkpoint": "ctx.checkpoint(...)",
            "trigger a rollback": "ctx.trigger_rollback(...)",
            "start a child workflow": "ctx.workflow(...)",
        }.get(what, what)
        return self._deferred(label, site, control)

    def sleep(self, duration: int | str, *, tag: str | None = None) -> Coroutine[Any, Any, Any]:
        """Park the run for ``duration`` (ms, or '5s', '5m', '1h', '1d')."""
        site = user_site(2)
        if isinstance(duration, Recorded) or isinstance(duration, bool):
            raise RecordingError("ctx.sleep needs a fixed duration", site=site)
        try:
            duration_ms(duration)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"ctx.sleep: {exc}", site=site) from None
        step_tag = self._rec.concrete_text(tag, site, "tag") if tag else self._rec.auto_tag("sleep")
        event = {"type": EventType.SLEEP.value, "event": "sleep", "input": {"duration": duration}}
        return self._control(step_tag, event, site, "sleep")

    def wait_for_signal(
        self,
        name: str | list[str],
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
        tag: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Park the run until one of the named signals arrives; its payload is the result."""
        site = user_site(2)
        rec = self._rec
        opts = dict(options or {})
        unknown = set(opts) - {"timeout", "tag"}
        if unknown:
            raise RecordingError(
                f"ctx.wait_for_signal: unknown option {sorted(unknown)[0]!r}", site=site
            )
        timeout = opts.get("timeout", timeout)
        tag = opts.get("tag", tag)
        names = [name] if isinstance(name, str) else list(name)
        if not names or not all(isinstance(n, str) for n in names):
            raise RecordingError(
                "ctx.wait_for_signal needs a signal name or a list of names", site=site
            )
        for signal in names:
            if rec.signals is not None and signal not in rec.signals:
                declared = ", ".join(sorted(rec.signals)) or "none"
                raise RecordingError(
                    f"signal {signal!r} is not declared; add it to signals={{'{signal}': "
                    f"{{'input': {{...}}}}}} (declared: {declared})",
                    site=site,
                )
        if timeout is not None:
            try:
                duration_ms(timeout)
            except (ValueError, TypeError) as exc:
                raise RecordingError(f"ctx.wait_for_signal: timeout: {exc}", site=site) from None
        step_tag = (
            rec.concrete_text(tag, site, "tag") if tag else rec.auto_tag("wait-" + "-".join(names))
        )
        payload: dict[str, Any] = {"signals": names}
        if timeout is not None:
            payload["timeout"] = timeout
        event = {"type": EventType.WAIT_SIGNAL.value, "event": ",".join(names), "input": payload}
        return self._control(step_tag, event, site, "wait for a signal")

    def checkpoint(self, name: str, data: Any = None) -> Coroutine[Any, Any, Any]:
        """Save a named recovery point (``to_checkpoint`` rollbacks stop here)."""
        site = user_site(2)
        rec = self._rec
        name = rec.concrete_text(name, site, "checkpoint name")
        payload: dict[str, Any] = {"name": name}
        if data is not None:
            payload["data"] = rec.to_spec(data, site, "checkpoint data")
        event = {"type": EventType.CHECKPOINT.value, "event": name, "input": payload}
        return self._control(name, event, site, "save a checkpoint")

    def trigger_rollback(self, reason: Any = "") -> Coroutine[Any, Any, Any]:
        """Compensate the completed steps now (per the rollback strategy) and fail the run."""
        site = user_site(2)
        rec = self._rec
        payload = {"reason": rec.to_spec(reason, site, "rollback reason")}
        event = {"type": EventType.ROLLBACK.value, "event": "rollback", "input": payload}
        return self._control(rec.auto_tag("rollback"), event, site, "trigger a rollback")

    def workflow(
        self,
        child_id: Any,
        tag: str,
        input: Any = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """Run workflow ``tag`` of this product as a child run; its output is the result."""
        site = user_site(2)
        rec = self._rec
        opts = {_CAMEL.get(k, k): v for k, v in {**(options or {}), **kwargs}.items()}
        unknown = set(opts) - {"timeout", "retries", "retry_delay", "parent_close_policy", "tag"}
        if unknown:
            raise RecordingError(f"ctx.workflow: unknown option {sorted(unknown)[0]!r}", site=site)
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            raise RecordingError(f"ctx.workflow: invalid workflow tag {tag!r}", site=site)
        policy = opts.pop("parent_close_policy", None)
        if policy is not None and policy not in {"terminate", "abandon", "request_cancel"}:
            raise RecordingError(
                "ctx.workflow: parent_close_policy must be terminate, abandon or request_cancel",
                site=site,
            )
        step_tag = opts.pop("tag", None)
        if step_tag is None:
            concrete = isinstance(child_id, str) and "$" not in child_id and TAG_RE.match(child_id)
            step_tag = child_id if concrete else rec.auto_tag(f"child-{tag}")
        else:
            step_tag = rec.concrete_text(step_tag, site, "tag")
        payload: dict[str, Any] = {
            "child_id": rec.to_spec(child_id, site, "child id"),
            "input": rec.to_spec(input if input is not None else {}, site, "child input"),
        }
        if policy:
            payload["parent_close_policy"] = policy
        event: dict[str, Any] = {"type": EventType.FEATURE.value, "event": tag, "input": payload}
        for key, value in opts.items():
            event[key] = _option(key, value, site, "ctx.workflow")
        return self._control(step_tag, event, site, "start a child workflow")

    def set_state(self, key: str, value: Any) -> None:
        """Set run state ``key`` (a SET_STATE event); read it back with ``get_state``."""
        site = user_site(2)
        rec = self._rec
        rec.check_writable("set state", site)
        if not isinstance(key, str) or not key:
            raise RecordingError("ctx.set_state needs a string key", site=site)
        payload = {key: rec.to_spec(value, site, f"state {key!r}")}
        event = {"type": EventType.SET_STATE.value, "event": "set_state", "input": payload}
        rec.record(rec.auto_tag(f"set-{key}"), event, site=site)
        rec.state_keys.setdefault(key, None)

    # The seed's camelCase names, for pasted code.
    waitForSignal = wait_for_signal
    triggerRollback = trigger_rollback
    setState = set_state
    getState = get_state


def _step_options(
    options: Mapping[str, Any] | None, kwargs: Mapping[str, Any], site: Site | None, tag: str
) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise RecordingError(f"ctx.step({tag!r}): options must be a dict", site=site)
    merged = {_CAMEL.get(k, k): v for k, v in {**(options or {}), **kwargs}.items()}
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key in STEP_OPTION_KEYS:
            out[key] = _option(key, value, site, f"ctx.step({tag!r})")
        elif key in {"condition", "description"}:
            if value is not None and not isinstance(value, str):
                raise RecordingError(f"ctx.step({tag!r}): {key} must be a string", site=site)
            out[key] = value
        else:
            allowed = ", ".join((*STEP_OPTION_KEYS, "condition", "description"))
            raise RecordingError(
                f"ctx.step({tag!r}): unknown option {key!r} (allowed: {allowed})", site=site
            )
    return out


# --- step functions: connector call or code? ---------------------------------------------


def _ctx_position(fn: Callable[..., Any], kind: str) -> int | None:
    """Which positional parameter receives ctx: step fns take () or (ctx); rollback fns
    take (), (result) or (result, ctx)."""
    count = _positional_count(fn)
    if kind == "step":
        return 0 if count >= 1 else None
    return 1 if count >= 2 else None


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(
        1
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def _step_args(fn: Callable[..., Any], kind: str, ctx: Any, result: Any) -> tuple[Any, ...]:
    count = _positional_count(fn)
    if kind == "step":
        return (ctx,) if count >= 1 else ()
    return (result, ctx)[: min(count, 2)]


_AST_CACHE: dict[str, tuple[str, dict[tuple[str, int], list[Any]]]] = {}
_AST_LOCK = threading.Lock()


def _function_node(fn: Callable[..., Any]) -> ast.AST | None:
    """The AST of ``fn`` (a def or a lambda) found in its module's source."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return _code_node(code, getattr(fn, "__globals__", None))


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


def _index_functions(tree: ast.Module) -> dict[tuple[str, int], list[_FunctionNode]]:
    """Every def and lambda of a module by (name, first line) — what a code object knows."""
    index: dict[tuple[str, int], list[_FunctionNode]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            key = ("<lambda>", node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            key = (node.name, min([node.lineno, *(d.lineno for d in node.decorator_list)]))
        else:
            continue
        index.setdefault(key, []).append(node)
    return index


def _code_node(code: types.CodeType, module_globals: Any) -> ast.AST | None:
    filename = code.co_filename
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    source = "".join(lines)
    with _AST_LOCK:
        cached = _AST_CACHE.get(filename)
        if cached is None or cached[0] != source:
            try:
                index = _index_functions(ast.parse(source))
            except SyntaxError:
                index = {}
            _AST_CACHE[filename] = (source, index)
        else:
            index = cached[1]
    candidates = index.get((code.co_name, code.co_firstlineno), [])
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    # Several on one line (lambdas): the real source spans of the function's instructions
    # pick the innermost one holding them (RESUME and friends have empty spans).
    positions = [
        (line, col)
        for line, end_line, col, end_col in code.co_positions()
        if line is not None
        and col is not None
        and end_col is not None
        and ((end_line or line) > line or end_col > col)
    ]
    best: ast.AST | None = None
    best_span = None
    for node in candidates:
        start = (node.lineno, node.col_offset)
        end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
        if positions and not all(start <= p <= end for p in positions):
            continue
        span = (end[0] - start[0], end[1] - start[1])
        if best_span is None or span < best_span:
            best, best_span = node, span
    return best


def _connector_shaped(
    fn: Callable[..., Any], ctx: RecordingContext, ctx_position: int | None
) -> bool:
    """True when ``fn``'s body is exactly one ``ctx.<connector>.<method>(...)`` call
    (returned, awaited or both) — then running it at define time only records that call."""
    node = _function_node(fn)
    if node is None:
        return False
    expr: ast.expr | None
    if isinstance(node, ast.Lambda):
        expr = node.body
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        body = list(node.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]
        if len(body) != 1:
            return False
        stmt = body[0]
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            expr = stmt.value
        elif isinstance(stmt, ast.Expr):
            expr = stmt.value
        else:
            return False
    else:
        return False
    if isinstance(expr, ast.Await):
        expr = expr.value
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and isinstance(func.value.value, ast.Name)
        and func.value.attr in CONNECTOR_NAMESPACES
    ):
        return False
    return _name_is_ctx(fn, func.value.value.id, ctx, ctx_position)


def _name_is_ctx(fn: Callable[..., Any], name: str, ctx: Any, ctx_position: int | None) -> bool:
    code = fn.__code__  # type: ignore[attr-defined]
    params = code.co_varnames[: code.co_argcount]
    if name in params:
        return ctx_position is not None and params.index(name) == ctx_position
    if name in code.co_freevars:
        closure = fn.__closure__ or ()  # type: ignore[attr-defined]
        cell = closure[code.co_freevars.index(name)]
        try:
            return cell.cell_contents is ctx  # type: ignore[no-any-return]
        except ValueError:
            return False
    return getattr(fn, "__globals__", {}).get(name) is ctx


_NOT_JSON_CALLS = frozenset({"set", "frozenset", "object", "bytes", "bytearray", "iter", "open"})


def _check_returns_json(fn: Callable[..., Any], tag: str, site: Site | None) -> None:
    """Refuse at define time a step function that visibly returns something that is not
    JSON (a set, a generator, a function...): its result could never be stored."""
    node = _function_node(fn)
    if node is None:
        return
    returned: list[ast.expr] = []
    if isinstance(node, ast.Lambda):
        returned.append(node.body)
    else:
        stack: list[ast.AST] = list(getattr(node, "body", []))
        while stack:
            item = stack.pop()
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                continue
            if isinstance(item, ast.Return) and item.value is not None:
                returned.append(item.value)
            stack.extend(ast.iter_child_nodes(item))
    for expr in returned:
        what = None
        if isinstance(expr, ast.Set | ast.SetComp):
            what = "a set"
        elif isinstance(expr, ast.GeneratorExp):
            what = "a generator"
        elif isinstance(expr, ast.Lambda):
            what = "a function"
        elif (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id in _NOT_JSON_CALLS
        ):
            what = f"a {expr.func.id}"
        if what:
            code = fn.__code__  # type: ignore[attr-defined]
            where = Site(code.co_filename, expr.lineno, code.co_name)
            raise RecordingError(
                f"step {tag!r} returns {what}, which is not JSON-serialisable: a step result "
                "is stored in the journal and must be a dict, list, string, number, boolean "
                "or None",
                site=where,
            )


# What a code step's function reads from ctx decides what its CODE event carries as
# references ("ctx" in its input): the engine resolves them, the live ctx serves them.
_LIVE_INPUT = frozenset({"input"})
_LIVE_STEPS = frozenset({"steps"})
_LIVE_STATE = frozenset({"state", "get_state", "getState"})
_LIVE_RUN = frozenset({"completed_steps", "current_step", "workflow_id", "run_id"})
ALL_STEPS = "*"  # placeholder, filled with the step's ancestors once the DAG is known


def _live_needs(fn: Callable[..., Any]) -> dict[str, Any]:
    node = _function_node(fn)
    if node is None:
        names: set[str] = set(_LIVE_INPUT | _LIVE_STEPS | _LIVE_STATE | _LIVE_RUN)
    else:
        names = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    needs: dict[str, Any] = {}
    if names & _LIVE_INPUT:
        needs["input"] = "$Input"
    if names & _LIVE_STEPS:
        needs["steps"] = ALL_STEPS
    if names & _LIVE_STATE:
        needs["state"] = ALL_STEPS
    if names & _LIVE_RUN:
        needs["run"] = {
            "id": "$Run{id}",
            "completed_steps": "$Run{completed_steps}",
            "current_step": "$Run{current_step}",
        }
    # ctx.variable('app', 'key') / ctx.constant(...) with literal names: resolved by the
    # engine like any $Variable, so the step function never queries configuration itself.
    for call in ast.walk(node) if node is not None else ():
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in {"variable", "constant"}
            and len(call.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
        ):
            app, key = (a.value for a in call.args)  # type: ignore[attr-defined]
            kind = "Variable" if call.func.attr == "variable" else "Constant"
            table = needs.setdefault(f"{call.func.attr}s", {}).setdefault(app, {})
            table[key] = ref_text(kind, (app,), key)
    return needs


def closure_refs(fn: Callable[..., Any], ctx: Any, site: Site | None) -> dict[str, Any]:
    """Recorded values a code step captured (closure cells, default arguments), as
    expressions the engine resolves; the worker puts the real values back in their place."""
    refs: dict[str, Any] = {}
    _collect_refs(fn, ctx, site, "", refs, set())
    return refs


def _collect_refs(
    fn: Any, ctx: Any, site: Site | None, prefix: str, refs: dict[str, Any], seen: set[int]
) -> None:
    if id(fn) in seen or not isinstance(fn, types.FunctionType):
        return
    seen.add(id(fn))
    rec: Recording = ctx._rec
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if value is ctx:
            continue
        if isinstance(value, types.FunctionType):
            _collect_refs(value, ctx, site, f"{prefix}{name}.", refs, seen)
        elif contains_recorded(value):
            refs[prefix + name] = rec.to_spec(value, site, f"captured variable {name!r}")
    for index, value in enumerate(fn.__defaults__ or ()):
        if contains_recorded(value):
            refs[f"{prefix}#{index}"] = rec.to_spec(value, site, "default argument")
    for key, value in (fn.__kwdefaults__ or {}).items():
        if contains_recorded(value):
            refs[f"{prefix}#{key}"] = rec.to_spec(value, site, f"default argument {key!r}")


# --- running a handler under the recorder -------------------------------------------------


@dataclass
class RecordingResult:
    nodes: dict[str, Node]
    output: Any
    code_steps: dict[str, CodeStep]
    input_paths: set[str]
    used_overrides: set[str]
    state_keys: list[str] = field(default_factory=list)


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    """Track which task forked which, so the step after ``gather`` joins every branch."""
    rec = _REC.get()
    if rec is None:
        return asyncio.Task(coro, loop=loop, **kwargs)
    parent = asyncio.current_task(loop)
    info = _TaskInfo()
    rec.children.setdefault(parent, []).append(info)

    async def tracked() -> Any:
        try:
            return await coro
        finally:
            final = set(_FRONTIER.get())
            me = asyncio.current_task()
            for child in rec.children.pop(me, []):
                if child.done:
                    final |= child.final
            info.final = frozenset(final)
            info.done = True

    return asyncio.Task(tracked(), loop=loop, **kwargs)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a recording in a private event loop (in a thread when one is already running)."""

    def go() -> Any:
        loop = asyncio.new_event_loop()
        loop.set_task_factory(_task_factory)  # type: ignore[arg-type]
        try:
            result = loop.run_until_complete(factory())
            left = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if left:
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                raise RecordingError(
                    "the handler returned while a task it started was still running; await "
                    "it (e.g. with asyncio.gather) so its steps are part of the workflow"
                )
            return result
        finally:
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def in_thread() -> None:
        try:
            box["value"] = context.run(go)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=in_thread, name="trellis-recorder")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def record_handler(
    handler: Callable[..., Any],
    *,
    workflow: str,
    module: str,
    overrides: Mapping[str, Any],
    sample_input: Mapping[str, Any],
    scenario: Mapping[str, Any] | None,
    signals: frozenset[str] | None,
    site: Site | None,
) -> RecordingResult:
    """Run ``handler(ctx)`` once under the recorder."""
    rec = Recording(
        workflow=workflow,
        module=module,
        overrides=overrides,
        sample_input=sample_input,
        scenario=scenario,
        signals=signals,
    )
    ctx = RecordingContext(rec)

    async def main() -> Any:
        _REC.set(rec)
        _FRONTIER.set(frozenset())
        _CLAUSES.set(())
        _STEP_FRAME.set(None)
        out = handler(ctx)
        while inspect.isawaitable(out):
            out = await out
        return out

    try:
        output = run_coroutine(main)
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(
            f"the handler raised {type(exc).__name__} while recording: {exc}",
            site=_traceback_site(exc.__traceback__) or site,
        ) from exc
    for pending in rec.unawaited.values():
        raise RecordingError(f"{pending.describe()} was never awaited", site=pending._site)
    for label, where, coro, _ in list(rec.unstarted.values()):
        coro.close()
        raise RecordingError(f"{label} was never awaited (missing `await`?)", site=where)
    spec_output = rec.to_spec(output, _handler_site(handler) or site, "the handler's return value")
    return RecordingResult(
        nodes=rec.nodes,
        output=spec_output,
        code_steps=rec.code_steps,
        input_paths=rec.input_paths,
        used_overrides=rec.used_overrides,
        state_keys=list(rec.state_keys),
    )


def record_query(
    handler: Callable[..., Any], *, name: str, workflow: str, module: str, site: Site | None
) -> Any:
    """Record a query handler (read-only) into its output mapping."""
    rec = Recording(
        workflow=workflow,
        module=module,
        overrides={},
        sample_input={},
        scenario=None,
        signals=None,
        read_only=f"query {name!r} is read-only and",
    )
    ctx = RecordingContext(rec)
    token = _REC.set(rec)
    try:
        out = handler(ctx)
        if inspect.isawaitable(out):
            if inspect.iscoroutine(out):
                out.close()
            raise RecordingError(f"query {name!r}: the handler must be a plain function", site=site)
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(
            f"query {name!r} raised {type(exc).__name__}: {exc}",
            site=_traceback_site(exc.__traceback__) or site,
        ) from exc
    finally:
        _REC.reset(token)
    return rec.to_spec(out, _handler_site(handler) or site, f"query {name!r}")


def _handler_site(handler: Callable[..., Any]) -> Site | None:
    code = getattr(handler, "__code__", None)
    if code is None:
        return None
    return Site(code.co_filename, code.co_firstlineno, code.co_name)


# --- from recorded nodes to sequences --------------------------------------------------


def scenario_condition(scenario: Mapping[str, Any], site: Site | None) -> str:
    """``{type: 'a'}`` → ``$Input{type} == 'a'`` (several keys joined with ``&&``)."""
    clauses: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
            return
        try:
            clauses.append(f"{ref_text('Input', (), path)} == {literal(value)}")
        except ValueError:
            raise RecordingError(
                f"record_scenarios: {path} must be a string, number, boolean or null "
                f"(got {type(value).__name__})",
                site=site,
            ) from None

    walk(scenario, "")
    if not clauses:
        raise RecordingError("record_scenarios: a scenario cannot be empty", site=site)
    return " && ".join(clauses)


def _group(clause: str) -> str:
    return f"({clause})" if ("&&" in clause or "||" in clause) else clause


@dataclass
class _Merged:
    tag: str
    event: dict[str, Any]
    deps: set[str]
    alternatives: list[str | None]
    site: Site | None
    order: int


def build_sequences(
    recordings: list[tuple[RecordingResult, str | None]], *, site: Site | None
) -> list[dict[str, Any]]:
    """Merge recordings (one per scenario, with its condition) into spec sequences."""
    merged: dict[str, _Merged] = {}
    for result, scenario_clause in recordings:
        for node in result.nodes.values():
            parts = ([scenario_clause] if scenario_clause else []) + list(node.clauses)
            clause = " && ".join(f"({p})" if "||" in p else p for p in parts) or None
            existing = merged.get(node.tag)
            if existing is None:
                merged[node.tag] = _Merged(
                    node.tag, node.event, set(node.deps), [clause], node.site, len(merged)
                )
                continue
            if existing.event != node.event:
                raise RecordingError(
                    f"step {node.tag!r} is recorded differently in two scenarios (first at "
                    f"{existing.site}); give each variant its own tag",
                    site=node.site,
                )
            existing.deps |= set(node.deps)
            if clause not in existing.alternatives:
                existing.alternatives.append(clause)
    for item in merged.values():
        item.deps = set(_reduce(item.deps, merged))  # type: ignore[arg-type]
    _check_acyclic(merged)
    state_keys = list(dict.fromkeys(k for result, _ in recordings for k in result.state_keys))
    for item in merged.values():
        if _wants_live(item.event):
            item.event = _fill_live(item.event, item.tag, _ancestors(item.tag, merged), state_keys)
    return _chains(merged)


def _wants_live(event: Mapping[str, Any]) -> bool:
    def has(data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("ctx"), Mapping)

    rollback = event.get("rollback")
    return has(event.get("input")) or (isinstance(rollback, Mapping) and has(rollback.get("input")))


def _ancestors(tag: str, merged: Mapping[str, _Merged]) -> list[str]:
    seen: set[str] = set()
    stack = list(merged[tag].deps)
    while stack:
        item = stack.pop()
        if item not in seen:
            seen.add(item)
            stack.extend(merged[item].deps)
    return sorted(seen, key=lambda t: merged[t].order)


def _fill_live(
    event: dict[str, Any], tag: str, ancestors: list[str], state_keys: list[str]
) -> dict[str, Any]:
    """Replace the ``ctx`` placeholders of a code step (and its rollback) with the steps
    guaranteed to have run before it and the state keys the workflow sets."""

    def fill(data: Any, own: str | None) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("ctx"), Mapping):
            return data
        live = dict(data["ctx"])
        if live.get("steps") == ALL_STEPS:
            tags = [*ancestors, *([own] if own else [])]
            live["steps"] = {t: ref_text("Step", (t,), "") for t in tags}
        if live.get("state") == ALL_STEPS:
            live["state"] = {k: ref_text("State", (), k) for k in state_keys}
        return {**data, "ctx": live}

    out = {**event, "input": fill(event.get("input"), None)}
    if isinstance(event.get("rollback"), Mapping):
        rollback = dict(event["rollback"])
        rollback["input"] = fill(rollback.get("input"), tag)
        out["rollback"] = rollback
    return out


def _check_acyclic(merged: Mapping[str, _Merged]) -> None:
    state: dict[str, int] = {}

    def visit(tag: str, path: list[str]) -> None:
        if state.get(tag) == 2:
            return
        if state.get(tag) == 1:
            cycle = [*path[path.index(tag) :], tag]
            raise RecordingError(
                "steps run in a different order in different scenarios: "
                + " → ".join(cycle)
                + "; keep one order or give the steps different tags",
                site=merged[tag].site,
            )
        state[tag] = 1
        for dep in merged[tag].deps:
            if dep in merged:
                visit(dep, [*path, tag])
        state[tag] = 2

    for tag in merged:
        visit(tag, [])


def _condition(alternatives: list[str | None]) -> str | None:
    if any(a is None for a in alternatives):
        return None
    unique = [a for a in dict.fromkeys(alternatives) if a]
    if len(unique) == 1:
        return unique[0]
    return " || ".join(_group(a) for a in unique)


def _chains(merged: Mapping[str, _Merged]) -> list[dict[str, Any]]:
    successors: dict[str, list[str]] = {tag: [] for tag in merged}
    for item in merged.values():
        for dep in item.deps:
            successors[dep].append(item.tag)
    sequence_of: dict[str, str] = {}
    sequences: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    used_names: set[str] = set()
    # Kahn's algorithm, recorded order breaking ties: a chain continues while a node has
    # exactly one predecessor whose only successor it is.
    remaining = {tag: len(item.deps) for tag, item in merged.items()}
    ready = sorted((t for t, n in remaining.items() if n == 0), key=lambda t: merged[t].order)
    while ready:
        tag = ready.pop(0)
        item = merged[tag]
        deps = sorted(item.deps, key=lambda t: merged[t].order)
        continues = len(deps) == 1 and len(successors[deps[0]]) == 1
        if continues:
            seq_tag = sequence_of[deps[0]]
        else:
            seq_tag = _sequence_name(tag, not sequences, used_names)
            parents = list(dict.fromkeys(sequence_of[d] for d in deps))
            sequences[seq_tag] = {"tag": seq_tag, "parents": parents, "events": []}
            order.append(seq_tag)
        sequence_of[tag] = seq_tag
        event = {"tag": tag, **item.event}
        condition = _condition(item.alternatives)
        if condition:
            event["condition"] = condition
        sequences[seq_tag]["events"].append(event)
        for succ in successors[tag]:
            remaining[succ] -= 1
            if remaining[succ] == 0:
                ready.append(succ)
        ready.sort(key=lambda t: merged[t].order)
    out = []
    for name in order:
        seq = sequences[name]
        if not seq["parents"]:
            del seq["parents"]
        out.append(seq)
    return out


def _sequence_name(first_step: str, is_first: bool, used: set[str]) -> str:
    name = "main" if is_first else f"seq-{first_step}"[:100]
    base, n = name, 1
    while name in used:
        n += 1
        name = f"{base[:95]}-{n}"
    used.add(name)
    return name
