"""Step and sequence transitions of the driver: start, skip, complete, fail, retry,
park, and wind down. Changes are gathered into a :class:`Pending` and committed by the
fenced step commit (:mod:`runtime.engine.commit`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from designer.secrets import redact
from runtime.compiler import PlanStep
from runtime.connectors.loader import connector_call
from runtime.engine import config
from runtime.engine.commit import StepCommitter
from runtime.engine.config import ENGINE_TYPES
from runtime.engine.decisions import (
    STEP_FINISHED,
    FailAllowed,
    Retry,
    idempotency_key,
    on_step_failure,
    run_activity,
)
from runtime.engine.finishing import stop_run, stop_why, take_finalize
from runtime.engine.queue import enqueue
from runtime.engine.runner import call_bounded
from runtime.engine.state import (
    Encoded,
    Pending,
    StepState,
    Stop,
    describe,
    error_json,
    json_bounded,
)
from runtime.errors import ExpressionError, StepError, TrellisError


class StepTransitions(StepCommitter):
    """How a step moves: each transition gathers its writes and journal entries."""

    def skip(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        st.status = "skipped"
        pending.steps.append((st.id, {"status": "skipped", "finished_at": timezone.now()}))
        pending.entries.append(("step_skipped", step.tag, {"condition": step.condition}))

    def begin(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        """Start the next attempt: resolve the input (secrets redacted for storage)."""
        now = timezone.now()
        st.attempt += 1
        st.status = "running"
        st.input_error = None
        stored: Encoded | None = None
        # Before resolving: the step's own input sees itself as $Run{current_step}.
        self.ctx.run_info["current_step"] = step.tag
        try:
            st.resolved, redacted = self.ctx.resolve_input(step.input, step.app, step.type)
            if redacted is not None:
                stored = json_bounded(
                    redacted, limit_setting="TRELLIS_MAX_STEP_INPUT_BYTES", what="the input"
                )
        except Exception as exc:  # any input that cannot be built is the step's own error
            st.resolved = None
            st.input_error = describe(exc)
        st.attempts = [*st.attempts, {"n": st.attempt, "started_at": now.isoformat()}]
        values = {
            "status": "running",
            "attempt": st.attempt,
            "input": stored,
            "started_at": now,
            "next_attempt_at": None,
            "attempts": st.attempts,
        }
        if st.wait is not None or st.child_run_id is not None:
            # A retried wait or child starts over.
            st.wait = None
            st.child_run_id = None
            values.update(wait=None, child_run_id=None)
        pending.steps.append((st.id, values))
        data: dict[str, Any] = {"attempt": st.attempt}
        pending.entries.append(("step_started", step.tag, data))

    def _close_attempt(self, st: StepState, status: str, error: Any = None) -> None:
        if st.attempts:
            last = dict(st.attempts[-1])
            last.update(finished_at=timezone.now().isoformat(), status=status)
            if error is not None:
                last["error"] = error
            st.attempts = [*st.attempts[:-1], last]

    def complete(
        self,
        step: PlanStep,
        st: StepState,
        output: Any,
        pending: Pending,
        *,
        encoded: Encoded | None = None,
        **extra: Any,
    ) -> None:
        if encoded is None:  # raises (before anything changes) when it cannot be stored
            encoded = json_bounded(
                output, limit_setting="TRELLIS_MAX_STEP_OUTPUT_BYTES", what="the output"
            )
        self.progressed = True
        now = timezone.now()
        self._close_attempt(st, "completed")
        st.status = "completed"
        st.output = output
        st.finished_at = now
        st.resolved = None
        self.ctx.record_output(st)
        values = {
            "status": "completed",
            "output": encoded,
            "error": None,
            "finished_at": now,
            "attempts": st.attempts,
            "wait": None,
        }
        values.update(extra)
        pending.steps.append((st.id, values))
        pending.entries.append(
            ("step_completed", step.tag, {"attempt": st.attempt, "output": output})
        )

    # ---- connector steps

    def connector_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        if st.resolved is None and st.input_error is None:
            # Resumed after a crash: the start was committed, the input was not kept.
            try:
                st.resolved, _ = self.ctx.resolve_input(step.input, step.app, step.type)
            except Exception as exc:
                st.input_error = describe(exc)
        logs: list[dict[str, Any]] = []
        try:
            if st.input_error is not None:
                raise StepError(f"input: {st.input_error}", retryable=False)
            output = self.call_connector(step, st, logs)
            # Fail now (no retry), not in the commit, when it cannot be stored.
            encoded = json_bounded(
                output, limit_setting="TRELLIS_MAX_STEP_OUTPUT_BYTES", what="the output"
            )
        except Exception as exc:
            for log in logs:
                pending.entries.append(("log", step.tag, log))
            self.fail(step, st, exc, pending)
            return
        for log in logs:
            pending.entries.append(("log", step.tag, log))
        self.complete(step, st, output, pending, encoded=encoded)
        self.begin_following(step, pending)
        if self.sequence_done(step):
            return  # committed together with the sequence's completion
        self.commit(pending)
        pending.entries.clear()
        pending.steps.clear()

    def sequence_done(self, step: PlanStep) -> bool:
        events = self.ctx.plan.sequence(step.sequence).events
        return all(self.ctx.steps[e.tag].status in STEP_FINISHED for e in events[step.index + 1 :])

    def begin_following(self, step: PlanStep, pending: Pending) -> None:
        """Fold the start (or skip) of the following steps into the same commit."""
        if self.ctx.stop_reason or (self.deadline is not None and timezone.now() >= self.deadline):
            return
        events = self.ctx.plan.sequence(step.sequence).events
        for nxt in events[step.index + 1 :]:
            st = self.ctx.steps[nxt.tag]
            if st.status != "pending":
                return
            self.ctx.run_info["current_step"] = nxt.tag
            try:
                holds = self.ctx.condition_holds(nxt.condition)
            except ExpressionError:
                return
            if not holds:
                self.skip(nxt, st, pending)
                continue
            if nxt.type not in ENGINE_TYPES:
                self.begin(nxt, st, pending)
            return

    def call_connector(self, step: PlanStep, st: StepState, logs: list[dict[str, Any]]) -> Any:
        timeout_s = step.timeout_ms / 1000 if step.timeout_ms else None
        if self.deadline is not None:
            left = max(0.001, (self.deadline - timezone.now()).total_seconds())
            timeout_s = min(timeout_s, left) if timeout_s else left
        call = connector_call(
            type=step.type,
            event=step.event,
            input=st.resolved,
            environment=self.ctx.run.environment,
            app=step.app,
            idempotency_key=idempotency_key(self.run_id, step.tag, st.attempt),
            timeout_s=timeout_s,
            run_id=self.run_id,
            step=step.tag,
        )
        secrets = call.component.secrets if call.component else None

        def redact_logs(logs: list[dict[str, Any]]) -> None:
            if secrets:
                logs[:] = redact(logs, list(secrets.values()))

        return call_bounded(call, logs, timeout_s=timeout_s, renew=self.renew, redact=redact_logs)

    def fail(self, step: PlanStep, st: StepState, exc: BaseException, pending: Pending) -> None:
        error = error_json(exc)
        # An expression that cannot be evaluated gives the same error on every try.
        retryable = (
            exc.retryable if isinstance(exc, StepError) else not isinstance(exc, TrellisError)
        )
        decision = on_step_failure(step, attempt=st.attempt, retryable=retryable)
        self._close_attempt(st, "failed", error)
        st.resolved = None
        now = timezone.now()
        if isinstance(decision, Retry):
            data = {"attempt": st.attempt, "error": error, "delay_ms": decision.delay_ms}
            pending.entries.append(("step_retrying", step.tag, data))
            if decision.inline:
                st.status = "retrying"
                pending.steps.append(
                    (st.id, {"status": "retrying", "error": error, "attempts": st.attempts})
                )
                self.commit(pending)
                pending.entries.clear()
                pending.steps.clear()
                time.sleep(decision.delay_ms / 1000)
                return
            due = now + timedelta(milliseconds=decision.delay_ms)
            st.status = "retrying"
            pending.steps.append(
                (
                    st.id,
                    {
                        "status": "retrying",
                        "error": error,
                        "attempts": st.attempts,
                        "next_attempt_at": due,
                    },
                )
            )
            self.park(pending, status="retrying", wake_at=due)
        if isinstance(decision, FailAllowed):
            st.status = "failed_allowed"
            st.finished_at = now
            pending.steps.append(
                (
                    st.id,
                    {
                        "status": "failed_allowed",
                        "error": error,
                        "finished_at": now,
                        "attempts": st.attempts,
                    },
                )
            )
            pending.entries.append(
                ("step_failed", step.tag, {"attempt": st.attempt, "error": error, "allowed": True})
            )
            self.commit(pending)
            pending.entries.clear()
            pending.steps.clear()
            return
        st.status = "failed"
        st.finished_at = now
        pending.steps.append(
            (
                st.id,
                {"status": "failed", "error": error, "finished_at": now, "attempts": st.attempts},
            )
        )
        pending.entries.append(("step_failed", step.tag, {"attempt": st.attempt, "error": error}))
        cause = {"step": step.tag, **error}
        self.wind_down("failed", cause, pending=pending, seq_status="failed")

    # ---- parking, stopping, finishing

    def park(
        self,
        pending: Pending,
        *,
        status: str = "waiting",
        wake_at: datetime | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Release the sequence until ``wake_at`` (or a signal/child): no worker waits."""

        def parked() -> None:
            if status == "waiting":
                self.mark_run_waiting()
            if wake_at is not None:
                delay = max(0.0, (wake_at - timezone.now()).total_seconds())
                enqueue([(config.DRIVE, (self.seq_id,))], delay_s=delay)
            if after is not None:
                after()

        self.commit(
            pending, seq_values={"status": status, "wake_at": wake_at}, release=True, after=parked
        )
        raise Stop("parked")

    def mark_run_waiting(self) -> None:
        """Inside a commit: the run waits when no sequence runs any more."""
        if run_activity(self.store.sequence_statuses(self.run_id)) == "waiting":
            self.store.mark_run_waiting(self.run_id)
            self.append_now([("run_waiting", "", {})])

    def wind_down(
        self,
        reason: str,
        cause: dict[str, Any],
        *,
        pending: Pending | None = None,
        seq_status: str = "cancelled",
    ) -> None:
        """This sequence ends the run: set the stop reason, stop the others, and when no
        other sequence is running, compensate in this task."""
        pending = pending or Pending()
        last_out: list[bool] = []
        pending.entries.append((f"sequence_{seq_status}", self.seq_tag, stop_why(reason, cause)))

        def decide() -> None:
            last_out.append(stop_run(self.run_id, reason, cause, self.ctx, self.token, self.seq_id))

        self.commit(
            pending,
            seq_values={"status": seq_status, "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        raise Stop("finalize" if last_out and last_out[0] else "stopped")

    def stop_sequence(self) -> None:
        """The run is winding down: this sequence stops; the last one out compensates."""
        last_out: list[bool] = []
        why = stop_why(self.ctx.stop_reason or "stopping", self.ctx.run.error or {})
        pending = Pending()
        pending.entries.append(("sequence_cancelled", self.seq_tag, why))

        def decide() -> None:
            last_out.append(take_finalize(self.run_id, self.token, exclude_seq=self.seq_id))

        self.commit(
            pending,
            seq_values={"status": "cancelled", "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        raise Stop("finalize" if last_out and last_out[0] else "stopped")
