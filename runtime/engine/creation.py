"""Creating a run: input validation, the live version, the Run, its steps and sequences.

This module does not import the driver: connectors (messaging, jobs) and the run API start
runs through it without an import cycle.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import jsonschema
import referencing.exceptions
from django.db import IntegrityError, transaction
from django.utils import timezone

from designer.models import Environment, Workflow, WorkflowVersion
from runtime import tracing
from runtime.compiler import Plan
from runtime.engine.plans import plan_for_version
from runtime.engine.starting import start_sequences
from runtime.engine.store import store
from runtime.errors import RunRefused
from runtime.journal import Entry, db_datetime, journal_extend, json_dumps, raw_insert
from runtime.models import Run
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
    db = store()
    row = db.activation(workflow.pk, environment.pk)
    if row is None:
        raise RunRefused(
            f"workflow '{workflow.tag}' is not active in environment '{environment.slug}'",
            field="env",
            status=409,
        )
    if row[0] is not None:
        return LiveVersion(int(row[0]), int(row[1] or 0))
    latest = db.latest_published(workflow.pk)
    if latest is None:
        raise RunRefused(f"workflow '{workflow.tag}' has no published version", status=409)
    return LiveVersion(*latest)


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
        existing = store().run_by_key(workflow, environment.pk, idempotency_key)
        if existing is not None:
            existing.reused = True
            return existing
    live = _live_version(workflow, environment)
    version_ref = LiveVersion(version.pk, version.number or 0) if version is not None else live
    plan = plan_for_version(version_ref[0])
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
        existing = store().run_by_key(workflow, environment.pk, idempotency_key)
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
        "trace_id": tracing.new_trace_id(),  # "" when tracing is off
    }
    run = Run(**values)
    run.pk = raw_insert(Run, values)
    run.workflow = workflow
    run.environment = environment
    # Raw multi-row inserts: a run of 100 steps must start in a few milliseconds.
    sequence_entries, skipped = start_sequences(run, plan)
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
    store().insert_steps(rows)
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
    workflow = store().workflow_by_tag(parent.environment.product_id, workflow_tag)
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
