"""The engine's own step kinds: SLEEP, WAIT_SIGNAL, FEATURE (child runs), CHECKPOINT,
SET_STATE, ROLLBACK, FOREACH (:mod:`~runtime.engine.loops`) and the run's endings RETURN
and FAIL. They run in the driver's task without a connector; a wait parks the sequence (no
worker waits) and a timer, a signal, a child's end or a loop's last iteration wakes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from runtime.compiler import PlanStep
from runtime.engine import config
from runtime.engine.compensation import Compensator
from runtime.engine.context import RunContext
from runtime.engine.creation import run_start_child
from runtime.engine.decisions import INLINE_DELAY_MS, compensation_targets
from runtime.engine.finishing import close_child
from runtime.engine.loops import LoopSteps
from runtime.engine.queue import enqueue
from runtime.engine.runner import run_bounded
from runtime.engine.state import LeaseLost, Pending, StepState, Stop, describe, json_bounded
from runtime.errors import ChildTimeout, HandlerRaised, RunRefused, StepError, TrellisError
from runtime.models import RUN_FINISHED
from runtime.spec import EventType, duration_ms


def signal_names(step: PlanStep, data: dict[str, Any]) -> list[str]:
    """The signals a WAIT_SIGNAL step waits for (its event's name by default)."""
    names = data.get("signals", data.get("signal"))
    if names is None:
        return [step.event]
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names]


