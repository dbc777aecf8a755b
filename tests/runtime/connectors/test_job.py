"""JOB and run scheduling through django-q2 schedules (the real scheduler function)."""

from __future__ import annotations

import datetime as dt
import pydoc
from typing import Any

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage

from designer.models import Activation, Environment, Product, Workflow, WorkflowVersion
from runtime.compiler import compile_spec, spec_checksum
from runtime.connectors import ConnectorCall, execute
from runtime.errors import RunRefused, StepError
from runtime.models import Run
from runtime.scheduling import FIRE, cron_next, run_schedule, schedule_cancel
from runtime.spec import EventType

pytestmark = pytest.mark.django_db


def workflow(product: Product, tag: str = "reminders") -> Workflow:
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [{"type": "CODE", "event": "tests.runtime.steps:record", "tag": "r"}],
            }
        ],
        "input": {"who": "string"},
    }
    wf = Workflow.objects.create(product=product, tag=tag, name=tag)
    version = WorkflowVersion.objects.create(
        workflow=wf,
        state="published",
        number=1,
        spec=spec,
        plan=compile_spec(spec).model_dump(mode="json"),
        checksum=spec_checksum(spec),
        published_at=timezone.now(),
    )
    Activation.objects.create(
        workflow=wf, environment=product.environments.get(slug="dev"), active=True, version=version
    )
    return wf


def dev(product: Product) -> Environment:
    return product.environments.get(slug="dev")


def fire_due() -> list[Any]:
    """Run django-q2's scheduler once, then the schedule tasks it queued, in-process."""
    import django_q.scheduler as q_scheduler

    # The scheduler closes "old" connections, which would close the test's transaction.
    keep = q_scheduler.close_old_django_connections
    q_scheduler.close_old_django_connections = lambda: None
    try:
        scheduler(broker=get_broker())
    finally:
        q_scheduler.close_old_django_connections = keep
    results = []
    for row in OrmQ.objects.order_by("id"):
        task = SignedPackage.loads(row.payload)
        if task["func"] != FIRE:
            continue
        row.delete()
        func = pydoc.locate(task["func"])
        assert callable(func)
        results.append(func(*task["args"], **task["kwargs"]))
    return results


def test_a_run_scheduled_at_a_time_starts_then(product: Product) -> None:
    wf = workflow(product)
    at = timezone.now() + dt.timedelta(hours=2)
    row = run_schedule(
        workflow=wf,
        environment=dev(product),
        input={"who": "ann"},
        schedule={"start_at": at.isoformat()},
    )
    assert abs((row.next_run - at).total_seconds()) < 1
    assert fire_due() == []  # not due yet
    Schedule.objects.filter(pk=row.pk).update(next_run=timezone.now() - dt.timedelta(seconds=1))
    (run_id,) = fire_due()
    run = Run.objects.get(pk=run_id)
    assert run.workflow == wf and run.input == {"who": "ann"}
    assert run.idempotency_key.startswith(f"schedule:{row.name}:")
    assert fire_due() == []  # once only


def test_a_naive_start_at_is_read_in_the_schedule_time_zone(product: Product) -> None:
    row = run_schedule(
        workflow=workflow(product),
        environment=dev(product),
        input={"who": "x"},
        schedule={"start_at": "2031-06-01T09:00:00", "timezone": "Asia/Tokyo"},
    )
    assert row.next_run == dt.datetime(2031, 6, 1, 0, 0, tzinfo=dt.UTC)


def test_a_cron_schedule_fires_in_its_time_zone_and_rearms(product: Product) -> None:
    wf = workflow(product)
    row = run_schedule(
        workflow=wf,
        environment=dev(product),
        input={"who": "ops"},
        schedule={"cron": "0 9 * * *", "timezone": "Asia/Tokyo"},
    )
    assert row.next_run.astimezone(dt.UTC).hour == 0  # 09:00 in Tokyo
    Schedule.objects.filter(pk=row.pk).update(next_run=timezone.now() - dt.timedelta(seconds=1))
    (run_id,) = fire_due()
    assert Run.objects.filter(pk=run_id).exists()
    row.refresh_from_db()
    assert row.repeats == 1 and row.next_run > timezone.now()
    assert row.next_run.astimezone(dt.UTC).hour == 0


def test_bad_schedules_are_refused_naming_the_field(product: Product) -> None:
    wf = workflow(product)
    cases = [
        ({"cron": "61 * * * *"}, "schedule.cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"start_at": "tomorrow-ish"}, "schedule.start_at"),
        ({"start_at": "2031-01-01T00:00:00Z", "cron": "* * * * *"}, "schedule"),
    ]
    for schedule, field in cases:
        with pytest.raises(RunRefused) as err:
            run_schedule(
                workflow=wf, environment=dev(product), input={"who": "x"}, schedule=schedule
            )
        assert err.value.field == field, schedule
    with pytest.raises(RunRefused):
        run_schedule(
            workflow=wf, environment=dev(product), input={"who": 5}, schedule={"delay": "1m"}
        )
    assert Schedule.objects.count() == 0


def test_a_schedule_can_be_cancelled(product: Product) -> None:
    row = run_schedule(
        workflow=workflow(product),
        environment=dev(product),
        input={"who": "x"},
        schedule={"delay": "1h"},
    )
    assert schedule_cancel(name=row.name) is True
    assert schedule_cancel(name=row.name) is False


def job(product: Product, event: str, input: Any, key: str = "run:job:1") -> Any:
    env = dev(product)
    return execute(
        ConnectorCall(
            type=EventType.JOB,
            event=event,
            input=input,
            environment="dev",
            product_id=product.pk,
            environment_id=env.pk,
            idempotency_key=key,
        )
    )


def test_a_job_step_schedules_a_workflow_once(product: Product) -> None:
    workflow(product)
    first = job(product, "reminders", {"input": {"who": "bo"}, "cron": "*/5 * * * *"})
    again = job(product, "reminders", {"input": {"who": "bo"}, "cron": "*/5 * * * *"})
    assert first == again and first["cron"] == "*/5 * * * *"
    assert Schedule.objects.count() == 1
    assert cron_next("*/5 * * * *", "UTC").isoformat() == first["next_run"]


def test_a_job_dispatches_an_event_later(product: Product, tmp_path: Any, settings: Any) -> None:
    from designer.models import Component

    settings.MEDIA_ROOT = tmp_path
    Component.objects.create(product=product, kind="storage", tag="files")
    out = job(
        product,
        "later",
        {
            "dispatch": {
                "type": "STORAGE",
                "app": "files",
                "event": "upload",
                "input": {"text": "hi", "fileName": "x.txt"},
            },
            "delay": "10ms",
        },
    )
    Schedule.objects.filter(name=out["schedule"]).update(
        next_run=timezone.now() - dt.timedelta(seconds=1)
    )
    (result,) = fire_due()
    assert result["file_key"] == "x.txt"
    assert (tmp_path / "acme" / "dev" / "files" / "x.txt").read_text() == "hi"


def test_a_job_for_an_unknown_workflow_fails_clearly(product: Product) -> None:
    with pytest.raises(StepError, match="no workflow 'nope'") as err:
        job(product, "nope", {"delay": "1m"})
    assert err.value.retryable is False
    with pytest.raises(StepError, match="cannot schedule"):
        workflow(product)
        job(product, "reminders", {"input": {"who": "x"}}, key="k2")
