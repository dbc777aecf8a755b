"""The end of a sequence: what starts next (in the same transaction), the run's end
committed with its last step, and helping with sequences nobody has taken yet."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from runtime.compiler import is_iteration
from runtime.engine import config
from runtime.engine.decisions import Schedule, returned_status, schedule
from runtime.engine.finishing import (
    after_run_end,
    complete_run,
    manually_rolled_back,
    returned_entry,
    run_output,
    starts_children,
    take_finalize,
)
from runtime.engine.queue import enqueue
from runtime.engine.starting import skip_holds
from runtime.engine.state import LeaseLost, Pending, Stop
from runtime.engine.transitions import StepTransitions
from runtime.journal import Entry


class SequenceEnd(StepTransitions):
    """What happens when the sequence being driven ends."""

    def complete_sequence(self, pending: Pending) -> tuple[int, str] | None:
        """The sequence is done: decide what starts next, in the same transaction."""
        if self.finishes_run() and self.complete_run_with(pending):
            return None
        result: list[tuple[int, str] | None] = [None]
        finished_run: list[bool] = []
        last_out: list[bool] = []

        def decide() -> None:
            if self.ctx.stop_reason:
                # Winding down: start nothing; the last sequence out compensates.
                last_out.append(take_finalize(self.run_id, self.token, exclude_seq=self.seq_id))
                return
            pending_after = self.schedule_next(exclude=self.seq_tag)
            result[0] = pending_after[0]
            finished_run.append(pending_after[1])

        pending.entries.append(("sequence_completed", self.seq_tag, {}))
        self.commit(
            pending,
            seq_values={"status": "completed", "finished_at": timezone.now()},
            release=True,
            after=decide,
        )
        if last_out:
            raise Stop("finalize" if last_out[0] else "stopped")
        if finished_run and finished_run[0]:
            return None
        if result[0] is None:
            return self.steal()
        return result[0]

    def finishes_run(self) -> bool:
        """Whether this sequence's end is the run's end, with nothing else to decide: the
        only sequence of a run that has no parent to wake and no child runs to close."""
        ctx = self.ctx
        return (
            len(ctx.plan.sequences) == 1
            and not ctx.stop_reason
            and not ctx.run.parent_run_id
            and not starts_children(ctx.plan)
        )

    def complete_run_with(self, pending: Pending) -> bool:
        """Commit the sequence's and the run's completion with its last step, as one
        commit; False (nothing written) when the run started winding down meanwhile or
        the lease was lost: the general way then decides."""
        now = timezone.now()
        output = run_output(self.ctx)
        status = returned_status(manual_rollback=manually_rolled_back(self.ctx))
        entries = [
            ("sequence_completed", self.seq_tag, {}),
            returned_entry(self.ctx, status, output),
        ]
        pending.entries.extend(entries)
        try:
            self.commit(
                pending,
                seq_values={"status": "completed", "finished_at": now},
                release=True,
                run_values={"status": status, "output": output, "finished_at": now,
                            "lease_owner": "", "lease_until": None, "wake_at": None},
            )  # fmt: skip
        except LeaseLost:
            del pending.entries[-len(entries) :]
            return False
        self.ctx.run.status = status
        return True

    def refresh(self) -> None:
        """Load what other tasks of this run committed: finished steps and the state."""
        ctx = self.ctx
        for tag, status, output in self.store.finished_steps(self.run_id):
            st = ctx.steps.get(tag)
            if st is None or st.status == status:
                continue
            st.status = status
            st.output = output
            ctx.record_output(st)
        ctx.state.clear()
        ctx.state.update(self.store.run_state(self.run_id))

    def schedule_next(self, *, exclude: str) -> tuple[tuple[int, str] | None, bool]:
        """Inside a commit (run locked): start ready sequences, keep one for this task.

        Returns (sequence to drive next, whether the run just completed).
        """
        ctx = self.ctx
        plan = ctx.plan
        rows = self.store.sequence_rows(self.run_id)
        ids = {tag: pk for pk, tag, _ in rows}
        # A loop's iterations are driven by the loop (runtime.engine.loops), not scheduled.
        statuses = {tag: status for _, tag, status in rows if not is_iteration(tag)}
        statuses[exclude] = "completed"
        fresh: list[bool] = []

        def ensure_fresh() -> None:
            # Other tasks may have completed steps this one has not seen.
            if not fresh and len(plan.sequences) > 1:
                self.refresh()
                fresh.append(True)

        def should_skip(tag: str) -> bool:
            ensure_fresh()
            return skip_holds(ctx, plan.sequence(tag).skip_if)

        decision = schedule(
            plan.sequences,
            statuses,
            max_concurrency=self.max_concurrency,
            should_skip=should_skip,
            groups=plan.options.groups,
        )
        if decision.start or decision.all_done:
            ensure_fresh()
        entries, keep, fan_out = self.start_decided(decision, ids)
        done = decision.all_done
        if done:
            entries.extend(complete_run(ctx))
        if entries:
            self.append_now(entries)
        enqueue([(config.DRIVE, (pk,)) for pk in fan_out])
        if done:
            after_run_end(ctx.run)
        return keep, done

    def start_decided(
        self, decision: Schedule, ids: dict[str, int]
    ) -> tuple[list[Entry], tuple[int, str] | None, list[int]]:
        """Skip and start the sequences ``decision`` names; returns the journal entries,
        the sequence this task keeps (leased to it) and the ones fanned out."""
        plan = self.ctx.plan
        now = timezone.now()
        entries: list[Entry] = []
        for tag in decision.skipped:
            self.store.skip_sequence(self.run_id, ids[tag], tag, now)
            for st in self.ctx.steps.values():
                if st.sequence == tag:
                    st.status = "skipped"
            entries.append(("sequence_skipped", tag, {"skip_if": plan.sequence(tag).skip_if}))
        keep: tuple[int, str] | None = None
        fan_out: list[int] = []
        for tag in decision.start:
            entries.append(("sequence_started", tag, {}))
            if keep is None:
                keep = (ids[tag], tag)
                until = now + timedelta(seconds=config.LEASE_S)
                self.store.start_sequence_leased(ids[tag], self.token, now, until)
            else:
                fan_out.append(ids[tag])
        self.store.start_sequences_free(fan_out, now)
        return entries, keep, fan_out

    def steal(self) -> tuple[int, str] | None:
        """Help with this run's fanned-out sequences nobody has picked up yet: their
        queued tasks will find them taken and return."""
        until = timezone.now() + timedelta(seconds=config.LEASE_S)
        taken = self.store.steal_sequence(self.run_id, self.token, until)
        if taken is None:
            return None
        if len(self.ctx.plan.sequences) > 1:
            self.refresh()
        return taken
