"""Every run of a product, for the runs page: filters, keyset pages, the step grid and the
charts' aggregates.

Kept fast at a million runs by paging on the primary key (``id < cursor ORDER BY id DESC
LIMIT n``: no OFFSET, no COUNT) and by an index per common filter (runtime migration
0005: workflow, environment, status, the failed step — each with ``id`` so the index
hands rows over in page order). The JSON path filter (``input.customer.id = 42``) cannot
be indexed for every path: it reads rows newest first until the page is full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from designer.models import Environment, Product, Workflow
from runtime.errors import RunRefused
from runtime.models import FailedStep, Run, RunStatus, StepRun
from runtime.run_filter import Clause, filter_parse

PAGE = 50
PAGE_MAX = 200
_LOOKUPS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


@dataclass(frozen=True)
class RunFilter:
    """A product's runs, narrowed. Every field is optional; see ``runs_filter_parse``."""

    workflow_ids: tuple[int, ...]
    environment_id: int | None = None
    statuses: tuple[str, ...] = ()
    failed_step: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    where: tuple[Clause, ...] = ()
    run_id: int | None = None


def _moment(name: str, value: str) -> datetime:
    try:
        when = parse_datetime(value.strip()) if len(value) <= 40 else None
    except ValueError:  # well-formed but impossible: month 13, hour 25…
        when = None
    if when is None:
        raise RunRefused(f"{name} must be an ISO 8601 date-time", field=name)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _positive(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise RunRefused(f"{name} must be a positive whole number", field=name)
    return int(value)


def runs_filter_parse(*, product: Product, params: Any) -> RunFilter:
    """The filter a query string (or a bulk request's ``filter`` object) names; a 400
    naming the field for anything it cannot mean. ``params`` maps names to strings."""

    def text(name: str) -> str:
        value = params.get(name)
        if value is None:
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise RunRefused(f"{name} must be a string", field=name)
        return str(value)

    workflows = dict(Workflow.objects.filter(product=product).values_list("tag", "id"))
    ids = tuple(sorted(workflows.values()))
    if tag := text("workflow"):
        if tag not in workflows:
            raise RunRefused(f"product '{product.slug}' has no workflow '{tag[:100]}'",
                             field="workflow")  # fmt: skip
        ids = (workflows[tag],)
    environment_id = None
    if slug := text("env"):
        env = Environment.objects.filter(product=product, slug=slug).values_list("id", flat=True)
        if not env:
            raise RunRefused(f"product '{product.slug}' has no environment '{slug[:100]}'",
                             field="env")  # fmt: skip
        environment_id = env[0]
    statuses = tuple(s for s in text("status").split(",") if s)
    for status in statuses:
        if status not in RunStatus.values:
            known = ", ".join(RunStatus.values)
            raise RunRefused(f"status: unknown status '{status[:40]}' ({known})", field="status")
    failed_step = text("failed_step")
    if len(failed_step) > 100:
        raise RunRefused("failed_step: at most 100 characters", field="failed_step")
    after, before = text("created_after"), text("created_before")
    for name in ("created_after", "created_before"):
        if params.get(name) == "":  # absent is "no bound"; empty is a malformed date-time
            raise RunRefused(f"{name} must be an ISO 8601 date-time", field=name)
    run = text("run").lstrip("#")
    return RunFilter(
        workflow_ids=ids,
        environment_id=environment_id,
        statuses=statuses,
        failed_step=failed_step,
        created_after=_moment("created_after", after) if after else None,
        created_before=_moment("created_before", before) if before else None,
        where=tuple(filter_parse(text("where"))),
        run_id=_positive("run", run) if run else None,
    )


def _clause_q(clause: Clause) -> Q:
    # Always name the lookup: a key called "contains" is then a key, not a lookup.
    lookup = "__".join((clause.root, *clause.path, _LOOKUPS.get(clause.op, "exact")))
    q = Q(**{lookup: clause.value})
    return ~q if clause.op == "!=" else q


def runs_filtered(f: RunFilter) -> QuerySet[Run]:
    """The runs matching ``f``, newest first (not yet paged)."""
    qs = Run.objects.all()
    qs = qs.filter(workflow_id=f.workflow_ids[0]) if len(f.workflow_ids) == 1 else (
        qs.filter(workflow_id__in=f.workflow_ids))  # fmt: skip
    if f.environment_id is not None:
        qs = qs.filter(environment_id=f.environment_id)
    if len(f.statuses) == 1:
        qs = qs.filter(status=f.statuses[0])
    elif f.statuses:
        qs = qs.filter(status__in=f.statuses)
    if f.failed_step:
        # The same expression as the index run_failed_step (migration 0005).
        qs = qs.alias(failed_step=FailedStep()).filter(failed_step=f.failed_step)
    if f.created_after is not None:
        qs = qs.filter(created_at__gte=f.created_after)
    if f.created_before is not None:
        qs = qs.filter(created_at__lt=f.created_before)
    for clause in f.where:
        qs = qs.filter(_clause_q(clause))
    if f.run_id is not None:
        qs = qs.filter(pk=f.run_id)
    return qs.order_by("-id")


def _brief(run: dict[str, Any], tags: dict[int, str], envs: dict[int, str]) -> dict[str, Any]:
    started, finished = run["started_at"], run["finished_at"]
    error = run["error"] if isinstance(run["error"], dict) else {}
    return {
        "id": run["id"],
        "workflow": tags.get(run["workflow_id"], ""),
        "environment": envs.get(run["environment_id"], ""),
        "version": run["version__number"],
        "status": run["status"],
        "input": run["input"],
        "error": run["error"],
        "failed_step": error.get("step") if isinstance(error.get("step"), str) else None,
        "origin": run["origin_id"],
        "origin_kind": run["origin_kind"],
        "last_seq": run["last_seq"],
        "created_at": run["created_at"],
        "started_at": started,
        "finished_at": finished,
        "duration_ms": (
            int((finished - started).total_seconds() * 1000) if started and finished else None
        ),
    }


_FIELDS = (
    "id", "workflow_id", "environment_id", "version__number", "status", "input", "error",
    "origin_id", "origin_kind", "last_seq", "created_at", "started_at", "finished_at",
)  # fmt: skip


def runs_page(
    *, product: Product, f: RunFilter, before: int | None, limit: int = PAGE
) -> dict[str, Any]:
    """One page of runs (newest first, ids below ``before``) with the step grid of its
    runs; ``next`` is the cursor of the following page, or None on the last."""
    qs = runs_filtered(f)
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows = list(qs.values(*_FIELDS)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    tags = dict(Workflow.objects.filter(product=product).values_list("id", "tag"))
    envs = dict(Environment.objects.filter(product=product).values_list("id", "slug"))
    runs = [_brief(r, tags, envs) for r in rows]
    return {
        "results": runs,
        "next": str(rows[-1]["id"]) if more and rows else None,
        "grid": runs_grid(runs),
    }


def runs_grid(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Airflow's grid: one row per step (``workflow``, ``tag``, in run order), one column
    per run, ``cells[run id][row key]`` = the step's status."""
    by_id = {r["id"]: r for r in runs}
    steps = (
        StepRun.objects.filter(run_id__in=list(by_id))
        .order_by("run_id", "id")  # steps are inserted in the plan's order
        .values_list("run_id", "sequence", "tag", "status")
    )
    rows: dict[str, dict[str, Any]] = {}
    cells: dict[str, dict[str, str]] = {}
    for run_id, sequence, tag, status in steps:
        workflow = by_id[run_id]["workflow"]
        key = f"{workflow}:{tag}"
        rows.setdefault(key, {"key": key, "workflow": workflow, "tag": tag, "sequence": sequence})
        cells.setdefault(str(run_id), {})[key] = status
    # Grouped by workflow (stable: each keeps its plan order).
    ordered = sorted(rows.values(), key=lambda r: str(r["workflow"]))
    return {"rows": ordered, "cells": cells}
