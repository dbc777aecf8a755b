"""The state of one run of a handler under the recorder: its references, its decisions,
its nodes, and the connector calls it made."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import re
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.recorder._deps import reduce_deps
from runtime.recorder._loops import LoopCapture, RecordedLoop, drop_item_parts, loop_tag_base
from runtime.recorder._scope import (
    CLAUSES,
    FRONTIER,
    NOWHERE,
    Clause,
    TaskInfo,
    active_clauses,
    branch_scope,
    current_task,
    other_arm_matters,
)
from runtime.recorder._sites import RecordingError, Site, user_site
from runtime.recorder._text import MISSING, NEGATE, PY_OPS, hint_for, literal, ref_text
from runtime.recorder._values import Recorded, RecordedCondition, contains_recorded
from runtime.spec import TAG_RE, EventType


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
class StepFrame:
    """A step (or rollback) function being run at define time, and the calls it made."""

    tag: str
    kind: str  # "step" | "rollback"
    calls: list[PendingCall] = field(default_factory=list)


STEP_FRAME: contextvars.ContextVar[StepFrame | None] = contextvars.ContextVar(
    "trellis_step_frame", default=None
)


def _to_tag_part(text: str) -> str:
    part = re.sub(r"[^A-Za-z0-9_\-\.]+", "-", text).strip("-") or "step"
    if not re.match(r"[A-Za-z_]", part):
        part = "s-" + part
    return part[:90]


_ITEM_BRANCH = (
    "cannot branch on {} inside a loop: the body is recorded once for every item; give the"
    ' step a condition (condition="$Item{{express}} == true") or test it in a step function'
)


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
        forced: tuple[bool, ...] = (),
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
        self.children: dict[asyncio.Task[Any] | None, list[TaskInfo]] = {}
        self.unawaited: dict[int, PendingCall] = {}
        # ctx.step / ctx.sleep ... coroutines created but not awaited (yet).
        self.unstarted: dict[int, tuple[str, Site | None, Coroutine[Any, Any, Any], object]] = {}
        self.auto_counts: dict[str, int] = {}
        self.input_paths: set[str] = set()
        self.used_overrides: set[str] = set()
        self.state_keys: dict[str, None] = {}  # set so far, in order
        self.loop: LoopCapture | None = None  # the loop whose body is being recorded
        self.loop_error: RecordingError | None = None  # a loop left early
        # Branches on branch_overrides values: the outcomes this recording must take (by
        # decision, in order; later ones take the override's), and the path it took.
        self.forced = forced
        self.path = DecisionPath()
        self.auto_tags: set[str] = set()  # tags the recorder made up (log, sleep...)

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
        scope = branch_scope(outcome)
        if scope is NOWHERE:
            return
        clauses = CLAUSES.get()
        for existing in clauses:
            if existing.text == text and (existing.frame is None or scope is None):
                if existing.frame is not None:  # now unconditional: widen it
                    clauses = tuple(c for c in clauses if c is not existing)
                    break
                return
        if scope is None:
            clause = Clause(text)
        else:
            frame, first, last = scope
            clause = Clause(text, frame, first, last)
        CLAUSES.set((*clauses, clause))

    def steer(self, natural: bool, sides: list[Recorded]) -> bool | None:
        """The outcome of a branch on override values: the forced one for this recording
        (exploring the other arm of an ``if``), else what the override gives; None when
        the other arm would end the handler the same way (not explored)."""
        if not other_arm_matters(natural):
            return None
        index = len(self.path.outcomes)
        outcome = self.forced[index] if index < len(self.forced) else natural
        tags = {s._r_ref[1][0] for s in sides if s._r_ref and s._r_ref[0] == "Step"}
        self.path.outcomes.append(outcome)
        self.path.tags |= tags
        return outcome

    def decide_truth(self, value: Recorded) -> bool:
        site = user_site(3)
        kind, args, _ = value._r_ref or ("", (), "")
        sample, origin = value._r_sample, value._r_origin
        if origin == "scenario" and sample is not MISSING:
            return bool(sample)
        if origin == "item":
            raise RecordingError(_ITEM_BRANCH.format(value._r_text), site=site)
        if origin == "sample":
            raise RecordingError(
                f"cannot branch on {value._r_text}: record_input values only drive loops and "
                "step tags; use record_scenarios to record each branch with a condition",
                site=site,
            )
        if sample is MISSING:
            raise RecordingError(
                f"cannot test the truth of a recorded value ({value._r_text}): "
                + hint_for(value._r_text, kind, args),
                site=site,
            )
        if isinstance(sample, Mapping | list):
            raise RecordingError(
                f"cannot test the truth of a whole object ({value._r_text}); test one of its "
                "fields (e.g. `if result.ok:`) so the recorder can write a condition",
                site=site,
            )
        natural = bool(sample)
        steered = self.steer(natural, [value]) if origin == "override" else None
        outcome = natural if steered is None else steered
        text = f"{value._r_text} {'==' if outcome == natural else '!='} {literal(sample)}"
        self.assume(text, outcome)
        if steered is not None:
            self.path.clauses.append(text)
        return outcome

    def decide_comparison(self, cond: RecordedCondition) -> bool:
        site = user_site(3)
        left, op, right = cond.left, cond.op, cond.right
        sides = [left, right] if isinstance(right, Recorded) else [left]
        for side in sides:
            if side._r_sample is MISSING:
                kind, args, _ = side._r_ref or ("", (), "")
                raise RecordingError(
                    f"cannot compare a recorded value ({side._r_text} {op} ...): "
                    + hint_for(side._r_text, kind, args),
                    site=site,
                )
            if side._r_origin == "item":
                raise RecordingError(_ITEM_BRANCH.format(side._r_text), site=site)
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
            result = bool(PY_OPS[op](left._r_sample, right_value))
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
        steered = None
        if any(side._r_origin == "override" for side in sides):
            steered = self.steer(result, sides)
        result = result if steered is None else steered
        used = op if result else NEGATE[op]
        self.assume(f"{left._r_text} {used} {right_text}", result)
        if steered is not None:
            self.path.clauses.append(f"{left._r_text} {used} {right_text}")
        return result

    def iterate(self, value: Recorded) -> Iterator[Any]:
        sample = value._r_sample
        kind, args, path = value._r_ref or ("", (), "")
        if kind == "Input" and isinstance(sample, list):
            loop = self.loop_over(value, tag=None, max_concurrency=None, site=user_site(3))
            return iter(loop)
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
            + hint_for(value._r_text, kind, args),
            site=site,
        )

    def loop_over(
        self, items: Recorded, *, tag: str | None, max_concurrency: int | None, site: Site | None
    ) -> RecordedLoop:
        """A FOREACH over ``items``: the loop's body runs once, with ``$Item`` as the item."""
        if self.loop is not None:
            raise RecordingError(
                "loops do not nest: a loop body cannot hold another loop", site=site
            )
        sample = items._r_sample
        first = sample[0] if isinstance(sample, list) and sample else MISSING
        tag = tag or self.auto_tag(loop_tag_base(items._r_text))
        self.check_tag(tag, site)
        capture = LoopCapture(items._r_text, tag, max_concurrency, site)
        return RecordedLoop(self._loop(capture, first), self.step_result(tag))

    def _loop(self, capture: LoopCapture, first: Any) -> Iterator[Any]:
        self.loop = capture
        finished = False
        try:
            yield Recorded(self, "$Item", ref=("Item", (), ""), sample=first, origin="item")
            finished = True
        finally:
            self.loop = None
            if not finished:
                self.loop_error = RecordingError(
                    "a recorded loop runs to its end: `break` or `return` inside it cannot be"
                    " recorded (skip items with a step's condition instead)",
                    site=capture.site,
                )
        if capture.body:
            self.record(capture.tag, capture.event(), site=capture.site)

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
        if self.loop is not None and what in ("step tag", "tag"):
            value = drop_item_parts(value)

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
                self.auto_tags.add(tag)
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
        if STEP_FRAME.get() is not None:
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
        if self.loop_error is not None:
            raise self.loop_error
        self.check_tag(tag, site)
        if self.loop is not None:
            self.loop.add(tag, event, condition, site)
            return
        task = current_task()
        deps = set(FRONTIER.get())
        pending: list[TaskInfo] = []
        for info in self.children.get(task, []):
            if info.done:
                deps |= info.final
            else:
                pending.append(info)
        self.children[task] = pending
        texts = tuple(c.text for c in active_clauses())
        if condition:
            texts = (*texts, condition)
        self.nodes[tag] = Node(tag, event, reduce_deps(deps, self.nodes), texts, site)
        FRONTIER.set(frozenset({tag}))

    def frontier(self) -> set[str]:
        """What a step recorded here would wait for (the frontier and the tasks this task
        forked that are done), without recording one: where the handler ends."""
        task = current_task()
        deps = set(FRONTIER.get())
        for info in self.children.get(task, []):
            if info.done:
                deps |= info.final
        return deps


@dataclass
class DecisionPath:
    """The branches one recording took on branch_overrides values: their outcomes, the
    conditions that hold on this path (in order) and the steps they read."""

    outcomes: list[bool] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)


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


@dataclass
class RecordedCall:
    """A connector call as recorded: the event it becomes and how its step is tagged."""

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

    def __init__(self, rec: Recording, call: RecordedCall, site: Site | None) -> None:
        self._rec = rec
        self._call = call
        self._site = site
        self._done = False
        self._frame = STEP_FRAME.get()
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
