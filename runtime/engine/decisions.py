"""What happens next in a run: pure decisions, no Django, no I/O.

The engine's Django side (the other modules of :mod:`runtime.engine`) owns the database,
leases and the queue; it asks this module which sequences start, whether a failing step
is retried, which steps are compensated and in what order, and how a run ends.
Everything here is data in, data out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# Sequence statuses that let children start: skipped parents count as finished.
SEQUENCE_DONE = frozenset({"completed", "skipped"})
# Sequences that occupy a concurrency slot (waiting ones hold no worker but are "in flight").
SEQUENCE_ACTIVE = frozenset({"running", "waiting"})
SEQUENCE_FINISHED = frozenset({"completed", "skipped", "failed", "cancelled", "not_run"})
STEP_FINISHED = frozenset({"completed", "failed", "failed_allowed", "skipped", "rolled_back"})

# Retry delays shorter than this are slept inline by the worker; longer ones park the step.
INLINE_DELAY_MS = 1000


class SequenceLike(Protocol):
    @property
    def tag(self) -> str: ...
    @property
    def parents(self) -> Sequence[str]: ...
    @property
    def skip_if(self) -> str | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def level(self) -> int: ...
    @property
    def level_given(self) -> bool: ...


class StepLike(Protocol):
    @property
    def retries(self) -> int: ...
    @property
    def retry_delay_ms(self) -> int: ...
    @property
    def backoff(self) -> str: ...
    @property
    def allow_fail(self) -> bool: ...


@dataclass(frozen=True)
class Schedule:
    """Result of :func:`schedule`: sequences to start now, sequences skipped by ``skip_if``
    (in the order decided), and whether every sequence is finished."""

    start: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    all_done: bool = False


def schedule(
    sequences: Sequence[SequenceLike],
    statuses: Mapping[str, str],
    *,
    max_concurrency: int | None = None,
    should_skip: Callable[[str], bool] = lambda tag: False,
    groups: Mapping[str, int] | None = None,
) -> Schedule:
    """Decide which pending sequences start now.

    A pending sequence is ready when all its parents are completed or skipped, and — when
    the spec gave its ``level`` — every sequence at a lower level is too. A ready
    sequence whose ``skip_if`` holds (``should_skip(tag)``) is skipped at once, which may
    make its children ready in turn; others start while fewer than ``max_concurrency``
    sequences are active, and fewer than ``groups[g]`` of their group ``g``.
    ``sequences`` are in topological order.
    """
    current = dict(statuses)
    active = sum(1 for s in current.values() if s in SEQUENCE_ACTIVE)
    limits = groups or {}
    in_group: dict[str, int] = {}
    if limits:
        for seq in sequences:
            name = seq.group
            if name is not None and name in limits and current.get(seq.tag) in SEQUENCE_ACTIVE:
                in_group[name] = in_group.get(name, 0) + 1
    start: list[str] = []
    skipped: list[str] = []
    ordered = any(seq.level_given for seq in sequences)
    progressed = True
    while progressed:
        progressed = False
        # The lowest level with a sequence not done yet: given levels wait for it.
        lowest = _lowest_open_level(sequences, current) if ordered else None
        for seq in sequences:
            if current.get(seq.tag, "pending") != "pending":
                continue
            if not all(current.get(p) in SEQUENCE_DONE for p in seq.parents):
                continue
            if seq.level_given and lowest is not None and lowest < seq.level:
                continue
            if seq.skip_if and should_skip(seq.tag):
                current[seq.tag] = "skipped"
                skipped.append(seq.tag)
                progressed = True
                continue
            if max_concurrency is not None and active >= max_concurrency:
                continue
            group = seq.group if seq.group in limits else None
            if group is not None and in_group.get(group, 0) >= limits[group]:
                continue
            current[seq.tag] = "running"
            start.append(seq.tag)
            active += 1
            if group is not None:
                in_group[group] = in_group.get(group, 0) + 1
            progressed = True
    all_done = all(current.get(seq.tag) in SEQUENCE_DONE for seq in sequences)
    return Schedule(start=start, skipped=skipped, all_done=all_done)


def _lowest_open_level(sequences: Sequence[SequenceLike], current: Mapping[str, str]) -> int | None:
    open_levels = [s.level for s in sequences if current.get(s.tag, "pending") not in SEQUENCE_DONE]
    return min(open_levels, default=None)


def run_activity(statuses: Iterable[str]) -> Literal["running", "waiting", "idle"]:
    """A run is running while any sequence runs, waiting when all in-flight ones wait."""
    seen = set(statuses)
    if "running" in seen:
        return "running"
    if "waiting" in seen:
        return "waiting"
    return "idle"


# --- Failures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    delay_ms: int

    @property
    def inline(self) -> bool:
        """Short delays are slept by the worker; longer ones park the step (no worker waits)."""
        return self.delay_ms < INLINE_DELAY_MS


@dataclass(frozen=True)
class FailAllowed:
    pass


@dataclass(frozen=True)
class FailRun:
    pass


FailureDecision = Retry | FailAllowed | FailRun


def retry_delay_ms(step: StepLike, attempt: int) -> int:
    """Delay before the attempt after ``attempt`` (1-based): fixed, or delay * 2^(attempt-1)."""
    base = max(0, int(step.retry_delay_ms or 0))
    if step.backoff == "exponential":
        return int(base * 2 ** max(0, attempt - 1))
    return base


def on_step_failure(step: StepLike, *, attempt: int, retryable: bool) -> FailureDecision:
    """``attempt`` is the attempt that just failed (1-based); ``retries`` extra attempts allowed."""
    if retryable and attempt <= step.retries:
        return Retry(delay_ms=retry_delay_ms(step, attempt))
    if step.allow_fail:
        return FailAllowed()
    return FailRun()


# --- Compensation -------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """What compensation needs to know about one step of a run."""

    tag: str
    status: str
    finished_at: datetime | None
    order: int  # plan order, breaks ties between equal finish times
    has_rollback: bool = False
    critical: bool = False
    is_checkpoint: bool = False
    rollback_status: str = ""


RollbackStrategy = Literal["reverse_all", "critical_only", "to_checkpoint", "none"]


def _newest_first(steps: Iterable[StepView]) -> list[StepView]:
    def key(s: StepView) -> tuple[float, int]:
        return (s.finished_at.timestamp() if s.finished_at else 0.0, s.order)

    return sorted(steps, key=key, reverse=True)


def compensation_targets(steps: Sequence[StepView], strategy: str) -> list[str]:
    """Steps to roll back, newest first, for a strategy.

    ``reverse_all``: every completed step with a rollback; ``critical_only``: only those
    marked critical; ``to_checkpoint``: those completed after the last completed
    CHECKPOINT; ``none``: nothing. Steps already rolled back are left out (recovery).
    """
    if strategy == "none":
        return []
    completed = [s for s in steps if s.status == "completed"]
    candidates = [s for s in completed if s.has_rollback]
    if strategy == "critical_only":
        candidates = [s for s in candidates if s.critical]
    elif strategy == "to_checkpoint":
        checkpoints = [s for s in _newest_first(completed) if s.is_checkpoint]
        if checkpoints:
            last = checkpoints[0]
            candidates = [s for s in candidates if _after(s, last)]
    return [s.tag for s in _newest_first(candidates) if s.rollback_status != "rolled_back"]


def _after(step: StepView, checkpoint: StepView) -> bool:
    if step.finished_at is None or checkpoint.finished_at is None:
        return step.order > checkpoint.order
    if step.finished_at == checkpoint.finished_at:
        return step.order > checkpoint.order
    return step.finished_at > checkpoint.finished_at


RunEnd = Literal["completed", "failed", "rolled_back", "cancelled"]


def run_end_status(
    *, stop_reason: str, rolled_back: int, rollback_failed: bool, manual_rollback: bool = False
) -> RunEnd:
    """How a winding-down run ends once compensation is over.

    A failed rollback always ends the run ``failed`` (visible, never silent). A cancel ends
    ``cancelled``; a RETURN step (``returned``) ends like a run whose every sequence is done
    (:func:`returned_status`); a failure or timeout ends ``rolled_back`` when something
    was compensated, else ``failed``.
    """
    if rollback_failed:
        return "failed"
    if stop_reason in ("cancelled", "terminated"):
        return "cancelled"
    if stop_reason == "returned":
        return returned_status(manual_rollback=manual_rollback)
    return "rolled_back" if rolled_back else "failed"


def returned_status(*, manual_rollback: bool) -> RunEnd:
    """A run that ends with its output (every sequence done, or a RETURN step):
    ``rolled_back`` when a ROLLBACK step compensated on the way (the handler called
    ``trigger_rollback`` and went on), else ``completed``."""
    return "rolled_back" if manual_rollback else "completed"


def idempotency_key(run_id: int, step: str, attempt: int) -> str:
    """Stable per attempt: a step re-run after a crash reuses its key."""
    return f"{run_id}:{step}:{attempt}"
