"""Runs and events at a later time or on a cron schedule, through django-q2 schedules.

django-q2 evaluates cron expressions in one global time zone, so a schedule here is a
django-q2 ``ONCE`` schedule that :func:`schedule_fire` re-arms after each firing with the
next time computed in the schedule's own time zone (croniter). Its id and name stay the
same for its whole life, so it can be listed and cancelled.

Each firing starts a run keyed by ``schedule:<name>:<intended time>``: a firing delivered
twice starts one run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.utils import timezone
from django_q.models import Schedule

from designer.models import Environment, Workflow
from runtime.connectors import execute
from runtime.connectors.loader import connector_call
from runtime.engine.creation import _live_version, input_validate, run_start
from runtime.engine.plans import plan_for_version
from runtime.errors import RunRefused, StepError
from runtime.spec import duration_ms

log = logging.getLogger("trellis.scheduling")
FIRE = "runtime.scheduling.schedule_fire"
NAME_PREFIX = "trellis-"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RunRefused(f"unknown time zone {name!r}", field="schedule.timezone") from exc


def _parse_at(value: Any, zone: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        at = value
    else:
        try:
            at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise RunRefused(
                f"start_at must be an ISO 8601 time, got {value!r}", field="schedule.start_at"
            ) from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    return at.astimezone(dt.UTC)


def cron_next(cron: str, zone_name: str, after: dt.datetime | None = None) -> dt.datetime:
    """The next time ``cron`` fires after ``after`` (now), evaluated in ``zone_name``; UTC."""
    from croniter import CroniterError, croniter

    zone = _zone(zone_name)
    base = (after or timezone.now()).astimezone(zone)
    try:
        nxt: dt.datetime = croniter(cron, base).get_next(dt.datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise RunRefused(f"invalid cron expression {cron!r}", field="schedule.cron") from exc
    return nxt.astimezone(dt.UTC)


def schedule_when(schedule: dict[str, Any]) -> tuple[dt.datetime, str, str]:
    """``(first fire time UTC, cron or '', timezone)`` of a ``{start_at | delay | cron,
    timezone}`` dict; RunRefused naming the field when it is not valid."""
    if not isinstance(schedule, dict):
        raise RunRefused("schedule must be an object", field="schedule")
    tz_name = str(schedule.get("timezone") or "UTC")
    zone = _zone(tz_name)
    given = [k for k in ("start_at", "delay", "cron") if schedule.get(k) not in (None, "")]
    if len(given) != 1:
        raise RunRefused("give one of start_at, delay or cron", field="schedule")
    if schedule.get("cron"):
        cron = str(schedule["cron"])
        return cron_next(cron, tz_name), cron, tz_name
    if schedule.get("delay") not in (None, ""):
        try:
            ms = duration_ms(schedule["delay"]) or 0
        except ValueError as exc:
            raise RunRefused(str(exc), field="schedule.delay") from exc
        return timezone.now() + dt.timedelta(milliseconds=ms), "", tz_name
    return _parse_at(schedule["start_at"], zone), "", tz_name


def schedule_name(key: str | None = None) -> str:
    """A new schedule name; derived from ``key`` when given (a retried JOB step)."""
    if key:
        return NAME_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:24]
    return NAME_PREFIX + uuid.uuid4().hex[:24]


def _create(
    payload: dict[str, Any], schedule: dict[str, Any], label: str, name: str | None
) -> Schedule:
    first, cron, tz_name = schedule_when(schedule)
    name = name or schedule_name()
    payload = {**payload, "cron": cron, "timezone": tz_name, "name": name, "label": label}
    return Schedule.objects.create(
        name=name,
        func=FIRE,
        # A literal dict: django-q2 reads kwargs back with ast.literal_eval.
        kwargs=repr({"payload": json.dumps(payload)}),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=first,
        intended_date_kwarg="fire_at",
    )


def run_schedule(
    *,
    workflow: Any,
    environment: Any,
    input: dict[str, Any] | None,
    schedule: dict[str, Any],
    user: Any = None,
    name: str | None = None,
) -> Schedule:
    """Start ``workflow`` in ``environment`` at ``schedule['start_at']`` (ISO time; naive
    times are in ``schedule['timezone']``), after ``schedule['delay']`` ('5m', ms) or on
    every ``schedule['cron']`` time in ``schedule['timezone']`` (default UTC).

    The input is checked against the live version's schema now (RunRefused naming the
    field); whether the workflow is active is checked at each firing.
    """
    if environment.product_id != workflow.product_id:
        raise RunRefused("environment of another product", field="env", status=404)
    version = _live_version(workflow, environment)
    input_validate(plan_for_version(version.pk).input_schema, input or {})
    payload = {
        "kind": "workflow",
        "workflow_id": workflow.pk,
        "environment_id": environment.pk,
        "input": input or {},
        "user_id": getattr(user, "pk", None),
    }
    return _create(payload, schedule, f"{workflow.product.slug}/{workflow.tag}", name)


def event_schedule(
    *,
    environment: Any,
    type: str,
    event: str,
    app: str | None,
    input: Any,
    schedule: dict[str, Any],
    name: str | None = None,
) -> Schedule:
    """Dispatch one connector event (``{type, app, event, input}``) later or on a cron."""
    payload = {
        "kind": "event",
        "environment_id": environment.pk,
        "type": type,
        "event": event,
        "app": app,
        "input": input,
    }
    return _create(payload, schedule, f"{type}:{event}", name)


def schedule_cancel(*, name: str) -> bool:
    """Stop a schedule made here; False when there is no such schedule."""
    if not name.startswith(NAME_PREFIX):
        return False
    deleted, _ = Schedule.objects.filter(name=name, func=FIRE).delete()
    return bool(deleted)


def schedule_describe(row: Schedule) -> dict[str, Any]:
    payload = _payload(row.kwargs or "")
    return {
        "schedule": row.name,
        "next_run": row.next_run.isoformat() if row.next_run else None,
        "cron": payload.get("cron") or None,
        "timezone": payload.get("timezone", "UTC"),
    }


def _payload(kwargs: str) -> dict[str, Any]:
    import ast

    try:
        raw = ast.literal_eval(kwargs) if kwargs else {}
        return dict(json.loads(raw.get("payload", "{}")))
    except (ValueError, SyntaxError, TypeError):
        return {}


def schedule_fire(payload: str, fire_at: str = "", **_: Any) -> Any:
    """django-q2 task of every schedule made here: re-arm a cron schedule, then start the
    run (or dispatch the event). Refusals are logged, never raised: the schedule goes on."""
    data = json.loads(payload)
    name = str(data.get("name", ""))
    if data.get("cron"):
        after = dt.datetime.fromisoformat(fire_at) if fire_at else timezone.now()
        nxt = cron_next(data["cron"], data.get("timezone", "UTC"), max(after, timezone.now()))
        Schedule.objects.filter(name=name, func=FIRE).update(next_run=nxt, repeats=1)
    key = f"schedule:{name}:{fire_at}"[:200]
    try:
        if data.get("kind") == "workflow":
            return _fire_run(data, key)
        return _fire_event(data, key)
    except RunRefused as exc:
        log.warning("schedule %s (%s) did not start: %s", name, data.get("label"), exc)
        return None


def _fire_run(data: dict[str, Any], key: str) -> int:
    workflow = Workflow.objects.get(pk=data["workflow_id"])
    environment = Environment.objects.get(pk=data["environment_id"])
    user = (
        get_user_model().objects.filter(pk=data["user_id"]).first() if data.get("user_id") else None
    )
    run = run_start(
        workflow=workflow,
        environment=environment,
        input=data.get("input") or {},
        idempotency_key=key,
        user=user,
    )
    return int(run.pk)


def _fire_event(data: dict[str, Any], key: str) -> Any:
    environment = Environment.objects.get(pk=data["environment_id"])
    try:
        call = connector_call(
            type=data["type"],
            event=data["event"],
            app=data.get("app"),
            input=data.get("input"),
            environment=environment,
            idempotency_key=key,
        )
        return execute(call)
    except StepError as exc:
        log.warning("scheduled %s:%s failed: %s", data["type"], data["event"], exc.message)
        return {"error": exc.as_json()}
