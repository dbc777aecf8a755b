"""django-q2 entry points. Each takes ids, is enqueued by dotted path, and only translates
to one call in :mod:`runtime.engine.tasks`; duplicates and redeliveries are harmless
(leases). A crashing task is counted against its run there (the poison-run guard), never
re-raised."""

from __future__ import annotations

from runtime.engine import tasks


def sequence_drive(sequence_run_id: int) -> None:
    """Drive one sequence of a run (and what follows it in the same task)."""
    tasks.sequence_task(sequence_run_id)


def run_finalize(run_id: int) -> None:
    """Compensate a winding-down run and end it."""
    tasks.finalize_task(run_id)


def child_finished(child_run_id: int) -> None:
    """Wake the parent sequence waiting on a child run."""
    tasks.child_finished_task(child_run_id)


def sweep(token: str) -> None:
    """One tick of the self-perpetuating sweep chain."""
    tasks.sweep_tick(token)


def sweep_kick() -> None:
    """Start the sweep chain unless one is alive (worker start, django-q2 Schedule)."""
    tasks.sweep_kick()


def prune() -> None:
    """Retention: prune old runs and audit entries, truncate the WAL (hourly Schedule)."""
    from runtime.retention import prune as retention_prune

    retention_prune()
