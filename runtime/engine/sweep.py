"""The sweep: a self-perpetuating chain of ticks that re-enqueues due timers, expired
leases, interrupted compensations, runs past their deadline and parents whose child ended
unnoticed. Whatever should be moving but is not, the next tick moves."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from runtime.engine import config
from runtime.engine.finishing import run_stop
from runtime.engine.guard import run_task_failed
from runtime.engine.queue import enqueue, enqueue_at_once
from runtime.engine.store import store
from runtime.models import RUN_ACTIVE, RUN_FINISHED, EngineBeat, Run, SequenceRun, StepRun


def sweep_kick(*, force: bool = False) -> bool:
    """Start a chain of sweep ticks unless a live one beat recently (idempotent).

    The django-q2 Schedule calls it every minute; a starting worker calls it with
    ``force`` (the previous chain may have died with a killed worker while its tick was
    in flight): the new token retires any older chain at its next tick.
    """
    now = timezone.now()
    db = store()
    with transaction.atomic():
        beat, _ = EngineBeat.objects.get_or_create(name="sweep")
        beat = db.lock_row(beat)
        fresh = (
            beat.beat_at is not None and (now - beat.beat_at).total_seconds() < config.BEAT_STALE_S
        )
        if fresh and not force:
            return False
        beat.token = uuid.uuid4().hex
        beat.beat_at = now
        beat.save(update_fields=["token", "beat_at"])
        enqueue([(config.SWEEP, (beat.token,))])
    return True


def sweep_tick(token: str) -> None:
    """One tick: if ``token`` is the live chain's, schedule the next tick and sweep."""
    with transaction.atomic():
        qs = store().for_update(EngineBeat.objects.filter(name="sweep", token=token))
        if not qs.update(beat_at=timezone.now()):
            return  # a newer chain replaced this one
        enqueue([(config.SWEEP, (token,))], delay_s=config.SWEEP_EVERY_S)
    sweep_once()


def sweep_once(*, limit: int = 500) -> dict[str, int]:
    """Re-enqueue whatever should be moving but is not; returns counts (for tests/logs)."""
    now = timezone.now()
    kick_before = now - timedelta(seconds=config.REKICK_S)
    not_kicked = Q(kicked_at__isnull=True) | Q(kicked_at__lt=kick_before)
    counts = {"timers": 0, "leases": 0, "finalize": 0, "deadlines": 0, "children": 0}

    due = SequenceRun.objects.filter(status__in=["waiting", "retrying"], wake_at__lte=now)
    stuck = SequenceRun.objects.filter(status="running").filter(
        Q(lease_until__lt=now)
        | Q(lease_owner="", started_at__lt=now - timedelta(seconds=config.UNCLAIMED_S))
    )
    for name, qs in (("timers", due), ("leases", stuck)):
        ids = list(qs.filter(not_kicked).values_list("id", flat=True)[:limit])
        if name == "leases":
            ids = _count_dead_holders(ids)
        if ids:
            with transaction.atomic():
                SequenceRun.objects.filter(pk__in=ids).update(kicked_at=now)
                enqueue([(config.DRIVE, (pk,)) for pk in ids])
            counts[name] = len(ids)

    late = Run.objects.filter(status__in=RUN_ACTIVE, stop_reason="", deadline_at__lte=now)
    for run_id in late.values_list("id", flat=True)[:limit]:
        with transaction.atomic():
            cause = {"code": "run_timeout", "message": "the run timed out"}
            if run_stop(run_id=run_id, reason="timeout", cause=cause):
                enqueue([(config.FINALIZE, (run_id,))])
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
            enqueue([(config.FINALIZE, (pk,)) for pk in ids])
        counts["finalize"] = len(ids)

    orphans = StepRun.objects.filter(
        child_run__isnull=False,
        status="waiting",
        child_run__status__in=list(RUN_FINISHED),
        child_run__finished_at__lt=now - timedelta(seconds=config.SWEEP_EVERY_S * 2),
    ).values_list("child_run_id", flat=True)[:limit]
    children = [(config.CHILD_FINISHED, (pk,)) for pk in orphans if pk]
    if children:
        enqueue_at_once(children)
        counts["children"] = len(children)
    return counts


def _count_dead_holders(ids: list[int]) -> list[int]:
    """Sequences whose lease expired while held: the worker driving them died (killed,
    out of memory, over the task timeout). Count it against the run (the poison-run
    guard); returns the ids still to re-enqueue."""
    dead = SequenceRun.objects.filter(pk__in=ids).exclude(lease_owner="")
    limit = config.max_task_failures()
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
    limit = config.max_task_failures()
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
