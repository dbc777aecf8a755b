"""Compensation: roll a winding-down run's steps back per its strategy, then end it."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from runtime.connectors.loader import connector_call
from runtime.engine import config
from runtime.engine.context import RunContext
from runtime.engine.decisions import (
    INLINE_DELAY_MS,
    StepView,
    compensation_targets,
    run_end_status,
)
from runtime.engine.finishing import (
    after_run_end,
    append_entries,
    close_unfinished,
    end_why,
    manually_rolled_back,
    returned_entry,
)
from runtime.engine.queue import enqueue
from runtime.engine.runner import call_bounded
from runtime.engine.state import LeaseLost, StepState, error_json, json_bounded, new_token
from runtime.engine.store import store
from runtime.errors import StepError
from runtime.journal import Entry, json_dumps
from runtime.spec import EventType


def run_finalize(run_id: int) -> None:
    """Compensate a winding-down run per its rollback strategy, then end it.

    Holds the run's lease; idempotent (rolled-back steps are skipped on a retry); a
    rollback retry with a delay of a second or more re-enqueues this task instead of
    sleeping.
    """
    token = new_token()
    now = timezone.now()
    db = store()
    if not db.take_run_lease(run_id, token, now, now + timedelta(seconds=config.LEASE_S)):
        return
    if db.sequences_running(run_id):
        # A sequence still runs (its worker may have died): it finalizes when it stops.
        db.release_run_lease(run_id, token)
        return
    ctx = RunContext.load(run_id)
    if ctx is None:
        return
    Compensator(ctx, token).execute()


class Compensator:
    """Rolls back the steps of one winding-down run under the run's lease."""

    # Retries of a rollback are slept in this task (a ROLLBACK step), not parked.
    inline = False

    def __init__(self, ctx: RunContext, token: str) -> None:
        self.ctx = ctx
        self.token = token
        self.run = ctx.run
        self.store = store()
        self.shown_input: Any = None

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def journal(self, entries: list[Entry], **run_values: Any) -> None:
        with transaction.atomic():
            append_entries(self.run, entries, run_values=run_values)

    def renew(self) -> None:
        until = timezone.now() + timedelta(seconds=config.LEASE_S)
        self.store.renew_run_lease(self.run.pk, self.token, until)

    def views(self) -> list[StepView]:
        order = {s.tag: n for n, s in enumerate(self.ctx.plan.steps)}
        out = []
        for st in self.ctx.steps.values():
            try:
                step = self.ctx.plan.step(st.tag)
            except KeyError:
                continue
            # A loop iteration's step sits where its FOREACH step is in the plan.
            position = order.get(st.tag, order.get(step.loop or "", 0))
            out.append(
                StepView(
                    tag=st.tag,
                    status=st.status,
                    finished_at=st.finished_at,
                    order=position,
                    has_rollback=step.rollback is not None,
                    critical=step.critical,
                    is_checkpoint=step.type == EventType.CHECKPOINT,
                    rollback_status=st.rollback_status,
                )
            )
        return out

    def execute(self) -> None:
        ctx = self.ctx
        reason = self.run.stop_reason
        # A terminated run is not compensated; a returned one succeeded: nothing to undo.
        no_undo = reason in ("terminated", "returned")
        strategy = "none" if no_undo else ctx.plan.options.rollback_strategy
        targets = compensation_targets(self.views(), strategy)
        started = any(s.rollback_status for s in ctx.steps.values())
        if targets and not started:
            self.journal([("rollback_started", "", {"steps": targets, "strategy": strategy})])
        for tag in targets:
            if not self.compensate(tag):
                return  # parked for a delayed retry
        self.end()

    def compensate(self, tag: str) -> bool:
        """Roll one step back with its retries; False when parked for a delayed retry."""
        ctx = self.ctx
        st = ctx.steps[tag]
        rb = ctx.plan.step(tag).rollback or {}
        retries = int(rb.get("retries", 2))
        delay_ms = int(rb.get("retry_delay_ms") or 0)
        while True:
            st.rollback_attempt += 1
            attempt = st.rollback_attempt
            self.store.update_step(st.id, rollback_status="running", rollback_attempt=attempt)
            st.rollback_status = "running"
            try:
                output = self.call(tag, rb, attempt)
                json_dumps(output)
            except Exception as exc:
                error = error_json(exc)
                retryable = bool(getattr(exc, "retryable", True))
                if not (retryable and attempt <= retries):
                    self.rollback_failed(st, attempt, error)
                    return True
                if delay_ms >= INLINE_DELAY_MS and not self.inline:
                    self.park_retry(st, attempt, error, delay_ms)
                    return False
                data = {"attempt": attempt, "error": error, "retrying": True}
                self.journal([("rollback_failed", tag, data)])
                self.pause(delay_ms / 1000)
                continue
            st.rollback_status = "rolled_back"
            st.status = "rolled_back"
            with transaction.atomic():
                self.store.update_step(
                    st.id, status="rolled_back", rollback_status="rolled_back", rollback_error=None
                )
                data = {"attempt": attempt, "input": self.shown_input, "output": output}
                self.journal([("step_rolled_back", tag, data)])
            return True

    def park_retry(self, st: StepState, attempt: int, error: Any, delay_ms: int) -> None:
        """Release the run until the rollback's next attempt is due (a task is enqueued)."""
        due = timezone.now() + timedelta(milliseconds=delay_ms)
        with transaction.atomic():
            self.store.update_step(st.id, rollback_status="retrying", rollback_error=error)
            data = {"attempt": attempt, "error": error, "retrying": True}
            self.journal(
                [("rollback_failed", st.tag, data)], wake_at=due, lease_owner="", lease_until=None
            )
            enqueue([(config.FINALIZE, (self.run.pk,))], delay_s=delay_ms / 1000)

    def rollback_failed(self, st: StepState, attempt: int, error: Any) -> None:
        """The rollback of ``st`` failed for good."""
        st.rollback_status = "failed"
        with transaction.atomic():
            self.store.update_step(st.id, rollback_status="failed", rollback_error=error)
            data = {"attempt": attempt, "error": error, "final": True, "input": self.shown_input}
            self.journal([("rollback_failed", st.tag, data)])

    def call(self, tag: str, rb: dict[str, Any], attempt: int) -> Any:
        self.ctx.enter(tag)  # a loop iteration's step: its $Item, $Index and body steps
        try:
            resolved, shown = self.ctx.resolve_input(
                rb.get("input") or {}, rb.get("app"), rb["type"]
            )
        finally:
            self.ctx.enter(None)
        # What the monitor shows of this call: its input with secrets redacted, bounded
        # (an input too large to show is no reason to fail the rollback).
        try:
            json_bounded(shown, limit_setting="TRELLIS_MAX_STEP_INPUT_BYTES", what="the input")
            self.shown_input = shown
        except StepError as exc:
            self.shown_input = {"error": str(exc)}
        timeout_ms = rb.get("timeout_ms")
        timeout_s = timeout_ms / 1000 if timeout_ms else None
        call = connector_call(
            type=rb["type"],
            event=rb["event"],
            input=resolved,
            environment=self.run.environment,
            app=rb.get("app"),
            idempotency_key=f"{self.run.pk}:{tag}:rollback:{attempt}",
            timeout_s=timeout_s,
            run_id=self.run.pk,
            step=tag,
        )
        logs: list[dict[str, Any]] = []
        return call_bounded(call, logs, timeout_s=timeout_s, renew=self.renew)

    def returned_output(self) -> Any:
        """The output of the RETURN step that ended the run (named by its stop cause)."""
        cause = self.run.error if isinstance(self.run.error, dict) else {}
        st = self.ctx.steps.get(str(cause.get("step") or ""))
        return st.output if st is not None else None

    def end_error(self, failed: list[str]) -> dict[str, Any] | None:
        """The error the run ends with: its cause, or the rollbacks that failed."""
        run = self.run
        if not failed:
            return dict(run.error or {}) or None
        messages = self.store.rollback_errors(run.pk, failed)
        text = "; ".join(f"rollback of '{t}' failed: {messages.get(t, '')}" for t in failed)
        return {
            "code": "rollback_failed",
            "message": text,
            "rollback_failed": failed,
            "cause": run.error,
        }

    def end(self) -> None:
        ctx = self.ctx
        run = self.run
        reason = run.stop_reason
        steps = list(ctx.steps.values())
        failed = [s.tag for s in steps if s.rollback_status == "failed"]
        rolled = [s.tag for s in steps if s.status == "rolled_back"]
        status = run_end_status(
            stop_reason=reason,
            rolled_back=len(rolled),
            rollback_failed=bool(failed),
            manual_rollback=manually_rolled_back(ctx),
        )
        error = self.end_error(failed)
        returned = reason == "returned" and not failed
        values: dict[str, Any] = {"error": error}
        if returned:  # a RETURN step ended the run: its output is the run's
            values = {"error": None, "output": self.returned_output()}
        now = timezone.now()
        entries: list[Entry] = []
        with transaction.atomic():
            self.store.lock_run(run.pk)
            entries.extend(close_unfinished(run.pk, now, end_why(status, error)))
            if returned:
                entries.append(returned_entry(ctx, status, values["output"]))
            else:
                kind = {
                    "failed": "run_failed",
                    "rolled_back": "run_rolled_back",
                    "cancelled": "run_cancelled",
                }.get(status, "run_failed")
                entries.append((kind, "", {"error": error, "rolled_back_steps": rolled}))
            updated = self.store.end_run(run.pk, status=status, now=now, owner=self.token, **values)
            if not updated:
                raise LeaseLost()
            append_entries(run, entries, now)
            run.status = status
            after_run_end(run)
