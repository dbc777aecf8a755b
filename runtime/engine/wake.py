"""Waking parked sequences: a child run ended, a signal arrived."""

from __future__ import annotations

from django.db import transaction

from runtime.engine import config
from runtime.engine.queue import enqueue
from runtime.engine.store import store


def child_finished(child_run_id: int) -> None:
    """A child run ended: wake the parent's sequence waiting on it."""
    db = store()
    waiting = db.waiting_on_child(child_run_id)
    if waiting is None:
        return
    run_id, sequence = waiting
    with transaction.atomic():
        db.lock_run(run_id)
        ids = db.wake_sequences(run_id, sequence)
        enqueue([(config.DRIVE, (pk,)) for pk in ids])


def wake_for_signal(run_id: int, name: str) -> None:
    """Inside run_signal's transaction: resume the sequence waiting on ``name``, if any."""
    db = store()
    for sequence, wait in db.waiting_steps(run_id):
        if name in (wait.get("signals") or []):
            ids = db.wake_sequences(run_id, sequence)
            if not ids:
                # Already woken by an earlier signal it has not consumed yet: this one
                # is for the next waiter (two waits on one name, two signals at once).
                continue
            enqueue([(config.DRIVE, (pk,)) for pk in ids])
            return
