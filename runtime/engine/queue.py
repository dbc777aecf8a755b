"""Enqueueing the engine's tasks with the commit that makes them due."""

from __future__ import annotations

from django.db import connection, transaction
from django_q.conf import Conf

from runtime.brokers import TaskCall, enqueue_now, is_orm_broker


def enqueue(calls: list[TaskCall], *, delay_s: float = 0.0) -> None:
    """Enqueue tasks once the current transaction commits.

    With the ORM broker the queue rows are written inside the transaction instead (an
    outbox: they commit atomically with the state, and no crash can lose them between
    commit and enqueue); other brokers are called in ``on_commit``.
    """
    if not calls:
        return
    if connection.in_atomic_block and is_orm_broker() and not Conf.SYNC:
        enqueue_now(calls, delay_s)
        return
    transaction.on_commit(lambda: enqueue_now(calls, delay_s), robust=True)


def enqueue_at_once(calls: list[TaskCall]) -> None:
    """Enqueue tasks right away, whatever the transaction (the sweep's idempotent kicks)."""
    enqueue_now(calls)
