"""The fenced step commit: what a driver writes, and only while it holds the lease.

:class:`StepCommitter` is the base of the sequence driver (:mod:`runtime.engine.driver`):
it holds what one task knows of the sequence it drives and commits gathered changes in
one short transaction through the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from runtime.engine import config
from runtime.engine.context import RunContext
from runtime.engine.finishing import append_entries
from runtime.engine.state import Pending
from runtime.engine.store import RunStore, store
from runtime.journal import Entry, PreparedJournal, db_datetime


class StepCommitter:
    """One task's hold on one run: the sequence it drives, its lease, its commits."""

    def __init__(self, ctx: RunContext, token: str) -> None:
        self.ctx = ctx
        self.token = token
        self.run_id = ctx.run.pk
        self.seq_id = 0
        self.seq_tag = ""
        self.deadline = ctx.run.deadline_at
        self.max_concurrency = ctx.plan.options.max_concurrency
        self.renewed_at = time.monotonic()
        self.store: RunStore = store()
        self.progressed = False  # a step finished since the run's task-failure count was read

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
        db = self.store
        # Serialize everything first: the write lock is then held only for the statements.
        values: dict[str, Any] = dict(seq_values or {})
        if release:
            values.update(lease_owner="", lease_until=None)
        elif time.monotonic() - self.renewed_at > config.RENEW_S:
            values["lease_until"] = now + timedelta(seconds=config.LEASE_S)
        updates = [db.update_prepare("runtime_steprun", pk, v) for pk, v in pending.steps]
        if values:
            updates.append(db.update_prepare("runtime_sequencerun", self.seq_id, values))
        journal = PreparedJournal(pending.entries, now)
        alloc = db.alloc_sql(
            run_id=self.run_id, seq_id=self.seq_id, token=self.token, n=n,
            stamp=db_datetime(now), run_values=run_values,
        )  # fmt: skip
        db.commit_step(
            self.ctx.run, n, alloc, updates, journal, seen_stop=self.seen_stop, after=after
        )
        if values:
            self.renewed_at = time.monotonic()
        self.reset_task_failures()

    def seen_stop(self, stop_reason: str) -> None:
        """The run's stop reason as the commit's fence read it."""
        self.ctx.stop_reason = stop_reason

    def reset_task_failures(self) -> None:
        """A step finished and was committed: the run is making progress again, so the
        poison-run count starts over (one read of an attribute on the hot path)."""
        if self.progressed and self.ctx.run.task_failures:
            self.store.update_run(self.run_id, task_failures=0)
            self.ctx.run.task_failures = 0

    def renew(self) -> None:
        """Extend our lease while a long step runs (autocommit)."""
        until = timezone.now() + timedelta(seconds=config.LEASE_S)
        self.store.renew_sequence(self.seq_id, self.token, until)

    def flush(self, pending: Pending) -> None:
        """Commit what is gathered, if anything."""
        if pending.entries or pending.steps:
            self.commit(pending)
            pending.entries.clear()
            pending.steps.clear()

    def append_now(self, entries: list[Entry]) -> None:
        """Journal entries inside an open transaction (after the run is locked)."""
        append_entries(self.ctx.run, entries)
