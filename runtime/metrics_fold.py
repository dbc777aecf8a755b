"""Totals for /metrics, folded from the journal.

The engine writes one journal row per transition already; the counters Prometheus wants
(runs started/completed/failed, retries, re-executions, lease expiries, compensations,
step durations) are sums over those rows. Rather than keep counters in each worker's
memory (workers are separate processes, in scale-out on other machines) or add a write to
the engine's hot path, each scrape folds the journal rows written since the last one into
``MetricTotal`` rows (one transaction, the cursor row locked, so two scrapes never count
a row twice), and the totals survive the pruning of the runs they came from: retention
folds before it deletes (runtime/retention.py).

On PostgreSQL journal ids are taken before commit, so a row with a smaller id may become
visible after a larger one: the fold stops before the first row younger than
``TRELLIS_METRICS_SETTLE_S`` (default 5 s there, 0 on SQLite whose writers are serialized).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from runtime.engine.plans import plan_for_version
from runtime.journal import vendor
from runtime.models import JournalEntry, MetricTotal, Run

CURSOR = "_cursor"
BATCH = 5000
# Step durations, seconds: from a no-op CODE step to a slow HTTP call.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

RUN_ENDS = {
    "run_completed": "runs_completed",
    "run_failed": "runs_failed",
    "run_rolled_back": "runs_failed",
    "run_cancelled": "runs_cancelled",
}
COUNTED = {
    "run_started": "runs_started",
    **RUN_ENDS,
    "step_retrying": "step_retries",
    "step_rolled_back": "compensations",
    "rollback_failed": "compensations",
}
# The end of a step attempt, whose duration goes into the histogram.
ATTEMPT_ENDS = {"step_completed", "step_failed", "step_retrying"}
FOLDED_KINDS = {*COUNTED, *ATTEMPT_ENDS, "task_failed"}

Key = tuple[str, int, int, str]


def settle_s() -> float:
    default = 0.0 if vendor() == "sqlite" else 5.0
    return float(getattr(settings, "TRELLIS_METRICS_SETTLE_S", default))


def metrics_fold(*, max_batches: int = 20) -> int:
    """Fold journal rows written since the last fold into the totals; returns how many."""
    folded = 0
    for _ in range(max_batches):
        count = _fold_batch(timezone.now() - timedelta(seconds=settle_s()))
        folded += count
        if count < BATCH:
            break
    return folded


def _cursor_locked() -> MetricTotal:
    cursor, _ = MetricTotal.objects.get_or_create(name=CURSOR)
    return MetricTotal.objects.select_for_update().get(pk=cursor.pk)


def _fold_batch(settled_before: datetime) -> int:
    with transaction.atomic():
        cursor = _cursor_locked()
        after = int(cursor.value)
        rows = JournalEntry.objects.filter(id__gt=after).order_by("id")
        young = rows.filter(at__gt=settled_before).values_list("id", flat=True).first()
        if young is not None:
            rows = rows.filter(id__lt=young)
        batch = list(rows.values_list("id", "run_id", "kind", "step", "data", "at")[:BATCH])
        if not batch:
            return 0
        deltas = _deltas([r for r in batch if r[2] in FOLDED_KINDS])
        for (name, workflow_id, environment_id, label), value in deltas.items():
            updated = MetricTotal.objects.filter(
                name=name, workflow_id=workflow_id, environment_id=environment_id, label=label
            ).update(value=F("value") + value)
            if not updated:
                MetricTotal.objects.create(
                    name=name,
                    workflow_id=workflow_id,
                    environment_id=environment_id,
                    label=label,
                    value=value,
                )
        cursor.value = float(batch[-1][0])
        cursor.save(update_fields=["value"])
        return len(batch)


def _data(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _deltas(batch: list[tuple[Any, ...]]) -> dict[Key, float]:
    deltas: dict[Key, float] = defaultdict(float)
    if not batch:
        return deltas
    run_ids = {row[1] for row in batch}
    runs = {
        pk: (workflow_id, environment_id, version_id)
        for pk, workflow_id, environment_id, version_id in Run.objects.filter(
            pk__in=run_ids
        ).values_list("pk", "workflow_id", "environment_id", "version_id")
    }
    history = History(run_ids, upto=batch[-1][0])
    for entry_id, run_id, kind, step, raw, at in batch:
        workflow_id, environment_id, version_id = runs.get(run_id, (0, 0, 0))
        if kind in COUNTED:
            label = "failed" if kind == "rollback_failed" else ""
            label = "rolled_back" if kind == "step_rolled_back" else label
            deltas[(COUNTED[kind], workflow_id, environment_id, label)] += 1
        if kind in ATTEMPT_ENDS:
            began = history.attempt_start(run_id, step, entry_id)
            if began is not None:
                event_type = _event_type(version_id, step)
                _observe(deltas, event_type, max(0.0, (at - began[1]).total_seconds()))
                if history.interrupted(run_id, began[0], entry_id):
                    deltas[("step_reexecutions", workflow_id, environment_id, "")] += 1
        elif kind == "task_failed":
            message = str(_data(raw).get("message", ""))
            reason = "lease_expired" if "stopped (killed or timed out)" in message else "crashed"
            deltas[("task_failures", workflow_id, environment_id, reason)] += 1
    return deltas


Starts = dict[tuple[int, str], list[tuple[int, datetime]]]


class History:
    """The step starts and failed tasks of the batch's runs, up to the batch's last row."""

    def __init__(self, run_ids: Iterable[int], *, upto: int) -> None:
        self.starts: Starts = defaultdict(list)
        self.task_failures: dict[int, list[int]] = defaultdict(list)
        rows = (
            JournalEntry.objects.filter(
                run_id__in=list(run_ids), kind__in=("step_started", "task_failed"), id__lte=upto
            )
            .order_by("id")
            .values_list("id", "run_id", "kind", "step", "at")
        )
        for entry_id, run_id, kind, step, at in rows:
            if kind == "step_started":
                self.starts[(run_id, step)].append((entry_id, at))
            else:
                self.task_failures[run_id].append(entry_id)

    def attempt_start(self, run_id: int, step: str, entry_id: int) -> tuple[int, datetime] | None:
        """The start of the attempt that the entry ``entry_id`` ends."""
        latest = None
        for pk, at in self.starts.get((run_id, step), []):
            if pk < entry_id:
                latest = (pk, at)
        return latest

    def interrupted(self, run_id: int, began: int, ended: int) -> bool:
        """Whether a task of the run failed (its worker died) while this attempt ran: the
        attempt was then run again by another worker (at-least-once)."""
        return any(began < pk < ended for pk in self.task_failures.get(run_id, []))


def _event_type(version_id: int, step: str) -> str:
    try:
        return str(plan_for_version(version_id).step(step).type.value)
    except Exception:  # a deleted version or a step no longer there: still counted
        return "unknown"


def _observe(deltas: dict[Key, float], event_type: str, seconds: float) -> None:
    for bound in BUCKETS:
        if seconds <= bound:
            deltas[("step_seconds_bucket", 0, 0, f"{event_type}|{bound}")] += 1
    deltas[("step_seconds_bucket", 0, 0, f"{event_type}|+Inf")] += 1
    deltas[("step_seconds_count", 0, 0, event_type)] += 1
    deltas[("step_seconds_sum", 0, 0, event_type)] += seconds