class EngineSteps(LoopSteps):
    """The step kinds the engine runs itself."""

    def engine_step(self, step: PlanStep, st: StepState) -> None:
        pending = Pending()
        try:
            if st.input_error is not None:
                raise StepError(f"input: {st.input_error}", retryable=False)
            if st.resolved is None:
                st.resolved, _ = self.ctx.resolve_input(step.input, step.app, step.type)
            handler = {
                EventType.SLEEP: self.sleep_step,
                EventType.WAIT_SIGNAL: self.signal_step,
                EventType.FEATURE: self.feature_step,
                EventType.CHECKPOINT: self.checkpoint_step,
                EventType.SET_STATE: self.set_state_step,
                EventType.ROLLBACK: self.rollback_step,
                EventType.FOREACH: self.foreach_step,
                EventType.RETURN: self.return_step,
                EventType.FAIL: self.fail_step,
            }[step.type]
            handler(step, st, pending)
        except (Stop, LeaseLost):
            raise
        except Exception as exc:
            if not isinstance(exc, TrellisError):
                # Engine code, not a connector: the same error comes back on every try.
                message = f"the engine could not handle this step: {describe(exc)}"
                exc = StepError(message, retryable=False)
            self.fail(step, st, exc, pending)

    def sleep_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        now = timezone.now()
        if st.status == "running" and not st.wait:
            raw = (
                (st.resolved or {}).get("duration", step.event)
                if isinstance(st.resolved, dict)
                else step.event
            )
            try:
                ms = duration_ms(raw) or 0
            except ValueError as exc:
                raise StepError(f"SLEEP: {exc}", retryable=False) from exc
            until = now + timedelta(milliseconds=ms)
            if ms < INLINE_DELAY_MS:
                time.sleep(ms / 1000)
                self.complete(step, st, {"slept_ms": ms}, pending)
                self.commit(pending)
                return
            st.status = "waiting"
            st.wait = {"until": until.isoformat(), "ms": ms}
            pending.steps.append(
                (st.id, {"status": "waiting", "wait": st.wait, "next_attempt_at": until})
            )
            pending.entries.append(("step_waiting", step.tag, {"until": until.isoformat()}))
            self.park(pending, wake_at=until)
        until = datetime.fromisoformat(str((st.wait or {}).get("until")))
        if now >= until:
            self.complete(step, st, {"slept_ms": (st.wait or {}).get("ms")}, pending)
            self.commit(pending)
            return
        self.park(pending, wake_at=until)

    def signal_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        now = timezone.now()
        if st.status == "running" and not st.wait:
            names = signal_names(step, data)
            timeout = data.get("timeout")
            try:
                ms = duration_ms(timeout) if timeout is not None else None
            except ValueError as exc:
                raise StepError(f"WAIT_SIGNAL timeout: {exc}", retryable=False) from exc
            until = now + timedelta(milliseconds=ms) if ms is not None else None
            st.wait = {"signals": names, "until": until.isoformat() if until else None}
        names = list((st.wait or {}).get("signals") or [])
        until_raw = (st.wait or {}).get("until")
        until = datetime.fromisoformat(until_raw) if until_raw else None
        # Check for a stored signal under the run lock: a signal sent before the wait is kept.
        with transaction.atomic():
            self.store.lock_run(self.run_id)
            signal = self.store.consume_signal(self.run_id, names, step.tag, timezone.now())
            if signal is not None:
                payload = (
                    signal.payload
                    if isinstance(signal.payload, dict)
                    else {"value": signal.payload}
                )
                output = {**payload, "_signal": signal.name}
                self.complete(step, st, output, pending)
                self.commit(pending)
                return
        if until is not None and now >= until:
            raise StepError(f"no signal {', '.join(names)} before the timeout", retryable=False)
        st.status = "waiting"
        pending.steps.append(
            (st.id, {"status": "waiting", "wait": st.wait, "next_attempt_at": until})
        )
        pending.entries.append(("step_waiting", step.tag, {"signals": names, "until": until_raw}))
        self.park(pending, wake_at=until, after=self._recheck_signals(names))

    def _recheck_signals(self, names: list[str]) -> Callable[[], None]:
        def recheck() -> None:
            # A signal may have been stored between our check and this commit's lock.
            if self.store.signal_pending(self.run_id, names):
                self.store.resume_sequence(self.seq_id)
                enqueue([(config.DRIVE, (self.seq_id,))])

        return recheck

    def feature_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        if st.status == "running" and not st.child_run_id:
            data = st.resolved if isinstance(st.resolved, dict) else {}
            policy = str(data.get("parent_close_policy") or "terminate")
            if policy not in ("terminate", "abandon", "request_cancel"):
                raise StepError(f"unknown parent_close_policy '{policy}'", retryable=False)
            child_input = (
                data["input"]
                if isinstance(data.get("input"), dict)
                else {k: v for k, v in data.items() if k != "parent_close_policy"}
            )
            # The step's timeout bounds the wait for the child: a durable timer (the
            # sequence's wake_at, which the sweep re-enqueues after a worker restart).
            until = (
                timezone.now() + timedelta(milliseconds=step.timeout_ms)
                if step.timeout_ms
                else None
            )

            def start_child() -> None:
                try:
                    child = run_start_child(
                        parent=self.ctx.run,
                        step=step.tag,
                        workflow_tag=step.event,
                        input=child_input,
                        policy=policy,
                        attempt=st.attempt,
                    )
                except RunRefused as exc:
                    raise StepError(f"child workflow: {exc}", retryable=False) from exc
                st.child_run_id = child.pk
                st.wait = {"child": child.pk, "policy": policy}
                if until is not None:
                    st.wait["until"] = until.isoformat()
                self.store.update_step(st.id, child_run=child.pk, wait=st.wait)
                waiting = {"child": child.pk, **({"until": until.isoformat()} if until else {})}
                self.append_now([("step_waiting", step.tag, waiting)])

            st.status = "waiting"
            pending.steps.append((st.id, {"status": "waiting"}))
            self.park(pending, wake_at=until, after=start_child)
        child_row = self.store.child_outcome(st.child_run_id or 0)
        if child_row is None:
            raise StepError("the child run was deleted", retryable=False)
        if child_row["status"] == "completed":
            self.complete(step, st, child_row["output"], pending)
            self.commit(pending)
            return
        if child_row["status"] in RUN_FINISHED:
            raise StepError(
                f"child run {st.child_run_id} ended {child_row['status']}",
                retryable=True,  # the step's own retries decide: a new child each time
                details={"child": st.child_run_id, "error": child_row["error"]},
            )
        until_raw = (st.wait or {}).get("until")
        until = datetime.fromisoformat(until_raw) if until_raw else None
        if until is not None and timezone.now() >= until:
            self.child_timed_out(step, st)
        self.park(pending, wake_at=until)

    def child_timed_out(self, step: PlanStep, st: StepState) -> None:
        """The wait for the child is over: close the child per its parent_close_policy
        and fail the attempt (a retry starts a new child, as after a failed child)."""
        child_id = st.child_run_id or 0
        policy = str((st.wait or {}).get("policy") or "terminate")
        with transaction.atomic():
            close_child(child_id, policy, f"parent step {step.tag} timed out ({policy})")
        raise ChildTimeout(
            f"child run {child_id} did not finish within {step.timeout_ms} ms",
            retryable=True,
            details={"child": child_id, "parent_close_policy": policy},
        )

    def checkpoint_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        name = str(data.get("name") or step.event)
        payload = data.get("data", data)
        record = {"data": payload, "step": step.tag, "at": timezone.now().isoformat()}

        def save() -> None:
            state = self.store.lock_run(self.run_id)["state"] or {}
            checkpoints = dict(state.get("_checkpoints") or {})
            checkpoints[name] = record
            state["_checkpoints"] = checkpoints
            self.store.update_run(self.run_id, state=state)
            self.ctx.state.clear()
            self.ctx.state.update(state)

        self.check_state(lambda state: state.setdefault("_checkpoints", {}).update({name: record}))
        pending.entries.append(("checkpoint", step.tag, {"name": name, "data": payload}))
        self.complete(step, st, payload, pending)
        self.commit(pending, after=save)

    def set_state_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        values = st.resolved if isinstance(st.resolved, dict) else {}

        def save() -> None:
            state = self.store.lock_run(self.run_id)["state"] or {}
            state.update(values)
            self.store.update_run(self.run_id, state=state)
            self.ctx.state.clear()
            self.ctx.state.update(state)

        self.check_state(lambda state: state.update(values))
        pending.entries.append(("state_set", step.tag, {"values": values}))
        self.complete(step, st, values, pending)
        self.commit(pending, after=save)

    def check_state(self, change: Callable[[dict[str, Any]], Any]) -> None:
        """Refuse (StepError, no retry) a state change that makes the run state too large."""
        state = dict(self.ctx.state)
        if "_checkpoints" in state:
            state["_checkpoints"] = dict(state["_checkpoints"] or {})
        change(state)
        json_bounded(state, limit_setting="TRELLIS_MAX_STATE_BYTES", what="the run state")

    # ---- ending a run from a branch, and the manual rollback

    def return_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        """RETURN: the run ends with this step's output. Other running sequences stop at
        their next step boundary, pending ones never start, nothing is compensated; the
        last sequence out ends the run (``returned``: see run_end_status)."""
        data = st.resolved if isinstance(st.resolved, dict) else {}
        output = data.get("output")
        json_bounded(output, limit_setting="TRELLIS_MAX_RUN_OUTPUT_BYTES", what="the run output")
        self.complete(step, st, output, pending)
        cause = {"step": step.tag, "code": "returned", "message": "the run returned"}
        self.wind_down("returned", cause, pending=pending, seq_status="completed")

    def fail_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        """FAIL: the step fails with its message (no retry), so the run fails and is
        compensated per its rollback strategy, as for any failing step."""
        data = st.resolved if isinstance(st.resolved, dict) else {}
        self.fail(step, st, HandlerRaised(str(data.get("message") or "failed")), pending)

    def rollback_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        """ROLLBACK (``ctx.trigger_rollback``): compensate what completed so far, per the
        rollback strategy, then complete with ``{"rolled_back_steps": [...]}``; the run
        goes on (and ends ``rolled_back`` with its output)."""
        data = st.resolved if isinstance(st.resolved, dict) else {}
        reason = str(data.get("reason") or data.get("message") or "")
        fresh = RunContext.load(self.run_id)  # steps other sequences completed meanwhile
        if fresh is None:
            raise Stop("the run was deleted")
        rolled = _InlineCompensator(fresh, self).roll_back(step.tag, reason)
        for tag in rolled:
            self.ctx.steps[tag].status = "rolled_back"
        self.complete(step, st, {"rolled_back_steps": rolled, "reason": reason}, pending)
        self.commit(pending)


class _InlineCompensator(Compensator):
    """Compensation run by a ROLLBACK step inside the driver's task: it renews the
    sequence's lease and sleeps a rollback's retry delay instead of parking the run."""

    inline = True

    def __init__(self, ctx: RunContext, driver: EngineSteps) -> None:
        super().__init__(ctx, driver.token)
        self.driver = driver

    def renew(self) -> None:
        self.driver.renew()

    def pause(self, seconds: float) -> None:
        run_bounded(lambda: time.sleep(seconds), timeout_s=None, renew=self.driver.renew)

    def roll_back(self, tag: str, reason: str) -> list[str]:
        """Compensate per the strategy; returns the steps undone, newest first. A rollback
        that fails for good fails the ROLLBACK step (the run then fails)."""
        strategy = self.ctx.plan.options.rollback_strategy
        targets = compensation_targets(self.views(), strategy)
        data = {"steps": targets, "strategy": strategy, "manual": tag, "reason": reason}
        self.journal([("rollback_started", tag, data)])
        for target in targets:
            self.compensate(target)
            if self.ctx.steps[target].rollback_status == "failed":
                raise StepError(f"the rollback of '{target}' failed", retryable=False)
        return targets
