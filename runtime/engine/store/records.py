"""The run store's statements off the hot path: leases of whole runs, the end of a run,
waking sequences, signals, child runs, the poison-run count (ORM: these run once per
run or per wait, not per step)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from django.db import models
from django.db.models import F, Q

from designer.models import Workflow, WorkflowVersion
from runtime.engine.decisions import SEQUENCE_FINISHED
from runtime.models import RUN_FINISHED, Run, SequenceRun, Signal, StepRun

if TYPE_CHECKING:
    from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)

# Steps and sequences in these statuses are still open when their run ends.
OPEN_STEPS = ["pending", "running", "waiting", "retrying"]
PARKED_SEQUENCES = ["pending", "waiting", "retrying"]


class ChildOutcome(TypedDict):
    """How a FEATURE step's child run stands."""

    status: str
    output: Any
    error: Any


class RunRecords:
    """Statements on runs, steps, sequences and signals, as both dialects run them."""

    def for_update(self, qs: QuerySet[M]) -> QuerySet[M]:
        """``qs`` locking its rows for the transaction (the write lock does it on SQLite)."""
        return qs

    def lock_row(self, instance: M) -> M:
        """``instance`` re-read with its row locked for the transaction (as it is on SQLite,
        where the write lock covers it)."""
        return instance

    # ---- runs

    def update_run(self, run_id: int, **values: Any) -> int:
        """Set columns of a run."""
        return Run.objects.filter(pk=run_id).update(**values)

    def end_run(
        self, run_id: int, *, status: str, now: datetime, owner: str | None = None, **values: Any
    ) -> int:
        """End a run (and free its lease); with ``owner``, only while it holds the lease."""
        qs = Run.objects.filter(pk=run_id)
        if owner is not None:
            qs = qs.filter(lease_owner=owner)
        return qs.update(
            status=status, finished_at=now, lease_owner="", lease_until=None, wake_at=None,
            **values,
        )  # fmt: skip

    def set_stop_reason(self, run_id: int, reason: str, cause: dict[str, Any]) -> None:
        """Start winding the run down (the first reason wins)."""
        Run.objects.filter(pk=run_id, stop_reason="").update(stop_reason=reason, error=cause)

    def open_children(self, run_id: int) -> list[tuple[int, str]]:
        """``(id, parent_close_policy)`` of the run's child runs that have not ended."""
        children = Run.objects.filter(parent_run_id=run_id).exclude(status__in=RUN_FINISHED)
        return [
            (int(c["id"]), str(c["parent_close_policy"] or ""))
            for c in children.values("id", "parent_close_policy")
        ]

    def take_run_lease(self, run_id: int, token: str, now: datetime, until: datetime) -> bool:
        """Lease a winding-down run for compensation (free or expired, and due)."""
        return bool(
            Run.objects.filter(pk=run_id)
            .exclude(status__in=RUN_FINISHED)
            .exclude(stop_reason="")
            .filter(Q(lease_owner="") | Q(lease_until__lt=now))
            .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
            .update(lease_owner=token, lease_until=until)
        )

    def release_run_lease(self, run_id: int, token: str | None = None) -> None:
        """Free the run's lease (``token``'s only, when given)."""
        qs = Run.objects.filter(pk=run_id)
        if token is not None:
            qs = qs.filter(lease_owner=token)
        qs.update(lease_owner="", lease_until=None)

    def renew_run_lease(self, run_id: int, token: str, until: datetime) -> None:
        """Extend ``token``'s lease on the run."""
        Run.objects.filter(pk=run_id, lease_owner=token).update(lease_until=until)

    def mark_run_waiting(self, run_id: int) -> int:
        """A running run waits (no sequence runs any more)."""
        return Run.objects.filter(pk=run_id, status="running").update(status="waiting")

    def count_task_failure(self, run_id: int) -> Run:
        """Count one failed task of the run; returns the run as updated."""
        Run.objects.filter(pk=run_id).update(task_failures=F("task_failures") + 1)
        return Run.objects.get(pk=run_id)

    def child_outcome(self, child_run_id: int) -> ChildOutcome | None:
        """Status, output and error of a child run (None: deleted)."""
        row = Run.objects.filter(pk=child_run_id).values("status", "output", "error").first()
        return None if row is None else ChildOutcome(**row)

    def parent_of(self, run_id: int) -> int | None:
        """The run's parent run, if any."""
        parent = Run.objects.filter(pk=run_id).values_list("parent_run_id", flat=True).first()
        return None if parent is None else int(parent)

    def run_by_key(self, workflow: Workflow, environment_id: int, key: str | None) -> Run | None:
        """The run started with idempotency ``key`` for the workflow in the environment."""
        return Run.objects.filter(
            workflow=workflow, environment_id=environment_id, idempotency_key=key
        ).first()

    def workflow_by_tag(self, product_id: int, tag: str) -> Workflow | None:
        """The product's workflow ``tag``."""
        return Workflow.objects.filter(product_id=product_id, tag=tag).first()

    def version_plan(self, version_id: int) -> tuple[Any, Any] | None:
        """``(plan, spec)`` stored for a workflow version, or None."""
        row = WorkflowVersion.objects.filter(pk=version_id).values("plan", "spec").first()
        return None if row is None else (row["plan"], row["spec"])

    # ---- steps

    def update_step(self, step_id: int, **values: Any) -> None:
        """Set columns of a StepRun."""
        StepRun.objects.filter(pk=step_id).update(**values)

    # ---- loops (runtime.engine.loops): point lookups, so a loop's cost per iteration
    # does not grow with its number of items

    def step_wait(self, run_id: int, tag: str) -> tuple[int, dict[str, Any]] | None:
        """``(id, wait)`` of step ``tag`` of the run."""
        row = StepRun.objects.filter(run_id=run_id, tag=tag).values_list("id", "wait").first()
        return None if row is None else (int(row[0]), row[1] or {})

    def step_input(self, run_id: int, tag: str) -> Any:
        """The input step ``tag`` of the run was started with, as stored."""
        return (
            StepRun.objects.filter(run_id=run_id, tag=tag).values_list("input", flat=True).first()
        )

    def iteration_ids(self, run_id: int, loop_tag: str, *, status: str) -> dict[int, int]:
        """``{index: sequence id}`` of the loop's iterations (``loop[i]``) in ``status``: a
        range of the (run, tag) index (``[`` and the character after it, ``\\``)."""
        rows = SequenceRun.objects.filter(
            run_id=run_id, tag__gte=f"{loop_tag}[", tag__lt=f"{loop_tag}\\", status=status
        ).values_list("tag", "id")
        return {int(tag[len(loop_tag) + 1 : -1]): int(pk) for tag, pk in rows}

    def sequence_id(self, run_id: int, tag: str) -> int | None:
        """The id of sequence ``tag`` of the run."""
        return (
            SequenceRun.objects.filter(run_id=run_id, tag=tag).values_list("id", flat=True).first()
        )

    def rollback_errors(self, run_id: int, tags: list[str]) -> dict[str, str]:
        """The message of each failed rollback of ``tags``."""
        details = StepRun.objects.filter(run_id=run_id, tag__in=tags).values(
            "tag", "rollback_error"
        )
        return {d["tag"]: (d["rollback_error"] or {}).get("message", "") for d in details}

    def close_unfinished(
        self, run_id: int, now: datetime
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The run ends: its steps and sequences still open get their final status, never
        started ones ``not_run``, the others ``cancelled``. Returns ``(tag, was)`` of the
        steps and of the sequences closed (for the journal)."""
        steps = StepRun.objects.filter(run_id=run_id, status__in=OPEN_STEPS)
        closed_steps = [(str(t), str(s)) for t, s in steps.values_list("tag", "status")]
        if closed_steps:
            steps.filter(status="pending").update(status="not_run", finished_at=now)
            steps.exclude(status="pending").update(status="cancelled", finished_at=now)
        sequences = SequenceRun.objects.filter(run_id=run_id).exclude(
            status__in=list(SEQUENCE_FINISHED)
        )
        closed_sequences = [(str(t), str(s)) for t, s in sequences.values_list("tag", "status")]
        if closed_sequences:
            sequences.filter(status="pending").update(
                status="not_run", finished_at=now, lease_owner="", wake_at=None
            )
            sequences.exclude(status="pending").update(
                status="cancelled", finished_at=now, lease_owner="", wake_at=None
            )
        return closed_steps, closed_sequences

    def waiting_steps(self, run_id: int) -> list[tuple[str, dict[str, Any]]]:
        """``(sequence, wait)`` of the run's waiting steps."""
        rows = StepRun.objects.filter(run_id=run_id, status="waiting").values("sequence", "wait")
        return [(str(r["sequence"]), r["wait"] or {}) for r in rows]

    def waiting_on_child(self, child_run_id: int) -> tuple[int, str] | None:
        """``(run_id, sequence)`` of the step waiting on a child run, if any."""
        row = (
            StepRun.objects.filter(child_run_id=child_run_id, status="waiting")
            .values("run_id", "sequence")
            .first()
        )
        return None if row is None else (int(row["run_id"]), str(row["sequence"]))

    # ---- sequences

    def sequence_statuses(self, run_id: int) -> list[str]:
        """The status of every sequence of the run."""
        qs = SequenceRun.objects.filter(run_id=run_id).values_list("status", flat=True)
        return [str(s) for s in qs]

    def sequences_running(self, run_id: int, *, exclude_seq: int = 0) -> bool:
        """Whether a sequence of the run (other than ``exclude_seq``) is running."""
        running = SequenceRun.objects.filter(run_id=run_id, status="running")
        return running.exclude(pk=exclude_seq).exists()

    def cancel_parked(
        self, run_id: int, now: datetime, *, exclude_seq: int = 0
    ) -> list[tuple[str, str]]:
        """Close the run's pending (``not_run``) and parked (``cancelled``) sequences
        other than ``exclude_seq``; returns ``(tag, status now)`` of each (for the
        journal)."""
        parked = SequenceRun.objects.filter(run_id=run_id, status__in=PARKED_SEQUENCES).exclude(
            pk=exclude_seq
        )
        closed = [
            (str(tag), "not_run" if status == "pending" else "cancelled")
            for tag, status in parked.values_list("tag", "status")
        ]
        if closed:
            parked.filter(status="pending").update(
                status="not_run", finished_at=now, lease_owner="", wake_at=None
            )
            parked.exclude(status="pending").update(
                status="cancelled", finished_at=now, lease_owner="", wake_at=None
            )
        return closed

    def wake_sequences(self, run_id: int, tag: str) -> list[int]:
        """Move the run's waiting sequence ``tag`` back to running (for a task to take);
        returns the ids woken."""
        ids = list(
            SequenceRun.objects.filter(run_id=run_id, tag=tag, status="waiting").values_list(
                "id", flat=True
            )
        )
        if ids:
            SequenceRun.objects.filter(pk__in=ids).update(
                status="running", wake_at=None, lease_owner=""
            )
        return ids

    def resume_sequence(self, seq_id: int) -> None:
        """A sequence parked waiting runs again."""
        SequenceRun.objects.filter(pk=seq_id, status="waiting").update(status="running")

    def release_sequence(self, seq_id: int, *, status: str | None = None, **values: Any) -> None:
        """Free a running sequence's lease (and set ``status``)."""
        if status is not None:
            values["status"] = status
        SequenceRun.objects.filter(pk=seq_id, status="running").update(
            lease_owner="", lease_until=None, **values
        )

    def hand_back_sequence(self, seq_id: int, token: str) -> bool:
        """Free ``token``'s lease on a running sequence (its worker is stopping)."""
        return bool(
            SequenceRun.objects.filter(pk=seq_id, status="running", lease_owner=token).update(
                lease_owner="", lease_until=None
            )
        )

    def cancel_held(self, seq_id: int, token: str) -> None:
        """Cancel a sequence ``token`` holds (its run already ended)."""
        SequenceRun.objects.filter(pk=seq_id, lease_owner=token).update(
            status="cancelled", lease_owner="", lease_until=None
        )

    def sequence_of(self, seq_id: int) -> tuple[int, str]:
        """``(run_id, tag)`` of a sequence (SequenceRun.DoesNotExist when gone)."""
        row = SequenceRun.objects.values("run_id", "tag").get(pk=seq_id)
        return int(row["run_id"]), str(row["tag"])

    # ---- signals

    def consume_signal(
        self, run_id: int, names: list[str], step: str, now: datetime
    ) -> Signal | None:
        """Consume the oldest unconsumed signal of ``names`` for ``step``, if any."""
        signal = (
            Signal.objects.filter(run_id=run_id, name__in=names, consumed_at__isnull=True)
            .order_by("id")
            .first()
        )
        if signal is not None:
            Signal.objects.filter(pk=signal.pk).update(consumed_by=step, consumed_at=now)
        return signal

    def signal_pending(self, run_id: int, names: list[str]) -> bool:
        """Whether an unconsumed signal of ``names`` is stored."""
        return Signal.objects.filter(
            run_id=run_id, name__in=names, consumed_at__isnull=True
        ).exists()
