"""Execution-side state: runs, their sequences and steps, the journal and signals, and
the rows connectors keep (broker messages, quota counters and answers).

The journal is the durable truth: every transition is one ``JournalEntry`` with a per-run
increasing ``seq``, written in the same transaction as the status it describes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F


class FailedStep(models.Func):
    """The step a failed run names in its error (``error.step``), as text.

    Written out with the JSON path as a literal: SQLite uses an expression index only for
    the very same expression, and Django's own key lookup binds the path as a parameter.
    The index ``run_failed_step`` and the runs page's filter both use this expression.
    """

    output_field = models.TextField()

    def __init__(self) -> None:
        super().__init__(F("error"))

    template = "JSON_EXTRACT(%(expressions)s, '$.step')"  # SQLite

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s ->> 'step')", **extra)


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


RUN_FINISHED = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ROLLED_BACK, RunStatus.CANCELLED}


class StopReason(models.TextChoices):
    """Why a run is winding down (set before compensation, cleared never)."""

    NONE = "", "-"
    FAILED = "failed", "A step failed"
    CANCELLED = "cancelled", "Cancelled"
    ROLLBACK = "rollback", "ROLLBACK event"
    TIMEOUT = "timeout", "Run timeout"
    TERMINATED = "terminated", "Parent closed"


class StepStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    FAILED_ALLOWED = "failed_allowed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    # Never started: the run ended first (a cancelled step had started).
    NOT_RUN = "not_run"


RUN_ACTIVE = ["pending", "running", "waiting"]


class Run(models.Model):
    # Indexed by the (workflow, environment, -id) index below.
    workflow = models.ForeignKey(
        "designer.Workflow", on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    version = models.ForeignKey(
        "designer.WorkflowVersion", on_delete=models.PROTECT, related_name="runs"
    )
    environment = models.ForeignKey(
        "designer.Environment", on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.PENDING)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    state = models.JSONField(default=dict)  # SET_STATE / ctx.set_state, checkpoints
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    parent_step = models.CharField(max_length=100, blank=True)
    parent_close_policy = models.CharField(max_length=20, blank=True)
    # replay / restart / resume / fork: the run this one was made from.
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived"
    )
    origin_kind = models.CharField(max_length=20, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)  # options.timeout
    wake_at = models.DateTimeField(null=True, blank=True)  # earliest timer
    cancel_requested = models.BooleanField(default=False)
    # Set once when the run starts winding down (a step failed, cancel, ROLLBACK, timeout):
    # sequences stop at their next step boundary and the last one out compensates.
    stop_reason = models.CharField(
        max_length=12, choices=StopReason.choices, blank=True, default=""
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    kicked_at = models.DateTimeField(null=True, blank=True)  # last re-enqueued by the sweep
    # Lease for run-level work (compensation, finishing); sequences have their own.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Tasks of this run that crashed (or whose worker died) since its last finished step:
    # at TRELLIS_RUN_MAX_TASK_FAILURES the run is failed instead of retried forever.
    task_failures = models.PositiveIntegerField(default=0)
    # OpenTelemetry trace of the run (32 hex digits) when tracing is on (runtime/tracing.py).
    trace_id = models.CharField(max_length=32, blank=True, default="")

    # Not a column: run_start sets it when an idempotency key found an existing run.
    reused: bool = False

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "environment", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="uniq_run_idempotency_key",
            )
        ]
        # Every step rewrites its run's row (the journal's ``last_seq``): each index here
        # is one more write whenever that update cannot stay on its page (HOT), so only
        # what a query needs. ``run_active`` is partial: the sweep's scans of unfinished
        # runs stay as small as the number of runs in flight, however long the history.
        indexes = [
            models.Index(fields=["workflow", "environment", "-id"]),
            models.Index(fields=["status"], condition=models.Q(status__in=RUN_ACTIVE),
                         name="run_active"),
            # The product runs page (runtime.product_runs): one per common filter, each
            # ending in id so the page comes out of the index in order (keyset paging).
            # ``status`` is already off HOT through run_active's predicate.
            models.Index(fields=["workflow", "-id"], name="run_workflow_id"),
            models.Index(fields=["environment", "-id"], name="run_env_id"),
            models.Index(fields=["status", "-id"], name="run_status_id"),
            # "Failed at step": the step a failed run names in its error.
            models.Index(FailedStep(), F("id").desc(), name="run_failed_step"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class SequenceRun(models.Model):
    """One sequence of a run: driven by one task at a time, which holds its lease."""

    # Indexed by uniq_seqrun (run, tag).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="sequences", db_index=False)
    tag = models.CharField(max_length=100)
    status = models.CharField(max_length=15, choices=StepStatus.choices, default=StepStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Parked (sleep, retry delay, signal timeout): when the sweep should wake it.
    wake_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the sweep last re-enqueued it (so a backed-up queue is not flooded).
    kicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "tag"], name="uniq_seqrun")]
        indexes = [
            models.Index(fields=["status", "wake_at"], name="seqrun_due"),
            models.Index(fields=["status", "lease_until"], name="seqrun_lease"),
        ]


class StepRun(models.Model):
    # Indexed by uniq_steprun (run, tag).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    tag = models.CharField(max_length=100)
    sequence = models.CharField(max_length=100)
    index = models.PositiveIntegerField(default=0)  # position in its sequence
    status = models.CharField(max_length=15, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempt = models.PositiveIntegerField(default=0)
    attempts = models.JSONField(default=list)  # [{n, started_at, finished_at, status, error}]
    input = models.JSONField(null=True, blank=True)  # after resolution (secrets redacted)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # What a waiting step waits for: {"signals": [...], "until": iso} or {"child": id}.
    wait = models.JSONField(null=True, blank=True)
    child_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    rollback_status = models.CharField(max_length=15, blank=True)
    rollback_attempt = models.PositiveIntegerField(default=0)
    rollback_error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "tag"], name="uniq_steprun")]
        # No index on ``status``: a step's row is rewritten twice per step, and an indexed
        # status would keep every one of those updates off its page (no HOT).
        indexes = [
            models.Index(fields=["child_run"], condition=models.Q(child_run__isnull=False),
                         name="steprun_child"),
        ]  # fmt: skip


class JournalEntry(models.Model):
    # Indexed by uniq_journal_seq (run, seq).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="journal", db_index=False)
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=40)
    step = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict)
    at = models.DateTimeField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="uniq_journal_seq")]

    def as_json(self) -> dict[str, object]:
        return {
            "run": self.run_id,
            "seq": self.seq,
            "kind": self.kind,
            "step": self.step,
            "data": self.data,
            "at": self.at.isoformat(),
        }


class Signal(models.Model):
    """A signal sent to a run; kept until a WAIT_SIGNAL step consumes it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="signals")
    name = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    consumed_by = models.CharField(max_length=100, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]


