"""The engine's in-memory types: rows as read from the store, a step's state in a task,
the changes gathered for the next commit, and the engine's control-flow exceptions."""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.conf import settings
from django.utils.dateparse import parse_datetime

from runtime.errors import StepError, TrellisError
from runtime.journal import Entry, json_dumps

_HOST = socket.gethostname()[:40]


class RunLock(TypedDict):
    """What decisions need of a run, read under its lock (:meth:`RunStore.lock_run`)."""

    status: str
    stop_reason: str
    state: Any
    last_seq: int
    parent_run_id: int | None


class StepRow(TypedDict):
    """A StepRun as the engine reads it (the columns of :data:`STEP_FIELDS`)."""

    id: int
    tag: str
    sequence: str
    status: str
    attempt: int
    attempts: list[dict[str, Any]]
    output: Any
    error: Any
    wait: dict[str, Any] | None
    child_run_id: int | None
    finished_at: datetime | None
    rollback_status: str
    rollback_attempt: int


STEP_FIELDS = tuple(StepRow.__annotations__)


@dataclass
class StepState:
    id: int
    tag: str
    sequence: str
    status: str
    attempt: int
    attempts: list[dict[str, Any]]
    output: Any
    error: Any
    wait: dict[str, Any] | None
    child_run_id: int | None
    finished_at: datetime | None
    rollback_status: str
    rollback_attempt: int
    # Resolved input of the attempt in flight (never stored: may hold secrets).
    resolved: Any = None
    input_error: str | None = None


@dataclass
class Pending:
    """Changes gathered for the next commit of a sequence."""

    entries: list[Entry] = field(default_factory=list)
    steps: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class LeaseLost(Exception):
    """Another worker took over: stop without writing anything."""


class Stop(Exception):  # control flow, not an error
    """The sequence stops here (parked, stopped, failed, lease lost); value says why."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


class Encoded(str):
    """A value already encoded (and checked) for a JSON column: stored as it is."""

    __slots__ = ()


def json_bounded(value: Any, *, limit_setting: str, what: str) -> Encoded:
    """``value`` as stored JSON, checked once on the text the store writes anyway: a value
    that is not JSON, holds a non-finite number, or is over the ``limit_setting`` cap is
    a non-retryable StepError (trying again produces the same value)."""
    try:
        text = json_dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StepError(f"{what} cannot be stored: {exc}", retryable=False) from None
    limit = int(getattr(settings, limit_setting))
    # Characters first (cheap); bytes only when the text could be over in UTF-8.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise StepError(
            f"{what} is larger than {limit} bytes ({limit_setting})",
            retryable=False,
            details={"limit": limit, "setting": limit_setting},
        )
    return Encoded(text)


def json_load(value: Any) -> Any:
    """A JSON column read with raw SQL (text on SQLite and with Django's psycopg loaders)."""
    if isinstance(value, str | bytes | bytearray):
        return json.loads(value)
    return value


def as_datetime(value: Any) -> datetime | None:
    """A datetime column read with raw SQL: SQLite gives naive UTC (or text), PostgreSQL
    an aware datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value  # type: ignore[no-any-return]


def describe(exc: BaseException) -> str:
    """A short text for an exception, as journaled."""
    if isinstance(exc, TrellisError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def error_json(exc: BaseException) -> dict[str, Any]:
    """A step's (or rollback's) error as stored and journaled."""
    if isinstance(exc, TrellisError):
        return exc.as_json()
    return {"code": "step_failed", "message": f"{type(exc).__name__}: {exc}", "retryable": True}


def new_token() -> str:
    """A lease owner id: host, process and a nonce per task."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:10]}"
