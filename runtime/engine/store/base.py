"""The run store: every SQL statement the engine runs, in one class.

``RunStore`` holds the SQL both dialects share (written for SQLite and PostgreSQL alike);
:mod:`runtime.engine.store.postgres` overrides what PostgreSQL does better (row locks,
``SKIP LOCKED``, a step commit as one statement). Nothing else in the engine asks which
database it runs on. The hot path uses raw SQL: the ORM's query building costs more than
the statements themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction

from designer.models import Environment
from runtime.engine.state import (
    STEP_FIELDS,
    Encoded,
    LeaseLost,
    RunLock,
    StepRow,
    as_datetime,
    json_load,
)
from runtime.engine.store.sweeps import SweepQueries
from runtime.journal import (
    PreparedJournal,
    db_datetime,
    journal_insert_prepared,
    json_dumps,
    json_param,
    publish_now,
    raw_execute,
    raw_executemany,
    write_transaction,
)
from runtime.models import Run

JSON_COLUMNS = frozenset(
    {"input", "output", "error", "attempts", "wait", "rollback_error", "state"}
)

RUN_FIELDS = (
    "id", "workflow_id", "version_id", "environment_id", "status", "input", "state", "error",
    "stop_reason", "deadline_at", "parent_run_id", "parent_step", "idempotency_key", "last_seq",
    "task_failures",
)  # fmt: skip

# A prepared statement: SQL with ``%s`` placeholders and its parameters.
Statement = tuple[str, list[Any]]


def sql_value(column: str, value: Any) -> tuple[str, Any]:
    """Placeholder and parameter of one column's value (JSON columns encoded)."""
    if column in JSON_COLUMNS:
        if value.__class__ is Encoded:
            return json_param(), str(value)
        return json_param(), None if value is None else json_dumps(value)
    if isinstance(value, datetime):
        return "%s", db_datetime(value)
    return "%s", value


def _environment_from(values: Iterable[Any]) -> Environment:
    """An Environment instance from its columns as read by a raw SELECT."""
    fields = Environment._meta.concrete_fields
    row = {}
    for f, value in zip(fields, values, strict=True):
        if isinstance(f, models.JSONField):
            value = json_load(value)
        elif isinstance(f, models.DateTimeField):
            value = as_datetime(value)
        row[f.attname] = value
    env = Environment(**row)
    env._state.adding = False
    return env


@functools.cache
def run_select(*, also: str = "", joined_to: str = "") -> str:
    """``SELECT`` of the run (RUN_FIELDS) and its environment's row, joined (read once
    per task: an environment's host allow-list may just have changed); ``also`` adds
    columns after those, ``joined_to`` a table (``"s, "``) the WHERE clause joins in."""
    quote = connection.ops.quote_name
    columns = [f"r.{name}" for name in RUN_FIELDS]
    columns += [f"e.{quote(str(f.column))}" for f in Environment._meta.concrete_fields]
    return (
        f"SELECT {', '.join(columns)}{also} FROM {joined_to}runtime_run r "  # noqa: S608
        "JOIN designer_environment e ON e.id = r.environment_id"
    )


def run_from(values: Sequence[Any]) -> Run:
    """A Run (with its environment) from the columns of :func:`run_select`."""
    n = len(RUN_FIELDS)
    row = dict(zip(RUN_FIELDS, values[:n], strict=True))
    for key in ("input", "state", "error"):
        row[key] = json_load(row[key])
    row["deadline_at"] = as_datetime(row["deadline_at"])
    run = Run(**row)
    run._state.adding = False
    run.environment = _environment_from(values[n:])
    return run


