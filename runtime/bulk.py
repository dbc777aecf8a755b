"""Bulk fix-forward: cancel, retry, replay or fork many runs of a product at once.

Each run goes through the same single-run action (``runtime.services``) and the same
governance (``require_role`` with the run's environment: an operator is refused in
production) as the run monitor's buttons, in its own transaction with its own audit
entry: one run refused does not undo the others. A request is capped
(``TRELLIS_BULK_MAX_RUNS``); above ``TRELLIS_BULK_CONFIRM_OVER`` runs it needs a typed
confirmation; ``bulk_preview`` says what would happen without doing it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from designer.governance import run_action_audit
from designer.models import Product, Role
from designer.permissions import require_role
from runtime import services
from runtime.engine.creation import live_version
from runtime.errors import RunRefused
from runtime.models import RUN_FINISHED, Run, RunStatus, StepRun
from runtime.product_runs import RunFilter, runs_filtered

ACTIONS = ("cancel", "retry", "replay", "fork")
DONE = ("completed", "skipped")


def bulk_cap() -> int:
    return int(getattr(settings, "TRELLIS_BULK_MAX_RUNS", 100))


def confirm_over() -> int:
    return int(getattr(settings, "TRELLIS_BULK_CONFIRM_OVER", 10))


def confirm_text(action: str, count: int) -> str:
    """What the user types to confirm a large bulk action."""
    return f"{action} {count} runs"


@dataclass
class BulkPlan:
    action: str
    step: str
    runs: list[Run]
    refused: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, int | None] = field(default_factory=dict)  # "wf@env" -> number
    rerun: Counter[str] = field(default_factory=Counter)  # step tag -> runs running it again


def bulk_runs(*, product: Product, ids: Any = None, f: RunFilter | None = None) -> list[Run]:
    """The runs a request names: ``ids`` (checked rows) or every run ``f`` matches. More
    than the cap is refused (400 naming ``runs`` or ``filter``), as is an id that is not a
    run of this product (404: an outsider learns nothing about other products' runs)."""
    cap = bulk_cap()
    base = Run.objects.select_related("workflow__product", "environment", "version")
    if ids is not None:
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in ids
        ):
            raise RunRefused("runs must be a list of run ids", field="runs")
        if not ids:
            raise RunRefused("runs: select at least one run", field="runs")
        if len(set(ids)) > cap:
            raise RunRefused(f"runs: at most {cap} runs per request", field="runs")
        found = {r.pk: r for r in base.filter(pk__in=set(ids), workflow__product=product)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise RunRefused(f"runs: there is no run {missing[0]} in this product",
                             field="runs", status=404)  # fmt: skip
        return sorted(found.values(), key=lambda r: -r.pk)
    if f is None:
        raise RunRefused("name the runs: runs (ids) or filter", field="runs")
    picked = list(runs_filtered(f).select_related(
        "workflow__product", "environment", "version")[: cap + 1])  # fmt: skip
    if len(picked) > cap:
        raise RunRefused(
            f"filter: more than {cap} runs match; narrow it (at most {cap} per request)",
            field="filter",
        )
    if not picked:
        raise RunRefused("filter: no run matches", field="filter")
    return picked


def _why_not(action: str, run: Run, user: Any, step: str, tags: set[str]) -> str:
    """Why ``action`` cannot be done on ``run`` by ``user`` ('' when it can)."""
    try:
        require_role(user, run.workflow.product, Role.OPERATOR, environment=run.environment)
    except (PermissionDenied, Http404) as exc:
        return str(getattr(exc, "detail", exc))
    finished = run.status in RUN_FINISHED
    if action == "cancel" and finished:
        return f"the run already ended ({run.status})"
    if action == "retry" and (not finished or run.status == RunStatus.COMPLETED):
        return f"only a run that failed, rolled back or was cancelled is retried ({run.status})"
    if action == "fork" and step not in tags:
        return f"the run has no step '{step[:100]}'"
    return ""


def _rerun(action: str, rows: list[dict[str, Any]], step: str) -> list[str]:
    """The steps a retry, replay or fork of a run with these step rows runs again."""
    if action == "replay":
        return [r["tag"] for r in rows]
    if action == "retry":
        return [r["tag"] for r in rows if r["status"] not in DONE]
    target = next((r for r in rows if r["tag"] == step), None)
    if target is None:
        return []
    start = target["started_at"]

    def copied(r: dict[str, Any]) -> bool:  # as runtime.services.run_fork decides
        if r["tag"] == step or r["finished_at"] is None or r["status"] not in DONE:
            return False
        if start is not None:
            return bool(r["finished_at"] <= start)
        return not (r["sequence"] == target["sequence"] and r["index"] >= target["index"])

    return [r["tag"] for r in rows if not copied(r)]


def bulk_plan(*, action: str, runs: list[Run], user: Any, step: str = "") -> BulkPlan:
    """What ``action`` would do to ``runs``: which are refused and why, which version the
    new runs get, which steps run again."""
    if action not in ACTIONS:
        raise RunRefused(f"action must be one of {', '.join(ACTIONS)}", field="action")
    if action == "fork" and not step:
        raise RunRefused("step is required for fork: the step to run again from", field="step")
    plan = BulkPlan(action=action, step=step, runs=[])
    steps: dict[int, list[dict[str, Any]]] = {}
    fields = ("run_id", "tag", "sequence", "index", "status", "started_at", "finished_at")
    rows = StepRun.objects.filter(run_id__in=[r.pk for r in runs]).order_by("id")
    for row in rows.values(*fields):
        steps.setdefault(row["run_id"], []).append(row)
    for run in runs:
        mine = steps.get(run.pk, [])
        why = _why_not(action, run, user, step, {r["tag"] for r in mine})
        where = f"{run.workflow.tag}@{run.environment.slug}"
        if not why and action in ("retry", "fork") and where not in plan.versions:
            try:
                plan.versions[where] = live_version(run.workflow, run.environment).number
            except RunRefused as exc:
                why = str(exc)
        if why:
            plan.refused.append({"run": run.pk, "reason": why})
            continue
        if action == "replay":
            plan.versions.setdefault(where, run.version.number)
        plan.runs.append(run)
        plan.rerun.update(_rerun(action, mine, step) if action != "cancel" else [])
    return plan


def bulk_preview_json(plan: BulkPlan) -> dict[str, Any]:
    count = len(plan.runs)
    return {
        "action": plan.action,
        "step": plan.step or None,
        "count": count,
        "runs": [r.pk for r in plan.runs],
        "refused": plan.refused,
        "versions": plan.versions,
        "rerun": dict(plan.rerun.most_common()),
        "confirm_required": count > confirm_over(),
        "confirm_text": confirm_text(plan.action, count),
        "cap": bulk_cap(),
    }


def _act(action: str, run: Run, user: Any, step: str, reason: str, key: str) -> Run | None:
    details: dict[str, Any] = {"bulk": key or True, **({"reason": reason} if reason else {})}
    with transaction.atomic():
        if action == "cancel":
            run = services.run_cancel(run=run, user=user, reason=reason)
            run_action_audit(actor=user, action="run.cancel", run=run, details=details)
            return None
        if action == "retry":
            new = services.run_resume(run=run, user=user, onto_live=True)
        elif action == "replay":
            new = services.run_replay(run=run, user=user)
        else:
            new = services.run_fork(run=run, step=step, user=user, onto_live=True)
            details["step"] = step
        run_action_audit(actor=user, action=f"run.{action}", run=new, origin=run, details=details)
        return new


def bulk_apply(plan: BulkPlan, *, user: Any, reason: str = "", key: str = "") -> dict[str, Any]:
    """Do the plan, run by run; each result says what became of its run."""
    results: list[dict[str, Any]] = [
        {"run": r["run"], "ok": False, "message": r["reason"]} for r in plan.refused
    ]
    for run in plan.runs:
        try:
            new = _act(plan.action, run, user, plan.step, reason, key)
        except RunRefused as exc:
            results.append({"run": run.pk, "ok": False, "message": str(exc)})
            continue
        results.append({"run": run.pk, "ok": True, "new_run": new.pk if new else None})
    done = sum(1 for r in results if r["ok"])
    return {
        "action": plan.action,
        "done": done,
        "failed": len(results) - done,
        "results": sorted(results, key=lambda r: -int(r["run"])),
    }
