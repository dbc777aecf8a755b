"""The compiled plans of published versions, cached per process."""

from __future__ import annotations

import threading

from runtime.compiler import Plan, compile_spec
from runtime.engine.store import store
from runtime.errors import RunRefused

_plans: dict[int, Plan] = {}
_plans_lock = threading.Lock()


def plan_for_version(version_id: int) -> Plan:
    """The compiled plan of a published version, cached per process (versions are immutable)."""
    plan = _plans.get(version_id)
    if plan is not None:
        return plan
    row = store().version_plan(version_id)
    if row is None:
        raise RunRefused(f"workflow version {version_id} does not exist", status=404)
    stored, spec = row
    plan = Plan.model_validate(stored) if stored else compile_spec(spec)
    with _plans_lock:
        if len(_plans) > 512:
            _plans.clear()
        _plans[version_id] = plan
    return plan


def plan_cache_clear() -> None:
    """Forget cached plans (tests, where rolled-back ids are reused)."""
    with _plans_lock:
        _plans.clear()
