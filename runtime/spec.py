"""The one workflow definition format (pure: no Django imports).

A workflow is a list of sequences joined by ``parents``; each sequence runs its events in
order (Ductape's ``IFeatureSequence``/``IFeatureEvent``, Smithers' ``<Sequence>``). The
canvas saves it, the API validates it, the code-first recorder emits it, versions store it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TAG_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-\.]{0,99}$"
TAG_RE = re.compile(TAG_PATTERN)
Tag = Annotated[str, Field(pattern=TAG_PATTERN, max_length=100)]
# Millisecond durations are also accepted as strings: '500ms', '5s', '5m', '1h', '1d'.
Duration = int | str


class EventType(StrEnum):
    ACTION = "ACTION"
    DB_ACTION = "DB_ACTION"
    NOTIFICATION = "NOTIFICATION"
    STORAGE = "STORAGE"
    PUBLISH = "PUBLISH"
    QUOTA = "QUOTA"
    FALLBACK = "FALLBACK"
    FEATURE = "FEATURE"  # child workflow
    JOB = "JOB"
    SLEEP = "SLEEP"
    WAIT_SIGNAL = "WAIT_SIGNAL"
    CHECKPOINT = "CHECKPOINT"
    SET_STATE = "SET_STATE"
    ROLLBACK = "ROLLBACK"  # compensate what completed now; the run goes on
    CODE = "CODE"  # a Python callable by dotted path
    GRAPH = "GRAPH"  # recorded from ctx.graph.*; needs a graph connector to run
    FOREACH = "FOREACH"  # a runtime loop: its ``loop.body`` runs once per item of a list
    # Ending a run from a branch (a handler's early ``return`` / ``raise``): RETURN ends the
    # run completed with ``input.output`` (a mapping over $Input/$Step/...), FAIL fails it
    # with ``input.message``; steps after them do not run.
    RETURN = "RETURN"
    FAIL = "FAIL"


# The event types that end a run when their condition holds.
ENDING_TYPES: frozenset[EventType] = frozenset({EventType.RETURN, EventType.FAIL})


# The CODE event a recorded ``ctx.log.*`` call becomes: a log line, not a step of the
# workflow's logic, so it is left out of ``completed_steps`` (it stays in the journal).
LOG_EVENT = "runtime.workflows:log_step"


def is_log_event(type_: str, event: str) -> bool:
    """Whether an event is a recorded log line (``ctx.log.info(...)``)."""
    return type_ == EventType.CODE and event == LOG_EVENT


# Event types that use a product component (``app``) and which kind it must be.
COMPONENT_KINDS: dict[EventType, str] = {
    EventType.ACTION: "app",
    EventType.DB_ACTION: "database",
    EventType.NOTIFICATION: "notification",
    EventType.STORAGE: "storage",
    EventType.PUBLISH: "broker",
    EventType.QUOTA: "quota",
    EventType.FALLBACK: "fallback",
    EventType.GRAPH: "graph",
}

# The only event types whose input may hold a $Secret: their input is sent out in their own
# component's call (an ACTION's params, query, body and headers, to the app's admin-configured
# base URL) and kept nowhere but as a redacted copy. Every other input is stored or shown
# somewhere below admin: state, checkpoints, a child run's or a scheduled run's input, a
# message that triggers runs, a file served to the product's members, a CODE function's
# arguments, a database row that a later query reads back; a NOTIFICATION's input is
# delivered to recipients the designer chooses.
SECRET_OUTGOING: frozenset[EventType] = frozenset({EventType.ACTION})

RollbackStrategy = Literal["reverse_all", "critical_only", "to_checkpoint", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=1_000_000)


class RollbackSpec(_Strict):
    """The compensating event run when a later step fails (it has no rollback itself)."""

    type: EventType
    event: str = Field(max_length=200)
    app: str | None = Field(default=None, max_length=100)
    input: dict[str, Any] = Field(default_factory=dict)
    retries: int = Field(default=2, ge=0, le=100)
    retry_delay: Duration = 0
    timeout: Duration | None = None


class EventSpec(_Strict):
    """One step: ``type`` says what kind of work, ``event`` which one, ``app`` the component."""

    type: EventType
    event: str = Field(max_length=200)
    # The step's tag, unique in the workflow; referenced as $Step{tag}. Defaults to `event`.
    tag: Tag | None = None
    app: str | None = Field(default=None, max_length=100)
    input: dict[str, Any] = Field(default_factory=dict)
    retries: int = Field(default=0, ge=0, le=100)
    retry_delay: Duration = 0
    backoff: Literal["fixed", "exponential"] = "fixed"
    timeout: Duration | None = None
    allow_fail: bool = False
    critical: bool = False
    condition: str | None = Field(default=None, max_length=10_000)
    rollback: RollbackSpec | None = None
    description: str = Field(default="", max_length=2000)
    # FOREACH only: the list to loop over and the body run per item.
    loop: LoopSpec | None = None

    @property
    def step_tag(self) -> str:
        return self.tag or self.event


# An iteration's step is keyed ``<body tag>[<index>]`` (its sequence ``<loop tag>[<index>]``)
# and the journal's tags hold 100 characters: a loop's tags leave room for the index.
LOOP_TAG_MAX = 90


class LoopSpec(_Strict):
    """A runtime loop (Smithers' ``<Loop>``, a handler's ``for item in ...``).

    ``items`` is an expression resolved when the FOREACH step starts (``$Input{items}``,
    ``$Step{fetch}{rows}``); it must give a list, of at most TRELLIS_MAX_LOOP_ITERATIONS
    items. ``body`` runs once per item, its steps in order; inside it ``$Item{path}`` is the
    current item and ``$Index`` its 0-based index, and ``$Step{tag}`` of a body step is that
    step in the same iteration. Up to ``max_concurrency`` iterations run at once (default 1:
    one after the other, like the ``for`` loop it comes from). The FOREACH step's output
    is the list of each iteration's last body step output, in item order.
    """

    items: str = Field(max_length=10_000)
    body: list[EventSpec] = Field(min_length=1, max_length=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)


EventSpec.model_rebuild()


class SequenceSpec(_Strict):
    tag: Tag
    parents: list[str] = Field(default_factory=list, max_length=1000)
    # Deeper than its parents put it orders it after every lower level (bounded: a level
    # is a column on the canvas, and there are at most 10,000 sequences).
    level: int | None = Field(default=None, ge=0, le=10_000)
    events: list[EventSpec] = Field(default_factory=list, max_length=10_000)
    skip_if: str | None = Field(default=None, max_length=10_000)
    description: str = Field(default="", max_length=2000)
    # A group of sequences (Smithers' <Parallel maxConcurrency> of <Sequence>s): at most
    # options.groups[group].max_concurrency of its sequences run at once.
    group: Tag | None = None


class GroupSpec(_Strict):
    """Options of a group of sequences (``SequenceSpec.group``)."""

    max_concurrency: int = Field(ge=1, le=10_000)


class WorkflowOptions(_Strict):
    timeout: Duration | None = None  # whole run, ms or '5m'
    rollback_strategy: RollbackStrategy = "reverse_all"
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)  # all sequences
    groups: dict[str, GroupSpec] = Field(default_factory=dict, max_length=1000)


class EnvSetting(_Strict):
    slug: str = Field(max_length=50)
    active: bool = True


class SignalSpec(_Strict):
    """``input`` is a schema: either the seed's shorthand ``{field: 'string'}`` or JSON Schema."""

    input: dict[str, Any] = Field(default_factory=dict)
    description: str = Field(default="", max_length=2000)