class EngineBeat(models.Model):
    """Keeps exactly one chain of periodic sweeps alive: a tick runs only with the
    current ``token``; a kick replaces the token when the last beat is stale."""

    name = models.CharField(max_length=50, unique=True)
    token = models.CharField(max_length=64, blank=True)
    beat_at = models.DateTimeField(null=True, blank=True)


class Message(models.Model):
    """A message published to a topic of the built-in (database) broker.

    Publishing stores it and starts every workflow whose live version in the environment
    has a ``{type: 'topic', event: '<broker>:<topic>'}`` trigger; ``runs`` lists them.
    """

    product = models.ForeignKey(
        "designer.Product", on_delete=models.CASCADE, related_name="messages"
    )
    environment = models.ForeignKey(
        "designer.Environment", on_delete=models.CASCADE, related_name="+"
    )
    broker = models.CharField(max_length=100)
    topic = models.CharField(max_length=200)
    payload = models.JSONField(null=True, blank=True)
    key = models.CharField(max_length=300, blank=True, default="")  # idempotency key
    run_id = models.BigIntegerField(null=True, blank=True)  # the publishing run
    runs = models.JSONField(default=list, blank=True)  # ids of runs it started
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "designer_message"  # created by the designer app before it moved here
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["environment", "broker", "topic", "created_at"],
                name="designer_me_environ_15a8bc_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "broker", "topic", "key"],
                condition=~models.Q(key=""),
                name="uniq_message_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.broker}:{self.topic} #{self.pk}"


class QuotaUse(models.Model):
    """What one step of a run was answered by a quota (database backend): a step re-run
    after a crash, or retried after an error, gets the same answer and is not counted
    again. Forgotten after a day."""

    environment = models.ForeignKey(
        "designer.Environment", on_delete=models.CASCADE, related_name="+"
    )
    quota = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    step_key = models.CharField(max_length=200)  # <run>:<step>
    allowed = models.BooleanField()
    used = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "designer_quotause"  # created by the designer app before it moved here
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "quota", "name", "step_key"], name="uniq_quota_use"
            )
        ]


class QuotaCounter(models.Model):
    """Calls counted in one fixed window of a quota, per environment and key."""

    environment = models.ForeignKey(
        "designer.Environment", on_delete=models.CASCADE, related_name="+"
    )
    quota = models.CharField(max_length=100)  # component tag
    name = models.CharField(max_length=200)  # the quota (event) within the component
    key = models.CharField(max_length=300, blank=True, default="")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "designer_quotacounter"  # created by the designer app before it moved here
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "quota", "name", "key", "window_start"],
                name="uniq_quota_window",
            )
        ]


class MetricTotal(models.Model):
    """A monotonic total for /metrics, folded from the journal at scrape time
    (runtime/metrics_fold.py): workers are other processes (other machines in scale-out),
    so what they did is read from the database they write anyway, not kept in their memory.
    ``workflow_id``/``environment_id`` are 0 when the total has no such label; the row named
    ``_cursor`` holds the id of the last journal entry folded in."""

    name = models.CharField(max_length=60)
    workflow_id = models.BigIntegerField(default=0)
    environment_id = models.BigIntegerField(default=0)
    label = models.CharField(max_length=60, blank=True, default="")
    value = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name", "workflow_id", "environment_id", "label"], name="uniq_metric"
            )
        ]


class BulkRequest(models.Model):
    """A bulk action on runs (``POST /api/v1/runs/bulk``) done under an idempotency key:
    the same key and body again get the stored answer instead of acting twice."""

    product = models.ForeignKey("designer.Product", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # sha256 of the request body
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "key"], name="uniq_bulk_request_key")
        ]
