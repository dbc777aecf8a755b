"""Retention: finished runs, their journal and the audit trail are kept for a while, then
pruned in small batches, and the SQLite write-ahead log is given back to the disk.

Per environment (``Environment.retention``; missing keys take the product default from
the TRELLIS_RETENTION_* settings):

- ``completed_days``: completed runs are kept this many days after they finished;
- ``failed_days``: failed, rolled-back and cancelled runs, likewise;
- ``keep_last``: the newest N finished runs of each workflow are always kept;
- ``audit_days``: audit entries (per product: the longest of its environments).

0 days keeps forever. Unfinished runs are never pruned, nor is a run another run still
refers to (its parent, the run it was replayed/forked from): it goes once its dependants
have gone. Before anything is deleted the journal is folded into the /metrics totals, so
counters never go backwards. django-q2's stored task results older than the failed-run
period go too. SQLite: a ``wal_checkpoint(TRUNCATE)`` afterwards; PostgreSQL reclaims the
space itself (autovacuum).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from designer.models import AuditEntry, Environment, retention_defaults, retention_effective
from runtime.metrics_fold import CURSOR, metrics_fold
from runtime.models import JournalEntry, MetricTotal, Run, SequenceRun, Signal, StepRun

logger = logging.getLogger("trellis.retention")

BATCH = 200
FAILED = ("failed", "rolled_back", "cancelled")


@dataclass(frozen=True)
class Policy:
    completed_days: int
    failed_days: int
    keep_last: int
    audit_days: int


def product_default() -> Policy:
    return Policy(**retention_defaults())


def policy_for(environment: Environment) -> Policy:
    return Policy(**retention_effective(environment))


@dataclass
class PruneReport:
    runs: dict[str, int] = field(default_factory=dict)  # "<product>/<env> <status>" -> count
    journal_rows: int = 0
    audit_entries: int = 0
    task_results: int = 0
    wal_before: int = 0
    wal_after: int = 0

    @property
    def run_count(self) -> int:
        return sum(self.runs.values())


def _finished_before(policy: Policy, now: datetime) -> Q | None:
    parts = []
    if policy.completed_days > 0:
        parts.append(
            Q(status="completed", finished_at__lt=now - timedelta(days=policy.completed_days))
        )
    if policy.failed_days > 0:
        parts.append(Q(status__in=FAILED, finished_at__lt=now - timedelta(days=policy.failed_days)))
    if not parts:
        return None
    found = parts[0]
    for part in parts[1:]:
        found |= part
    return found


def _referenced() -> Q:
    """Runs another run still names as its parent or origin."""
    return Q(children__isnull=False) | Q(derived__isnull=False)


def candidates(environment: Environment, *, now: datetime) -> Iterator[list[int]]:
    """Batches of the ids of runs of ``environment`` that may go now (oldest first)."""
    policy = policy_for(environment)
    expired = _finished_before(policy, now)
    if expired is None:
        return
    runs = Run.objects.filter(expired, environment=environment).exclude(_referenced())
    kept: set[int] = set()
    if policy.keep_last > 0:
        for workflow_id in runs.values_list("workflow_id", flat=True).distinct():
            kept.update(
                Run.objects.filter(
                    environment=environment,
                    workflow_id=workflow_id,
                    status__in=[*FAILED, "completed"],
                )
                .order_by("-id")
                .values_list("id", flat=True)[: policy.keep_last]
            )
    after = 0
    while True:
        ids = list(
            runs.filter(id__gt=after).order_by("id").values_list("id", flat=True).distinct()[:BATCH]
        )
        if not ids:
            return
        after = ids[-1]
        batch = [pk for pk in ids if pk not in kept]
        if batch:
            yield batch


def _folded(ids: list[int]) -> list[int]:
    """Those of ``ids`` whose journal the /metrics totals have already counted."""
    cursor = MetricTotal.objects.filter(name=CURSOR).values_list("value", flat=True).first() or 0
    late = set(
        JournalEntry.objects.filter(run_id__in=ids, id__gt=int(cursor)).values_list(
            "run_id", flat=True
        )
    )
    return [pk for pk in ids if pk not in late]


def _delete_runs(ids: list[int]) -> int:
    """Delete runs and everything that hangs off them, in one short transaction."""
    with transaction.atomic():
        journal, _ = JournalEntry.objects.filter(run_id__in=ids).delete()
        StepRun.objects.filter(run_id__in=ids).delete()
        SequenceRun.objects.filter(run_id__in=ids).delete()
        Signal.objects.filter(run_id__in=ids).delete()
        # Another run's step that started one of these as its child keeps no dangling id.
        StepRun.objects.filter(child_run_id__in=ids).update(child_run=None)
        Run.objects.filter(id__in=ids).delete()
    return journal


def prune(*, dry_run: bool = False, now: datetime | None = None) -> PruneReport:
    """Prune what every environment's retention lets go (``dry_run``: only count it)."""
    now = now or timezone.now()
    report = PruneReport(wal_before=_wal_size())
    if not dry_run:
        metrics_fold(max_batches=1000)
    # Several passes: a parent becomes prunable once its expired children have gone.
    for _ in range(10 if not dry_run else 1):
        pruned = 0
        for environment in Environment.objects.select_related("product"):
            for batch in candidates(environment, now=now):
                ids = batch if dry_run else _folded(batch)
                by_status = Run.objects.filter(id__in=ids).values_list("status", flat=True)
                for status in by_status:
                    key = f"{environment.product.slug}/{environment.slug} {status}"
                    report.runs[key] = report.runs.get(key, 0) + 1
                if not dry_run and ids:
                    report.journal_rows += _delete_runs(ids)
                    pruned += len(ids)
        if not pruned:
            break
    report.audit_entries = _prune_audit(now, dry_run=dry_run)
    report.task_results = _prune_task_results(now, dry_run=dry_run)
    if not dry_run:
        _wal_truncate()
    report.wal_after = _wal_size()
    return report


