"""Execution, Django side: drive sequences step by step, hold leases, commit every result.

One task drives one sequence (``sequence_drive``): it takes the sequence's lease, then runs
its steps in order. Each step's result is committed in ONE short transaction together
with the start of the next step (StepRun rows, journal entries, ``Run.last_seq``), so the
hot path is one transaction per step with no re-reads. When the sequence ends, the same
kind of transaction (under the run's lock) decides which sequences start next: the first
one is driven by this task without a queue hop, the others are enqueued. Only fan-out,
timers and signals go back through the queue.

Concurrency and crashes:

- A task only works on a sequence while it holds the lease (``SequenceRun.lease_owner``,
  renewed while a step runs); every commit re-checks it (a fenced UPDATE), so a worker that
  lost its lease can never write over the worker that took it. A duplicate task finds the
  lease taken or the sequence done and returns.
- Every transaction that journals first increments ``Run.last_seq`` (the run's row lock on
  PostgreSQL, the write lock on SQLite), which serializes writers of one run: fan-out/join
  decisions, signals and cancels are race-free.
- A completed step is never run again; a step in flight when its worker died is re-run by
  whoever takes the expired lease, with the same idempotency key ``<run>:<step>:<attempt>``.
- The periodic sweep (``runtime.tasks.sweep``) re-enqueues due timers, expired leases and
  interrupted compensations.

Winding down (a step failed, cancel, ROLLBACK, timeout): ``Run.stop_reason`` is set once;
running sequences stop at their next step boundary; the last one out (or the sweep)
compensates per the rollback strategy under the run's own lease, then ends the run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runtime import engine
from runtime.brokers import TaskCall, enqueue_now, is_orm_broker
from runtime.compiler import Plan, PlanStep, compile_spec
from runtime.errors import ExpressionError, RunRefused, StepError, StepTimeout, TrellisError
from runtime.expressions import (
    DictScope,
    Ref,
    evaluate_condition,
    resolve,
    resolve_masked,
    resolve_redacted,
    set_limits,
    value_budget,
)
from runtime.journal import (
    Entry,
    PreparedJournal,
    db_datetime,
    journal_insert,
    journal_insert_prepared,
    json_dumps,
    json_param,
    publish_now,
    publish_on_commit,
    raw_execute,
    raw_executemany,
    seq_allocate,
    vendor,
    write_transaction,
)
from runtime.models import RUN_ACTIVE, RUN_FINISHED, Run, SequenceRun, Signal, StepRun
from runtime.spec import SECRET_OUTGOING, EventType, duration_ms

logger = logging.getLogger("trellis.executor")

# A lease not renewed for this long is taken over (TRELLIS_LEASE_S); a worker renews its
# lease every third of that while a step runs.
LEASE_S = float(getattr(settings, "TRELLIS_LEASE_S", 10.0))
RENEW_S = LEASE_S / 3
REKICK_S = 15.0  # the sweep re-enqueues the same stuck item at most this often
# A started sequence no task has picked up yet is normally just queued (the ORM broker's
# queue row commits with it); only after this long is it presumed lost and re-enqueued.
UNCLAIMED_S = 60.0

# Event types whose work is done by a connector (possibly slow, bounded by a timeout).
WAIT_TYPES = {EventType.SLEEP, EventType.WAIT_SIGNAL, EventType.FEATURE}
ENGINE_TYPES = WAIT_TYPES | {EventType.CHECKPOINT, EventType.SET_STATE, EventType.ROLLBACK}

_HOST = socket.gethostname()[:40]

set_limits(max_length=int(getattr(settings, "TRELLIS_MAX_VALUE_LENGTH", 1_000_000)))
# What resolving one step's input (or a run's output) may produce in all: a few values at
# the cap, never thousands (see runtime.expressions.value_budget).
RESOLVE_BUDGET = 4 * int(getattr(settings, "TRELLIS_MAX_VALUE_LENGTH", 1_000_000))


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TrellisError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def new_token() -> str:
    """A lease owner id: host, process and a nonce per task."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:10]}"


class LeaseLost(Exception):
    """Another worker took over: stop without writing anything."""


# --- Queue ------------------------------------------------------------------------------------

DRIVE = "runtime.tasks.sequence_drive"
FINALIZE = "runtime.tasks.run_finalize"
CHILD_FINISHED = "runtime.tasks.child_finished"


def enqueue(calls: list[TaskCall], *, delay_s: float = 0.0) -> None:
    """Enqueue tasks once the current transaction commits.

    With the ORM broker the queue rows are written inside the transaction instead (an
    outbox: they commit atomically with the state, and no crash can lose them between
    commit and enqueue); other brokers are called in ``on_commit``.
    """
    if not calls:
        return
    if connection.in_atomic_block and is_orm_broker():
        from django_q.conf import Conf

        if not Conf.SYNC:
            enqueue_now(calls, delay_s)
            return
    transaction.on_commit(lambda: enqueue_now(calls, delay_s), robust=True)


# --- Plans ------------------------------------------------------------------------------------

_plans: dict[int, Plan] = {}
_plans_lock = threading.Lock()


def plan_for_version(version_id: int) -> Plan:
    """The compiled plan of a published version, cached per process (versions are immutable)."""
    plan = _plans.get(version_id)
    if plan is not None:
        return plan
    from designer.models import WorkflowVersion

    row = WorkflowVersion.objects.filter(pk=version_id).values("plan", "spec").first()
    if row is None:
        raise RunRefused(f"workflow version {version_id} does not exist", status=404)
    plan = Plan.model_validate(row["plan"]) if row["plan"] else compile_spec(row["spec"])
    with _plans_lock:
        if len(_plans) > 512:
            _plans.clear()
        _plans[version_id] = plan
    return plan


def plan_cache_clear() -> None:
    """Forget cached plans (tests, where rolled-back ids are reused)."""
    with _plans_lock:
        _plans.clear()


# --- Raw SQL helpers (the hot path avoids ORM overhead) ---------------------------------------

_JSON_COLUMNS = frozenset(
    {"input", "output", "error", "attempts", "wait", "rollback_error", "state"}
)


def _sql_value(column: str, value: Any) -> tuple[str, Any]:
    if column in _JSON_COLUMNS:
        if value.__class__ is Encoded:
            return json_param(), str(value)
        return json_param(), None if value is None else json_dumps(value)
    if isinstance(value, datetime):
        return "%s", db_datetime(value)
    return "%s", value


def sql_update_prepare(
    table: str, pk: int, values: dict[str, Any], *, where: str = "", params: Iterable[Any] = ()
) -> tuple[str, list[Any]]:
    """SQL and parameters for ``UPDATE table SET … WHERE id = pk [AND where]``."""
    sets: list[str] = []
    args: list[Any] = []
    for column, value in values.items():
        placeholder, arg = _sql_value(column, value)
        sets.append(f"{column} = {placeholder}")
        args.append(arg)
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE id = %s"  # noqa: S608 (columns are ours)
    args.append(pk)
    if where:
        sql += f" AND {where}"
        args.extend(params)
    return sql, args


def sql_update(
    table: str, pk: int, values: dict[str, Any], *, where: str = "", params: Iterable[Any] = ()
) -> int:
    """``UPDATE table SET … WHERE id = pk [AND where]``; returns the row count."""
    sql, args = sql_update_prepare(table, pk, values, where=where, params=params)
    return int(raw_execute(sql, args).rowcount)


def lock_run(run_id: int) -> dict[str, Any]:
    """Lock the run row for this transaction and read what decisions need."""
    qs = Run.objects.filter(pk=run_id)
    if vendor() == "postgresql":
        qs = qs.select_for_update()
    row = qs.values("status", "stop_reason", "state", "last_seq", "parent_run_id").first()
    if row is None:
        raise Run.DoesNotExist(f"run {run_id} does not exist")
    return dict(row)


# --- In-memory view of a run ----------------------------------------------------------------


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


STEP_FIELDS = (
    "id",
    "tag",
    "sequence",
    "status",
    "attempt",
    "attempts",
    "output",
    "error",
    "wait",
    "child_run_id",
    "finished_at",
    "rollback_status",
    "rollback_attempt",
)


RUN_FIELDS = (
    "id", "workflow_id", "version_id", "environment_id", "status", "input", "state", "error",
    "stop_reason", "deadline_at", "parent_run_id", "parent_step", "idempotency_key", "last_seq",
    "task_failures",
)  # fmt: skip


def _environment_columns() -> list[str]:
    from designer.models import Environment

    return [str(f.column) for f in Environment._meta.concrete_fields]


def _environment_from(values: Iterable[Any]) -> Any:
    """An Environment instance from its columns as read by a raw SELECT."""
    from django.db import models

    from designer.models import Environment

    fields = Environment._meta.concrete_fields
    row = {}
    for f, value in zip(fields, values, strict=True):
        if isinstance(f, models.JSONField):
            value = json_load(value)
        elif isinstance(f, models.DateTimeField):
            value = _as_datetime(value)
        row[f.attname] = value
    env = Environment(**row)
    env._state.adding = False
    return env


@functools.cache
def _run_select(*, also: str = "", joined_to: str = "") -> str:
    """``SELECT`` of the run (RUN_FIELDS) and its environment's row, joined (read once
    per task: an environment's host allow-list may just have changed); ``also`` adds
    columns after those, ``joined_to`` a table (``"s, "``) the WHERE clause joins in."""
    quote = connection.ops.quote_name
    columns = [f"r.{name}" for name in RUN_FIELDS]
    columns += [f"e.{quote(name)}" for name in _environment_columns()]
    return (
        f"SELECT {', '.join(columns)}{also} FROM {joined_to}runtime_run r "  # noqa: S608
        "JOIN designer_environment e ON e.id = r.environment_id"
    )


def _run_from(values: Any) -> Run:
    n = len(RUN_FIELDS)
    row = dict(zip(RUN_FIELDS, values[:n], strict=True))
    for key in ("input", "state", "error"):
        row[key] = json_load(row[key])
    row["deadline_at"] = _as_datetime(row["deadline_at"])
    run = Run(**row)
    run._state.adding = False
    run.environment = _environment_from(values[n:])
    return run