class QuerySpec(_Strict):
    """A read-only view of a run: ``output`` is a mapping of expressions over the run
    ($Input, $Step, $State, $Run{completed_steps|current_step|status})."""

    output: Any = None
    description: str = Field(default="", max_length=2000)


class Trigger(_Strict):
    """Start this workflow when a message is published to ``event`` ('broker:topic')."""

    type: Literal["topic"] = "topic"
    event: str = Field(max_length=200)
    input: Any = None  # mapping over $Input{...} = the message; default: the message itself


class Point(_Strict):
    x: float
    y: float


class Layout(_Strict):
    """Canvas data: manual node positions by sequence tag and the level orientation."""

    positions: dict[str, Point] = Field(default_factory=dict)
    direction: Literal["LR", "TB"] = "LR"


class WorkflowSpec(_Strict):
    sequences: list[SequenceSpec] = Field(default_factory=list, max_length=10_000)
    options: WorkflowOptions = Field(default_factory=WorkflowOptions)
    envs: list[EnvSetting] = Field(default_factory=list)
    signals: dict[str, SignalSpec] = Field(default_factory=dict)
    queries: dict[str, QuerySpec] = Field(default_factory=dict)
    input: dict[str, Any] = Field(default_factory=dict)  # input schema
    output: Any = None  # output mapping (expressions)
    triggers: list[Trigger] = Field(default_factory=list)
    layout: Layout = Field(default_factory=Layout)
    # Code-first recording options, kept for display (canvas badges); not executed.
    recording: dict[str, Any] | None = None

    @field_validator("signals", "queries")
    @classmethod
    def _names_are_tags(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not TAG_RE.match(name):
                raise ValueError(f"invalid name {name!r}: letters, digits, _ - . only")
        return value


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}


# Durations are bounded: a century is longer than any real wait, and dates computed from a
# longer one overflow (a 500 at run start, a crashed task at a SLEEP).
MAX_DURATION_MS = 100 * 365 * 86_400_000


def duration_ms(value: Duration | None) -> int | None:
    """'5m' → 300000; 1500 → 1500; None → None. Raises ValueError on anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a duration is a number of ms or a string like '5m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        ms: float = value
    else:
        match = _DURATION_RE.match(value[:100])
        if not match:
            raise ValueError(
                f"invalid duration {value[:40]!r}: use ms or '500ms', '5s', '5m', '1h', '1d'"
            )
        ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if not ms <= MAX_DURATION_MS:  # also false for nan
        raise ValueError("a duration cannot be longer than 100 years")
    return int(ms)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of the spec, served by the API for editors and clients."""
    return WorkflowSpec.model_json_schema()