def _prune_audit(now: datetime, *, dry_run: bool) -> int:
    """Audit entries older than their product's period (the longest of its environments)."""
    periods: dict[int | None, int] = {}
    for environment in Environment.objects.all():
        days = policy_for(environment).audit_days
        current = periods.get(environment.product_id, -1)
        periods[environment.product_id] = (
            0 if 0 in (days, current) else max(days, current)
        )  # 0 = keep forever wins
    default = product_default().audit_days
    total = 0
    for product_id, days in [*periods.items(), (None, default)]:
        if days <= 0:
            continue
        entries = AuditEntry.objects.filter(at__lt=now - timedelta(days=days))
        entries = (
            entries.filter(product_id=product_id)
            if product_id is not None
            else entries.filter(product__isnull=True)
        )
        total += entries.count() if dry_run else _delete_in_batches(entries)
    return total


def _delete_in_batches(queryset: Any) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("id", flat=True)[:1000])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = queryset.model.objects.filter(id__in=ids).delete()
        deleted += count


def _prune_task_results(now: datetime, *, dry_run: bool) -> int:
    """django-q2's stored task results (failed engine tasks, schedule runs) past the
    failed-run period: the journal holds what matters of them."""
    from django_q.models import Task

    days = product_default().failed_days
    if days <= 0:
        return 0
    old = Task.objects.filter(stopped__lt=now - timedelta(days=days))
    return old.count() if dry_run else _delete_in_batches(old)


def _wal_size() -> int:
    if connection.vendor != "sqlite":
        return 0
    from pathlib import Path

    wal = Path(f"{settings.DATABASES['default']['NAME']}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _wal_truncate() -> None:
    """SQLite: copy the WAL into the database and cut it to zero bytes (it otherwise
    stays at its high-water mark). PostgreSQL: nothing; autovacuum reclaims the space."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()
    if busy and busy[0]:
        logger.info("WAL checkpoint was busy (readers open); the next prune truncates it")


def prune_schedule_ensure() -> None:
    """The django-q2 Schedule that prunes every hour on the workers (idempotent)."""
    from django_q.models import Schedule

    if not Schedule.objects.filter(name="trellis-prune").exists():
        Schedule.objects.get_or_create(
            name="trellis-prune",
            defaults={
                "func": "runtime.tasks.prune",
                "schedule_type": Schedule.HOURLY,
                "repeats": -1,
            },
        )
