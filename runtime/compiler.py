"""The compiler: a workflow spec in, an executable :class:`Plan` out (pure: no Django imports).

It checks everything that can be known before a run and reports ALL problems at once, each
with the JSON path of the field (``sequences[2].events[0].input.body.id: unknown step 'pay'``):

- the spec validates (pydantic errors mapped to paths by :func:`validation_issues`);
- sequence tags and step tags (``tag``, else ``event``) are unique in the workflow;
- parents exist, are not the sequence itself; the parent graph has no cycle (named:
  ``a -> b -> a``); levels are the longest path from a root and a given ``level`` agrees;
- every ``$Step``/``$Sequence`` reference points at a step that has run before on every
  path: earlier in the same sequence or in an ancestor sequence (through ``parents``);
- conditions, ``skip_if`` and every expression string parse; durations are valid;
- a ``$Secret`` (directly, inside any operator at any depth, or interpolated in text) appears
  only in the input of an event that sends it out in its own component's call
  (``SECRET_OUTGOING``): never in state, checkpoints, outputs, queries, conditions, CODE or
  any other input that is stored or shown below admin; and there only whole (no
  ``$Substring``, ``$Split``, ``$Size``, no comparison: an echoed answer would show it);
- event types get their own checks (WAIT_SIGNAL names declared signals, SLEEP has a
  duration, FEATURE names a workflow tag, CODE a dotted path) and, when ``components`` is
  given, component events name a component of the right kind that declares the event.

Cost is linear in the size of the spec: ancestor sets are integers used as bitsets, built
once in topological order, so checking a reference is one shift and mask.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import json
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from runtime.errors import ExpressionError, Issue, SpecError
from runtime.expressions import Ref, parse, parse_condition
from runtime.schemas import schema_issues
from runtime.spec import (
    COMPONENT_KINDS,
    SECRET_OUTGOING,
    TAG_RE,
    Duration,
    EventSpec,
    EventType,
    RollbackSpec,
    WorkflowSpec,
    duration_ms,
)
from runtime.step_functions import step_function_path as _step_function_name

__all__ = [
    "ComponentInfo",
    "Plan",
    "PlanOptions",
    "PlanSequence",
    "PlanStep",
    "compile_spec",
    "spec_checksum",
    "validation_issues",
]


@dataclass(frozen=True)
class ComponentInfo:
    """What the compiler needs to know about a product component: its kind and event names."""

    kind: str
    events: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- the plan


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanStep(_Frozen):
    """One step, ready to run: durations in ms, ``app`` resolved when it was implied."""

    tag: str
    sequence: str
    index: int
    type: EventType
    event: str
    app: str | None = None
    input: dict[str, Any] = {}
    retries: int = 0
    retry_delay_ms: int = 0
    backoff: str = "fixed"
    timeout_ms: int | None = None
    allow_fail: bool = False
    critical: bool = False
    condition: str | None = None
    # {type, event, app, input, retries, retry_delay_ms, timeout_ms} or None
    rollback: dict[str, Any] | None = None


class PlanSequence(_Frozen):
    tag: str
    parents: list[str] = []
    children: list[str] = []
    level: int = 0
    skip_if: str | None = None
    events: list[PlanStep] = []


class PlanOptions(_Frozen):
    timeout_ms: int | None = None
    rollback_strategy: str = "reverse_all"
    max_concurrency: int | None = None


class Plan(_Frozen):
    """A compiled workflow. ``sequences`` are in topological order (level, then spec order).

    ``signals`` maps a signal name to its input schema, ``queries`` a query name to its
    output mapping; ``input_schema``, ``output`` and ``triggers`` are copied from the spec.
    """

    sequences: list[PlanSequence] = []
    options: PlanOptions = PlanOptions()
    signals: dict[str, dict[str, Any]] = {}
    queries: dict[str, Any] = {}
    input_schema: dict[str, Any] = {}
    output: Any = None
    triggers: list[dict[str, Any]] = []

    _sequences: dict[str, PlanSequence] = PrivateAttr(default_factory=dict)
    _steps: dict[str, PlanStep] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._sequences = {s.tag: s for s in self.sequences}
        self._steps = {e.tag: e for s in self.sequences for e in s.events}

    def sequence(self, tag: str) -> PlanSequence:
        """The sequence with this tag (KeyError if none)."""
        return self._sequences[tag]

    def step(self, tag: str) -> PlanStep:
        """The step with this tag (KeyError if none)."""
        return self._steps[tag]

    @property
    def roots(self) -> list[PlanSequence]:
        """Sequences without parents: they start first."""
        return [s for s in self.sequences if not s.parents]

    @property
    def steps(self) -> list[PlanStep]:
        """Every step, in plan order."""
        return [e for s in self.sequences for e in s.events]

    def levels(self) -> list[list[str]]:
        """Sequence tags grouped by level: ``[[roots...], [level 1...], ...]``."""
        out: list[list[str]] = []
        for seq in self.sequences:
            while len(out) <= seq.level:
                out.append([])
            out[seq.level].append(seq.tag)
        return out


# --------------------------------------------------------------------------- helpers


# pydantic adds the union member it tried to the location ('timeout', 'int'); drop it.
_UNION_TAG = re.compile(r"^(int|float|str|bool|none|dict|list|constrained-\w+|[\w-]+\[.*\])$")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_DURATION_FIELDS = frozenset({"timeout", "retry_delay"})
_STEP_KINDS = frozenset({"Step", "Sequence"})
_SECRET_ONLY_OUTGOING = "$Secret may only be used in an outgoing call's input"  # noqa: S105
_OUTGOING_TYPES = ", ".join(sorted(t.value for t in SECRET_OUTGOING))
_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{path}.{key}" if path else key


def validation_issues(exc: ValidationError, prefix: str = "") -> list[Issue]:
    """pydantic errors as issues with JSON paths: ('sequences', 2, 'events', 0) →
    ``sequences[2].events[0]``; messages for the same field are merged."""
    merged: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = list(err["loc"])
        while len(loc) > 1 and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]):
            loc.pop()
        path = prefix
        for part in loc:
            path = _join(path, part)
        messages = merged.setdefault(path or "$", [])
        if err["msg"] not in messages:
            messages.append(err["msg"])
    issues = []
    for path, messages in merged.items():
        if path.rsplit(".", 1)[-1] in _DURATION_FIELDS and len(messages) > 1:
            messages = ["a duration is a number of ms or a string like '5m'"]
        issues.append(Issue(path=path, message=" or ".join(messages)))
    return issues


# Where an issue is: a path, or (base path, keys below it) formatted only when reported, so
# walking a big spec's inputs builds no strings.
_Keys = tuple[str | int, ...]
_Where = str | tuple[str, _Keys]
# Deeper input is refused: the engine resolves values recursively, and nobody means it.
MAX_DEPTH = 64


class _TooDeep(Exception):
    def __init__(self, keys: _Keys) -> None:
        self.keys = keys


@lru_cache(maxsize=4096)
def _key_text(key: str | int) -> str:
    return _join("", key) if isinstance(key, int) or not _PLAIN_KEY.match(key) else "." + key


def _where_text(where: _Where) -> str:
    if isinstance(where, str):
        return where
    base, keys = where
    path = base + "".join(_key_text(k) for k in keys)
    return path.lstrip(".") if not base else path


def _collect_strings(value: Any, keys: _Keys, out: list[tuple[_Keys, str]]) -> None:
    """Append every string holding a ``$`` under ``value`` with its keys (document order)."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(child, str):
            if "$" in child:
                out.append(((*keys, key), child))
        elif isinstance(child, dict | list):
            if len(keys) >= MAX_DEPTH:
                raise _TooDeep((*keys, key))
            _collect_strings(child, (*keys, key), out)


