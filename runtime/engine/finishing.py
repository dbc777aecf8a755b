"""The end of a run: its output, its completion, winding it down, and what an ended run
owes its parent and children. Everything here runs inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from runtime.compiler import Plan
from runtime.engine import config
from runtime.engine.context import RunContext
from runtime.engine.decisions import returned_status
from runtime.engine.queue import enqueue
from runtime.engine.state import describe, json_bounded, new_token
from runtime.engine.store import store
from runtime.expressions import resolve, value_budget
from runtime.journal import Entry, journal_insert, seq_allocate
from runtime.models import RUN_FINISHED, Run
from runtime.spec import EventType


def append_entries(
    run: Run,
    entries: list[Entry],
    at: datetime | None = None,
    *,
    run_values: dict[str, Any] | None = None,
) -> None:
    """Journal entries of ``run`` inside an open transaction (this takes their numbers
    and with them the run's row lock), setting ``run_values`` on the run too."""
    last, _status, _stop = seq_allocate(run.pk, len(entries))
    if run_values:
        store().update_run(run.pk, **run_values)
    journal_insert(
        run.pk,
        run.workflow_id,
        run.environment_id,
        last - len(entries) + 1,
        entries,
        at or timezone.now(),
    )


def close_unfinished(run_id: int, now: datetime, why: dict[str, Any]) -> list[Entry]:
    """Inside the transaction that ends a run: every step and sequence that had not
    finished gets its final status (``not_run`` if it never started, else ``cancelled``)
    and a journal entry saying so and why, to be journaled with the run's end entry, so
    the journal alone rebuilds what the monitor shows. Every way a run ends calls this
    (the one-sequence fast path in :mod:`runtime.engine.sequence_end` has nothing open by
    construction)."""
    steps, sequences = store().close_unfinished(run_id, now)
    entries: list[Entry] = []
    for kind, closed in (("sequence", sequences), ("step", steps)):
        for tag, was in closed:
            status = "not_run" if was == "pending" else "cancelled"
            entries.append((f"{kind}_{status}", tag, {"was": was, **why}))
    return entries


def end_why(status: str, error: Any) -> dict[str, Any]:
    """Why what was still open when a run ended did not finish: the run's end and its
    cause."""
    why: dict[str, Any] = {"why": f"the run ended {status}"}
    if isinstance(error, dict) and error.get("message"):
        why["why"] += f": {str(error['message'])[:500]}"
    return why


def run_output(ctx: RunContext) -> Any:
    """The run's output: its output mapping resolved (a failure is the output's error)."""
    output: Any
    try:
        output = None
        if ctx.plan.output is not None:
            with value_budget(config.RESOLVE_BUDGET):
                output = resolve(ctx.plan.output, ctx.scope)
        json_bounded(output, limit_setting="TRELLIS_MAX_RUN_OUTPUT_BYTES", what="the run output")
    except Exception as exc:  # whatever goes wrong, the run still ends (with this error)
        output = {"error": f"output mapping failed: {describe(exc)}"}
    return output


def starts_children(plan: Plan) -> bool:
    """Whether a plan has FEATURE steps (its runs may have child runs to close)."""
    return any(step.type is EventType.FEATURE for step in plan.steps)


def complete_run(ctx: RunContext) -> list[Entry]:
    """Every sequence is done: resolve the output mapping and end the run."""
    now = timezone.now()
    output = run_output(ctx)
    status = returned_status(manual_rollback=manually_rolled_back(ctx))
    entries = close_unfinished(ctx.run.pk, now, end_why(status, None))
    store().end_run(ctx.run.pk, status=status, now=now, output=output)
    ctx.run.status = status
    return [*entries, returned_entry(ctx, status, output)]


def manually_rolled_back(ctx: RunContext) -> bool:
    """Whether a ROLLBACK step (``ctx.trigger_rollback``) completed in this run."""
    rollbacks = [s.tag for s in ctx.plan.steps if s.type is EventType.ROLLBACK]
    return any(tag in ctx.steps and ctx.steps[tag].status == "completed" for tag in rollbacks)


def returned_entry(ctx: RunContext, status: str, output: Any) -> Entry:
    """The journal entry of a run that ended with its output (``run_completed``, or
    ``run_rolled_back`` after a ROLLBACK step, naming the steps it undid)."""
    if status == "completed":
        return ("run_completed", "", {"output": output})
    rolled = [st.tag for st in ctx.steps.values() if st.status == "rolled_back"]
    return ("run_rolled_back", "", {"output": output, "error": None, "rolled_back_steps": rolled})


def after_run_end(run: Run) -> None:
    """Inside the ending transaction: wake a waiting parent, close children per policy."""
    if run.parent_run_id:
        enqueue([(config.CHILD_FINISHED, (run.pk,))])
    for child_id, close_policy in store().open_children(run.pk):
        policy = close_policy or "terminate"
        close_child(child_id, policy, f"parent run {run.pk} ended ({policy})")


def close_child(child_id: int, policy: str, message: str) -> None:
    """Inside a transaction: stop a child run the parent no longer waits for, per its
    ``parent_close_policy`` (``terminate`` and ``request_cancel`` stop it, ``abandon``
    leaves it running on its own)."""
    if policy == "abandon":
        return
    reason = "terminated" if policy == "terminate" else "cancelled"
    if run_stop(run_id=child_id, reason=reason, cause={"code": reason, "message": message}):
        enqueue([(config.FINALIZE, (child_id,))])


def run_stop(*, run_id: int, reason: str, cause: dict[str, Any]) -> bool:
    """Start winding a run down from outside its sequences (cancel, timeout, parent closed).

    Inside a transaction. Returns True when no sequence is running, so the caller should
    enqueue (or run) ``run_finalize``; otherwise the last running sequence does it.
    """
    row = store().lock_run(run_id)
    if row["status"] in RUN_FINISHED or row["stop_reason"]:
        return False
    return stop_run(run_id, reason, cause, None, "", 0)


def stop_run(
    run_id: int, reason: str, cause: dict[str, Any], ctx: RunContext | None, token: str, seq_id: int
) -> bool:
    """Set the stop reason (first one wins), cancel parked and pending sequences; return
    whether the caller is the last one out (and then holds the run's finalize lease)."""
    db = store()
    db.set_stop_reason(run_id, reason, cause)
    closed = db.cancel_parked(run_id, timezone.now(), exclude_seq=seq_id)
    if closed:
        why = stop_why(reason, cause)
        journal_ids([(f"sequence_{status}", tag, why) for tag, status in closed], run_id)
    if ctx is not None:
        ctx.stop_reason = ctx.stop_reason or reason
    return take_finalize(run_id, token or new_token(), exclude_seq=seq_id)


def stop_why(reason: str, cause: dict[str, Any]) -> dict[str, Any]:
    """Why a sequence stops while its run winds down."""
    message = str(cause.get("message") or "")[:500]
    return {"why": f"the run is stopping ({reason})" + (f": {message}" if message else "")}


def journal_ids(entries: list[Entry], run_id: int) -> None:
    """Journal entries of a run known by its id only, inside an open transaction."""
    ids = Run.objects.filter(pk=run_id).values_list("workflow_id", "environment_id").first()
    if ids is None:
        return
    last, _status, _stop = seq_allocate(run_id, len(entries))
    journal_insert(run_id, ids[0], ids[1], last - len(entries) + 1, entries, timezone.now())


def take_finalize(run_id: int, token: str, *, exclude_seq: int = 0) -> bool:
    """Inside a transaction (run locked): True when no other sequence still runs, so the
    caller is the last one out and should compensate (``run_finalize`` takes the run's
    lease itself, so a duplicate caller is harmless)."""
    return not store().sequences_running(run_id, exclude_seq=exclude_seq)


def run_end_broken(run: Run, cause: dict[str, Any]) -> None:
    """Inside a transaction (run locked): end ``run`` failed without compensating."""
    now = timezone.now()
    db = store()
    entries = close_unfinished(run.pk, now, end_why("failed", cause))
    db.end_run(run.pk, status="failed", now=now, error=cause)
    entries.append(("run_failed", "", {"error": cause, "rolled_back_steps": []}))
    append_entries(run, entries, now)
    run.status = "failed"
    after_run_end(run)
