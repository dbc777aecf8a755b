"""The run store's statements for the sweep: what should be moving but is not, and the
beat that keeps one chain of sweep ticks alive."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q

from runtime.engine.store.records import RunRecords
from runtime.models import RUN_ACTIVE, RUN_FINISHED, EngineBeat, Run, SequenceRun, StepRun


def _not_kicked(kick_before: datetime) -> Q:
    return Q(kicked_at__isnull=True) | Q(kicked_at__lt=kick_before)


class SweepQueries(RunRecords):
    """What the sweep reads and marks."""

    def due_sequences(self, now: datetime, kick_before: datetime, limit: int) -> list[int]:
        """Parked sequences whose timer is due (not kicked recently)."""
        due = SequenceRun.objects.filter(status__in=["waiting", "retrying"], wake_at__lte=now)
        return list(due.filter(_not_kicked(kick_before)).values_list("id", flat=True)[:limit])

    def stuck_sequences(
        self, now: datetime, kick_before: datetime, unclaimed_before: datetime, limit: int
    ) -> list[int]:
        """Running sequences whose lease expired, or that nobody took for too long."""
        stuck = SequenceRun.objects.filter(status="running").filter(
            Q(lease_until__lt=now) | Q(lease_owner="", started_at__lt=unclaimed_before)
        )
        return list(stuck.filter(_not_kicked(kick_before)).values_list("id", flat=True)[:limit])

    def held_sequences(self, ids: list[int]) -> list[tuple[int, int, str]]:
        """``(id, run_id, tag)`` of those of ``ids`` still leased to someone."""
        dead = SequenceRun.objects.filter(pk__in=ids).exclude(lease_owner="")
        return [(int(a), int(b), str(c)) for a, b, c in dead.values_list("id", "run_id", "tag")]

    def mark_sequences_kicked(self, ids: list[int], now: datetime) -> None:
        """Remember that the sweep re-enqueued these sequences now."""
        SequenceRun.objects.filter(pk__in=ids).update(kicked_at=now)

    def late_runs(self, now: datetime, limit: int) -> list[int]:
        """Active runs past their deadline, not yet winding down."""
        late = Run.objects.filter(status__in=RUN_ACTIVE, stop_reason="", deadline_at__lte=now)
        return [int(pk) for pk in late.values_list("id", flat=True)[:limit]]

    def winding_runs(self, now: datetime, kick_before: datetime, limit: int) -> list[int]:
        """Winding-down runs nobody compensates (lease free or expired, and due)."""
        winding = (
            Run.objects.filter(status__in=RUN_ACTIVE)
            .exclude(stop_reason="")
            .filter(Q(lease_owner="") | Q(lease_until__lt=now))
            .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
            .filter(_not_kicked(kick_before))
        )
        return [int(pk) for pk in winding.values_list("id", flat=True)[:limit]]

    def held_runs(self, ids: list[int]) -> list[int]:
        """Those of ``ids`` whose run lease is still held by someone."""
        held = Run.objects.filter(pk__in=ids).exclude(lease_owner="")
        return [int(pk) for pk in held.values_list("id", flat=True)]

    def mark_runs_kicked(self, ids: list[int], now: datetime) -> None:
        """Remember that the sweep re-enqueued these runs' compensation now."""
        Run.objects.filter(pk__in=ids).update(kicked_at=now)

    def orphaned_children(self, finished_before: datetime, limit: int) -> list[int]:
        """Child runs that ended before ``finished_before`` with their parent step still
        waiting on them."""
        orphans = StepRun.objects.filter(
            child_run__isnull=False,
            status="waiting",
            child_run__status__in=list(RUN_FINISHED),
            child_run__finished_at__lt=finished_before,
        ).values_list("child_run_id", flat=True)[:limit]
        return [int(pk) for pk in orphans if pk]

    def beat_restart(self, now: datetime, *, stale_s: float, force: bool) -> str | None:
        """Inside a transaction: a new token for the sweep chain unless it beat less than
        ``stale_s`` ago (``force``: always); the token, or None."""
        beat, _ = EngineBeat.objects.get_or_create(name="sweep")
        beat = self.lock_row(beat)
        age = (now - beat.beat_at).total_seconds() if beat.beat_at is not None else None
        if age is not None and age < stale_s and not force:
            return None
        beat.token = uuid.uuid4().hex
        beat.beat_at = now
        beat.save(update_fields=["token", "beat_at"])
        return beat.token

    def beat(self, token: str, now: datetime) -> bool:
        """Inside a transaction: record a tick of chain ``token``; False when a newer chain
        replaced it."""
        qs = self.for_update(EngineBeat.objects.filter(name="sweep", token=token))
        return bool(qs.update(beat_at=now))
