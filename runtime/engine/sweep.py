"""The sweep: a self-perpetuating chain of ticks that re-enqueues due timers, expired
leases, interrupted compensations, runs past their deadline and parents whose child ended
unnoticed. Whatever should be moving but is not, the next tick moves."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from runtime.engine import config
from runtime.engine.finishing import run_stop
from runtime.engine.guard import run_task_failed
from runtime.engine.queue import enqueue, enqueue_at_once
from runtime.engine.store import store


def sweep_kick(*, force: bool = False) -> bool:
    """Start a chain of sweep ticks unless a live one beat recently (idempotent).

    The django-q2 Schedule calls it every minute; a starting worker calls it with
    ``force`` (the previous chain may have died with a killed worker while its tick was
    in flight): the new token retires any older chain at its next tick.
    """
    with transaction.atomic():
        token = store().beat_restart(timezone.now(), stale_s=config.BEAT_STALE_S, force=force)
        if token is None:
            return False
        enqueue([(config.SWEEP, (token,))])
    return True


def sweep_tick(token: str) -> None:
    """One tick: if ``token`` is the live chain's, schedule the next tick and sweep."""
    with transaction.atomic():
        if not store().beat(token, timezone.now()):
            return  # a newer chain replaced this one
        enqueue([(config.SWEEP, (token,))], delay_s=config.SWEEP_EVERY_S)
    sweep_once()


def sweep_once(*, limit: int = 500) -> dict[str, int]:
    """Re-enqueue whatever should be moving but is not; returns counts (for tests/logs)."""
    db = store()
    now = timezone.now()
    kick_before = now - timedelta(seconds=config.REKICK_S)
    counts = {"timers": 0, "leases": 0, "finalize": 0, "deadlines": 0, "children": 0}

    unclaimed_before = now - timedelta(seconds=config.UNCLAIMED_S)
    for name in ("timers", "leases"):
        if name == "timers":
            ids = db.due_sequences(now, kick_before, limit)
        else:
            ids = _count_dead_holders(db.stuck_sequences(now, kick_before, unclaimed_before, limit))
        if ids:
            with transaction.atomic():
                db.mark_sequences_kicked(ids, now)
                enqueue([(config.DRIVE, (pk,)) for pk in ids])
            counts[name] = len(ids)

    for run_id in db.late_runs(now, limit):
        with transaction.atomic():
            cause = {"code": "run_timeout", "message": "the run timed out"}
            if run_stop(run_id=run_id, reason="timeout", cause=cause):
                enqueue([(config.FINALIZE, (run_id,))])
        counts["deadlines"] += 1

    ids = _count_dead_finalizers(db.winding_runs(now, kick_before, limit))
    if ids:
        with transaction.atomic():
            db.mark_runs_kicked(ids, now)
            enqueue([(config.FINALIZE, (pk,)) for pk in ids])
        counts["finalize"] = len(ids)

    orphans = db.orphaned_children(now - timedelta(seconds=config.SWEEP_EVERY_S * 2), limit)
    children = [(config.CHILD_FINISHED, (pk,)) for pk in orphans]
    if children:
        enqueue_at_once(children)
        counts["children"] = len(children)
    return counts


def _count_dead_holders(ids: list[int]) -> list[int]:
    """Sequences whose lease expired while held: the worker driving them died (killed,
    out of memory, over the task timeout). Count it against the run (the poison-run
    guard); returns the ids still to re-enqueue."""
    limit = config.max_task_failures()
    stopped: set[int] = set()
    for seq_id, run_id, tag in store().held_sequences(ids):
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
    limit = config.max_task_failures()
    ended: set[int] = set()
    for run_id in store().held_runs(ids):
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
