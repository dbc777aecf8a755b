"""FOREACH steps: a loop over a list resolved at run time, one journaled iteration per item.

The FOREACH step resolves its items, refuses more than TRELLIS_MAX_LOOP_ITERATIONS, and in
the commit that parks its sequence (``waiting``) creates one SequenceRun per item
(``<loop tag>[i]``) with the body's StepRuns (``<body tag>[i]``), the first
``max_concurrency`` of them started. An iteration is driven like any sequence (leases,
crash recovery, the sweep): a completed iteration's steps never run again. When one
completes, the same commit starts the next pending iteration (this task drives it) or,
after the last, wakes the FOREACH step's sequence, which completes the step with the list
of the iterations' results (each iteration's last body step's output), in item order.

Cost per iteration does not grow with the number of items: the FOREACH step's ``wait``
keeps ``{n, max_concurrency, completed}``, counted up in each iteration's last commit,
and iterations start in item order, so the next one to start is ``min(n, max_concurrency
+ completed - 1)`` and the loop is over when ``completed == n`` (point lookups only). The
items are the step's stored input (``{"items": [...]}``): ``$Item`` of an iteration (and of
a body step's rollback) is read from there (:meth:`RunContext.enter`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from runtime.compiler import PlanStep, is_iteration, iteration_key
from runtime.engine import config
from runtime.engine.finishing import take_finalize
from runtime.engine.queue import enqueue
from runtime.engine.sequence_end import SequenceEnd
from runtime.engine.state import Pending, StepState, Stop
from runtime.errors import StepError
from runtime.journal import db_datetime


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), "a number")


class LoopSteps(SequenceEnd):
    """The FOREACH step and the end of its iterations."""

    def enter_sequence(self) -> None:
        """Before driving ``self.seq_tag``: an iteration's steps (created after this task
        read the run, perhaps) are known, and expressions see its ``$Item``/``$Index``."""
        tag = self.seq_tag
        if is_iteration(tag):
            first = self.ctx.plan.sequence(tag).events[0].tag
            if first not in self.ctx.steps:
                self.ctx.refresh_steps(self.store.step_rows(self.run_id))
        self.ctx.enter(tag)

    def progress(self, loop_tag: str) -> tuple[int, dict[str, Any]]:
        """``(step id, {n, max_concurrency, completed})`` of the FOREACH step, as committed."""
        row = self.store.step_wait(self.run_id, loop_tag)
        loop = (row[1] if row else {}).get("loop")
        if row is None or not isinstance(loop, dict):
            raise StepError(f"loop '{loop_tag}' has no iterations", retryable=False)
        return row[0], loop

    # ---- the FOREACH step

    def foreach_step(self, step: PlanStep, st: StepState, pending: Pending) -> None:
        loop: dict[str, Any] | None = (st.wait or {}).get("loop")
        if loop is None:
            items = self.loop_items(st)
            if not items:
                self.complete(step, st, [], pending)
                self.commit(pending)
                return
            self.start_loop(step, st, items, pending)  # parks: raises Stop
        else:
            self.finish_loop(step, st, int(loop["n"]), pending)

    def loop_items(self, st: StepState) -> list[Any]:
        data = st.resolved if isinstance(st.resolved, dict) else {}
        items = data.get("items")
        if not isinstance(items, list):
            raise StepError(f"FOREACH items must be a list, got {_kind(items)}", retryable=False)
        limit = config.max_loop_iterations()
        if len(items) > limit:
            raise StepError(
                f"FOREACH over {len(items)} items: more than the {limit} iterations a loop"
                " may run (TRELLIS_MAX_LOOP_ITERATIONS)",
                retryable=False,
                details={
                    "items": len(items),
                    "limit": limit,
                    "setting": "TRELLIS_MAX_LOOP_ITERATIONS",
                },
            )
        return items

    def start_loop(self, step: PlanStep, st: StepState, items: list[Any], pending: Pending) -> None:
        """Park the sequence and create the iterations in the same commit."""
        n = len(items)
        most = step.max_concurrency or 1
        width = min(n, most)  # started now
        st.status = "waiting"
        st.wait = {"loop": {"n": n, "max_concurrency": most, "completed": 0}}
        pending.steps.append((st.id, {"status": "waiting", "wait": st.wait}))
        info = {"iterations": n, "max_concurrency": most}
        pending.entries.append(("step_waiting", step.tag, {"loop": info}))

        def create() -> None:
            if self.ctx.stop_reason:
                return  # winding down: the last sequence out cancels this one
            stamp = db_datetime(timezone.now())
            self.store.insert_sequences(
                [
                    (self.run_id, f"{step.tag}[{i}]", "running" if i < width else "pending", "",
                     stamp if i < width else None, None)
                    for i in range(n)
                ]
            )  # fmt: skip
            self.store.insert_steps(
                [
                    (self.run_id, f"{b.tag}[{i}]", f"{step.tag}[{i}]", b.index, "pending", 0,
                     "[]", None, None, "", 0)
                    for i in range(n)
                    for b in step.body
                ]
            )  # fmt: skip
            ids = self.store.iteration_ids(self.run_id, step.tag, status="running")
            self.append_now(
                [("sequence_started", f"{step.tag}[{i}]", {"index": i}) for i in range(width)]
            )
            enqueue([(config.DRIVE, (ids[i],)) for i in range(width)])

        self.commit(
            pending, seq_values={"status": "waiting", "wake_at": None}, release=True, after=create
        )
        raise Stop("parked")

    def finish_loop(self, step: PlanStep, st: StepState, n: int, pending: Pending) -> None:
        """Every iteration completed: the step's output is their results in item order."""
        _, loop = self.progress(step.tag)
        if int(loop.get("completed", 0)) < n:
            self.park(pending)  # woken before the last iteration ended: wait on
        self.ctx.refresh_steps(self.store.step_rows(self.run_id))
        last = step.body[-1].tag
        output = [self.ctx.outputs.get(f"{last}[{i}]") for i in range(n)]
        self.complete(step, st, output, pending, wait={"loop": loop})
        self.commit(pending)

    # ---- the end of an iteration

    def complete_sequence(self, pending: Pending) -> tuple[int, str] | None:
        if not is_iteration(self.seq_tag):
            return super().complete_sequence(pending)
        loop_tag, _ = iteration_key(self.seq_tag)
        keep: list[tuple[int, str]] = []
        last_out: list[bool] = []

        def decide() -> None:
            if self.ctx.stop_reason:
                last_out.append(take_finalize(self.run_id, self.token, exclude_seq=self.seq_id))
                return
            self.next_iterations(loop_tag, keep)

        pending.entries.append(("sequence_completed", self.seq_tag, {}))
        self.commit(
            pending,
            seq_values={"status": "completed", "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        if last_out:
            raise Stop("finalize" if last_out[0] else "stopped")
        return keep[0] if keep else self.steal()

    def next_iterations(self, loop_tag: str, keep: list[tuple[int, str]]) -> None:
        """Inside the commit of an iteration's end (run locked): count it, start the next
        pending iteration (this task drives it) or, after the last one, wake the FOREACH
        step's sequence (this task drives that)."""
        step = self.ctx.plan.loop(loop_tag)
        step_id, loop = self.progress(loop_tag)
        n, width = int(loop["n"]), int(loop["max_concurrency"])
        done = int(loop.get("completed", 0)) + 1
        self.store.update_step(step_id, wait={"loop": {**loop, "completed": done}})
        # Each completion frees one slot and iterations start in order: before this one
        # ended, the first min(n, width + done - 1) had started.
        following = min(n, width + done - 1)
        now = timezone.now()
        until = now + timedelta(seconds=config.LEASE_S)
        if following < n:
            tag = f"{loop_tag}[{following}]"
            pk = self.store.sequence_id(self.run_id, tag)
            if pk is None:
                raise StepError(f"iteration {tag} is missing", retryable=False)
            self.store.start_sequence_leased(pk, self.token, now, until)
            self.append_now([("sequence_started", tag, {"index": following})])
            keep.append((pk, tag))
        elif done >= n:
            parent = step.sequence
            ids = self.store.wake_sequences(self.run_id, parent)
            if ids:
                values = {"lease_owner": self.token, "lease_until": until}
                self.store.update("runtime_sequencerun", ids[0], values)
                keep.append((ids[0], parent))
