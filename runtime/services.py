"""Run operations: start, signal, cancel, query, replay, restart, resume, fork.

Each is a typed keyword-only function; the REST API and the Python API both call these.
Refusals raise :class:`runtime.errors.RunRefused` with an HTTP status and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import jsonschema
import referencing.exceptions
from django.db import IntegrityError, transaction
from django.utils import timezone

from designer.models import Environment, Workflow, WorkflowVersion
from runtime import executor
from runtime.compiler import Plan
from runtime.errors import ExpressionError, RunRefused
from runtime.expressions import DictScope, resolve, value_budget
from runtime.journal import (
    Entry,
    db_datetime,
    journal_append,
    journal_extend,
    json_dumps,
    json_param,
    raw_execute,
    raw_executemany,
    raw_insert,
)
from runtime.models import RUN_FINISHED, Run, Signal, StepRun
from runtime.schemas import ref_problem, schema_normalize, validator_for

# Input schemas: see runtime.schemas (its patterns run on RE2, in linear time).


def input_validate(schema: Any, value: Any, *, where: str = "input") -> None:
    """Raise RunRefused(400) naming the first bad field when ``value`` breaks ``schema``."""
    if not isinstance(value, dict):
        raise RunRefused(f"{where} must be a JSON object", field=where)
    normalized = schema_normalize(schema)
    if not normalized:
        return
    try:
        validator = validator_for(normalized)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except jsonschema.exceptions.SchemaError as exc:
        raise RunRefused(f"the declared schema is invalid: {exc.message}", field=where) from exc
    except (RecursionError, referencing.exceptions.Unresolvable) as exc:
        # A $ref loop or a $ref to nowhere (refused at publish since; older versions).
        message = f"the declared schema cannot be evaluated: {ref_problem(exc)}"
        raise RunRefused(message, field=where) from None
    if error is None:
        return
    path = where
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        if missing:
            path += f".{missing[0]}"
            raise RunRefused(f"{path}: this field is required", field=path)
    raise RunRefused(f"{path}: {error.message}", field=path)


# --- Starting -------------------------------------------------------------------------------


class LiveVersion(NamedTuple):
    pk: int
    number: int


def live_version(workflow: Workflow, environment: Environment) -> LiveVersion:
    """The version live in the environment (id, number); RunRefused(409) when the
    workflow is not active there or has no published version."""
    return _live_version(workflow, environment)


def _live_version(workflow: Workflow, environment: Environment) -> LiveVersion:
    # Raw SQL: this runs on every start, and the ORM's query building costs more than it.
    row = raw_execute(
        "SELECT a.version_id, v.number FROM designer_activation a "
        "LEFT JOIN designer_workflowversion v ON v.id = a.version_id "
        "WHERE a.workflow_id = %s AND a.environment_id = %s AND a.active",
        [workflow.pk, environment.pk],
    ).fetchone()
    if row is None:
        raise RunRefused(
            f"workflow '{workflow.tag}' is not active in environment '{environment.slug}'",
            field="env",
            status=409,
        )
    if row[0] is not None:
        return LiveVersion(int(row[0]), int(row[1] or 0))
    latest = raw_execute(
        "SELECT id, number FROM designer_workflowversion WHERE workflow_id = %s "
        "AND state = 'published' ORDER BY number DESC LIMIT 1",
        [workflow.pk],
    ).fetchone()
    if latest is None:
        raise RunRefused(f"workflow '{workflow.tag}' has no published version", status=409)
    return LiveVersion(int(latest[0]), int(latest[1] or 0))


def run_start(
    *,
    workflow: Workflow,
    environment: Environment,
    input: dict[str, Any] | None,
    idempotency_key: str | None = None,
    user: Any = None,
    parent: Run | None = None,
    parent_step: str = "",
    parent_close_policy: str = "",
    origin: Run | None = None,
    origin_kind: str = "",
    version: WorkflowVersion | None = None,
    copy_steps: dict[str, tuple[str, Any]] | None = None,
) -> Run:
    """Start a run of the workflow's live version in ``environment``.

    Refused (RunRefused) when the workflow is not active there (409), when ``input`` does
    not match the input schema (400 naming the field) or the environment belongs to
    another product. With an ``idempotency_key`` already used for this workflow and
    environment, the existing run is returned with ``run.reused = True``.
    ``copy_steps`` (resume, fork) marks steps done up front: ``{tag: (status, output)}``.
    """
    if environment.product_id != workflow.product_id:
        raise RunRefused(
            f"environment '{environment.slug}' is not an environment of this product",
            field="env",
            status=404,
        )
    if idempotency_key:
        existing = Run.objects.filter(
            workflow=workflow, environment=environment, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            existing.reused = True
            return existing
    live = _live_version(workflow, environment)
    version_ref = LiveVersion(version.pk, version.number or 0) if version is not None else live
    plan = executor.plan_for_version(version_ref[0])
    input = {} if input is None else input
    input_validate(plan.input_schema, input)
    try:
        with transaction.atomic():
            run = _create(
                workflow=workflow,
                environment=environment,
                version=version_ref,
                plan=plan,
                input=input,
                idempotency_key=idempotency_key or None,
                user=user,
                parent=parent,
                parent_step=parent_step,
                parent_close_policy=parent_close_policy,
                origin=origin,
                origin_kind=origin_kind,
                copy_steps=copy_steps or {},
            )
    except IntegrityError:
        # Two starts raced with one key: the other one won.
        existing = Run.objects.filter(
            workflow=workflow, environment=environment, idempotency_key=idempotency_key
        ).first()
        if existing is None or not idempotency_key:
            raise
        existing.reused = True
        return existing
    return run


def _create(
    *,
    workflow: Workflow,
    environment: Environment,
    version: tuple[int, int],
    plan: Plan,
    input: dict[str, Any],
    idempotency_key: str | None,
    user: Any,
    parent: Run | None,
    parent_step: str,
    parent_close_policy: str,
    origin: Run | None,
    origin_kind: str,
    copy_steps: dict[str, tuple[str, Any]],
) -> Run:
    now = timezone.now()
    timeout_ms = plan.options.timeout_ms
    values: dict[str, Any] = {
        "workflow_id": workflow.pk,
        "version_id": version[0],
        "environment_id": environment.pk,
        "input": input,
        "idempotency_key": idempotency_key,
        "parent_run_id": parent.pk if parent else None,
        "parent_step": parent_step,
        "parent_close_policy": parent_close_policy,
        "origin_id": origin.pk if origin else None,
        "origin_kind": origin_kind,
        "created_by_id": user.pk if getattr(user, "is_authenticated", False) else None,
        "created_at": now,
        "deadline_at": now + timedelta(milliseconds=timeout_ms) if timeout_ms else None,
    }
    run = Run(**values)
    run.pk = raw_insert(Run, values)
    run.workflow = workflow
    run.environment = environment
    # Raw multi-row inserts: a run of 100 steps must start in a few milliseconds.
    sequence_entries, skipped = executor.start_sequences(run, plan)
    rows = []
    copied: list[Entry] = []
    stamp = db_datetime(now)
    for step in plan.steps:
        status, output = copy_steps.get(step.tag, ("pending", None))
        if step.sequence in skipped:
            status, output = "skipped", None
        done = status != "pending"
        kept = output if status == "completed" else None
        rows.append(
            (
                run.pk, step.tag, step.sequence, step.index, status, 0, "[]",
                None if kept is None else json_dumps(kept), stamp if done else None, "", 0,
            )
        )  # fmt: skip
        if done and step.tag in copy_steps and step.sequence not in skipped:
            kind = "step_completed" if status == "completed" else "step_skipped"
            data: dict[str, Any] = {"copied": True, "from_run": origin.pk if origin else None}
            if status == "completed":
                data["output"] = output
            copied.append((kind, step.tag, data))
    j = json_param()
    raw_executemany(
        'INSERT INTO runtime_steprun (run_id, tag, sequence, "index", status, attempt, '  # noqa: S608
        f"attempts, output, finished_at, rollback_status, rollback_attempt) VALUES "
        f"(%s, %s, %s, %s, %s, %s, {j}, {j}, %s, %s, %s)",
        rows,
    )
    started: dict[str, Any] = {"input": input, "version": version[1]}
    if origin is not None:
        started.update(origin=origin.pk, origin_kind=origin_kind)
    if parent is not None:
        started.update(parent=parent.pk, parent_step=parent_step)
    entries: list[Entry] = [("run_started", "", started), *copied, *sequence_entries]
    journal_extend(run, entries)
    run.reused = False
    return run


def run_start_child(
    *,
    parent: Run,
    step: str,
    workflow_tag: str,
    input: dict[str, Any],
    policy: str,
    attempt: int = 1,
) -> Run:
    """A FEATURE step's child run: same product and environment, linked to the parent.
    The key makes a re-run of the same attempt (after a crash) find the same child; a
    retry (next attempt) starts a new one."""
    workflow = Workflow.objects.filter(
        product_id=parent.environment.product_id, tag=workflow_tag
    ).first()
    if workflow is None:
        raise RunRefused(f"there is no workflow '{workflow_tag}' in this product", status=404)
    return run_start(
        workflow=workflow,
        environment=parent.environment,
        input=input,
        idempotency_key=f"child:{parent.pk}:{step}:{attempt}",
        parent=parent,
        parent_step=step,
        parent_close_policy=policy,
    )


# --- Acting on a run ------------------------------------------------------------------------


def _refuse_finished(row: dict[str, Any], action: str) -> None:
    if row["status"] in RUN_FINISHED:
        raise RunRefused(f"cannot {action}: the run already ended ({row['status']})", status=409)


def run_signal(*, run: Run, name: str, payload: Any, user: Any = None) -> Signal:
    """Deliver a declared signal. It is stored (and journaled) even when no step waits on it
    yet: the WAIT_SIGNAL that comes later consumes it."""
    plan = executor.plan_for_version(run.version_id)
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
        _refuse_finished(executor.lock_run(run.pk), "send a signal")
        signal = Signal.objects.create(run=run, name=name, payload=payload)
        by = getattr(user, "username", None)
        journal_append(
            run,
            "signal_received",
            data={"name": name, "payload": payload, "id": signal.pk, "by": by},
        )
        executor.wake_for_signal(run.pk, name)
    return signal


def run_cancel(*, run: Run, user: Any = None, reason: str = "") -> Run:
    """Cancel a run: its sequences stop at the next step boundary, completed steps are
    compensated per the rollback strategy, and the run ends ``cancelled``."""
    by = getattr(user, "username", None)
    message = reason or (f"cancelled by {by}" if by else "cancelled")
    with transaction.atomic():
        row = executor.lock_run(run.pk)
        _refuse_finished(row, "cancel")
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        if not row["stop_reason"]:
            journal_append(run, "log", data={"level": "info", "message": message, "by": by})
            cause = {"code": "cancelled", "message": message}
            if executor.run_stop(run_id=run.pk, reason="cancelled", cause=cause):
                executor.enqueue([(executor.FINALIZE, (run.pk,))])
    run.refresh_from_db()
    return run


def run_scope(run: Run) -> DictScope:
    """The expression scope of a stored run (queries, output previews)."""
    rows = list(StepRun.objects.filter(run=run).values("tag", "sequence", "status", "output"))
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
            "completed_steps": [r["tag"] for r in rows if r["status"] == "completed"],
            "current_step": current,
        },
    )


def run_query(*, run: Run, name: str) -> Any:
    """Evaluate a declared query (an output mapping) over the run's input, steps and state."""
    plan = executor.plan_for_version(run.version_id)
    if name not in plan.queries:
        declared = ", ".join(sorted(plan.queries)) or "none"
        raise RunRefused(
            f"query '{name}' is not declared by this workflow (declared: {declared})",
            field="name",
            status=404,
        )
    try:
        with value_budget(executor.RESOLVE_BUDGET):  # in the web process: bounded
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
) -> Run:
    """A new run that continues where ``run`` stopped: completed steps are copied (output
    and all, journaled as ``step_completed`` with ``copied: true``), so execution picks up
    at the failed step. ``skip`` marks steps as skipped instead; ``checkpoint`` copies only
    what had completed when that CHECKPOINT was reached."""
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
    return _start_derived(run, kind="resume", copy=copy, user=user)


def run_fork(
    *, run: Run, step: str, outputs: dict[str, Any] | None = None, user: Any = None
) -> Run:
    """Replay from ``step``: steps that had completed before it started are copied (with
    ``outputs`` overriding their outputs), and execution starts again at ``step``."""
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
    return _start_derived(run, kind="fork", copy=copy, user=user)


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


def _start_derived(run: Run, *, kind: str, copy: dict[str, tuple[str, Any]], user: Any) -> Run:
    """A new run of ``run``'s version and input, made from it, ``copy``'s steps done."""
    return run_start(
        workflow=run.workflow,
        environment=run.environment,
        input=run.input,
        user=user,
        origin=run,
        origin_kind=kind,
        version=run.version,
        copy_steps=copy,
    )
