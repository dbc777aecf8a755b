"""Retention: runs across ages and states, per-environment policies, referenced runs and
the newest runs kept, no orphan rows left, the audit and django-q2's results pruned, and
the SQLite write-ahead log cut back."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Task

from designer.models import AuditEntry, Environment, Product, retention_problems
from runtime.models import JournalEntry, MetricTotal, Run, SequenceRun, StepRun
from runtime.retention import policy_for
from runtime.services import run_start
from tests.runtime.conftest import drain, make_workflow

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = {
    "sequences": [
        {"tag": "m", "events": [{"type": "CODE", "event": "runtime.connectors.code:noop",
                                 "tag": "n", "input": {"pad": "x" * 2000}}]}
    ]
}  # fmt: skip


def aged(run: Run, status: str, days: float, **extra: Any) -> Run:
    finished = timezone.now() - timedelta(days=days)
    Run.objects.filter(pk=run.pk).update(
        status=status,
        created_at=finished - timedelta(minutes=1),
        finished_at=None if status == "running" else finished,
        **extra,
    )
    run.refresh_from_db()
    return run


def wal_bytes() -> int:
    wal = Path(f"{django_settings.DATABASES['default']['NAME']}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_prune_deletes_exactly_what_retention_lets_go(product: Product, settings: Any) -> None:
    # Runs whose journal /metrics has not folded yet are kept; on PostgreSQL the fold waits
    # 5 s for rows to settle, and this test's runs are seconds old.
    settings.TRELLIS_METRICS_SETTLE_S = 0
    dev = Environment.objects.get(product=product, slug="dev")
    dev.retention = {"completed_days": 7, "failed_days": 30, "keep_last": 2}
    dev.save()
    staging = Environment.objects.get(product=product, slug="staging")  # product default
    wf_a = make_workflow(product, SPEC, tag="a", envs=("dev", "staging"))
    wf_b = make_workflow(product, SPEC, tag="b")

    def new(wf: Any, env: Environment) -> Run:
        return run_start(workflow=wf, environment=env, input={"note": "y" * 1000})

    runs: dict[str, Run] = {}
    # Creation order matters for keep_last (the newest finished runs by id).
    for name in ("a7", "a8", "a1", "a4", "a5", "a6", "b1", "b2", "b3", "s1", "a3", "a2"):
        wf = wf_b if name.startswith("b") else wf_a
        runs[name] = new(wf, staging if name == "s1" else dev)
    drain()  # every run really ran: journal, steps and sequences exist for each
    assert JournalEntry.objects.filter(run=runs["a1"]).count() > 3

    aged(runs["a1"], "completed", 10)  # past 7 days: goes
    aged(runs["a2"], "completed", 3, origin_id=runs["a5"].pk)  # young; replays a5
    aged(runs["a3"], "failed", 10)  # failed runs are kept 30 days
    aged(runs["a4"], "failed", 40)  # goes
    aged(runs["a5"], "rolled_back", 40)  # old, but a2 was made from it: kept
    aged(runs["a6"], "running", 100)  # unfinished: never pruned
    aged(runs["a7"], "completed", 20)  # a8's parent: goes once a8 has gone
    aged(runs["a8"], "completed", 20, parent_run_id=runs["a7"].pk)
    for name in ("b1", "b2", "b3"):
        aged(runs[name], "completed", 10)  # b2, b3: the newest two of workflow b
    aged(runs["s1"], "completed", 10)  # staging keeps completed runs 30 days (default)

    old_audit = AuditEntry.objects.create(product=product, action="x", target="old")
    new_audit = AuditEntry.objects.create(product=product, action="x", target="new")
    AuditEntry.objects.filter(pk=old_audit.pk).update(at=timezone.now() - timedelta(days=400))
    now = timezone.now()
    Task.objects.create(id="old", name="old", func="f", started=now - timedelta(days=100),
                        stopped=now - timedelta(days=100), success=False)  # fmt: skip
    Task.objects.create(id="new", name="new", func="f", started=now, stopped=now, success=False)

    out = StringIO()
    call_command("prune", "--dry-run", stdout=out)
    assert "would delete 3 run(s) of acme/dev completed" in out.getvalue()  # a1, a8, b1
    assert "would delete 1 run(s) of acme/dev failed" in out.getvalue()  # a4
    assert Run.objects.count() == len(runs)  # a dry run deletes nothing

    sqlite = connection.vendor == "sqlite"
    if sqlite:
        with connection.cursor() as cursor:  # let the WAL grow as a busy day does
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        for _ in range(3):
            Run.objects.filter(pk=runs["a6"].pk).update(state={"pad": "z" * 200_000})
        before = wal_bytes()
        assert before > 500_000
    out = StringIO()
    call_command("prune", stdout=out)

    gone = {"a1", "a4", "a7", "a8", "b1"}
    left = set(Run.objects.values_list("id", flat=True))
    assert left == {runs[n].pk for n in runs if n not in gone}, out.getvalue()
    for model in (JournalEntry, StepRun, SequenceRun):
        assert not model.objects.exclude(run_id__in=left).exists(), model  # no orphans
    assert JournalEntry.objects.filter(run=runs["b2"]).exists()
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [new_audit.pk]
    assert list(Task.objects.values_list("id", flat=True)) == ["new"]
    if sqlite:  # PostgreSQL: autovacuum reuses the space (README, Retention)
        assert wal_bytes() < before // 10, (before, wal_bytes())
    # The metrics totals counted the deleted runs before they went.
    started = MetricTotal.objects.filter(name="runs_started", environment_id=dev.pk)
    assert sum(started.values_list("value", flat=True)) == 11


def test_retention_settings_are_checked_and_merged_with_the_product_default(
    product: Product, settings: Any
) -> None:
    settings.TRELLIS_RETENTION_COMPLETED_DAYS = 12
    dev = Environment.objects.get(product=product, slug="dev")
    dev.retention = {"failed_days": 5}
    policy = policy_for(dev)
    assert (policy.completed_days, policy.failed_days) == (12, 5)
    assert retention_problems({"completed_days": -1, "forever": 1}) == [
        ("retention.completed_days", "must be a whole number from 0 to 36500"),
        ("retention.forever", "unknown key; allowed: completed_days, failed_days, keep_last, "
                              "audit_days"),
    ]  # fmt: skip
    assert retention_problems({"keep_last": 3, "audit_days": None}) == []