# Specs repeat the same few durations ('1s', 30000, None): parse each once.
_duration_ms = lru_cache(maxsize=1024)(duration_ms)


def _not_in(stored: str) -> str:
    return f"{_SECRET_ONLY_OUTGOING} ({_OUTGOING_TYPES}), not in {stored}"


def _stored_input(event: EventSpec | RollbackSpec) -> str | None:
    """What an event's input is, when it is stored or shown (None: only sent out)."""
    if event.type in SECRET_OUTGOING:
        return None
    what = "rollback" if isinstance(event, RollbackSpec) else "step"
    return f"a {event.type.value} {what}'s input"


def spec_checksum(spec: WorkflowSpec | Mapping[str, Any]) -> str:
    """sha256 of the spec's canonical JSON (sorted keys, defaults filled in when it validates)."""
    data: Any
    if isinstance(spec, WorkflowSpec):
        data = spec.model_dump(mode="json")
    else:
        try:
            data = WorkflowSpec.model_validate(spec).model_dump(mode="json")
        except ValidationError:
            data = spec
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- compiler


class _Compiler:
    def __init__(
        self,
        spec: WorkflowSpec,
        components: Mapping[str, ComponentInfo] | None,
        step_functions: Collection[str] | None = None,
    ) -> None:
        self.spec = spec
        self.components = components
        self.step_functions = step_functions
        self.issues: list[Issue] = []
        self.seq_index: dict[str, int] = {}
        self.step_index: dict[str, tuple[int, int]] = {}
        self.parents: list[list[int]] = []
        self.children: list[list[int]] = []
        self.levels: list[int | None] = []
        self.ancestors: list[int] = []
        self.unordered: set[int] = set()  # in or after a cycle: no level, no ancestry
        self.apps: dict[tuple[int, int], str | None] = {}
        self.rollback_apps: dict[tuple[int, int], str | None] = {}

    def issue(self, where: _Where, message: str) -> None:
        self.issues.append(Issue(path=_where_text(where), message=message))

    # ---- structure

    def index_tags(self) -> None:
        for i, seq in enumerate(self.spec.sequences):
            first = self.seq_index.setdefault(seq.tag, i)
            if first != i:
                self.issue(
                    f"sequences[{i}].tag",
                    f"duplicate sequence tag '{seq.tag}' (also sequences[{first}])",
                )
        for i, seq in enumerate(self.spec.sequences):
            for j, event in enumerate(seq.events):
                tag = event.step_tag
                where = f"sequences[{i}].events[{j}]"
                first_loc = self.step_index.setdefault(tag, (i, j))
                if first_loc != (i, j):
                    fi, fj = first_loc
                    self.issue(
                        f"{where}.{'tag' if event.tag else 'event'}",
                        f"duplicate step tag '{tag}' (also sequences[{fi}].events[{fj}]);"
                        " set a unique tag",
                    )
                elif "{" in tag or "}" in tag:
                    self.issue(
                        f"{where}.{'tag' if event.tag else 'event'}",
                        f"'{tag}' cannot be referenced as $Step{{...}} (braces): set a tag",
                    )

    def build_graph(self) -> None:
        count = len(self.spec.sequences)
        self.parents = [[] for _ in range(count)]
        self.children = [[] for _ in range(count)]
        for i, seq in enumerate(self.spec.sequences):
            if self.seq_index.get(seq.tag) != i:
                continue  # a duplicate: already reported, keep it out of the graph
            seen: set[int] = set()
            for k, parent in enumerate(seq.parents):
                where = f"sequences[{i}].parents[{k}]"
                p = self.seq_index.get(parent)
                if p is None:
                    self.issue(where, f"unknown parent '{parent}'")
                elif p == i:
                    self.issue(where, f"sequence '{seq.tag}' cannot be its own parent")
                elif p in seen:
                    self.issue(where, f"parent '{parent}' is listed twice")
                else:
                    seen.add(p)
                    self.parents[i].append(p)
                    self.children[p].append(i)

    def order(self) -> list[int]:
        """Kahn's algorithm: topological order, levels and ancestor bitsets; cycles reported."""
        count = len(self.spec.sequences)
        indegree = [len(ps) for ps in self.parents]
        levels = [0] * count
        ancestors = [0] * count
        ready = [i for i in range(count) if indegree[i] == 0]
        heapq.heapify(ready)
        done: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            done.append(i)
            mine = ancestors[i] | (1 << i)
            for c in self.children[i]:
                ancestors[c] |= mine
                if levels[i] + 1 > levels[c]:
                    levels[c] = levels[i] + 1
                indegree[c] -= 1
                if indegree[c] == 0:
                    heapq.heappush(ready, c)
        self.ancestors = ancestors
        self.levels = list(levels)
        if len(done) < count:
            placed = set(done)
            self.unordered = {i for i in range(count) if i not in placed}
            for i in self.unordered:
                self.levels[i] = None
            self.report_cycles()
        return done

    def report_cycles(self) -> None:
        """Name each cycle (in run order, parent -> child) once, at its first sequence's parents."""
        tags = [s.tag for s in self.spec.sequences]
        state: dict[int, int] = {}  # 1 = on the stack, 2 = finished
        reported: set[frozenset[int]] = set()
        for root in sorted(self.unordered):
            if root in state:
                continue
            stack: list[tuple[int, Iterator[int]]] = [(root, iter(self.children[root]))]
            path = [root]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    continue
                if nxt not in self.unordered:
                    continue
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        start = cycle.index(min(cycle))
                        cycle = cycle[start:] + cycle[:start]
                        names = " -> ".join(tags[c] for c in [*cycle, cycle[0]])
                        self.issue(f"sequences[{cycle[0]}].parents", f"cycle: {names}")
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self.children[nxt])))

    def check_levels(self) -> None:
        for i, seq in enumerate(self.spec.sequences):
            computed = self.levels[i] if i < len(self.levels) else None
            if seq.level is not None and computed is not None and seq.level != computed:
                why = "a root is at level 0" if not self.parents[i] else "1 + its deepest parent"
                self.issue(
                    f"sequences[{i}].level",
                    f"level {seq.level} does not match its parents: expected {computed} ({why})",
                )

    # ---- expressions and references

    def parse_value(
        self, value: Any, path: str, *, stored: str | None = None
    ) -> list[tuple[_Where, Ref]]:
        """Parse every expression string in a JSON value; return its step references.

        ``stored`` names what the value is when it is kept or shown (then a ``$Secret``
        anywhere in it is refused); None when it is only sent out in a component's call.
        """
        strings: list[tuple[_Keys, str]] = []
        if isinstance(value, str):
            if "$" in value:
                strings.append(((), value))
        elif isinstance(value, dict | list):
            try:
                _collect_strings(value, (), strings)
            except _TooDeep as exc:
                self.issue((path, exc.keys), f"nested more than {MAX_DEPTH} levels deep")
                return []
        found: list[tuple[_Where, Ref]] = []
        for keys, text in strings:
            try:
                template = parse(text)
            except ExpressionError as exc:
                self.issue((path, keys), str(exc))
                continue
            if stored is not None and template.has_secret:
                self.secret_issue((path, keys), _not_in(stored))
            elif template.secret_cut_by is not None:
                self.secret_issue(
                    (path, keys),
                    f"$Secret may only be sent whole: ${template.secret_cut_by} would take it"
                    " apart or compare with it (an API echoing the request would show that)",
                )
            for ref in template.refs:
                if ref.kind in _STEP_KINDS:
                    found.append(((path, keys), ref))
        return found

    def secret_issue(self, where: _Where, message: str) -> None:
        # Taint is syntactic: Template.refs holds every reference under every operator, so
        # $Lowercase($Substring($Secret{k}, 0, 4)) is refused like $Secret{k} itself.
        self.issue(where, message)

    def parse_cond(self, text: str | None, path: str) -> list[tuple[_Where, Ref]]:
        if text is None:
            return []
        try:
            cond = parse_condition(text)
        except ExpressionError as exc:
            self.issue(path, f"malformed condition: {exc}")
            return []
        if any(r.kind == "Secret" for r in cond.refs):
            # A condition's outcome is journaled (skipped or not): an oracle on the value.
            self.secret_issue(path, _not_in("a condition"))
        return [(path, r) for r in cond.refs if r.kind in ("Step", "Sequence")]

    def locate(self, where: _Where, ref: Ref) -> tuple[str, int, int] | None:
        """The referenced step as (tag, sequence index, event index), or report it unknown."""
        if ref.kind == "Step":
            tag = ref.args[0]
            loc = self.step_index.get(tag)
            if loc is None:
                self.issue(where, f"unknown step '{tag}' in {ref}")
                return None
            return tag, loc[0], loc[1]
        seq_tag, tag = ref.args
        si = self.seq_index.get(seq_tag)
        if si is None:
            self.issue(where, f"unknown sequence '{seq_tag}' in {ref}")
            return None
        loc = self.step_index.get(tag)
        if loc is None or loc[0] != si:
            self.issue(where, f"unknown step '{tag}' in sequence '{seq_tag}' in {ref}")
            return None
        return tag, loc[0], loc[1]

    def check_refs(
        self,
        refs: list[tuple[_Where, Ref]],
        *,
        seq: int | None,
        index: int,
        reader: str,
        inclusive: bool = False,
    ) -> None:
        """Each reference must name a step that ran before ``reader`` on every path.

        ``seq`` None: anywhere in the workflow is fine (workflow output, queries).
        ``index`` is the reader's event index (-1 for a sequence's skip_if); ``inclusive``
        lets a rollback read its own step.
        """
        tags = self.spec.sequences
        for where, ref in refs:
            found = self.locate(where, ref)
            if found is None or seq is None:
                continue
            tag, si, sj = found
            if si == seq:
                if sj < index or (inclusive and sj == index):
                    continue
                if sj == index:
                    self.issue(where, f"step '{tag}' cannot refer to its own output")
                elif index < 0:
                    self.issue(
                        where,
                        f"step '{tag}' is in sequence '{tags[seq].tag}' itself, whose skip_if"
                        " is evaluated before any of its steps run",
                    )
                else:
                    self.issue(
                        where,
                        f"step '{tag}' runs after '{reader}' in sequence '{tags[seq].tag}'",
                    )
            elif seq in self.unordered or si in self.unordered:
                continue  # the cycle is reported; ancestry is meaningless there
            elif not (self.ancestors[seq] >> si) & 1:
                self.issue(
                    where,
                    f"step '{tag}' in sequence '{tags[si].tag}' is not guaranteed to run before"
                    f" '{reader}' (not an ancestor)",
                )

    # ---- per event

    def duration(self, value: Duration | None, path: str) -> int | None:
        try:
            return _duration_ms(value)
        except ValueError as exc:
            self.issue(path, str(exc))
            return None

    def component(self, type_: EventType, event: str, app: str | None, path: str) -> str | None:
        """Check the component an event uses; returns the app (resolved when implied)."""
        kind = COMPONENT_KINDS.get(type_)
        if kind is None:
            return app
        name = event
        app_path = f"{path}.app"
        if type_ in (EventType.PUBLISH, EventType.DB_ACTION) and ":" in event:
            prefix, name = event.split(":", 1)
            if app is None:
                app, app_path = prefix, f"{path}.event"
            elif app != prefix:
                self.issue(app_path, f"app '{app}' does not match '{prefix}' in event '{event}'")
        if type_ is EventType.PUBLISH and ":" not in event and app is None:
            self.issue(f"{path}.event", f"a PUBLISH event is 'broker:topic', got '{event}'")
            return app
        if self.components is None:
            return app
        if app is not None:
            info = self.components.get(app)
            if info is None:
                self.issue(app_path, f"unknown {kind} component '{app}'")
            elif info.kind != kind:
                self.issue(
                    app_path,
                    f"component '{app}' is a {info.kind}; a {type_.value} event needs a {kind}",
                )
            elif name not in info.events and event not in info.events:
                self.issue(f"{path}.event", f"{kind} '{app}' has no event '{name}'")
            return app
        candidates = sorted(
            tag
            for tag, info in self.components.items()
            if info.kind == kind and (name in info.events or event in info.events)
        )
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            self.issue(f"{path}.event", f"no {kind} component declares event '{name}'")
        else:
            self.issue(
                app_path,
                f"event '{name}' is declared by several {kind} components"
                f" ({', '.join(candidates)}): set app",
            )
        return None

    def check_event(self, i: int, j: int, event: EventSpec) -> None:
        path = f"sequences[{i}].events[{j}]"
        tag = event.step_tag
        refs = self.parse_value(event.input, f"{path}.input", stored=_stored_input(event))
        refs += self.parse_cond(event.condition, f"{path}.condition")
        self.check_refs(refs, seq=i, index=j, reader=tag)
        self.duration(event.retry_delay, f"{path}.retry_delay")
        self.duration(event.timeout, f"{path}.timeout")
        self.check_type(event, path)
        self.apps[(i, j)] = self.component(event.type, event.event, event.app, path)
        if event.rollback is not None:
            rb = event.rollback
            rb_path = f"{path}.rollback"
            refs = self.parse_value(rb.input, f"{rb_path}.input", stored=_stored_input(rb))
            self.check_refs(refs, seq=i, index=j, reader=f"{tag}.rollback", inclusive=True)
            self.duration(rb.retry_delay, f"{rb_path}.retry_delay")
            self.duration(rb.timeout, f"{rb_path}.timeout")
            self.check_type(rb, rb_path)
            self.rollback_apps[(i, j)] = self.component(rb.type, rb.event, rb.app, rb_path)

    def check_type(self, event: EventSpec | RollbackSpec, path: str) -> None:
        type_ = event.type
        data = event.input
        if type_ is EventType.WAIT_SIGNAL:
            names = data.get("signals", data.get("signal"))
            if names is None:
                self.check_signal(event.event, f"{path}.event")
            elif isinstance(names, str):
                key = "signals" if "signals" in data else "signal"
                self.check_signal(names, f"{path}.input.{key}")
            elif isinstance(names, list) and names:
                for k, name in enumerate(names):
                    self.check_signal(name, f"{path}.input.signals[{k}]")
            else:
                self.issue(f"{path}.input.signals", "a list of signal names")
            self.maybe_duration(data.get("timeout"), f"{path}.input.timeout")
        elif type_ is EventType.SLEEP:
            if "duration" in data:
                self.maybe_duration(data["duration"], f"{path}.input.duration")
            else:
                try:
                    duration_ms(event.event)
                except ValueError:
                    self.issue(
                        f"{path}.event",
                        f"SLEEP needs a duration: an event like '5m' or input.duration"
                        f" (got '{event.event}')",
                    )
        elif type_ is EventType.FEATURE:
            if not TAG_RE.match(event.event):
                self.issue(f"{path}.event", f"'{event.event}' is not a workflow tag")
        elif type_ is EventType.CODE:
            if not _DOTTED_PATH.match(event.event):
                self.issue(
                    f"{path}.event",
                    f"'{event.event}' is not a dotted path like 'package.module:function'",
                )
            elif self.step_functions is not None and (
                _step_function_name(event.event) not in self.step_functions
            ):
                self.issue(f"{path}.event", f"'{event.event}' is not a registered step function")

    def check_signal(self, name: Any, path: str) -> None:
        if not isinstance(name, str):
            self.issue(path, "a signal name is a string")
        elif name not in self.spec.signals:
            declared = ", ".join(sorted(self.spec.signals)) or "none"
            self.issue(path, f"signal '{name}' is not declared in signals (declared: {declared})")

    def maybe_duration(self, value: Any, path: str) -> None:
        if value is None or (isinstance(value, str) and "$" in value):
            return  # resolved at run time
        if not isinstance(value, int | str) or isinstance(value, bool):
            self.issue(path, "a duration is a number of ms or a string like '5m'")
            return
        self.duration(value, path)

    # ---- workflow level

    def check_workflow(self) -> None:
        spec = self.spec
        # Schemas validate what operators and messages send, in the web process: each
        # must be valid and its patterns must run on RE2 (linear time, no ReDoS).
        for path, message in schema_issues(spec.input, "input"):
            self.issue(path, message)
        for name, signal in spec.signals.items():
            for path, message in schema_issues(signal.input, f"signals.{name}.input"):
                self.issue(path, message)
        self.duration(spec.options.timeout, "options.timeout")
        refs = self.parse_value(spec.output, "output", stored="the workflow's output")
        self.check_refs(refs, seq=None, index=0, reader="output")
        for name, query in spec.queries.items():
            refs = self.parse_value(
                query.output, _join(_join("queries", name), "output"), stored="a query's output"
            )
            self.check_refs(refs, seq=None, index=0, reader=name)
        for k, trigger in enumerate(spec.triggers):
            path = f"triggers[{k}]"
            trigger_input = self.parse_value(
                trigger.input, f"{path}.input", stored="a trigger's input (the run's input)"
            )
            for where, ref in trigger_input:
                self.issue(where, f"a trigger starts the run: {ref} has not run yet (use $Input)")
            if ":" not in trigger.event:
                self.issue(
                    f"{path}.event", f"a trigger event is 'broker:topic', got '{trigger.event}'"
                )
            elif self.components is not None:
                broker = trigger.event.split(":", 1)[0]
                info = self.components.get(broker)
                if info is None or info.kind != "broker":
                    self.issue(f"{path}.event", f"unknown broker component '{broker}'")

    def run(self) -> Plan:
        self.index_tags()
        self.build_graph()
        self.order()
        self.check_levels()
        for i, seq in enumerate(self.spec.sequences):
            refs = self.parse_cond(seq.skip_if, f"sequences[{i}].skip_if")
            self.check_refs(refs, seq=i, index=-1, reader=seq.tag)
            for j, event in enumerate(seq.events):
                self.check_event(i, j, event)
        self.check_workflow()
        if self.issues:
            raise SpecError(self.issues)
        return self.plan()

    def plan(self) -> Plan:
        # Plain dicts validated in one call: pydantic-core builds 5,000 steps faster than
        # 5,000 model constructors would, and the plan is still checked against its schema.
        spec = self.spec
        tags = [s.tag for s in spec.sequences]
        levels = self.levels
        order = sorted(range(len(tags)), key=lambda i: (levels[i] or 0, i))
        sequences = []
        for i in order:
            seq = spec.sequences[i]
            sequences.append(
                {
                    "tag": seq.tag,
                    "parents": [tags[p] for p in self.parents[i]],
                    "children": [tags[c] for c in self.children[i]],
                    "level": levels[i] or 0,
                    "skip_if": seq.skip_if,
                    "events": [self.step(i, j, e) for j, e in enumerate(seq.events)],
                }
            )
        return Plan.model_validate(
            {
                "sequences": sequences,
                "options": {
                    "timeout_ms": _duration_ms(spec.options.timeout),
                    "rollback_strategy": spec.options.rollback_strategy,
                    "max_concurrency": spec.options.max_concurrency,
                },
                "signals": {name: s.input for name, s in spec.signals.items()},
                "queries": {name: q.output for name, q in spec.queries.items()},
                "input_schema": spec.input,
                "output": spec.output,
                "triggers": [t.model_dump(mode="json") for t in spec.triggers],
            }
        )

    def step(self, i: int, j: int, event: EventSpec) -> dict[str, Any]:
        rollback = None
        if event.rollback is not None:
            rb = event.rollback
            rollback = {
                "type": rb.type.value,
                "event": rb.event,
                "app": self.rollback_apps.get((i, j), rb.app),
                "input": rb.input,
                "retries": rb.retries,
                "retry_delay_ms": _duration_ms(rb.retry_delay) or 0,
                "timeout_ms": _duration_ms(rb.timeout),
            }
        return {
            "tag": event.tag or event.event,
            "sequence": self.spec.sequences[i].tag,
            "index": j,
            "type": event.type,
            "event": event.event,
            "app": self.apps.get((i, j), event.app),
            "input": event.input,
            "retries": event.retries,
            "retry_delay_ms": _duration_ms(event.retry_delay) or 0,
            "backoff": event.backoff,
            "timeout_ms": _duration_ms(event.timeout),
            "allow_fail": event.allow_fail,
            "critical": event.critical,
            "condition": event.condition,
            "rollback": rollback,
        }


def compile_spec(
    spec: WorkflowSpec | Mapping[str, Any],
    *,
    components: Mapping[str, ComponentInfo] | None = None,
    step_functions: Collection[str] | None = None,
) -> Plan:
    """Compile a spec (model or JSON dict) into a :class:`Plan`.

    Raises :class:`SpecError` listing every issue found, each with a JSON path. When
    ``components`` (tag → :class:`ComponentInfo`) is None, component checks are skipped.
    ``step_functions`` (registered names, ``package.module:function``): when given, a CODE
    event naming anything else is an issue.
    """
    with _gc_paused():
        if isinstance(spec, WorkflowSpec):
            model = spec
        else:
            try:
                model = WorkflowSpec.model_validate(spec)
            except ValidationError as exc:
                raise SpecError(validation_issues(exc)) from None
        return _Compiler(model, components, step_functions).run()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling a big spec allocates ~10^5 long-lived objects and no cycles; the cyclic GC
    would sweep the whole heap several times for nothing (a third of the compile time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
