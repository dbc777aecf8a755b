"""The compiled plans of published versions, cached per process."""

from __future__ import annotations

import threading

from designer.models import WorkflowVersion
from runtime.compiler import Plan, compile_spec
from runtime.errors import RunRefused

_plans: dict[int, Plan] = {}
_plans_lock = threading.Lock()


def plan_for_version(version_id: int) -> Plan:
    """The compiled plan of a published version, cached per process (versions are immutable)."""
    plan = _plans.get(version_id)
    if plan is not None:
        return plan
    row = WorkflowVersion.objects.filter(pk=version_id).values("plan", "spec").first()
    if row is None:
        raise RunRefused(f"workflow version {version_id} does not exist", status=404)
    plan = Plan.model_validate(row["plan"]) if row["plan"] else compile_spec(row["spec"])
    with _plans_lock:
        if len(_plans) > 512:
            _plans.clear()
        _plans[version_id] = plan
    return plan


def plan_cache_clear() -> None:
    """Forget cached plans (tests, where rolled-back ids are reused)."""
    with _plans_lock:
        _plans.clear()
