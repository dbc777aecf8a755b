"""The driver: one task drives one sequence of a run step by step, then whatever the
sequence's end hands it next (see the module docstring of :mod:`runtime.executor` for the
concurrency model). The step transitions, the sequence's end, the engine's step kinds and
the fenced commit are the driver's base classes, in that order."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import InterfaceError, OperationalError
from django.utils import timezone

from runtime.compiler import PlanStep
from runtime.engine import config
from runtime.engine.config import ENGINE_TYPES
from runtime.engine.context import RunContext
from runtime.engine.decisions import STEP_FINISHED
from runtime.engine.guard import finalize_task
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

    def fail_after_error(self, tag: str, exc: BaseException) -> None:
        """Fail step ``tag`` (no retry) from what the database holds, after ``exc`` left
        this task's view of the run unknown."""
        ctx = RunContext.load(self.run_id)
        if ctx is None:
            raise Stop("the run was deleted")
        self.ctx = ctx
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
