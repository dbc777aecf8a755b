"""The driver: one task drives one sequence of a run step by step.

One task drives one sequence (``sequence_drive``): it takes the sequence's lease, then runs
its steps in order. Each step's result is committed in ONE short transaction together
with the start of the next step (StepRun rows, journal entries, ``Run.last_seq``), so the
hot path is one transaction per step with no re-reads. When the sequence ends, the same
kind of transaction (under the run's lock) decides which sequences start next: the first
one is driven by this task without a queue hop, the others are enqueued. Only fan-out,
timers and signals go back through the queue.

Concurrency and crashes:

- A task only works on a sequence while it holds the lease (``SequenceRun.lease_owner``,
  renewed while a step runs); every commit re-checks it (a fenced UPDATE), so a worker that
  lost its lease can never write over the worker that took it. A duplicate task finds the
  lease taken or the sequence done and returns.
- Every transaction that journals first increments ``Run.last_seq`` (the run's row lock on
  PostgreSQL, the write lock on SQLite), which serializes writers of one run: fan-out/join
  decisions, signals and cancels are race-free.
- A completed step is never run again; a step in flight when its worker died is re-run by
  whoever takes the expired lease, with the same idempotency key ``<run>:<step>:<attempt>``.
- The periodic sweep (``runtime.tasks.sweep``) re-enqueues due timers, expired leases and
  interrupted compensations.

Winding down (a step failed, cancel, ROLLBACK, timeout): ``Run.stop_reason`` is set once;
running sequences stop at their next step boundary; the last one out (or the sweep)
compensates per the rollback strategy under the run's own lease, then ends the run.

The driver's base classes hold its parts, each on top of the one before: the fenced
commit (:mod:`~runtime.engine.commit`), step transitions (:mod:`~runtime.engine.transitions`),
the end of a sequence (:mod:`~runtime.engine.sequence_end`) and the engine's own step kinds
(:mod:`~runtime.engine.steps`).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from runtime import graceful
from runtime.compiler import PlanStep
from runtime.engine import config
from runtime.engine.config import ENGINE_TYPES
from runtime.engine.context import RunContext
from runtime.engine.decisions import STEP_FINISHED
from runtime.engine.guard import finalize_task
from runtime.engine.queue import enqueue
from runtime.engine.state import LeaseLost, Pending, StepState, Stop, describe, new_token
from runtime.engine.steps import EngineSteps
from runtime.engine.store import store
from runtime.errors import ExpressionError, StepError
from runtime.models import RUN_FINISHED

logger = logging.getLogger("trellis.executor")


class SequenceDriver(EngineSteps):
    """Drives the sequences of one run within one task."""

    def drive(self, seq_id: int, seq_tag: str) -> None:
        """Drive ``seq_tag`` and then whatever this task is handed next, until nothing."""
        next_seq: tuple[int, str] | None = (seq_id, seq_tag)
        while next_seq is not None:
            self.seq_id, self.seq_tag = next_seq
            self.renewed_at = time.monotonic()
            try:
                next_seq = self.drive_one()
            except Stop as stop:
                logger.debug("sequence %s of run %s stops: %s", self.seq_tag, self.run_id, stop.why)
                next_seq = None
                if stop.why == "finalize":
                    finalize_task(self.run_id)  # a crash there is counted, not raised

    def drive_one(self) -> tuple[int, str] | None:
        self.enter_sequence()
        plan = self.ctx.plan
        steps = plan.sequence(self.seq_tag).events
        pending = Pending()
        i = 0
        while True:
            while i < len(steps) and self.ctx.steps[steps[i].tag].status in STEP_FINISHED:
                i += 1
            if self.ctx.stop_reason:
                self.flush(pending)
                self.stop_sequence()
            if self.deadline is not None and timezone.now() >= self.deadline:
                self.flush(pending)
                self.wind_down("timeout", {"code": "run_timeout", "message": "the run timed out"})
            if i >= len(steps):
                return self.complete_sequence(pending)
            if graceful.stopping():
                self.flush(pending)
                self.hand_back()
            step = steps[i]
            try:
                self.step_once(step, self.ctx.steps[step.tag], pending)
            except (Stop, LeaseLost, OperationalError, InterfaceError):
                raise  # control flow, or the database is unwell (the task retries, bounded)
            except Exception as exc:
                # A bug or an unforeseen value anywhere in handling this step: the step
                # fails for good (journaled, compensation per the rollback strategy)
                # instead of crashing this task on every re-lease.
                logger.exception("run %s: step %s could not be handled", self.run_id, step.tag)
                pending.entries.clear()
                pending.steps.clear()
                self.fail_after_error(step.tag, exc)

    def step_once(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        # Also when resumed in a new task: its condition and input see this step.
        self.ctx.run_info["current_step"] = step.tag
        if st.status in ("pending", "retrying"):
            try:
                holds = self.ctx.condition_holds(step.condition)
            except ExpressionError as exc:
                self.begin(step, st, pending)
                self.fail(step, st, StepError(f"condition: {exc}", retryable=False), pending)
                return
            if not holds:
                self.skip(step, st, pending)
                return
            self.begin(step, st, pending)
        if step.type in ENGINE_TYPES:
            self.flush(pending)
            self.engine_step(step, st)
            return
        if pending.entries:
            self.flush(pending)
        self.connector_step(step, st, pending)

    def hand_back(self) -> None:
        """This worker is stopping (SIGTERM): free the sequence for another worker, now."""
        with transaction.atomic():
            if self.store.hand_back_sequence(self.seq_id, self.token):
                enqueue([(config.DRIVE, (self.seq_id,))])
        raise Stop("handed back: the worker is stopping")

    def fail_after_error(self, tag: str, exc: BaseException) -> None:
        """Fail step ``tag`` (no retry) from what the database holds, after ``exc`` left
        this task's view of the run unknown."""
        ctx = RunContext.load(self.run_id)
        if ctx is None:
            raise Stop("the run was deleted")
        self.ctx = ctx
        self.enter_sequence()
        st = ctx.steps[tag]
        if st.status in STEP_FINISHED:
            return
        step = ctx.plan.step(tag)
        pending = Pending()
        if st.status in ("pending", "retrying"):
            self.begin(step, st, pending)
        message = f"the engine could not handle this step: {describe(exc)}"
        error = StepError(message, retryable=False)
        self.fail(step, st, error, pending)


def sequence_drive(sequence_run_id: int) -> None:
    """Take the sequence's lease (or return: someone else has it, or it is done/not due)
    and drive it and whatever follows in this task."""
    token = new_token()
    now = timezone.now()
    taken = store().take_sequence(
        sequence_run_id, token, now, now + timedelta(seconds=config.LEASE_S)
    )
    if taken is None:
        return
    run, tag = taken
    ctx = RunContext.of(run)
    run_id = ctx.run.pk
    driver = SequenceDriver(ctx, token)
    try:
        if ctx.run.status in RUN_FINISHED:
            driver.store.cancel_held(sequence_run_id, token)
            return
        driver.drive(sequence_run_id, tag)
    except LeaseLost:
        logger.warning("run %s: lease on sequence %s lost; another worker continues", run_id, tag)