def _as_datetime(value: Any) -> datetime | None:
    """A datetime column read with raw SQL: SQLite gives naive UTC (or text), PostgreSQL
    an aware datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value  # type: ignore[no-any-return]


def run_row(run_id: int) -> Run | None:
    """The run (with its environment) as a model instance from one raw SELECT."""
    values = raw_execute(f"{_run_select()} WHERE r.id = %s", [run_id]).fetchone()
    return None if values is None else _run_from(values)


def step_rows(run_id: int) -> list[dict[str, Any]]:
    """Every StepRun of a run as dicts of STEP_FIELDS (raw SQL: this runs once per task)."""
    cursor = raw_execute(
        f"SELECT {', '.join(STEP_FIELDS)} FROM runtime_steprun WHERE run_id = %s",  # noqa: S608
        [run_id],
    )
    out = []
    for values in cursor.fetchall():
        row = dict(zip(STEP_FIELDS, values, strict=True))
        for key in ("attempts", "output", "error", "wait"):
            row[key] = json_load(row[key])
        if row["attempts"] is None:
            row["attempts"] = []
        row["finished_at"] = _as_datetime(row["finished_at"])
        out.append(row)
    return out


class RunScope:
    """Expression scope of a run: plain dicts, plus lazily loaded component data."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.base = DictScope(
            input=ctx.input,
            steps=ctx.outputs,
            sequences=ctx.seq_outputs,
            state=ctx.state,
            run=ctx.run_info,
            now=timezone.now,
        )
        self.app: str | None = None  # the app of the step being resolved ($Secret)

    def lookup(self, ref: Ref) -> Any:
        if ref.kind in ("Variable", "Constant"):
            component = self.ctx.component(ref.args[0])
            if component is None:
                return None
            data = component.variables if ref.kind == "Variable" else component.constants
            scope = DictScope(variables={ref.args[0]: data}, constants={ref.args[0]: data})
            return scope.lookup(ref)
        if ref.kind == "Secret":
            component = self.ctx.component(self.app) if self.app else None
            return component.secrets.get(ref.args[0]) if component else None
        return self.base.lookup(ref)


class RunContext:
    """What one task knows about a run: loaded once, kept in step with its own commits."""

    def __init__(self, run: Run, plan: Plan, steps: list[dict[str, Any]]) -> None:
        self.run = run
        self.plan = plan
        self.input = run.input if isinstance(run.input, dict) else {}
        self.state: dict[str, Any] = dict(run.state or {})
        self.stop_reason = run.stop_reason
        self.steps: dict[str, StepState] = {}
        self.outputs: dict[str, Any] = {}
        self.seq_outputs: dict[str, dict[str, Any]] = {}
        self.run_info: dict[str, Any] = {"id": run.pk, "status": run.status}
        self.refresh_steps(steps)
        self.scope = RunScope(self)
        self._components: dict[str, Any] = {}

    @classmethod
    def load(cls, run_id: int) -> RunContext | None:
        run = run_row(run_id)
        return None if run is None else cls.of(run)

    @classmethod
    def of(cls, run: Run) -> RunContext:
        return cls(run, plan_for_version(run.version_id), step_rows(run.pk))

    def refresh_steps(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            st = StepState(**row)
            self.steps[st.tag] = st
            self._remember(st)
        self.run_info["completed_steps"] = [
            t for t, s in self.steps.items() if s.status == "completed"
        ]

    def _remember(self, st: StepState) -> None:
        if st.status in ("completed", "rolled_back"):
            self.outputs[st.tag] = st.output
            self.seq_outputs.setdefault(st.sequence, {})[st.tag] = st.output

    def record_output(self, st: StepState) -> None:
        self._remember(st)
        if st.status == "completed":
            self.run_info["completed_steps"].append(st.tag)

    def component(self, tag: str | None) -> Any:
        if not tag:
            return None
        if tag not in self._components:
            from runtime.connectors.loader import component_for

            env = self.run.environment
            try:
                self._components[tag] = component_for(
                    product_id=env.product_id, environment_id=env.pk, tag=tag
                )
            except StepError:
                self._components[tag] = None
        return self._components[tag]

    def condition_holds(self, text: str | None) -> bool:
        if not text:
            return True
        return evaluate_condition(text, self.scope)

    def resolve_input(self, value: Any, app: str | None, type_: str) -> tuple[Any, Any]:
        """``(resolved, redacted)`` input of a step (or rollback) of type ``type_``.

        Only an event that sends its input out in its own component's call
        (``SECRET_OUTGOING``) may see its component's secrets; any other step gets every
        expression involving a secret as ``•••`` (the compiler refuses such specs: this is
        the run-time guard for plans that were not compiled by it)."""
        with value_budget(RESOLVE_BUDGET):
            if type_ not in SECRET_OUTGOING:
                masked = resolve_masked(value, self.scope)
                return masked, masked
            self.scope.app = app
            try:
                return resolve_redacted(value, self.scope)
            finally:
                self.scope.app = None


# --- Running a connector with a bound on time ---------------------------------------------------

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _step_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="step")
        return _pool


def _abandon_pool() -> None:
    """A step thread is stuck past its timeout: leave it and use a fresh one."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = None


def run_bounded(
    fn: Callable[[], Any], *, timeout_s: float | None, renew: Callable[[], None] | None
) -> Any:
    """Run ``fn`` and keep the lease alive while it runs.

    Without a timeout it runs right here (no thread hop: the hot path) while the heartbeat
    thread renews the lease if it takes long. With one, it runs in the step thread and
    raises StepTimeout when it takes longer than ``timeout_s`` (the thread is then
    abandoned, not killed: Python cannot kill a thread).
    """
    if not timeout_s:
        with _heartbeat.watch(renew):
            return fn()
    future = _step_pool().submit(fn)
    deadline = time.monotonic() + timeout_s
    while True:
        wait = min(RENEW_S, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            if time.monotonic() >= deadline:
                _abandon_pool()
                raise StepTimeout(
                    f"step timed out after {timeout_s:.3g} s", retryable=True
                ) from None
            if renew is not None:
                renew()


class _Heartbeat:
    """One daemon thread per process renewing the lease of a step that runs long.

    ``watch`` only sets two attributes (no lock, no wake-up), so fast steps pay nothing;
    the thread looks once a second and renews when the current step is older than RENEW_S.
    """

    def __init__(self) -> None:
        self.renew: Callable[[], None] | None = None
        self.since = 0.0
        self.renewed = 0.0
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def watch(self, renew: Callable[[], None] | None) -> Iterator[None]:
        if renew is None:
            yield
            return
        self.ensure_thread()
        self.since = self.renewed = time.monotonic()
        self.renew = renew
        try:
            yield
        finally:
            self.renew = None

    def ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self.loop, name="lease-heartbeat", daemon=True
                )
                self.thread.start()

    def loop(self) -> None:
        while True:
            time.sleep(1.0)
            renew = self.renew
            if renew is None or time.monotonic() - self.renewed < RENEW_S:
                continue
            try:
                renew()
                self.renewed = time.monotonic()
            except Exception:
                logger.exception("lease renewal failed")
            finally:
                connection.close()  # this thread's own connection


_heartbeat = _Heartbeat()


# --- Driving sequences --------------------------------------------------------------------------


@dataclass
class Pending:
    """Changes gathered for the next commit of a sequence."""

    entries: list[Entry] = field(default_factory=list)
    steps: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class Stop(Exception):  # control flow, not an error
    """The sequence stops here (parked, stopped, failed, lease lost); value says why."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


def _error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TrellisError):
        return exc.as_json()
    return {"code": "step_failed", "message": f"{type(exc).__name__}: {exc}", "retryable": True}


