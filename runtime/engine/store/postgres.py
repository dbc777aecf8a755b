"""The run store on PostgreSQL: row locks, ``SKIP LOCKED``, and the step commit and the
lease take as single statements (one round trip each)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from runtime.engine.state import LeaseLost
from runtime.engine.store.base import RunStore, Statement, run_from, run_select
from runtime.engine.store.records import M
from runtime.journal import PreparedJournal, publish_now, publish_on_commit, raw_execute
from runtime.models import Run

if TYPE_CHECKING:
    from django.db.models import QuerySet


class PostgresStore(RunStore):
    fence_lock = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def for_update(self, qs: QuerySet[M]) -> QuerySet[M]:
        return qs.select_for_update()

    def lock_row(self, instance: M) -> M:
        return type(instance)._default_manager.select_for_update().get(pk=instance.pk)

    def commit_step(
        self, run: Run, n: int, alloc: Statement, updates: list[Statement],
        journal: PreparedJournal, *, seen_stop: Callable[[str], None],
        after: Callable[[], None] | None,
    ) -> None:  # fmt: skip
        """The whole step commit as ONE statement (data-modifying CTEs), so it costs one
        round trip and commits on its own. Every write depends on the fenced allocation,
        so a lost lease writes nothing. With ``after`` (work inside the transaction) it
        goes the general way."""
        if after is not None:
            super().commit_step(run, n, alloc, updates, journal, seen_stop=seen_stop, after=after)
            return
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
            params.extend([run.pk, n, journal.rows[0][3]])
            for k, (kind, step, data_json, _at) in enumerate(journal.rows, start=1):
                params.extend([k, kind, step, data_json])
        sql = f"WITH {', '.join(ctes)} SELECT last_seq, stop_reason FROM alloc"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            raise LeaseLost()
        last, stop = row
        seen_stop(stop)
        published = journal.published(run.pk, run.workflow_id, run.environment_id, last - n + 1)
        if connection.in_atomic_block:
            publish_on_commit(published)
        else:
            publish_now(published)

    def take_sequence(
        self, seq_id: int, token: str, now: datetime, lease_until: datetime
    ) -> tuple[Run, str] | None:
        """One statement: take the lease and read the run with its environment."""
        take, args = self._take_sql(seq_id, token, now, lease_until)
        select = run_select(also=", s.tag", joined_to="s, ")
        values = raw_execute(f"WITH s AS ({take}) {select} WHERE r.id = s.run_id", args).fetchone()
        if values is None:
            return None
        return run_from(values[:-1]), str(values[-1])