class RunStore(SweepQueries):
    """The engine's SQL, as both dialects run it (the hot path here; the rest in the
    base classes)."""

    # Appended to the fence's sequence-row subquery and to a steal's candidate query.
    fence_lock = ""
    skip_locked = ""

    # ---- generic updates

    def update_prepare(
        self, table: str, pk: int, values: dict[str, Any], *, where: str = "",
        params: Iterable[Any] = (),
    ) -> Statement:  # fmt: skip
        """SQL and parameters for ``UPDATE table SET … WHERE id = pk [AND where]``."""
        sets: list[str] = []
        args: list[Any] = []
        for column, value in values.items():
            placeholder, arg = sql_value(column, value)
            sets.append(f"{column} = {placeholder}")
            args.append(arg)
        sql = f"UPDATE {table} SET {', '.join(sets)} WHERE id = %s"  # noqa: S608 (columns are ours)
        args.append(pk)
        if where:
            sql += f" AND {where}"
            args.extend(params)
        return sql, args

    def update(
        self, table: str, pk: int, values: dict[str, Any], *, where: str = "",
        params: Iterable[Any] = (),
    ) -> int:  # fmt: skip
        """``UPDATE table SET … WHERE id = pk [AND where]``; returns the row count."""
        sql, args = self.update_prepare(table, pk, values, where=where, params=params)
        return int(raw_execute(sql, args).rowcount)

    # ---- reading a run

    def lock_run(self, run_id: int) -> RunLock:
        """Lock the run row for this transaction and read what decisions need."""
        qs = self.for_update(Run.objects.filter(pk=run_id))
        row = qs.values("status", "stop_reason", "state", "last_seq", "parent_run_id").first()
        if row is None:
            raise Run.DoesNotExist(f"run {run_id} does not exist")
        return RunLock(**row)

    def run_row(self, run_id: int) -> Run | None:
        """The run (with its environment) as a model instance from one raw SELECT."""
        values = raw_execute(f"{run_select()} WHERE r.id = %s", [run_id]).fetchone()
        return None if values is None else run_from(values)

    def step_rows(self, run_id: int) -> list[StepRow]:
        """Every StepRun of a run (raw SQL: this runs once per task)."""
        cursor = raw_execute(
            f"SELECT {', '.join(STEP_FIELDS)} FROM runtime_steprun WHERE run_id = %s",  # noqa: S608
            [run_id],
        )
        out = []
        for values in cursor.fetchall():
            row: StepRow = dict(zip(STEP_FIELDS, values, strict=True))  # type: ignore[assignment]
            row["attempts"] = json_load(row["attempts"]) or []
            for key in ("output", "error", "wait"):
                row[key] = json_load(row[key])
            row["finished_at"] = as_datetime(row["finished_at"])
            out.append(row)
        return out

    def finished_steps(self, run_id: int) -> list[tuple[str, str, Any]]:
        """``(tag, status, output)`` of the run's finished steps (another task's work)."""
        rows = raw_execute(
            "SELECT tag, status, output FROM runtime_steprun WHERE run_id = %s AND status IN "
            "('completed', 'failed_allowed', 'skipped', 'rolled_back', 'failed')",
            [run_id],
        ).fetchall()
        return [(tag, status, json_load(output)) for tag, status, output in rows]

    def run_state(self, run_id: int) -> dict[str, Any]:
        """The run's state as committed."""
        row = raw_execute("SELECT state FROM runtime_run WHERE id = %s", [run_id]).fetchone()
        return (json_load(row[0]) or {}) if row else {}

    # ---- the fenced step commit

    def alloc_sql(
        self, *, run_id: int, seq_id: int, token: str, n: int, stamp: Any,
        run_values: dict[str, Any] | None,
    ) -> Statement:  # fmt: skip
        """The fenced journal-seq allocation: ``UPDATE runtime_run … RETURNING last_seq,
        stop_reason``, a row only while ``token`` holds the sequence's lease (and, with
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
            placeholder, arg = sql_value(column, value)
            sets.append(f"{column} = {placeholder}")
            args.append(arg)
        stopping = " AND stop_reason = ''" if run_values else ""
        sql = (
            f"UPDATE runtime_run SET {', '.join(sets)} WHERE id = %s{stopping} "  # noqa: S608
            "AND EXISTS (SELECT 1 FROM runtime_sequencerun "
            f"WHERE id = %s AND lease_owner = %s{self.fence_lock}) RETURNING last_seq, stop_reason"
        )
        return sql, [*args, run_id, seq_id, token]

    def commit_step(
        self, run: Run, n: int, alloc: Statement, updates: list[Statement],
        journal: PreparedJournal, *, seen_stop: Callable[[str], None],
        after: Callable[[], None] | None,
    ) -> None:  # fmt: skip
        """Run the fenced allocation, the updates and the journal insert as one
        transaction; ``seen_stop`` gets the run's stop reason before ``after`` runs inside
        the transaction. Raises LeaseLost (nothing written) when the fence holds no row."""
        txn = transaction.atomic() if after is not None else write_transaction()
        with txn as raw_txn:
            row = raw_execute(*alloc).fetchone()
            if row is None:
                raise LeaseLost()
            last, stop = row
            seen_stop(stop)
            for sql, args in updates:
                raw_execute(sql, args)
            published = journal_insert_prepared(
                run.pk, run.workflow_id, run.environment_id, last - n + 1, journal,
                publish=not raw_txn,
            )  # fmt: skip
            if after is not None:
                after()
        if raw_txn:
            publish_now(published)

    # ---- sequences

    def take_sequence(
        self, seq_id: int, token: str, now: datetime, lease_until: datetime
    ) -> tuple[Run, str] | None:
        """Take a sequence's lease when it is free (or expired) or its timer is due;
        returns its run (with the environment) and its tag, or None."""
        row = raw_execute(*self._take_sql(seq_id, token, now, lease_until)).fetchone()
        if row is None:
            return None
        run = self.run_row(row[0])
        return None if run is None else (run, str(row[1]))

    def _take_sql(self, seq_id: int, token: str, now: datetime, lease_until: datetime) -> Statement:
        sql = (
            "UPDATE runtime_sequencerun SET lease_owner = %s, lease_until = %s, "
            "status = 'running', wake_at = NULL "
            "WHERE id = %s AND ((status = 'running' AND (lease_owner = '' OR lease_until < %s)) "
            "OR (status IN ('waiting', 'retrying') AND wake_at <= %s)) "
            "RETURNING run_id, tag"
        )
        stamp = db_datetime(now)
        return sql, [token, db_datetime(lease_until), seq_id, stamp, stamp]

    def renew_sequence(self, seq_id: int, token: str, lease_until: datetime) -> None:
        """Extend ``token``'s lease on a sequence (autocommit)."""
        self.update(
            "runtime_sequencerun", seq_id, {"lease_until": lease_until},
            where="lease_owner = %s", params=[token],
        )  # fmt: skip

    def sequence_rows(self, run_id: int) -> list[tuple[int, str, str]]:
        """``(id, tag, status)`` of every sequence of a run."""
        return [
            (int(pk), str(tag), str(status))
            for pk, tag, status in raw_execute(
                "SELECT id, tag, status FROM runtime_sequencerun WHERE run_id = %s", [run_id]
            ).fetchall()
        ]

    def skip_sequence(self, run_id: int, seq_id: int, tag: str, now: datetime) -> None:
        """Mark a sequence and its steps skipped."""
        stamp = db_datetime(now)
        raw_execute(
            "UPDATE runtime_sequencerun SET status = 'skipped', finished_at = %s WHERE id = %s",
            [stamp, seq_id],
        )
        raw_execute(
            "UPDATE runtime_steprun SET status = 'skipped', finished_at = %s "
            "WHERE run_id = %s AND sequence = %s",
            [stamp, run_id, tag],
        )

    def start_sequence_leased(
        self, seq_id: int, token: str, now: datetime, lease_until: datetime
    ) -> None:
        """Start a sequence with ``token`` holding its lease (this task drives it next)."""
        self.update(
            "runtime_sequencerun", seq_id,
            {"status": "running", "started_at": now, "lease_owner": token,
             "lease_until": lease_until},
        )  # fmt: skip

    def start_sequences_free(self, ids: list[int], now: datetime) -> None:
        """Start sequences for other tasks to take (fan-out)."""
        if not ids:
            return
        marks = ", ".join(["%s"] * len(ids))
        raw_execute(
            "UPDATE runtime_sequencerun SET status = 'running', started_at = %s "  # noqa: S608
            f"WHERE id IN ({marks})",
            [db_datetime(now), *ids],
        )

    def steal_sequence(
        self, run_id: int, token: str, lease_until: datetime
    ) -> tuple[int, str] | None:
        """Lease a started sequence of the run nobody has taken yet; ``(id, tag)`` or None."""
        row = raw_execute(
            "UPDATE runtime_sequencerun SET lease_owner = %s, lease_until = %s "  # noqa: S608
            "WHERE id = (SELECT id FROM runtime_sequencerun WHERE run_id = %s "
            f"AND status = 'running' AND lease_owner = '' ORDER BY id LIMIT 1{self.skip_locked}) "
            "AND status = 'running' AND lease_owner = '' RETURNING id, tag",
            [token, db_datetime(lease_until), run_id],
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # ---- creating a run

    def insert_sequences(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert SequenceRuns: ``(run_id, tag, status, lease_owner, started_at,
        finished_at)`` each."""
        raw_executemany(
            "INSERT INTO runtime_sequencerun (run_id, tag, status, lease_owner, started_at, "
            "finished_at) VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )

    def running_sequence_ids(self, run_id: int) -> list[int]:
        """Ids of the run's running sequences, in order."""
        rows = raw_execute(
            "SELECT id FROM runtime_sequencerun WHERE run_id = %s AND status = 'running' "
            "ORDER BY id",
            [run_id],
        ).fetchall()
        return [int(pk) for (pk,) in rows]

    def insert_steps(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert StepRuns: ``(run_id, tag, sequence, index, status, attempt, attempts,
        output, finished_at, rollback_status, rollback_attempt)`` each (JSON encoded)."""
        j = json_param()
        raw_executemany(
            'INSERT INTO runtime_steprun (run_id, tag, sequence, "index", status, attempt, '  # noqa: S608
            f"attempts, output, finished_at, rollback_status, rollback_attempt) VALUES "
            f"(%s, %s, %s, %s, %s, %s, {j}, {j}, %s, %s, %s)",
            rows,
        )

    def activation(self, workflow_id: int, environment_id: int) -> tuple[Any, Any] | None:
        """``(version_id, number)`` pinned by the workflow's activation in the environment
        (``(None, None)`` when active without a pin), or None when not active there."""
        row = raw_execute(
            "SELECT a.version_id, v.number FROM designer_activation a "
            "LEFT JOIN designer_workflowversion v ON v.id = a.version_id "
            "WHERE a.workflow_id = %s AND a.environment_id = %s AND a.active",
            [workflow_id, environment_id],
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def latest_published(self, workflow_id: int) -> tuple[int, int] | None:
        """``(id, number)`` of the workflow's newest published version, or None."""
        row = raw_execute(
            "SELECT id, number FROM designer_workflowversion WHERE workflow_id = %s "
            "AND state = 'published' ORDER BY number DESC LIMIT 1",
            [workflow_id],
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1] or 0))
