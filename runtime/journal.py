"""The journal: one row per transition of a run, numbered 1, 2, 3… without gaps.

A sequence number is taken by incrementing ``Run.last_seq`` with an UPDATE in the caller's
transaction: on PostgreSQL that UPDATE holds the run's row lock until commit, on SQLite the
IMMEDIATE transaction holds the database write lock, so concurrent writers to one run are
serialized and no number is skipped or used twice. After commit the new entries are handed
to ``runtime.live.publish`` (the live view), once per transaction.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

from runtime import live, tracing
from runtime.models import JournalEntry, Run

logger = logging.getLogger("trellis.journal")

Entry = tuple[str, str, dict[str, Any] | None]  # (kind, step, data)


def _json_default(value: Any) -> Any:
    return DjangoJSONEncoder().default(value)  # dates, decimals, UUIDs; TypeError otherwise


def json_dumps(value: Any, *, allow_nan: bool = True) -> str:
    """Compact JSON as stored in JSON columns."""
    return json.dumps(
        value,
        default=_json_default,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=allow_nan,
    )


@functools.lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def raw_execute(sql: str, params: Sequence[Any]) -> Any:
    """Execute SQL with ``%s`` placeholders in the current transaction; returns a cursor.

    On SQLite this goes straight to the sqlite3 connection: Django's cursor wrapper costs
    more than the statement itself on the one-transaction-per-step hot path.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if vendor() == "sqlite":
        if db.connection is None:
            db.ensure_connection()
        try:
            return db.connection.execute(_qmark(sql), params)
        except sqlite3.Error:
            _reraise_as_django(db)
    cursor = db.cursor()
    cursor.execute(sql, params)
    return cursor


def _reraise_as_django(db: Any) -> NoReturn:
    """Re-raise the sqlite3 error being handled as Django's own (IntegrityError,
    OperationalError "database or disk is full"…), as Django's cursor would: the callers
    (a race on an idempotency key, the API's 503 for a full disk) catch django.db's
    classes. Only on the error path, so the hot path keeps its speed."""
    with db.wrap_database_errors:
        raise
    raise AssertionError("unreachable")  # wrap_database_errors re-raises every DB-API error


_vendors: dict[str, str] = {}


def vendor() -> str:
    """The database vendor (one alias per process; looked up once: the proxy is slow)."""
    found = _vendors.get("default")
    if found is None:
        found = _vendors["default"] = connections[DEFAULT_DB_ALIAS].vendor
    return found


def json_param() -> str:
    """Placeholder for a JSON value in raw SQL: PostgreSQL wants an explicit jsonb cast."""
    return "%s::jsonb" if vendor() == "postgresql" else "%s"