class SequenceDriver:
    """Drives the sequences of one run within one task."""

    def __init__(self, ctx: RunContext, token: str) -> None:
        self.ctx = ctx
        self.token = token
        self.run_id = ctx.run.pk
        self.seq_id = 0
        self.seq_tag = ""
        self.deadline = ctx.run.deadline_at
        self.max_concurrency = ctx.plan.options.max_concurrency
        self.renewed_at = time.monotonic()
        self.lock_sql = " FOR UPDATE" if vendor() == "postgresql" else ""
        self.progressed = False  # a step finished since the run's task-failure count was read

    # ---- commits

    def commit(
        self,
        pending: Pending,
        *,
        seq_values: dict[str, Any] | None = None,
        release: bool = False,
        after: Callable[[], None] | None = None,
        run_values: dict[str, Any] | None = None,
    ) -> None:
        """One transaction: take journal seqs (the run's row lock) only while we still own
        the sequence's lease (fenced), write the steps, insert the journal.

        ``run_values`` also set columns of the run — only while it is not winding down
        (no ``stop_reason``): the run's end, committed with its last step.

        Raises LeaseLost (nothing written) when another worker took the sequence over,
        or, with ``run_values``, when the run is winding down (or either: the caller
        goes the general way, which tells them apart).
        """
        now = timezone.now()
        n = len(pending.entries)
        stamp = db_datetime(now)
        # Serialize everything first: the write lock is then held only for the statements.
        values: dict[str, Any] = dict(seq_values or {})
        if release:
            values.update(lease_owner="", lease_until=None)
        elif time.monotonic() - self.renewed_at > RENEW_S:
            values["lease_until"] = now + timedelta(seconds=LEASE_S)
        updates = [sql_update_prepare("runtime_steprun", pk, v) for pk, v in pending.steps]
        if values:
            updates.append(sql_update_prepare("runtime_sequencerun", self.seq_id, values))
        journal = PreparedJournal(pending.entries, now)
        run = self.ctx.run
        published: list[dict[str, Any]] = []
        alloc = self.alloc_sql(n, stamp, run_values)
        if after is None and vendor() == "postgresql":
            self.commit_one_statement(n, alloc, updates, journal)
            if values:
                self.renewed_at = time.monotonic()
            self.reset_task_failures()
            return
        txn = transaction.atomic() if after is not None else write_transaction()
        with txn as raw_txn:
            row = raw_execute(*alloc).fetchone()
            if row is None:
                raise LeaseLost()
            last, stop = row
            self.ctx.stop_reason = stop
            for sql, args in updates:
                raw_execute(sql, args)
            published = journal_insert_prepared(
                self.run_id,
                run.workflow_id,
                run.environment_id,
                last - n + 1,
                journal,
                publish=not raw_txn,
            )
            if after is not None:
                after()
        if raw_txn:
            publish_now(published)
        if values:
            self.renewed_at = time.monotonic()
        self.reset_task_failures()

    def reset_task_failures(self) -> None:
        """A step finished and was committed: the run is making progress again, so the
        poison-run count starts over (one read of an attribute on the hot path)."""
        if self.progressed and self.ctx.run.task_failures:
            Run.objects.filter(pk=self.run_id).update(task_failures=0)
            self.ctx.run.task_failures = 0

    def alloc_sql(
        self, n: int, stamp: Any, run_values: dict[str, Any] | None
    ) -> tuple[str, list[Any]]:
        """The fenced journal-seq allocation: ``UPDATE runtime_run … RETURNING last_seq,
        stop_reason``, a row only while we hold the sequence's lease (and, with
        ``run_values``, while the run is not winding down).

        Waking sequences move the run (back) to running. On PostgreSQL the fence locks our
        sequence row, so a worker taking over an expired lease waits for this commit and
        then sees what it wrote."""
        sets = ["last_seq = last_seq + %s"]
        args: list[Any] = [n]
        if not run_values or "status" not in run_values:
            sets.append(
                "status = CASE WHEN status IN ('pending', 'waiting') THEN 'running' ELSE status END"
            )
        sets.append("started_at = COALESCE(started_at, %s)")
        args.append(stamp)
        for column, value in (run_values or {}).items():
            placeholder, arg = _sql_value(column, value)
            sets.append(f"{column} = {placeholder}")
            args.append(arg)
        stopping = " AND stop_reason = ''" if run_values else ""
        sql = (
            f"UPDATE runtime_run SET {', '.join(sets)} WHERE id = %s{stopping} "  # noqa: S608
            "AND EXISTS (SELECT 1 FROM runtime_sequencerun "
            f"WHERE id = %s AND lease_owner = %s{self.lock_sql}) RETURNING last_seq, stop_reason"
        )
        return sql, [*args, self.run_id, self.seq_id, self.token]

    def commit_one_statement(
        self,
        n: int,
        alloc: tuple[str, list[Any]],
        updates: list[tuple[str, list[Any]]],
        journal: PreparedJournal,
    ) -> None:
        """PostgreSQL: the whole step commit as ONE statement (data-modifying CTEs), so it
        costs one round trip and commits on its own. Every write depends on the fenced
        allocation, so a lost lease writes nothing."""
        ctes = [f"alloc AS ({alloc[0]})"]
        params: list[Any] = list(alloc[1])
        for i, (sql, args) in enumerate(updates):
            ctes.append(f"u{i} AS ({sql} AND EXISTS (SELECT 1 FROM alloc))")  # noqa: S608
            params.extend(args)
        if journal.rows:
            first = "(%s::int, %s::text, %s::text, %s::jsonb)"
            values = ", ".join([first] + ["(%s, %s, %s, %s)"] * (len(journal.rows) - 1))
            ctes.append(
                "j AS (INSERT INTO runtime_journalentry (run_id, seq, kind, step, data, at) "  # noqa: S608
                "SELECT %s, alloc.last_seq - %s + v.k, v.kind, v.step, v.data, %s "
                f"FROM alloc, (VALUES {values}) AS v(k, kind, step, data))"
            )
            params.extend([self.run_id, n, journal.rows[0][3]])
            for k, (kind, step, data_json, _at) in enumerate(journal.rows, start=1):
                params.extend([k, kind, step, data_json])
        sql = f"WITH {', '.join(ctes)} SELECT last_seq, stop_reason FROM alloc"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            raise LeaseLost()
        last, stop = row
        self.ctx.stop_reason = stop
        run = self.ctx.run
        published = journal.published(
            self.run_id, run.workflow_id, run.environment_id, last - n + 1
        )
        if connection.in_atomic_block:
            publish_on_commit(published)
        else:
            publish_now(published)

    def renew(self) -> None:
        """Extend our lease while a long step runs (autocommit)."""
        sql_update(
            "runtime_sequencerun",
            self.seq_id,
            {"lease_until": timezone.now() + timedelta(seconds=LEASE_S)},
            where="lease_owner = %s",
            params=[self.token],
        )

    # ---- the loop

    def drive(self, seq_id: int, seq_tag: str) -> None:
        """Drive ``seq_tag`` and then whatever this task is handed next, until nothing."""
        next_seq: tuple[int, str] | None = (seq_id, seq_tag)
        while next_seq is not None:
            self.seq_id, self.seq_tag = next_seq
            self.renewed_at = time.monotonic()
            try:
                next_seq = self.drive_one()
            except Stop as stop:
                logger.debug("sequence %s of run %s stops: %s", self.seq_tag, self.run_id, stop.why)
                next_seq = None
                if stop.why == "finalize":
                    finalize_task(self.run_id)  # a crash there is counted, not raised

    def drive_one(self) -> tuple[int, str] | None:
        plan = self.ctx.plan
        steps = plan.sequence(self.seq_tag).events
        pending = Pending()
        i = 0
        while True:
            while i < len(steps) and self.ctx.steps[steps[i].tag].status in engine.STEP_FINISHED:
                i += 1
            if self.ctx.stop_reason:
                self.flush(pending)
                self.stop_sequence()
            if self.deadline is not None and timezone.now() >= self.deadline:
                self.flush(pending)
                self.wind_down("timeout", {"code": "run_timeout", "message": "the run timed out"})
            if i >= len(steps):
                return self.complete_sequence(pending)
            step = steps[i]
            try:
                self.step_once(step, self.ctx.steps[step.tag], pending)
            except (Stop, LeaseLost, OperationalError, InterfaceError):
                raise  # control flow, or the database is unwell (the task retries, bounded)
            except Exception as exc:
                # A bug or an unforeseen value anywhere in handling this step: the step
                # fails for good (journaled, compensation per the rollback strategy)
                # instead of crashing this task on every re-lease.
                logger.exception("run %s: step %s could not be handled", self.run_id, step.tag)
                pending.entries.clear()
                pending.steps.clear()
                self.fail_after_error(step.tag, exc)

    def step_once(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        if st.status in ("pending", "retrying"):
            try:
                holds = self.ctx.condition_holds(step.condition)
            except ExpressionError as exc:
                self.begin(step, st, pending)
                self.fail(step, st, StepError(f"condition: {exc}", retryable=False), pending)
                return
            if not holds:
                self.skip(step, st, pending)
                return
            self.begin(step, st, pending)
        if step.type in ENGINE_TYPES:
            self.flush(pending)
            self.engine_step(step, st)
            return
        if pending.entries:
            self.flush(pending)
        self.connector_step(step, st, pending)

    def fail_after_error(self, tag: str, exc: BaseException) -> None:
        """Fail step ``tag`` (no retry) from what the database holds, after ``exc`` left
        this task's view of the run unknown."""
        ctx = RunContext.load(self.run_id)
        if ctx is None:
            raise Stop("the run was deleted")
        self.ctx = ctx
        st = ctx.steps[tag]
        if st.status in engine.STEP_FINISHED:
            return
        step = ctx.plan.step(tag)
        pending = Pending()
        if st.status in ("pending", "retrying"):
            self.begin(step, st, pending)
        message = f"the engine could not handle this step: {_describe(exc)}"
        error = StepError(message, retryable=False)
        self.fail(step, st, error, pending)

    def flush(self, pending: Pending) -> None:
        if pending.entries or pending.steps:
            self.commit(pending)
            pending.entries.clear()
            pending.steps.clear()

    # ---- step transitions (gathered into `pending`, committed by the caller)

    def skip(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        st.status = "skipped"
        pending.steps.append((st.id, {"status": "skipped", "finished_at": timezone.now()}))
        pending.entries.append(("step_skipped", step.tag, {"condition": step.condition}))

    def begin(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        """Start the next attempt: resolve the input (secrets redacted for storage)."""
        now = timezone.now()
        st.attempt += 1
        st.status = "running"
        st.input_error = None
        stored: Encoded | None = None
        try:
            st.resolved, redacted = self.ctx.resolve_input(step.input, step.app, step.type)
            if redacted is not None:
                stored = json_bounded(
                    redacted, limit_setting="TRELLIS_MAX_STEP_INPUT_BYTES", what="the input"
                )
        except Exception as exc:  # any input that cannot be built is the step's own error
            st.resolved = None
            st.input_error = _describe(exc)
        st.attempts = [*st.attempts, {"n": st.attempt, "started_at": now.isoformat()}]
        values = {
            "status": "running",
            "attempt": st.attempt,
            "input": stored,
            "started_at": now,
            "next_attempt_at": None,
            "attempts": st.attempts,
        }
        if st.wait is not None or st.child_run_id is not None:
            # A retried wait or child starts over.
            st.wait = None
            st.child_run_id = None
            values.update(wait=None, child_run_id=None)
        pending.steps.append((st.id, values))
        data: dict[str, Any] = {"attempt": st.attempt}
        pending.entries.append(("step_started", step.tag, data))
        self.ctx.run_info["current_step"] = step.tag

    def _close_attempt(self, st: StepState, status: str, error: Any = None) -> None:
        if st.attempts:
            last = dict(st.attempts[-1])
            last.update(finished_at=timezone.now().isoformat(), status=status)
            if error is not None:
                last["error"] = error
            st.attempts = [*st.attempts[:-1], last]

    def complete(
        self,
        step: PlanStep,
        st: StepState,
        output: Any,
        pending: Pending,
        *,
        encoded: Encoded | None = None,
        **extra: Any,
    ) -> None:
        if encoded is None:  # raises (before anything changes) when it cannot be stored
            encoded = json_bounded(
                output, limit_setting="TRELLIS_MAX_STEP_OUTPUT_BYTES", what="the output"
            )
        self.progressed = True
        now = timezone.now()
        self._close_attempt(st, "completed")
        st.status = "completed"
        st.output = output
        st.finished_at = now
        st.resolved = None
        self.ctx.record_output(st)
        values = {
            "status": "completed",
            "output": encoded,
            "error": None,
            "finished_at": now,
            "attempts": st.attempts,
            "wait": None,
        }
        values.update(extra)
        pending.steps.append((st.id, values))
        pending.entries.append(
            ("step_completed", step.tag, {"attempt": st.attempt, "output": output})
        )

    # ---- connector steps

    def connector_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        if st.resolved is None and st.input_error is None:
            # Resumed after a crash: the start was committed, the input was not kept.
            try:
                st.resolved, _ = self.ctx.resolve_input(step.input, step.app, step.type)
            except Exception as exc:
                st.input_error = _describe(exc)
        logs: list[dict[str, Any]] = []
        try:
            if st.input_error is not None:
                raise StepError(f"input: {st.input_error}", retryable=False)
            output = self.call_connector(step, st, logs)
            # Fail now (no retry), not in the commit, when it cannot be stored.
            encoded = json_bounded(
                output, limit_setting="TRELLIS_MAX_STEP_OUTPUT_BYTES", what="the output"
            )
        except Exception as exc:
            for log in logs:
                pending.entries.append(("log", step.tag, log))
            self.fail(step, st, exc, pending)
            return
        for log in logs:
            pending.entries.append(("log", step.tag, log))
        self.complete(step, st, output, pending, encoded=encoded)
        self.begin_following(step, pending)
        if self.sequence_done(step):
            return  # committed together with the sequence's completion
        self.commit(pending)
        pending.entries.clear()
        pending.steps.clear()

    def sequence_done(self, step: PlanStep) -> bool:
        events = self.ctx.plan.sequence(step.sequence).events
        return all(
            self.ctx.steps[e.tag].status in engine.STEP_FINISHED for e in events[step.index + 1 :]
        )

    def begin_following(self, step: PlanStep, pending: Pending) -> None:
        """Fold the start (or skip) of the following steps into the same commit."""
        if self.ctx.stop_reason or (self.deadline is not None and timezone.now() >= self.deadline):
            return
        events = self.ctx.plan.sequence(step.sequence).events
        for nxt in events[step.index + 1 :]:
            st = self.ctx.steps[nxt.tag]
            if st.status != "pending":
                return
            try:
                holds = self.ctx.condition_holds(nxt.condition)
            except ExpressionError:
                return
            if not holds:
                self.skip(nxt, st, pending)
                continue
            if nxt.type not in ENGINE_TYPES:
                self.begin(nxt, st, pending)
            return

    def call_connector(self, step: PlanStep, st: StepState, logs: list[dict[str, Any]]) -> Any:
        from runtime.connectors import execute
        from runtime.connectors.code import collect_logs
        from runtime.connectors.loader import connector_call

        timeout_s = step.timeout_ms / 1000 if step.timeout_ms else None
        if self.deadline is not None:
            left = max(0.001, (self.deadline - timezone.now()).total_seconds())
            timeout_s = min(timeout_s, left) if timeout_s else left
        call = connector_call(
            type=step.type,
            event=step.event,
            input=st.resolved,
            environment=self.ctx.run.environment,
            app=step.app,
            idempotency_key=engine.idempotency_key(self.run_id, step.tag, st.attempt),
            timeout_s=timeout_s,
            run_id=self.run_id,
            step=step.tag,
        )

        def work() -> Any:
            try:
                with collect_logs(logs):
                    return execute(call)
            finally:
                secrets = call.component.secrets if call.component else None
                if secrets and logs:
                    from designer.secrets import redact

                    logs[:] = redact(logs, list(secrets.values()))

        return run_bounded(work, timeout_s=timeout_s, renew=self.renew)

    def fail(self, step: PlanStep, st: StepState, exc: BaseException, pending: Pending) -> None:
        error = _error_json(exc)
        # An expression that cannot be evaluated gives the same error on every try.
        retryable = (
            exc.retryable if isinstance(exc, StepError) else not isinstance(exc, TrellisError)
        )
        decision = engine.on_step_failure(step, attempt=st.attempt, retryable=retryable)
        self._close_attempt(st, "failed", error)
        st.resolved = None
        now = timezone.now()
        if isinstance(decision, engine.Retry):
            data = {"attempt": st.attempt, "error": error, "delay_ms": decision.delay_ms}
            pending.entries.append(("step_retrying", step.tag, data))
            if decision.inline:
                st.status = "retrying"
                pending.steps.append(
                    (st.id, {"status": "retrying", "error": error, "attempts": st.attempts})
                )
                self.commit(pending)
                pending.entries.clear()
                pending.steps.clear()
                time.sleep(decision.delay_ms / 1000)
                return
            due = now + timedelta(milliseconds=decision.delay_ms)
            st.status = "retrying"
            pending.steps.append(
                (
                    st.id,
                    {
                        "status": "retrying",
                        "error": error,
                        "attempts": st.attempts,
                        "next_attempt_at": due,
                    },
                )
            )
            self.park(pending, status="retrying", wake_at=due)
        if isinstance(decision, engine.FailAllowed):
            st.status = "failed_allowed"
            st.finished_at = now
            pending.steps.append(
                (
                    st.id,
                    {
                        "status": "failed_allowed",
                        "error": error,
                        "finished_at": now,
                        "attempts": st.attempts,
                    },
                )
            )
            pending.entries.append(
                ("step_failed", step.tag, {"attempt": st.attempt, "error": error, "allowed": True})
            )
            self.commit(pending)
            pending.entries.clear()
            pending.steps.clear()
            return
        st.status = "failed"
        st.finished_at = now
        pending.steps.append(
            (
                st.id,
                {"status": "failed", "error": error, "finished_at": now, "attempts": st.attempts},
            )
        )
        pending.entries.append(("step_failed", step.tag, {"attempt": st.attempt, "error": error}))
        cause = {"step": step.tag, **error}
        self.wind_down("failed", cause, pending=pending, seq_status="failed")

    # ---- parking, stopping, finishing

    def park(
        self,
        pending: Pending,
        *,
        status: str = "waiting",
        wake_at: datetime | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Release the sequence until ``wake_at`` (or a signal/child): no worker waits."""

        def parked() -> None:
            if status == "waiting":
                self.mark_run_waiting()
            if wake_at is not None:
                delay = max(0.0, (wake_at - timezone.now()).total_seconds())
                enqueue([(DRIVE, (self.seq_id,))], delay_s=delay)
            if after is not None:
                after()

        self.commit(
            pending, seq_values={"status": status, "wake_at": wake_at}, release=True, after=parked
        )
        raise Stop("parked")

    def mark_run_waiting(self) -> None:
        """Inside a commit: the run waits when no sequence runs any more."""
        statuses = SequenceRun.objects.filter(run_id=self.run_id).values_list("status", flat=True)
        if engine.run_activity(statuses) == "waiting":
            Run.objects.filter(pk=self.run_id, status="running").update(status="waiting")
            self.append_now([("run_waiting", "", {})])

    def append_now(self, entries: list[Entry]) -> None:
        """Journal entries inside an open transaction (after the run is locked)."""
        last, _status, _stop = seq_allocate(self.run_id, len(entries))
        run = self.ctx.run
        journal_insert(
            self.run_id,
            run.workflow_id,
            run.environment_id,
            last - len(entries) + 1,
            entries,
            timezone.now(),
        )

    def wind_down(
        self,
        reason: str,
        cause: dict[str, Any],
        *,
        pending: Pending | None = None,
        seq_status: str = "cancelled",
    ) -> None:
        """This sequence ends the run: set the stop reason, stop the others, and when no
        other sequence is running, compensate in this task."""
        pending = pending or Pending()
        last_out: list[bool] = []

        def decide() -> None:
            last_out.append(
                _stop_run(self.run_id, reason, cause, self.ctx, self.token, self.seq_id)
            )

        self.commit(
            pending,
            seq_values={"status": seq_status, "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        raise Stop("finalize" if last_out and last_out[0] else "stopped")

    def stop_sequence(self) -> None:
        """The run is winding down: this sequence stops; the last one out compensates."""
        last_out: list[bool] = []

        def decide() -> None:
            last_out.append(_take_finalize(self.run_id, self.token, exclude_seq=self.seq_id))

        self.commit(
            Pending(),
            seq_values={"status": "cancelled", "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        raise Stop("finalize" if last_out and last_out[0] else "stopped")

    def complete_sequence(self, pending: Pending) -> tuple[int, str] | None:
        """The sequence is done: decide what starts next, in the same transaction."""
        if self.finishes_run() and self.complete_run_with(pending):
            return None
        result: list[tuple[int, str] | None] = [None]
        finished_run: list[bool] = []
        last_out: list[bool] = []

        def decide() -> None:
            if self.ctx.stop_reason:
                # Winding down: start nothing; the last sequence out compensates.
                last_out.append(_take_finalize(self.run_id, self.token, exclude_seq=self.seq_id))
                return
            pending_after = self.schedule_next(exclude=self.seq_tag)
            result[0] = pending_after[0]
            finished_run.append(pending_after[1])

        pending.entries.append(("sequence_completed", self.seq_tag, {}))
        self.commit(
            pending,
            seq_values={"status": "completed", "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        if last_out:
            raise Stop("finalize" if last_out[0] else "stopped")
        if finished_run and finished_run[0]:
            return None
        if result[0] is None:
            return self.steal()
        return result[0]

    def finishes_run(self) -> bool:
        """Whether this sequence's end is the run's end, with nothing else to decide: the
        only sequence of a run that has no parent to wake and no child runs to close."""
        ctx = self.ctx
        return (
            len(ctx.plan.sequences) == 1
            and not ctx.stop_reason
            and not ctx.run.parent_run_id
            and not _starts_children(ctx.plan)
        )

    def complete_run_with(self, pending: Pending) -> bool:
        """Commit the sequence's and the run's completion with its last step, as one
        commit; False (nothing written) when the run started winding down meanwhile or
        the lease was lost: the general way then decides."""
        now = timezone.now()
        output = _run_output(self.ctx)
        entries = [
            ("sequence_completed", self.seq_tag, {}),
            ("run_completed", "", {"output": output}),
        ]
        pending.entries.extend(entries)
        try:
            self.commit(
                pending,
                seq_values={"status": "completed", "finished_at": now},
                release=True,
                run_values={"status": "completed", "output": output, "finished_at": now,
                            "lease_owner": "", "lease_until": None, "wake_at": None},
            )  # fmt: skip
        except LeaseLost:
            del pending.entries[-len(entries) :]
            return False
        self.ctx.run.status = "completed"
        return True

    def refresh(self) -> None:
        """Load what other tasks of this run committed: finished steps and the state."""
        ctx = self.ctx
        rows = raw_execute(
            "SELECT tag, status, output FROM runtime_steprun WHERE run_id = %s AND status IN "
            "('completed', 'failed_allowed', 'skipped', 'rolled_back', 'failed')",
            [self.run_id],
        ).fetchall()
        for tag, status, output in rows:
            st = ctx.steps.get(tag)
            if st is None or st.status == status:
                continue
            st.status = status
            st.output = json_load(output)
            ctx.record_output(st)
        row = raw_execute("SELECT state FROM runtime_run WHERE id = %s", [self.run_id]).fetchone()
        ctx.state.clear()
        ctx.state.update(json_load(row[0]) or {} if row else {})

    def schedule_next(self, *, exclude: str) -> tuple[tuple[int, str] | None, bool]:
        """Inside a commit (run locked): start ready sequences, keep one for this task.

        Returns (sequence to drive next, whether the run just completed).
        """
        ctx = self.ctx
        plan = ctx.plan
        rows = raw_execute(
            "SELECT id, tag, status FROM runtime_sequencerun WHERE run_id = %s", [self.run_id]
        ).fetchall()
        ids = {tag: pk for pk, tag, _ in rows}
        statuses = {tag: status for _, tag, status in rows}
        statuses[exclude] = "completed"
        fresh: list[bool] = []

        def ensure_fresh() -> None:
            # Other tasks may have completed steps this one has not seen.
            if not fresh and len(plan.sequences) > 1:
                self.refresh()
                fresh.append(True)

        def should_skip(tag: str) -> bool:
            ensure_fresh()
            return _skip_holds(ctx, plan.sequence(tag).skip_if)

        decision = engine.schedule(
            plan.sequences, statuses, max_concurrency=self.max_concurrency, should_skip=should_skip
        )
        if decision.start or decision.all_done:
            ensure_fresh()
        now = timezone.now()
        stamp = db_datetime(now)
        entries: list[Entry] = []
        for tag in decision.skipped:
            raw_execute(
                "UPDATE runtime_sequencerun SET status = 'skipped', finished_at = %s WHERE id = %s",
                [stamp, ids[tag]],
            )
            raw_execute(
                "UPDATE runtime_steprun SET status = 'skipped', finished_at = %s "
                "WHERE run_id = %s AND sequence = %s",
                [stamp, self.run_id, tag],
            )
            for st in ctx.steps.values():
                if st.sequence == tag:
                    st.status = "skipped"
            entries.append(("sequence_skipped", tag, {"skip_if": plan.sequence(tag).skip_if}))
        keep: tuple[int, str] | None = None
        fan_out: list[int] = []
        for tag in decision.start:
            entries.append(("sequence_started", tag, {}))
            if keep is None:
                keep = (ids[tag], tag)
                sql_update(
                    "runtime_sequencerun",
                    ids[tag],
                    {"status": "running", "started_at": now, "lease_owner": self.token,
                     "lease_until": now + timedelta(seconds=LEASE_S)},
                )  # fmt: skip
            else:
                fan_out.append(ids[tag])
        if fan_out:
            marks = ", ".join(["%s"] * len(fan_out))
            raw_execute(
                "UPDATE runtime_sequencerun SET status = 'running', started_at = %s "  # noqa: S608
                f"WHERE id IN ({marks})",
                [stamp, *fan_out],
            )
        done = decision.all_done
        if done:
            entries.extend(_complete_run(ctx))
        if entries:
            self.append_now(entries)
        enqueue([(DRIVE, (pk,)) for pk in fan_out])
        if done:
            _after_run_end(ctx.run)
        return keep, done

    def steal(self) -> tuple[int, str] | None:
        """Help with this run's fanned-out sequences nobody has picked up yet: their
        queued tasks will find them taken and return."""
        now = timezone.now()
        skip_locked = " FOR UPDATE SKIP LOCKED" if vendor() == "postgresql" else ""
        row = raw_execute(
            "UPDATE runtime_sequencerun SET lease_owner = %s, lease_until = %s "  # noqa: S608
            "WHERE id = (SELECT id FROM runtime_sequencerun WHERE run_id = %s "
            f"AND status = 'running' AND lease_owner = '' ORDER BY id LIMIT 1{skip_locked}) "
            "AND status = 'running' AND lease_owner = '' RETURNING id, tag",
            [self.token, db_datetime(now + timedelta(seconds=LEASE_S)), self.run_id],
        ).fetchone()
        if row is None:
            return None
        if len(self.ctx.plan.sequences) > 1:
            self.refresh()
        return (int(row[0]), str(row[1]))

    # ---- engine steps: SLEEP, WAIT_SIGNAL, FEATURE, CHECKPOINT, SET_STATE, ROLLBACK

    def engine_step(self, step: PlanStep, st: StepState) -> None:
        pending = Pending()
        try:
            if st.input_error is not None:
                raise StepError(f"input: {st.input_error}", retryable=False)
            if st.resolved is None:
                st.resolved, _ = self.ctx.resolve_input(step.input, step.app, step.type)
            handler = {
                EventType.SLEEP: self.sleep_step,
                EventType.WAIT_SIGNAL: self.signal_step,
                EventType.FEATURE: self.feature_step,
                EventType.CHECKPOINT: self.checkpoint_step,
                EventType.SET_STATE: self.set_state_step,
                EventType.ROLLBACK: self.rollback_step,
            }[step.type]
            handler(step, st, pending)
        except (Stop, LeaseLost):
            raise
        except Exception as exc:
            if not isinstance(exc, TrellisError):
                # Engine code, not a connector: the same error comes back on every try.
                message = f"the engine could not handle this step: {_describe(exc)}"
                exc = StepError(message, retryable=False)
            self.fail(step, st, exc, pending)

    def sleep_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        now = timezone.now()
        if st.status == "running" and not st.wait:
            raw = (
                (st.resolved or {}).get("duration", step.event)
                if isinstance(st.resolved, dict)
                else step.event
            )
            try:
                ms = duration_ms(raw) or 0
            except ValueError as exc:
                raise StepError(f"SLEEP: {exc}", retryable=False) from exc
            until = now + timedelta(milliseconds=ms)
            if ms < engine.INLINE_DELAY_MS:
                time.sleep(ms / 1000)
                self.complete(step, st, {"slept_ms": ms}, pending)
                self.commit(pending)
                return
            st.status = "waiting"
            st.wait = {"until": until.isoformat(), "ms": ms}
            pending.steps.append(
                (st.id, {"status": "waiting", "wait": st.wait, "next_attempt_at": until})
            )
            pending.entries.append(("step_waiting", step.tag, {"until": until.isoformat()}))
            self.park(pending, wake_at=until)
        until = datetime.fromisoformat(str((st.wait or {}).get("until")))
        if now >= until:
            self.complete(step, st, {"slept_ms": (st.wait or {}).get("ms")}, pending)
            self.commit(pending)
            return
        self.park(pending, wake_at=until)

    def signal_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        now = timezone.now()
        if st.status == "running" and not st.wait:
            names = _signal_names(step, data)
            timeout = data.get("timeout")
            try:
                ms = duration_ms(timeout) if timeout is not None else None
            except ValueError as exc:
                raise StepError(f"WAIT_SIGNAL timeout: {exc}", retryable=False) from exc
            until = now + timedelta(milliseconds=ms) if ms is not None else None
            st.wait = {"signals": names, "until": until.isoformat() if until else None}
        names = list((st.wait or {}).get("signals") or [])
        until_raw = (st.wait or {}).get("until")
        until = datetime.fromisoformat(until_raw) if until_raw else None
        got: list[Any] = []

        def consume() -> None:
            signal = (
                Signal.objects.filter(run_id=self.run_id, name__in=names, consumed_at__isnull=True)
                .order_by("id")
                .first()
            )
            if signal is not None:
                Signal.objects.filter(pk=signal.pk).update(
                    consumed_by=step.tag, consumed_at=timezone.now()
                )
                got.append(signal)

        # Check for a stored signal under the run lock: a signal sent before the wait is kept.
        with transaction.atomic():
            lock_run(self.run_id)
            consume()
            if got:
                signal = got[0]
                payload = (
                    signal.payload
                    if isinstance(signal.payload, dict)
                    else {"value": signal.payload}
                )
                output = {**payload, "_signal": signal.name}
                self.complete(step, st, output, pending)
                self.commit(pending)
                return
        if until is not None and now >= until:
            raise StepError(f"no signal {', '.join(names)} before the timeout", retryable=False)
        st.status = "waiting"
        pending.steps.append(
            (st.id, {"status": "waiting", "wait": st.wait, "next_attempt_at": until})
        )
        pending.entries.append(("step_waiting", step.tag, {"signals": names, "until": until_raw}))
        self.park(pending, wake_at=until, after=self._recheck_signals(names))

    def _recheck_signals(self, names: list[str]) -> Callable[[], None]:
        def recheck() -> None:
            # A signal may have been stored between our check and this commit's lock.
            if Signal.objects.filter(
                run_id=self.run_id, name__in=names, consumed_at__isnull=True
            ).exists():
                SequenceRun.objects.filter(pk=self.seq_id, status="waiting").update(
                    status="running"
                )
                enqueue([(DRIVE, (self.seq_id,))])

        return recheck

    def feature_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        if st.status == "running" and not st.child_run_id:
            data = st.resolved if isinstance(st.resolved, dict) else {}
            policy = str(data.get("parent_close_policy") or "terminate")
            if policy not in ("terminate", "abandon", "request_cancel"):
                raise StepError(f"unknown parent_close_policy '{policy}'", retryable=False)
            child_input = (
                data["input"]
                if isinstance(data.get("input"), dict)
                else {k: v for k, v in data.items() if k != "parent_close_policy"}
            )

            def start_child() -> None:
                from runtime.services import run_start_child

                try:
                    child = run_start_child(
                        parent=self.ctx.run,
                        step=step.tag,
                        workflow_tag=step.event,
                        input=child_input,
                        policy=policy,
                        attempt=st.attempt,
                    )
                except RunRefused as exc:
                    raise StepError(f"child workflow: {exc}", retryable=False) from exc
                st.child_run_id = child.pk
                st.wait = {"child": child.pk}
                StepRun.objects.filter(pk=st.id).update(child_run=child.pk, wait=st.wait)
                self.append_now([("step_waiting", step.tag, {"child": child.pk})])

            st.status = "waiting"
            pending.steps.append((st.id, {"status": "waiting"}))
            self.park(pending, after=start_child)
        child_row = (
            Run.objects.filter(pk=st.child_run_id or 0).values("status", "output", "error").first()
        )
        if child_row is None:
            raise StepError("the child run was deleted", retryable=False)
        if child_row["status"] == "completed":
            self.complete(step, st, child_row["output"], pending)
            self.commit(pending)
            return
        if child_row["status"] in RUN_FINISHED:
            raise StepError(
                f"child run {st.child_run_id} ended {child_row['status']}",
                retryable=True,  # the step's own retries decide: a new child each time
                details={"child": st.child_run_id, "error": child_row["error"]},
            )
        self.park(pending)

    def checkpoint_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        name = str(data.get("name") or step.event)
        payload = data.get("data", data)
        record = {"data": payload, "step": step.tag, "at": timezone.now().isoformat()}

        def save() -> None:
            state = lock_run(self.run_id)["state"] or {}
            checkpoints = dict(state.get("_checkpoints") or {})
            checkpoints[name] = record
            state["_checkpoints"] = checkpoints
            Run.objects.filter(pk=self.run_id).update(state=state)
            self.ctx.state.clear()
            self.ctx.state.update(state)

        self.check_state(lambda state: state.setdefault("_checkpoints", {}).update({name: record}))
        pending.entries.append(("checkpoint", step.tag, {"name": name, "data": payload}))
        self.complete(step, st, payload, pending)
        self.commit(pending, after=save)

    def set_state_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        values = st.resolved if isinstance(st.resolved, dict) else {}

        def save() -> None:
            state = lock_run(self.run_id)["state"] or {}
            state.update(values)
            Run.objects.filter(pk=self.run_id).update(state=state)
            self.ctx.state.clear()
            self.ctx.state.update(state)

        self.check_state(lambda state: state.update(values))
        pending.entries.append(("state_set", step.tag, {"values": values}))
        self.complete(step, st, values, pending)
        self.commit(pending, after=save)

    def check_state(self, change: Callable[[dict[str, Any]], Any]) -> None:
        """Refuse (StepError, no retry) a state change that makes the run state too large."""
        state = dict(self.ctx.state)
        if "_checkpoints" in state:
            state["_checkpoints"] = dict(state["_checkpoints"] or {})
        change(state)
        json_bounded(state, limit_setting="TRELLIS_MAX_STATE_BYTES", what="the run state")

    def rollback_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        reason = str(data.get("reason") or data.get("message") or "ROLLBACK event")
        self.wind_down(
            "rollback", {"step": step.tag, "code": "rollback", "message": reason}, pending=pending
        )


def json_load(value: Any) -> Any:
    """A JSON column read with raw SQL (text on SQLite and with Django's psycopg loaders)."""
    if isinstance(value, str | bytes | bytearray):
        return json.loads(value)
    return value


def _skip_holds(ctx: RunContext, text: str | None) -> bool:
    try:
        return ctx.condition_holds(text)
    except ExpressionError:
        return False


def _signal_names(step: PlanStep, data: dict[str, Any]) -> list[str]:
    names = data.get("signals", data.get("signal"))
    if names is None:
        return [step.event]
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names]


# --- Run-level transitions (inside a transaction, run locked) ------------------------------------


def _run_output(ctx: RunContext) -> Any:
    """The run's output: its output mapping resolved (a failure is the output's error)."""
    output: Any
    try:
        output = None
        if ctx.plan.output is not None:
            with value_budget(RESOLVE_BUDGET):
                output = resolve(ctx.plan.output, ctx.scope)
        json_bounded(output, limit_setting="TRELLIS_MAX_RUN_OUTPUT_BYTES", what="the run output")
    except Exception as exc:  # whatever goes wrong, the run still ends (with this error)
        output = {"error": f"output mapping failed: {_describe(exc)}"}
    return output


def _starts_children(plan: Plan) -> bool:
    """Whether a plan has FEATURE steps (its runs may have child runs to close)."""
    return any(step.type is EventType.FEATURE for step in plan.steps)


def _complete_run(ctx: RunContext) -> list[Entry]:
    """Every sequence is done: resolve the output mapping and end the run."""
    now = timezone.now()
    output = _run_output(ctx)
    Run.objects.filter(pk=ctx.run.pk).update(
        status="completed",
        output=output,
        finished_at=now,
        lease_owner="",
        lease_until=None,
        wake_at=None,
    )
    ctx.run.status = "completed"
    return [("run_completed", "", {"output": output})]


def _after_run_end(run: Run) -> None:
    """Inside the ending transaction: wake a waiting parent, close children per policy."""
    if run.parent_run_id:
        enqueue([(CHILD_FINISHED, (run.pk,))])
    children = Run.objects.filter(parent_run_id=run.pk).exclude(status__in=RUN_FINISHED)
    for child in children.values("id", "parent_close_policy"):
        policy = child["parent_close_policy"] or "terminate"
        if policy == "abandon":
            continue
        reason = "terminated" if policy == "terminate" else "cancelled"
        cause = {"code": reason, "message": f"parent run {run.pk} ended ({policy})"}
        if run_stop(run_id=child["id"], reason=reason, cause=cause):
            enqueue([(FINALIZE, (child["id"],))])


def run_stop(*, run_id: int, reason: str, cause: dict[str, Any]) -> bool:
    """Start winding a run down from outside its sequences (cancel, timeout, parent closed).

    Inside a transaction. Returns True when no sequence is running, so the caller should
    enqueue (or run) ``run_finalize``; otherwise the last running sequence does it.
    """
    row = lock_run(run_id)
    if row["status"] in RUN_FINISHED or row["stop_reason"]:
        return False
    return _stop_run(run_id, reason, cause, None, "", 0)


def _stop_run(
    run_id: int, reason: str, cause: dict[str, Any], ctx: RunContext | None, token: str, seq_id: int
) -> bool:
    """Set the stop reason (first one wins), cancel parked and pending sequences; return
    whether the caller is the last one out (and then holds the run's finalize lease)."""
    now = timezone.now()
    Run.objects.filter(pk=run_id, stop_reason="").update(stop_reason=reason, error=cause)
    parked = SequenceRun.objects.filter(
        run_id=run_id, status__in=["pending", "waiting", "retrying"]
    )
    parked.exclude(pk=seq_id).update(
        status="cancelled", finished_at=now, lease_owner="", wake_at=None
    )
    if ctx is not None:
        ctx.stop_reason = ctx.stop_reason or reason
    return _take_finalize(run_id, token or new_token(), exclude_seq=seq_id)


def _take_finalize(run_id: int, token: str, *, exclude_seq: int = 0) -> bool:
    """Inside a transaction (run locked): True when no other sequence still runs, so the
    caller is the last one out and should compensate (``run_finalize`` takes the run's
    lease itself, so a duplicate caller is harmless)."""
    running = SequenceRun.objects.filter(run_id=run_id, status="running").exclude(pk=exclude_seq)
    return not running.exists()


# --- Compensation and the end of a run ---------------------------------------------------------


def run_finalize(run_id: int) -> None:
    """Compensate a winding-down run per its rollback strategy, then end it.

    Holds the run's lease; idempotent (rolled-back steps are skipped on a retry); a
    rollback retry with a delay of a second or more re-enqueues this task instead of
    sleeping.
    """
    token = new_token()
    now = timezone.now()
    from django.db.models import Q

    taken = (
        Run.objects.filter(pk=run_id)
        .exclude(status__in=RUN_FINISHED)
        .exclude(stop_reason="")
        .filter(Q(lease_owner="") | Q(lease_until__lt=now))
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
        .update(lease_owner=token, lease_until=now + timedelta(seconds=LEASE_S))
    )
    if not taken:
        return
    if SequenceRun.objects.filter(run_id=run_id, status="running").exists():
        # A sequence still runs (its worker may have died): it finalizes when it stops.
        Run.objects.filter(pk=run_id, lease_owner=token).update(lease_owner="", lease_until=None)
        return
    ctx = RunContext.load(run_id)
    if ctx is None:
        return
    Compensator(ctx, token).execute()


class Compensator:
    def __init__(self, ctx: RunContext, token: str) -> None:
        self.ctx = ctx
        self.token = token
        self.run = ctx.run

    def journal(self, entries: list[Entry], **run_values: Any) -> None:
        with transaction.atomic():
            last, _s, _r = seq_allocate(self.run.pk, len(entries))
            if run_values:
                Run.objects.filter(pk=self.run.pk).update(**run_values)
            journal_insert(
                self.run.pk,
                self.run.workflow_id,
                self.run.environment_id,
                last - len(entries) + 1,
                entries,
                timezone.now(),
            )

    def renew(self) -> None:
        Run.objects.filter(pk=self.run.pk, lease_owner=self.token).update(
            lease_until=timezone.now() + timedelta(seconds=LEASE_S)
        )

    def views(self) -> list[engine.StepView]:
        order = {s.tag: n for n, s in enumerate(self.ctx.plan.steps)}
        out = []
        for st in self.ctx.steps.values():
            if st.tag not in order:
                continue
            step = self.ctx.plan.step(st.tag)
            out.append(
                engine.StepView(
                    tag=st.tag,
                    status=st.status,
                    finished_at=st.finished_at,
                    order=order[st.tag],
                    has_rollback=step.rollback is not None,
                    critical=step.critical,
                    is_checkpoint=step.type == EventType.CHECKPOINT,
                    rollback_status=st.rollback_status,
                )
            )
        return out

    def execute(self) -> None:
        ctx = self.ctx
        reason = self.run.stop_reason
        strategy = "none" if reason == "terminated" else ctx.plan.options.rollback_strategy
        targets = engine.compensation_targets(self.views(), strategy)
        started = any(s.rollback_status for s in ctx.steps.values())
        if targets and not started:
            self.journal([("rollback_started", "", {"steps": targets, "strategy": strategy})])
        for tag in targets:
            if not self.compensate(tag):
                return  # parked for a delayed retry
        self.end()

    def compensate(self, tag: str) -> bool:
        """Roll one step back with its retries; False when parked for a delayed retry."""
        ctx = self.ctx
        st = ctx.steps[tag]
        rb = ctx.plan.step(tag).rollback or {}
        retries = int(rb.get("retries", 2))
        delay_ms = int(rb.get("retry_delay_ms") or 0)
        while True:
            st.rollback_attempt += 1
            attempt = st.rollback_attempt
            StepRun.objects.filter(pk=st.id).update(
                rollback_status="running", rollback_attempt=attempt
            )
            st.rollback_status = "running"
            try:
                output = self.call(tag, rb, attempt)
                json_dumps(output)
            except Exception as exc:
                error = _error_json(exc)
                retryable = bool(getattr(exc, "retryable", True))
                if retryable and attempt <= retries:
                    if delay_ms < engine.INLINE_DELAY_MS:
                        self.journal(
                            [
                                (
                                    "rollback_failed",
                                    tag,
                                    {"attempt": attempt, "error": error, "retrying": True},
                                )
                            ]
                        )
                        time.sleep(delay_ms / 1000)
                        continue
                    due = timezone.now() + timedelta(milliseconds=delay_ms)
                    with transaction.atomic():
                        StepRun.objects.filter(pk=st.id).update(
                            rollback_status="retrying", rollback_error=error
                        )
                        data = {"attempt": attempt, "error": error, "retrying": True}
                        self.journal(
                            [("rollback_failed", tag, data)],
                            wake_at=due,
                            lease_owner="",
                            lease_until=None,
                        )
                        enqueue([(FINALIZE, (self.run.pk,))], delay_s=delay_ms / 1000)
                    return False
                st.rollback_status = "failed"
                with transaction.atomic():
                    StepRun.objects.filter(pk=st.id).update(
                        rollback_status="failed", rollback_error=error
                    )
                    self.journal(
                        [
                            (
                                "rollback_failed",
                                tag,
                                {"attempt": attempt, "error": error, "final": True},
                            )
                        ]
                    )
                return True
            st.rollback_status = "rolled_back"
            st.status = "rolled_back"
            with transaction.atomic():
                StepRun.objects.filter(pk=st.id).update(
                    status="rolled_back", rollback_status="rolled_back", rollback_error=None
                )
                self.journal([("step_rolled_back", tag, {"attempt": attempt, "output": output})])
            return True

    def call(self, tag: str, rb: dict[str, Any], attempt: int) -> Any:
        from runtime.connectors import execute
        from runtime.connectors.code import collect_logs
        from runtime.connectors.loader import connector_call

        resolved, _ = self.ctx.resolve_input(rb.get("input") or {}, rb.get("app"), rb["type"])
        timeout_ms = rb.get("timeout_ms")
        timeout_s = timeout_ms / 1000 if timeout_ms else None
        call = connector_call(
            type=rb["type"],
            event=rb["event"],
            input=resolved,
            environment=self.run.environment,
            app=rb.get("app"),
            idempotency_key=f"{self.run.pk}:{tag}:rollback:{attempt}",
            timeout_s=timeout_s,
            run_id=self.run.pk,
            step=tag,
        )
        logs: list[dict[str, Any]] = []

        def work() -> Any:
            with collect_logs(logs):
                return execute(call)

        return run_bounded(work, timeout_s=timeout_s, renew=self.renew)

    def end(self) -> None:
        ctx = self.ctx
        run = self.run
        reason = run.stop_reason
        steps = list(ctx.steps.values())
        failed = [s.tag for s in steps if s.rollback_status == "failed"]
        rolled = [s.tag for s in steps if s.status == "rolled_back"]
        status = engine.run_end_status(
            stop_reason=reason, rolled_back=len(rolled), rollback_failed=bool(failed)
        )
        error: dict[str, Any] | None = dict(run.error or {}) or None
        if failed:
            details = StepRun.objects.filter(run_id=run.pk, tag__in=failed).values(
                "tag", "rollback_error"
            )
            messages = {d["tag"]: (d["rollback_error"] or {}).get("message", "") for d in details}
            text = "; ".join(f"rollback of '{t}' failed: {messages.get(t, '')}" for t in failed)
            error = {
                "code": "rollback_failed",
                "message": text,
                "rollback_failed": failed,
                "cause": run.error,
            }
        now = timezone.now()
        entries: list[Entry] = []
        with transaction.atomic():
            lock_run(run.pk)
            # The ROLLBACK event that triggered this completes, naming what was undone.
            for st in steps:
                if (
                    reason == "rollback"
                    and st.status == "running"
                    and ctx.plan.step(st.tag).type == EventType.ROLLBACK
                ):
                    output = {"rolled_back_steps": rolled}
                    StepRun.objects.filter(pk=st.id).update(
                        status="completed", output=output, finished_at=now
                    )
                    entries.append(("step_completed", st.tag, {"output": output}))
            StepRun.objects.filter(
                run_id=run.pk, status__in=["pending", "running", "waiting", "retrying"]
            ).update(status="cancelled", finished_at=now)
            SequenceRun.objects.filter(run_id=run.pk).exclude(
                status__in=list(engine.SEQUENCE_FINISHED)
            ).update(status="cancelled", finished_at=now, lease_owner="")
            kind = {
                "failed": "run_failed",
                "rolled_back": "run_rolled_back",
                "cancelled": "run_cancelled",
            }.get(status, "run_failed")
            entries.append((kind, "", {"error": error, "rolled_back_steps": rolled}))
            updated = Run.objects.filter(pk=run.pk, lease_owner=self.token).update(
                status=status,
                error=error,
                finished_at=now,
                lease_owner="",
                lease_until=None,
                wake_at=None,
            )
            if not updated:
                raise LeaseLost()
            last, _s, _r = seq_allocate(run.pk, len(entries))
            journal_insert(
                run.pk, run.workflow_id, run.environment_id, last - len(entries) + 1, entries, now
            )
            run.status = status
            _after_run_end(run)


# --- The poison-run guard -----------------------------------------------------------------------
#
# A task that crashes (an engine bug, a value nothing foresaw) or whose worker dies (killed,
# out of memory, over django-q2's timeout) would be re-leased by the sweep forever. Each such
# failure is counted on the run (``Run.task_failures``, durable, journaled as
# ``task_failed``); a finished step resets the count; at TRELLIS_RUN_MAX_TASK_FAILURES the
# run is failed (compensation per its strategy, or ended outright when compensating is what
# keeps failing). A caught crash never reaches django-q2, so no failed task rows pile up.


def sequence_task(sequence_run_id: int) -> None:
    """The ``sequence_drive`` task: a crash is counted against the run, not raised."""
    try:
        sequence_drive(sequence_run_id)
    except Exception as exc:
        logger.exception("sequence task %s crashed", sequence_run_id)
        with contextlib.suppress(ObjectDoesNotExist):
            row = SequenceRun.objects.values("run_id", "tag").get(pk=sequence_run_id)
            run_task_failed(
                run_id=row["run_id"], step=row["tag"], error=_describe(exc), seq_id=sequence_run_id
            )


def finalize_task(run_id: int) -> None:
    """The ``run_finalize`` task: a crash is counted against the run, not raised."""
    try:
        run_finalize(run_id)
    except Exception as exc:
        logger.exception("finalize task of run %s crashed", run_id)
        with contextlib.suppress(ObjectDoesNotExist):
            run_task_failed(run_id=run_id, step="", error=_describe(exc), finalize=True)


def child_finished_task(child_run_id: int) -> None:
    """The ``child_finished`` task: a crash is counted against the parent run."""
    try:
        child_finished(child_run_id)
    except Exception as exc:
        logger.exception("child_finished task of run %s crashed", child_run_id)
        parent = Run.objects.filter(pk=child_run_id).values_list("parent_run_id", flat=True)
        parent_id = parent.first()
        if parent_id:
            with contextlib.suppress(ObjectDoesNotExist):
                run_task_failed(run_id=parent_id, step="", error=_describe(exc), requeue=False)


def run_task_failed(
    *,
    run_id: int,
    step: str,
    error: str,
    seq_id: int | None = None,
    finalize: bool = False,
    requeue: bool = True,
) -> int:
    """Count one failed task of a run (journaled); retry it after a short pause, or, at
    the limit, fail the run. Returns the new count."""
    limit = int(getattr(settings, "TRELLIS_RUN_MAX_TASK_FAILURES", 5))
    now = timezone.now()
    with transaction.atomic():
        row = lock_run(run_id)
        if row["status"] in RUN_FINISHED:
            return 0
        Run.objects.filter(pk=run_id).update(task_failures=F("task_failures") + 1)
        run = Run.objects.get(pk=run_id)
        count = run.task_failures
        data = {"code": "task_failed", "message": error, "failures": count, "limit": limit}
        last, _s, _r = seq_allocate(run_id, 1)
        journal_insert(
            run_id, run.workflow_id, run.environment_id, last, [("task_failed", step, data)], now
        )
        if seq_id is not None:  # free the lease now: the retry need not wait for it to expire
            SequenceRun.objects.filter(pk=seq_id, status="running").update(
                lease_owner="", lease_until=None
            )
        if finalize:
            Run.objects.filter(pk=run_id).update(lease_owner="", lease_until=None)
        if count < limit:
            if requeue:
                call = (FINALIZE, (run_id,)) if finalize else (DRIVE, (seq_id,))
                if finalize or seq_id is not None:
                    enqueue([call], delay_s=0.5 * count)  # a short, growing pause
            return count
        message = (
            f"the engine failed {count} times in a row on this run "
            f"(TRELLIS_RUN_MAX_TASK_FAILURES); last error: {error}"
        )
        cause = {"code": "task_failed", "message": message, "step": step}
        if row["stop_reason"]:
            # Compensation itself keeps failing: end the run here, as it stands.
            _run_end_broken(run, cause)
            return count
        if seq_id is not None:
            SequenceRun.objects.filter(pk=seq_id, status="running").update(
                status="failed", finished_at=now, lease_owner="", lease_until=None
            )
        if run_stop(run_id=run_id, reason="failed", cause=cause):
            enqueue([(FINALIZE, (run_id,))])
    return count


def _run_end_broken(run: Run, cause: dict[str, Any]) -> None:
    """Inside a transaction (run locked): end ``run`` failed without compensating."""
    now = timezone.now()
    StepRun.objects.filter(
        run_id=run.pk, status__in=["pending", "running", "waiting", "retrying"]
    ).update(status="cancelled", finished_at=now)
    SequenceRun.objects.filter(run_id=run.pk).exclude(
        status__in=list(engine.SEQUENCE_FINISHED)
    ).update(status="cancelled", finished_at=now, lease_owner="")
    Run.objects.filter(pk=run.pk).update(
        status="failed",
        error=cause,
        finished_at=now,
        lease_owner="",
        lease_until=None,
        wake_at=None,
    )
    last, _s, _r = seq_allocate(run.pk, 1)
    journal_insert(
        run.pk,
        run.workflow_id,
        run.environment_id,
        last,
        [("run_failed", "", {"error": cause, "rolled_back_steps": []})],
        now,
    )
    run.status = "failed"
    _after_run_end(run)


# --- Task bodies ---------------------------------------------------------------------------------


def sequence_drive(sequence_run_id: int) -> None:
    """Take the sequence's lease (or return: someone else has it, or it is done/not due)
    and drive it and whatever follows in this task."""
    token = new_token()
    now = timezone.now()
    lease_until = now + timedelta(seconds=LEASE_S)
    take = (
        "UPDATE runtime_sequencerun SET lease_owner = %s, lease_until = %s, "
        "status = 'running', wake_at = NULL "
        "WHERE id = %s AND ((status = 'running' AND (lease_owner = '' OR lease_until < %s)) "
        "OR (status IN ('waiting', 'retrying') AND wake_at <= %s)) "
        "RETURNING run_id, tag"
    )
    args = [token, db_datetime(lease_until), sequence_run_id, db_datetime(now), db_datetime(now)]
    if vendor() == "postgresql":
        # One statement: take the lease and read the run with its environment.
        select = _run_select(also=", s.tag", joined_to="s, ")
        values = raw_execute(f"WITH s AS ({take}) {select} WHERE r.id = s.run_id", args).fetchone()
        if values is None:
            return
        tag = values[-1]
        ctx = RunContext.of(_run_from(values[:-1]))
    else:
        row = raw_execute(take, args).fetchone()
        if row is None:
            return
        run_id, tag = row
        loaded = RunContext.load(run_id)
        if loaded is None:
            return
        ctx = loaded
    run_id = ctx.run.pk
    driver = SequenceDriver(ctx, token)
    try:
        if ctx.run.status in RUN_FINISHED:
            SequenceRun.objects.filter(pk=sequence_run_id, lease_owner=token).update(
                status="cancelled", lease_owner="", lease_until=None
            )
            return
        driver.drive(sequence_run_id, tag)
    except LeaseLost:
        logger.warning("run %s: lease on sequence %s lost; another worker continues", run_id, tag)


def child_finished(child_run_id: int) -> None:
    """A child run ended: wake the parent's sequence waiting on it."""
    step = (
        StepRun.objects.filter(child_run_id=child_run_id, status="waiting")
        .values("run_id", "sequence")
        .first()
    )
    if step is None:
        return
    with transaction.atomic():
        lock_run(step["run_id"])
        woke = SequenceRun.objects.filter(
            run_id=step["run_id"], tag=step["sequence"], status="waiting"
        ).values_list("id", flat=True)
        ids = list(woke)
        SequenceRun.objects.filter(pk__in=ids).update(
            status="running", wake_at=None, lease_owner=""
        )
        enqueue([(DRIVE, (pk,)) for pk in ids])


def wake_for_signal(run_id: int, name: str) -> None:
    """Inside run_signal's transaction: resume the sequence waiting on ``name``, if any."""
    for row in StepRun.objects.filter(run_id=run_id, status="waiting").values("sequence", "wait"):
        wait = row["wait"] or {}
        if name in (wait.get("signals") or []):
            ids = list(
                SequenceRun.objects.filter(
                    run_id=run_id, tag=row["sequence"], status="waiting"
                ).values_list("id", flat=True)
            )
            if not ids:
                # Already woken by an earlier signal it has not consumed yet: this one
                # is for the next waiter (two waits on one name, two signals at once).
                continue
            SequenceRun.objects.filter(pk__in=ids).update(
                status="running", wake_at=None, lease_owner=""
            )
            enqueue([(DRIVE, (pk,)) for pk in ids])
            return


def start_sequences(run: Run, plan: Plan) -> tuple[list[Entry], set[str]]:
    """At run start (inside its transaction): create the SequenceRuns with the roots
    started (``skip_if`` applied) and enqueue them. Returns the journal entries and the
    skipped sequences (whose steps the caller creates as skipped)."""
    ctx = RunContext(run, plan, [])
    statuses = {s.tag: "pending" for s in plan.sequences}
    decision = engine.schedule(
        plan.sequences,
        statuses,
        max_concurrency=plan.options.max_concurrency,
        should_skip=lambda tag: _skip_holds(ctx, plan.sequence(tag).skip_if),
    )
    stamp = db_datetime(timezone.now())
    skipped = set(decision.skipped)
    started = set(decision.start)
    rows = []
    for seq in plan.sequences:
        status = "skipped" if seq.tag in skipped else "running" if seq.tag in started else "pending"
        rows.append(
            (
                run.pk, seq.tag, status, "",
                stamp if status == "running" else None,
                stamp if status == "skipped" else None,
            )
        )  # fmt: skip
    raw_executemany(
        "INSERT INTO runtime_sequencerun (run_id, tag, status, lease_owner, started_at, "
        "finished_at) VALUES (%s, %s, %s, %s, %s, %s)",
        rows,
    )
    entries: list[Entry] = [
        ("sequence_skipped", tag, {"skip_if": plan.sequence(tag).skip_if})
        for tag in decision.skipped
    ]
    entries.extend(("sequence_started", tag, {}) for tag in decision.start)
    if started:
        ids = raw_execute(
            "SELECT id FROM runtime_sequencerun WHERE run_id = %s AND status = 'running' "
            "ORDER BY id",
            [run.pk],
        ).fetchall()
        enqueue([(DRIVE, (int(pk),)) for (pk,) in ids])
    if decision.all_done:
        entries.extend(_complete_run(ctx))
        _after_run_end(run)
    return entries, skipped


# --- The sweep: timers, expired leases, interrupted compensations, deadlines ------------------

SWEEP = "runtime.tasks.sweep"
SWEEP_EVERY_S = 2.0
BEAT_STALE_S = 8.0


def sweep_kick(*, force: bool = False) -> bool:
    """Start a chain of sweep ticks unless a live one beat recently (idempotent).

    The django-q2 Schedule calls it every minute; a starting worker calls it with
    ``force`` (the previous chain may have died with a killed worker while its tick was
    in flight): the new token retires any older chain at its next tick.
    """
    from runtime.models import EngineBeat

    now = timezone.now()
    with transaction.atomic():
        beat, _ = EngineBeat.objects.get_or_create(name="sweep")
        if vendor() == "postgresql":
            beat = EngineBeat.objects.select_for_update().get(pk=beat.pk)
        fresh = beat.beat_at is not None and (now - beat.beat_at).total_seconds() < BEAT_STALE_S
        if fresh and not force:
            return False
        beat.token = uuid.uuid4().hex
        beat.beat_at = now
        beat.save(update_fields=["token", "beat_at"])
        enqueue([(SWEEP, (beat.token,))])
    return True


def sweep_tick(token: str) -> None:
    """One tick: if ``token`` is the live chain's, schedule the next tick and sweep."""
    from runtime.models import EngineBeat

    with transaction.atomic():
        qs = EngineBeat.objects.filter(name="sweep", token=token)
        if vendor() == "postgresql":
            qs = qs.select_for_update()
        if not qs.update(beat_at=timezone.now()):
            return  # a newer chain replaced this one
        enqueue([(SWEEP, (token,))], delay_s=SWEEP_EVERY_S)
    sweep_once()


def sweep_once(*, limit: int = 500) -> dict[str, int]:
    """Re-enqueue whatever should be moving but is not; returns counts (for tests/logs)."""
    from django.db.models import Q

    now = timezone.now()
    kick_before = now - timedelta(seconds=REKICK_S)
    not_kicked = Q(kicked_at__isnull=True) | Q(kicked_at__lt=kick_before)
    counts = {"timers": 0, "leases": 0, "finalize": 0, "deadlines": 0, "children": 0}

    due = SequenceRun.objects.filter(status__in=["waiting", "retrying"], wake_at__lte=now)
    stuck = SequenceRun.objects.filter(status="running").filter(
        Q(lease_until__lt=now)
        | Q(lease_owner="", started_at__lt=now - timedelta(seconds=UNCLAIMED_S))
    )
    for name, qs in (("timers", due), ("leases", stuck)):
        ids = list(qs.filter(not_kicked).values_list("id", flat=True)[:limit])
        if name == "leases":
            ids = _count_dead_holders(ids)
        if ids:
            with transaction.atomic():
                SequenceRun.objects.filter(pk__in=ids).update(kicked_at=now)
                enqueue([(DRIVE, (pk,)) for pk in ids])
            counts[name] = len(ids)

    late = Run.objects.filter(status__in=RUN_ACTIVE, stop_reason="", deadline_at__lte=now)
    for run_id in late.values_list("id", flat=True)[:limit]:
        with transaction.atomic():
            cause = {"code": "run_timeout", "message": "the run timed out"}
            if run_stop(run_id=run_id, reason="timeout", cause=cause):
                enqueue([(FINALIZE, (run_id,))])
        counts["deadlines"] += 1

    winding = (
        Run.objects.filter(status__in=RUN_ACTIVE)
        .exclude(stop_reason="")
        .filter(Q(lease_owner="") | Q(lease_until__lt=now))
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
        .filter(not_kicked)
    )
    ids = _count_dead_finalizers(list(winding.values_list("id", flat=True)[:limit]))
    if ids:
        with transaction.atomic():
            Run.objects.filter(pk__in=ids).update(kicked_at=now)
            enqueue([(FINALIZE, (pk,)) for pk in ids])
        counts["finalize"] = len(ids)

    orphans = StepRun.objects.filter(
        child_run__isnull=False,
        status="waiting",
        child_run__status__in=list(RUN_FINISHED),
        child_run__finished_at__lt=now - timedelta(seconds=SWEEP_EVERY_S * 2),
    ).values_list("child_run_id", flat=True)[:limit]
    children = [(CHILD_FINISHED, (pk,)) for pk in orphans if pk]
    if children:
        enqueue_now(children)
        counts["children"] = len(children)
    return counts


def _count_dead_holders(ids: list[int]) -> list[int]:
    """Sequences whose lease expired while held: the worker driving them died (killed,
    out of memory, over the task timeout). Count it against the run (the poison-run
    guard); returns the ids still to re-enqueue."""
    dead = SequenceRun.objects.filter(pk__in=ids).exclude(lease_owner="")
    limit = int(getattr(settings, "TRELLIS_RUN_MAX_TASK_FAILURES", 5))
    stopped: set[int] = set()
    for seq_id, run_id, tag in dead.values_list("id", "run_id", "tag"):
        count = run_task_failed(
            run_id=run_id,
            step=tag,
            error="the worker driving this sequence stopped (killed or timed out)",
            seq_id=seq_id,
            requeue=False,
        )
        if count >= limit:
            stopped.add(seq_id)
    return [pk for pk in ids if pk not in stopped]


def _count_dead_finalizers(ids: list[int]) -> list[int]:
    """Winding-down runs whose run lease expired while held: the worker compensating them
    died. Counted like dead sequence holders; returns the ids still to re-enqueue."""
    limit = int(getattr(settings, "TRELLIS_RUN_MAX_TASK_FAILURES", 5))
    ended: set[int] = set()
    for run_id in (
        Run.objects.filter(pk__in=ids).exclude(lease_owner="").values_list("id", flat=True)
    ):
        count = run_task_failed(
            run_id=run_id,
            step="",
            error="the worker compensating this run stopped (killed or timed out)",
            finalize=True,
            requeue=False,
        )
        if count >= limit:
            ended.add(run_id)
    return [pk for pk in ids if pk not in ended]


def sweep_schedule_ensure() -> None:
    """The django-q2 Schedule that restarts a dead sweep chain every minute (idempotent)."""
    from django_q.models import Schedule

    if not Schedule.objects.filter(name="trellis-sweep").exists():
        Schedule.objects.get_or_create(
            name="trellis-sweep",
            defaults={
                "func": "runtime.tasks.sweep_kick",
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
            },
        )
