"""Waking parked sequences: a child run ended, a signal arrived."""

from __future__ import annotations

from django.db import transaction

from runtime.engine import config
from runtime.engine.queue import enqueue
from runtime.engine.store import store
from runtime.models import SequenceRun, StepRun


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
        store().lock_run(step["run_id"])
        woke = SequenceRun.objects.filter(
            run_id=step["run_id"], tag=step["sequence"], status="waiting"
        ).values_list("id", flat=True)
        ids = list(woke)
        SequenceRun.objects.filter(pk__in=ids).update(
            status="running", wake_at=None, lease_owner=""
        )
        enqueue([(config.DRIVE, (pk,)) for pk in ids])


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
            enqueue([(config.DRIVE, (pk,)) for pk in ids])
            return
