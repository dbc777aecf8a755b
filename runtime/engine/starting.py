"""The start of a run's sequences, inside the transaction that creates the run."""

from __future__ import annotations

from django.utils import timezone

from runtime.compiler import Plan
from runtime.engine import config
from runtime.engine.context import RunContext
from runtime.engine.decisions import schedule
from runtime.engine.finishing import after_run_end, complete_run
from runtime.engine.queue import enqueue
from runtime.engine.store import store
from runtime.errors import ExpressionError
from runtime.journal import Entry, db_datetime
from runtime.models import Run


def skip_holds(ctx: RunContext, text: str | None) -> bool:
    """Whether a sequence's ``skip_if`` holds (an expression that fails does not)."""
    try:
        return ctx.condition_holds(text)
    except ExpressionError:
        return False


def start_sequences(run: Run, plan: Plan) -> tuple[list[Entry], set[str]]:
    """At run start (inside its transaction): create the SequenceRuns with the roots
    started (``skip_if`` applied) and enqueue them. Returns the journal entries and the
    skipped sequences (whose steps the caller creates as skipped)."""
    ctx = RunContext(run, plan, [])
    statuses = {s.tag: "pending" for s in plan.sequences}
    decision = schedule(
        plan.sequences,
        statuses,
        max_concurrency=plan.options.max_concurrency,
        groups=plan.options.groups,
        should_skip=lambda tag: skip_holds(ctx, plan.sequence(tag).skip_if),
    )
    stamp = db_datetime(timezone.now())
    skipped = set(decision.skipped)
    started = set(decision.start)
    rows = []
    for seq in plan.sequences:
        status = "skipped" if seq.tag in skipped else "running" if seq.tag in started else "pending"
        rows.append(
            (
                run.pk, seq.tag, status, "",
                stamp if status == "running" else None,
                stamp if status == "skipped" else None,
            )
        )  # fmt: skip
    db = store()
    db.insert_sequences(rows)
    entries: list[Entry] = [
        ("sequence_skipped", tag, {"skip_if": plan.sequence(tag).skip_if})
        for tag in decision.skipped
    ]
    entries.extend(("sequence_started", tag, {}) for tag in decision.start)
    if started:
        enqueue([(config.DRIVE, (pk,)) for pk in db.running_sequence_ids(run.pk)])
    if decision.all_done:
        entries.extend(complete_run(ctx))
        after_run_end(run)
    return entries, skipped
