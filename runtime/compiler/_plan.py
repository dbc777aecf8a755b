"""What the compiler produces (:class:`Plan` and its parts) and what it is told about
the product's components (:class:`ComponentInfo`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from runtime.spec import EventType


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
    # FOREACH: the body's steps (templates, run per item) and how many iterations at once.
    body: list[PlanStep] = []
    max_concurrency: int | None = None
    # A body step: the tag of its FOREACH step.
    loop: str | None = None


def iteration_key(tag: str) -> tuple[str, int]:
    """``'charge[3]'`` → ``('charge', 3)``; KeyError when ``tag`` is no iteration's key
    (a tag cannot hold brackets, so no workflow tag is mistaken for one)."""
    name, bracket, rest = tag.partition("[")
    if not bracket or not rest.endswith("]") or not rest[:-1].isdigit():
        raise KeyError(tag)
    return name, int(rest[:-1])


def is_iteration(tag: str) -> bool:
    """Whether a sequence or step tag is a loop iteration's (``loop[3]``, ``charge[3]``)."""
    return tag.endswith("]") and "[" in tag


class PlanSequence(_Frozen):
    """One sequence of the plan: its parents, children, level and steps."""

    tag: str
    parents: list[str] = []
    children: list[str] = []
    level: int = 0
    # The spec gave this level: the sequence also waits for every sequence at a lower
    # level, not only for its parents (a level orders sequences that parents do not).
    level_given: bool = False
    skip_if: str | None = None
    events: list[PlanStep] = []
    group: str | None = None


class PlanOptions(_Frozen):
    """Run-wide options, durations in ms."""

    timeout_ms: int | None = None
    rollback_strategy: str = "reverse_all"
    max_concurrency: int | None = None
    # group name -> how many of the group's sequences may run at once
    groups: dict[str, int] = {}


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
    _loops: dict[str, PlanStep] = PrivateAttr(default_factory=dict)
    _body: dict[str, PlanStep] = PrivateAttr(default_factory=dict)
    _iterations: dict[str, PlanSequence] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._sequences = {s.tag: s for s in self.sequences}
        self._steps = {e.tag: e for s in self.sequences for e in s.events}
        self._loops = {e.tag: e for e in self._steps.values() if e.body}
        self._body = {b.tag: b for e in self._loops.values() for b in e.body}

    def sequence(self, tag: str) -> PlanSequence:
        """The sequence with this tag (KeyError if none); ``loop[3]`` is the 4th
        iteration of FOREACH step ``loop``, its body steps tagged ``<body tag>[3]``."""
        found = self._sequences.get(tag) or self._iterations.get(tag)
        if found is not None:
            return found
        name, index = iteration_key(tag)
        loop = self._loops[name]
        found = PlanSequence(
            tag=tag,
            events=[
                b.model_copy(update={"tag": f"{b.tag}[{index}]", "sequence": tag})
                for b in loop.body
            ],
        )
        if len(self._iterations) > 50_000:  # a bound on what a long-lived plan keeps
            self._iterations.clear()
        self._iterations[tag] = found
        return found

    def step(self, tag: str) -> PlanStep:
        """The step with this tag (KeyError if none), iteration steps (``charge[3]``) too."""
        found = self._steps.get(tag)
        if found is not None:
            return found
        name, index = iteration_key(tag)
        template = self._body[name]
        return self.sequence(f"{template.loop}[{index}]").events[template.index]

    def loop(self, tag: str) -> PlanStep:
        """The FOREACH step with this tag (KeyError if none)."""
        return self._loops[tag]

    @property
    def has_loops(self) -> bool:
        return bool(self._loops)

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
