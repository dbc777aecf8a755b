"""Reading runs: lookups with permission checks, lists with filters, journal pages,
related runs and run comparison."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import PermissionDenied

from designer.models import Environment, Product, Role, Workflow
from designer.permissions import require_role, visible_products
from runtime.errors import RunRefused
from runtime.models import JournalEntry, Run, SequenceRun, StepRun

JOURNAL_PAGE = 500


def run_for(*, user: Any, run_id: Any, role: Role = Role.VIEWER) -> Run:
    """The run if the user may see it (404 for unknown runs and outsiders, 403 too small a role).

    Acting roles (operator) are checked against the run's environment (the prd rule).
    """
    try:
        pk = int(run_id)
    except (TypeError, ValueError):
        raise RunRefused(f"run id must be a number, got {run_id!r}", status=404) from None
    run = (
        Run.objects.select_related("workflow__product", "environment", "version")
        .filter(pk=pk)
        .first()
    )
    if run is None:
        raise RunRefused(f"there is no run {pk}", status=404)
    environment = run.environment if role != Role.VIEWER else None
    require_role(user, run.workflow.product, role, environment=environment)
    return run


def run_actions_allowed(*, user: Any, run: Run) -> dict[str, Any]:
    """Whether ``user`` may act on ``run`` (cancel, signal, replay, restart, resume, fork)
    and, when not, why (the same check the actions make: operator, admin in production),
    so a page offers only what the server would accept."""
    try:
        require_role(user, run.workflow.product, Role.OPERATOR, environment=run.environment)
    except PermissionDenied as exc:
        return {"allowed": False, "why": str(exc.detail)}
    return {"allowed": True, "why": ""}


def workflow_for(*, user: Any, ref: Any) -> Workflow:
    """A workflow by ``"<product>/<tag>"`` or id, visible to the user (404 otherwise)."""
    workflow: Workflow | None = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        workflow = Workflow.objects.select_related("product").filter(pk=int(ref)).first()
    elif isinstance(ref, str) and ref.count("/") == 1:
        product_slug, tag = ref.split("/")
        workflow = (
            Workflow.objects.select_related("product")
            .filter(product__slug=product_slug, tag=tag)
            .first()
        )
    else:
        raise RunRefused(
            "workflow must be '<product>/<tag>' or a workflow id", field="workflow", status=400
        )
    if workflow is None:
        raise RunRefused(f"there is no workflow {ref!r}", field="workflow", status=404)
    require_role(user, workflow.product, Role.VIEWER)
    return workflow


def environment_for(*, product: Product, slug: Any) -> Environment:
    if not isinstance(slug, str) or not slug:
        raise RunRefused("env is required: an environment slug such as 'dev'", field="env")
    env = Environment.objects.filter(product=product, slug=slug).first()
    if env is None:
        known = ", ".join(product.environments.values_list("slug", flat=True)) or "none"
        raise RunRefused(
            f"product '{product.slug}' has no environment '{slug}' (it has: {known})",
            field="env",
            status=404,
        )
    return env


def runs_list(
    *,
    user: Any,
    workflow: str | None = None,
    env: str | None = None,
    status: str | None = None,
    product: str | None = None,
    parent: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    search: str | None = None,
) -> QuerySet[Run]:
    """Runs the user can see, newest first, filtered (``search``: text in the input)."""
    qs = Run.objects.select_related("workflow__product", "environment", "version").filter(
        workflow__product__in=visible_products(user)
    )
    if workflow:
        wf = workflow_for(user=user, ref=workflow)
        qs = qs.filter(workflow=wf)
        if env:
            qs = qs.filter(environment=environment_for(product=wf.product, slug=env))
    elif env:
        qs = qs.filter(environment__slug=env)
    if product:
        qs = qs.filter(workflow__product__slug=product)
    if status:
        statuses = [s for s in status.split(",") if s]
        qs = qs.filter(status__in=statuses)
    if parent:
        qs = qs.filter(parent_run_id=int(parent) if parent.isdigit() else -1)
    for name, value, lookup in (
        ("created_after", created_after, "created_at__gte"),
        ("created_before", created_before, "created_at__lt"),
    ):
        if value:
            when = parse_datetime(value)
            if when is None:
                raise RunRefused(f"{name} must be an ISO 8601 date-time", field=name)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            qs = qs.filter(**{lookup: when})
    if search:
        qs = qs.annotate(input_text=Cast("input", TextField())).filter(input_text__icontains=search)
    return qs.order_by("-id")


def run_journal(*, run: Run, after_seq: int = 0, limit: int = JOURNAL_PAGE) -> list[dict[str, Any]]:
    """Journal entries with ``seq > after_seq``, in order (one page)."""
    limit = max(1, min(int(limit), 5000))
    rows = JournalEntry.objects.filter(run=run, seq__gt=after_seq).order_by("seq")[:limit]
    out = []
    for row in rows:
        entry = row.as_json()
        entry["workflow"] = run.workflow_id
        entry["environment"] = run.environment_id
        out.append(entry)
    return out


def run_steps(*, run: Run) -> list[dict[str, Any]]:
    fields = (
        "tag", "sequence", "index", "status", "attempt", "attempts", "input", "output", "error",
        "started_at", "finished_at", "next_attempt_at", "wait", "child_run_id",
        "rollback_status", "rollback_attempt", "rollback_error",
    )  # fmt: skip
    return list(StepRun.objects.filter(run=run).order_by("id").values(*fields))


def run_sequences(*, run: Run) -> list[dict[str, Any]]:
    rows = (
        SequenceRun.objects.filter(run=run)
        .order_by("id")
        .values("tag", "status", "started_at", "finished_at", "wake_at")
    )
    return [dict(r) for r in rows]


def run_related(*, run: Run) -> dict[str, list[dict[str, Any]]]:
    """Runs linked to this one: its origin chain, runs made from it, parent and children."""

    def brief(r: Run) -> dict[str, Any]:
        return {
            "id": r.pk,
            "status": r.status,
            "origin_kind": r.origin_kind,
            "created_at": r.created_at,
            "workflow": r.workflow.tag,
            "environment": r.environment.slug,
        }

    base = Run.objects.select_related("workflow", "environment")
    origins: list[dict[str, Any]] = []
    current = run
    seen = {run.pk}
    while current.origin_id and current.origin_id not in seen and len(origins) < 50:
        parent = base.filter(pk=current.origin_id).first()
        if parent is None:
            break
        origins.append(brief(parent))
        seen.add(parent.pk)
        current = parent
    return {
        "origins": origins,
        "derived": [brief(r) for r in base.filter(origin=run).order_by("id")],
        "parent": [brief(r) for r in base.filter(pk=run.parent_run_id)]
        if run.parent_run_id
        else [],
        "children": [brief(r) for r in base.filter(parent_run=run).order_by("id")],
        "same_key": [
            brief(r)
            for r in base.filter(
                ~Q(pk=run.pk),
                workflow=run.workflow,
                idempotency_key=run.idempotency_key,
            ).order_by("id")
        ]
        if run.idempotency_key
        else [],
    }


def json_diff(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-level differences between two JSON values: ``[{path, a, b}]``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append({"path": sub, "a": None, "b": b[key], "change": "added"})
            elif key not in b:
                out.append({"path": sub, "a": a[key], "b": None, "change": "removed"})
            else:
                out.extend(json_diff(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(json_diff(x, y, f"{path}[{i}]"))
        return out
    if a == b and type(a) is type(b):
        return []
    return [{"path": path or "$", "a": a, "b": b, "change": "changed"}]


def runs_compare(*, a: Run, b: Run) -> dict[str, Any]:
    """Input diff and per-step status/output differences between two runs."""
    steps_a = {s["tag"]: s for s in run_steps(run=a)}
    steps_b = {s["tag"]: s for s in run_steps(run=b)}
    order = list(steps_a) + [t for t in steps_b if t not in steps_a]
    steps = []
    for tag in order:
        sa, sb = steps_a.get(tag), steps_b.get(tag)
        out_a = sa["output"] if sa else None
        out_b = sb["output"] if sb else None
        steps.append(
            {
                "tag": tag,
                "a": {"status": sa["status"], "attempt": sa["attempt"]} if sa else None,
                "b": {"status": sb["status"], "attempt": sb["attempt"]} if sb else None,
                "same_status": bool(sa and sb and sa["status"] == sb["status"]),
                "same_output": out_a == out_b,
                "output_diff": json_diff(out_a, out_b),
            }
        )
    return {
        "a": {"id": a.pk, "status": a.status, "version": a.version.number},
        "b": {"id": b.pk, "status": b.status, "version": b.version.number},
        "input_diff": json_diff(a.input, b.input),
        "output_diff": json_diff(a.output, b.output),
        "steps": steps,
    }
