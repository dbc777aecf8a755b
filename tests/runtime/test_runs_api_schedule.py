"""POST /api/v1/runs with `schedule`: the run starts later on a django-q2 schedule."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django_q.models import Schedule
from rest_framework.test import APIClient

from designer.models import AuditEntry, Product
from runtime.models import Run
from tests.runtime.conftest import code, make_workflow

pytestmark = pytest.mark.django_db

SPEC = {
    "sequences": [{"tag": "m", "events": [code("add", tag="a", input={"a": 1, "b": 2})]}],
    "input": {"n": "integer"},
}


@pytest.fixture
def workflow(product: Product) -> Any:
    return make_workflow(product, SPEC, tag="later")


def post(client: APIClient, **body: Any) -> Any:
    payload = {"workflow": "acme/later", "env": "dev", "input": {"n": 1}, **body}
    return client.post("/api/v1/runs", payload, format="json")


def test_a_delayed_run_is_scheduled_not_started(api: APIClient, workflow: Any) -> None:
    response = post(api, schedule={"delay": "1h"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["scheduled"] is True
    assert Schedule.objects.filter(pk=body["schedule_id"]).exists()
    assert not Run.objects.filter(workflow=workflow).exists()
    assert AuditEntry.objects.filter(action="run.schedule", actor__username="alice").exists()


def test_a_cron_schedule_is_accepted(api: APIClient, workflow: Any) -> None:
    response = post(api, schedule={"cron": "0 9 * * 1", "timezone": "Europe/Paris"})
    assert response.status_code == 202, response.content
    job = Schedule.objects.get(pk=response.json()["schedule_id"])
    local = job.next_run.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("tomorrow", "schedule"),
        ({"cron": "not a cron"}, "schedule.cron"),
    ],
)
def test_a_bad_schedule_is_a_400_naming_the_field(
    api: APIClient, workflow: Any, schedule: Any, field: str
) -> None:
    response = post(api, schedule=schedule)
    assert response.status_code == 400, response.content
    assert field in response.content.decode()


def test_scheduled_input_is_checked_now(api: APIClient, workflow: Any) -> None:
    response = post(api, input={"n": "x"}, schedule={"delay": "1h"})
    assert response.status_code == 400
    assert "n" in response.json()["message"]
