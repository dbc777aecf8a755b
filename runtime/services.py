"""Run operations: start, signal, cancel, query, replay, restart, resume, fork.

Each is a typed keyword-only function; the REST API and the Python API both call these.
Refusals raise :class:`runtime.errors.RunRefused` with an HTTP status and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from runtime.engine import config
from runtime.engine.creation import (
    LiveVersion,
    _live_version,
    input_validate,
    live_version,
    run_start,
    run_start_child,
)
from runtime.engine.finishing import run_stop
from runtime.engine.plans import plan_for_version
from runtime.engine.queue import enqueue
from runtime.engine.state import RunLock
from runtime.engine.store import store
from runtime.engine.wake import wake_for_signal
from runtime.errors import ExpressionError, RunRefused
from runtime.expressions import DictScope, resolve, value_budget
from runtime.journal import journal_append
from runtime.models import RUN_FINISHED, Run, Signal, StepRun
from runtime.spec import is_log_event

# Run creation lives in runtime.engine.creation (it does not import the driver); these
# names stay importable from here.
__all__ = [
    "LiveVersion",
    "_live_version",
    "input_validate",
    "live_version",
    "run_cancel",
    "run_fork",
    "run_query",
    "run_replay",
    "run_restart",
    "run_resume",
    "run_scope",
    "run_signal",
    "run_start",
    "run_start_child",
]


# --- Acting on a run ------------------------------------------------------------------------


def _refuse_finished(row: RunLock, action: str) -> None:
    if row["status"] in RUN_FINISHED:
        raise RunRefused(f"cannot {action}: the run already ended ({row['status']})", status=409)


def run_signal(*, run: Run, name: str, payload: Any, user: Any = None) -> Signal:
    """Deliver a declared signal. It is stored (and journaled) even when no step waits on it
    yet: the WAIT_SIGNAL that comes later consumes it."""
    plan = plan_for_version(run.version_id)
    if name not in plan.signals:
        declared = ", ".join(sorted(plan.signals)) or "none"
        raise RunRefused(
            f"signal '{name}' is not declared by this workflow (declared: {declared})",
            field="name",
            status=404,
        )
    payload = {} if payload is None else payload
    input_validate(plan.signals[name], payload, where="payload")
    with transaction.atomic():
        _refuse_finished(store().lock_run(run.pk), "send a signal")
        signal = Signal.objects.create(run=run, name=name, payload=payload)
        by = getattr(user, "username", None)
        journal_append(
            run,
            "signal_received",
            data={"name": name, "payload": payload, "id": signal.pk, "by": by},
        )
        wake_for_signal(run.pk, name)
    return signal


def run_cancel(*, run: Run, user: Any = None, reason: str = "") -> Run:
    """Cancel a run: its sequences stop at the next step boundary, completed steps are
    compensated per the rollback strategy, and the run ends ``cancelled``."""
    by = getattr(user, "username", None)
    message = reason or (f"cancelled by {by}" if by else "cancelled")
    with transaction.atomic():
        row = store().lock_run(run.pk)
        _refuse_finished(row, "cancel")
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        if not row["stop_reason"]:
            journal_append(run, "log", data={"level": "info", "message": message, "by": by})
            cause = {"code": "cancelled", "message": message}
            if run_stop(run_id=run.pk, reason="cancelled", cause=cause):
                enqueue([(config.FINALIZE, (run.pk,))])
    run.refresh_from_db()
    return run


ACTION_VERBS = {
    "run.replay": "replayed",
    "run.restart": "restarted",
    "run.resume": "resumed",
    "run.fork": "forked",
}


def run_action_note(*, run: Run, new: Run, action: str, reason: str, user: Any = None) -> None:
    """Journal on both runs that ``new`` was made from ``run`` by an operator action, by
    whom and why (inside the action's transaction): the lineage and the reason are read
    where the runs are watched, not only in the audit log."""
    by = getattr(user, "username", None)
    verb = ACTION_VERBS.get(action, action)
    why = f": {reason}" if reason else ""
    common = {"level": "info", "by": by, "action": action, "reason": reason}
    journal_append(
        run,
        "log",
        data={**common, "message": f"{verb} as run {new.pk} by {by or 'someone'}{why}",
              "derived_run": new.pk},
    )  # fmt: skip
    journal_append(
        new,
        "log",
        data={**common, "message": f"{verb} from run {run.pk} by {by or 'someone'}{why}",
              "origin_run": run.pk},
    )  # fmt: skip


def run_scope(run: Run) -> DictScope:
    """The expression scope of a stored run (queries, output previews)."""
    rows = list(StepRun.objects.filter(run=run).values("tag", "sequence", "status", "output"))
    plan = plan_for_version(run.version_id)
    logs = {s.tag for s in plan.steps if is_log_event(s.type, s.event)}
    steps = {r["tag"]: r["output"] for r in rows if r["status"] in ("completed", "rolled_back")}
    sequences: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] in ("completed", "rolled_back"):
            sequences.setdefault(r["sequence"], {})[r["tag"]] = r["output"]
    current = next(
        (r["tag"] for r in rows if r["status"] in ("running", "waiting", "retrying")), None
    )
    return DictScope(
        input=run.input,
        steps=steps,
        sequences=sequences,
        state=run.state or {},
        run={
            "id": run.pk,
            "status": run.status,
            "completed_steps": [
                r["tag"] for r in rows if r["status"] == "completed" and r["tag"] not in logs
            ],
            "current_step": current,
        },
    )


def run_query(*, run: Run, name: str) -> Any:
    """Evaluate a declared query (an output mapping) over the run's input, steps and state."""
    plan = plan_for_version(run.version_id)
    if name not in plan.queries:
        declared = ", ".join(sorted(plan.queries)) or "none"
        raise RunRefused(
            f"query '{name}' is not declared by this workflow (declared: {declared})",
            field="name",
            status=404,
        )
    try:
        with value_budget(config.RESOLVE_BUDGET):  # in the web process: bounded
            return resolve(plan.queries[name], run_scope(run))
    except ExpressionError as exc:
        raise RunRefused(f"query '{name}' failed: {exc}", status=400) from exc


# --- Runs made from runs -------------------------------------------------------------------


def run_replay(*, run: Run, user: Any = None) -> Run:
    """A new run of the same version with the same input."""
    return run_start(
        workflow=run.workflow,
        environment=run.environment,
        input=run.input,
        user=user,
        origin=run,
        origin_kind="replay",
        version=run.version,
    )


def run_restart(
    *, run: Run, input: dict[str, Any] | None = None, merge: bool = True, user: Any = None
) -> Run:
    """A new run of the live version: with new input, or the old one merged with changes."""
    if input is not None and not isinstance(input, dict):
        raise RunRefused("input must be a JSON object", field="input")
    new_input = {**(run.input or {}), **(input or {})} if merge else (input or {})
    return run_start(
        workflow=run.workflow,
        environment=run.environment,
        input=new_input,
        user=user,
        origin=run,
        origin_kind="restart",
    )


def _steps_of(run: Run) -> list[StepRun]:
    return list(StepRun.objects.filter(run=run).order_by("id"))


def run_resume(
    *,
    run: Run,
    skip: list[str] | None = None,
    checkpoint: str | None = None,
    user: Any = None,
    onto_live: bool = False,
) -> Run:
    """A new run that continues where ``run`` stopped: completed steps are copied (output
    and all, journaled as ``step_completed`` with ``copied: true``), so execution picks up
    at the failed step. ``skip`` marks steps as skipped instead; ``checkpoint`` copies only
    what had completed when that CHECKPOINT was reached. ``onto_live``: the new run uses
    the version live now (a fix published since), not ``run``'s (a bulk retry)."""
    if run.status not in RUN_FINISHED:
        raise RunRefused("resume needs a run that ended; cancel it first", status=409)
    steps = _steps_of(run)
    tags = {s.tag for s in steps}
    for tag in skip or []:
        if tag not in tags:
            raise RunRefused(f"skip: unknown step '{tag}'", field="skip")
    cutoff = None
    if checkpoint:
        checkpoints = (run.state or {}).get("_checkpoints") or {}
        record = checkpoints.get(checkpoint)
        if record is None:
            known = ", ".join(sorted(checkpoints)) or "none"
            raise RunRefused(
                f"checkpoint '{checkpoint}' was not reached (reached: {known})", field="checkpoint"
            )
        marker = next((s for s in steps if s.tag == record.get("step")), None)
        cutoff = marker.finished_at if marker else None
    copy = _done_steps(
        steps,
        keep=lambda s: cutoff is None or (s.finished_at is not None and s.finished_at <= cutoff),
    )
    for tag in skip or []:
        copy[tag] = ("skipped", None)
    kind = "retry" if onto_live else "resume"
    return _start_derived(run, kind=kind, copy=copy, user=user, onto_live=onto_live)


def run_fork(
    *,
    run: Run,
    step: str,
    outputs: dict[str, Any] | None = None,
    user: Any = None,
    onto_live: bool = False,
) -> Run:
    """Replay from ``step``: steps that had completed before it started are copied (with
    ``outputs`` overriding their outputs), and execution starts again at ``step``
    (``onto_live``: on the version live now rather than ``run``'s)."""
    steps = _steps_of(run)
    target = next((s for s in steps if s.tag == step), None)
    if target is None:
        raise RunRefused(f"unknown step '{step}'", field="step")
    outputs = outputs or {}
    if not isinstance(outputs, dict):
        raise RunRefused("outputs must map step tags to outputs", field="outputs")
    by_tag = {s.tag: s for s in steps}
    for tag in outputs:
        if tag not in by_tag:
            raise RunRefused(f"outputs: unknown step '{tag}'", field=f"outputs.{tag}")
    start = target.started_at

    def before_target(s: StepRun) -> bool:
        if s.tag == step or s.finished_at is None:
            return False
        if start is not None:
            return s.finished_at <= start
        return not (s.index >= target.index and s.sequence == target.sequence)

    copy = _done_steps(steps, keep=before_target)
    for tag, value in outputs.items():
        if tag != step and tag not in copy:
            raise RunRefused(
                f"outputs: step '{tag}' runs again from '{step}'; "
                "only earlier steps can be overridden",
                field=f"outputs.{tag}",
            )
        if tag in copy:
            copy[tag] = ("completed", value)
    return _start_derived(run, kind="fork", copy=copy, user=user, onto_live=onto_live)


def _done_steps(
    steps: list[StepRun], *, keep: Callable[[StepRun], bool]
) -> dict[str, tuple[str, Any]]:
    """``{tag: (status, output)}`` of the completed or skipped steps ``keep`` accepts: what
    a run derived from another (resume, fork) starts with."""
    return {
        s.tag: (s.status, s.output)
        for s in steps
        if s.status in ("completed", "skipped") and keep(s)
    }


def _start_derived(
    run: Run, *, kind: str, copy: dict[str, tuple[str, Any]], user: Any, onto_live: bool = False
) -> Run:
    """A new run of ``run``'s version (or the live one) and input, made from it, ``copy``'s
    steps done (those the live version no longer has are left out)."""
    return run_start(
        workflow=run.workflow,
        environment=run.environment,
        input=run.input,
        user=user,
        origin=run,
        origin_kind=kind,
        version=None if onto_live else run.version,
        copy_steps=copy,
    )
