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


class PlanOptions(_Frozen):
    """Run-wide options, durations in ms."""

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
