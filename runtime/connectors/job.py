"""JOB: start a workflow, or dispatch an event, at a time or on a cron schedule.

Step shapes::

    {"type": "JOB", "event": "send-reminders",            # the workflow tag to start
     "input": {"input": {...}, "start_at": "2030-01-01T09:00:00", "timezone": "Europe/Paris"}}
    {"type": "JOB", "event": "nightly", "input": {"workflow": "cleanup", "cron": "0 3 * * *"}}
    {"type": "JOB", "event": "later-mail",
     "input": {"dispatch": {"type": "NOTIFICATION", "app": "mailer", "event": "reminder",
                            "input": {...}}, "delay": "1h"}}

One of ``start_at`` (ISO time; naive = in ``timezone``), ``delay`` ('5m', ms) or ``cron``
(evaluated in ``timezone``, default UTC). The workflow starts in the same environment as
the run that scheduled it. Result ``{schedule, next_run, cron, timezone}``; the schedule
name cancels it (``runtime.scheduling.schedule_cancel``). A retried JOB step with the same
idempotency key does not schedule twice.
"""

from __future__ import annotations

from typing import Any

from django_q.models import Schedule

from designer.models import Environment, Workflow
from runtime.connectors.call import ConnectorCall
from runtime.connectors.upcalls import upcalls
from runtime.errors import RunRefused, StepError

_SCHEDULE_KEYS = ("start_at", "delay", "cron", "timezone")


def job_run(call: ConnectorCall) -> Any:
    """Create the django-q2 schedule a JOB step describes."""
    up = upcalls()
    if call.environment_id is None:
        raise StepError("JOB needs the run's environment", retryable=False)
    data = call.input if isinstance(call.input, dict) else {}
    schedule = {k: data[k] for k in _SCHEDULE_KEYS if k in data}
    environment = Environment.objects.select_related("product").get(pk=call.environment_id)
    # A retried step must not schedule twice: its key names the schedule.
    name = up.schedule_name(
        f"{environment.pk}:{call.idempotency_key}" if call.idempotency_key else None
    )
    existing = Schedule.objects.filter(name=name).first()
    if existing is not None:
        return up.schedule_describe(existing)
    try:
        dispatch = data.get("dispatch")
        if isinstance(dispatch, dict):
            if str(dispatch.get("type", "")).upper() in {"JOB", "FALLBACK"}:
                raise StepError("a JOB cannot dispatch a JOB or FALLBACK", retryable=False)
            row: Schedule = up.event_schedule(
                environment=environment,
                type=str(dispatch.get("type", "")),
                event=str(dispatch.get("event", "")),
                app=dispatch.get("app"),
                input=dispatch.get("input", {}),
                schedule=schedule,
                name=name,
            )
        else:
            tag = str(data.get("workflow") or call.event)
            workflow = Workflow.objects.filter(product_id=environment.product_id, tag=tag).first()
            if workflow is None:
                raise StepError(f"no workflow '{tag}' in this product", retryable=False)
            run_input = data.get("input") if isinstance(data.get("input"), dict) else {}
            row = up.run_schedule(
                workflow=workflow,
                environment=environment,
                input=run_input,
                schedule=schedule,
                name=name,
            )
    except RunRefused as exc:
        field = f" ({exc.field})" if exc.field else ""
        raise StepError(f"cannot schedule: {exc}{field}", retryable=False) from exc
    return up.schedule_describe(row)