def db_datetime(value: datetime) -> Any:
    """A datetime as the backend stores it (naive UTC text on SQLite), for raw SQL."""
    if vendor() == "sqlite" and value.tzinfo is not None:
        # What Django's adapt_datetimefield_value gives, without its per-call overhead.
        return str(value.astimezone(UTC).replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


def raw_executemany(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` with ``%s`` placeholders in the current transaction."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]
    if vendor() == "sqlite":
        if db.connection is None:
            db.ensure_connection()
        try:
            db.connection.executemany(_qmark(sql), rows)
        except sqlite3.Error:
            _reraise_as_django(db)
        return
    with db.cursor() as cursor:
        cursor.executemany(sql, rows)


_insert_fields: dict[type, list[Any]] = {}


def raw_insert(model: type[models.Model], values: dict[str, Any]) -> int:
    """Insert one row (defaults filled like the ORM does) and return its id.

    The ORM's create() costs several times the statement on the run-start hot path.
    """
    fields = _insert_fields.get(model)
    if fields is None:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        _insert_fields[model] = fields
    db = connections[DEFAULT_DB_ALIAS]
    columns: list[str] = []
    params: list[Any] = []
    for field in fields:
        name = field.attname
        if name in values:
            value = values[name]
        elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            value = timezone.now()
        else:
            value = field.get_default()  # the default, or "" / None as the ORM would store
        columns.append(db.ops.quote_name(field.column))
        params.append(field.get_db_prep_save(value, db))
    marks = ", ".join(["%s"] * len(columns))
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({marks}) RETURNING id"
    )
    if vendor() == "sqlite":
        return int(raw_execute(sql, params).fetchone()[0])
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def seq_allocate(
    run_id: int, count: int, *, extra_sql: str = "", extra_params: Iterable[Any] = ()
) -> tuple[Any, ...]:
    """Reserve ``count`` sequence numbers for a run; returns (last_seq, *extra columns).

    ``extra_sql`` may add assignments (", status = …") and must not reference parameters
    other than ``extra_params``. Must run inside a transaction.
    """
    row = raw_execute(
        f"UPDATE runtime_run SET last_seq = last_seq + %s{extra_sql} "  # noqa: S608 (no user text)
        "WHERE id = %s RETURNING last_seq, status, stop_reason",
        [count, *extra_params, run_id],
    ).fetchone()
    if row is None:
        raise Run.DoesNotExist(f"run {run_id} does not exist")
    return tuple(row)


class PreparedJournal:
    """Entries serialized ahead of the transaction (so the write lock is held briefly)."""

    __slots__ = ("at", "entries", "rows")

    def __init__(self, entries: list[Entry], at: datetime) -> None:
        self.at = at
        self.entries = entries
        stored_at = db_datetime(at)
        self.rows = [
            (kind, step, json_dumps(data or {}), stored_at) for kind, step, data in entries
        ]

    def published(
        self, run_id: int, workflow_id: int, environment_id: int, first_seq: int
    ) -> list[dict[str, Any]]:
        """The entries as handed to the live view once committed."""
        at_iso = self.at.isoformat()
        return [
            {
                "run": run_id,
                "workflow": workflow_id,
                "environment": environment_id,
                "seq": first_seq + offset,
                "kind": kind,
                "step": step,
                "data": data or {},
                "at": at_iso,
            }
            for offset, (kind, step, data) in enumerate(self.entries)
        ]


def journal_insert_prepared(
    run_id: int,
    workflow_id: int,
    environment_id: int,
    first_seq: int,
    prepared: PreparedJournal,
    *,
    publish: bool = True,
) -> list[dict[str, Any]]:
    """Insert prepared entries numbered from ``first_seq`` (one statement); publish after
    commit (``publish=False``: the caller publishes them itself after its commit)."""
    if not prepared.rows:
        return []
    placeholder = f"(%s, %s, %s, %s, {json_param()}, %s)"
    params: list[Any] = []
    for offset, (kind, step, data_json, stored_at) in enumerate(prepared.rows):
        params += [run_id, first_seq + offset, kind, step, data_json, stored_at]
    values = ", ".join([placeholder] * len(prepared.rows))
    raw_execute(
        "INSERT INTO runtime_journalentry (run_id, seq, kind, step, data, at) "  # noqa: S608
        f"VALUES {values}",
        params,
    )
    published = prepared.published(run_id, workflow_id, environment_id, first_seq)
    if publish:
        publish_on_commit(published)
    return published


def journal_insert(
    run_id: int,
    workflow_id: int,
    environment_id: int,
    first_seq: int,
    entries: list[Entry],
    at: datetime,
) -> list[dict[str, Any]]:
    """Insert entries numbered from ``first_seq`` with one statement; schedule publishing."""
    if not entries:
        return []
    return journal_insert_prepared(
        run_id, workflow_id, environment_id, first_seq, PreparedJournal(entries, at)
    )


def journal_extend(
    run: Run, entries: list[Entry], *, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Append several entries to a run's journal in the caller's transaction."""
    if not entries:
        return []
    last_seq, _status, _stop = seq_allocate(run.pk, len(entries))
    run.last_seq = last_seq
    first = last_seq - len(entries) + 1
    return journal_insert(
        run.pk, run.workflow_id, run.environment_id, first, entries, at or timezone.now()
    )


def journal_append(
    run: Run, kind: str, *, step: str = "", data: dict[str, Any] | None = None
) -> JournalEntry:
    """Append one entry (seq = last_seq + 1) in the caller's transaction; published after commit."""
    at = timezone.now()
    (published,) = journal_extend(run, [(kind, step, data)], at=at)
    return JournalEntry(
        run_id=run.pk, seq=published["seq"], kind=kind, step=step, data=published["data"], at=at
    )


# --- Publishing after commit ---------------------------------------------------------------


class _Batch:
    """Entries of one transaction (at one savepoint level), published together on commit."""

    def __init__(self, savepoints: set[str]) -> None:
        self.entries: list[dict[str, Any]] = []
        self.savepoints = savepoints

    def __call__(self) -> None:
        if tracing.active():  # off by default: one test of a module global
            tracing.observe(self.entries)
        publish = _live_publisher()
        if publish is not None and self.entries:
            try:
                publish(self.entries)
            except Exception:  # the live view must never break execution
                logger.exception("publishing journal entries failed")


_local = threading.local()  # the batch of the open transaction, per thread (= connection)


def _live_publisher() -> Callable[[list[dict[str, Any]]], None] | None:
    """Where committed entries go live: :func:`runtime.live.publish` (tests replace it)."""
    return live.publish


def publish_on_commit(entries: list[dict[str, Any]]) -> None:
    """Queue entries for the live view; one ``publish`` call per committed transaction.

    A rolled-back transaction (or savepoint) drops its callbacks, and with them its batch.
    """
    if not connection.in_atomic_block:
        now = _Batch(set())
        now.entries.extend(entries)
        batch_run_safely(now)
        return
    savepoints = set(connection.savepoint_ids)
    batch: _Batch | None = getattr(_local, "batch", None)
    registered = (
        batch is not None
        and batch.savepoints == savepoints
        and any(hook[1] is batch for hook in connection.run_on_commit)
    )
    if batch is None or not registered:
        batch = _Batch(savepoints)
        _local.batch = batch
        connection.on_commit(batch, robust=True)
    batch.entries.extend(entries)


def publish_now(entries: list[dict[str, Any]]) -> None:
    """Publish committed entries right away (callers that manage their own commit)."""
    if entries:
        batch = _Batch(set())
        batch.entries.extend(entries)
        batch_run_safely(batch)


@contextlib.contextmanager
def write_transaction() -> Iterator[bool]:
    """A short write transaction; yields whether it is a raw SQLite one.

    On SQLite outside any atomic block this is ``BEGIN IMMEDIATE`` … ``COMMIT`` on the
    sqlite3 connection itself: Django's atomic() bookkeeping costs more than the hot-path
    statements. Inside it, nothing may call transaction.atomic() or on_commit (the engine
    only runs its own raw statements there); elsewhere it is transaction.atomic().
    """
    db = connections[DEFAULT_DB_ALIAS]
    if vendor() != "sqlite" or db.in_atomic_block:
        with transaction.atomic():
            yield False
        return
    db.ensure_connection()
    raw = db.connection
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield True
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")


def batch_run_safely(batch: _Batch) -> None:
    try:
        batch()
    except Exception:  # the live view must never break execution
        logger.exception("publishing journal entries failed")
