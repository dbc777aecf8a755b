"""GET /metrics: refused without the token or an allowed address; after runs (one that
fails, one whose step is retried) every metric says what happened."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from designer.models import Environment, Product
from runtime.engine import sweep
from runtime.engine.sweep import sweep_kick
from runtime.journal import journal_extend
from runtime.metrics_fold import metrics_fold
from runtime.models import MetricTotal, Run, SequenceRun
from runtime.services import run_start
from tests.runtime.conftest import code, drain, make_workflow, run_until_done

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"


@pytest.fixture(autouse=True)
def _metrics_settings(settings: Any) -> None:
    settings.TRELLIS_METRICS_TOKEN = TOKEN
    settings.TRELLIS_METRICS_ALLOW = []
    # PostgreSQL's fold waits for rows to settle (concurrent commits); here one process writes.
    settings.TRELLIS_METRICS_SETTLE_S = 0


def scrape(
    client: Client | None = None, **headers: str
) -> dict[tuple[str, tuple[Any, ...]], float]:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_refused_without_a_token_or_an_allowed_address(settings: Any) -> None:
    client = Client()
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "forbidden"
    settings.TRELLIS_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403
    settings.TRELLIS_METRICS_ALLOW = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.TRELLIS_METRICS_ALLOW = ["127.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_metrics_count_runs_failures_retries_and_step_durations(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    ok = make_workflow(
        product,
        {"sequences": [{"tag": "m", "events": [code("flaky", tag="f", input={"failures": 1},
                                                    retries=1)]}]},
        tag="ok",
    )  # fmt: skip
    undo = {"type": "CODE", "event": "tests.runtime.steps:record", "input": {"undo": "a"}}
    bad = make_workflow(
        product,
        {"sequences": [{"tag": "m", "events": [code("add", tag="a", rollback=undo),
                                               code("boom", tag="b")]}]},
        tag="bad",
    )  # fmt: skip
    before = scrape()
    assert value(before, "trellis_runs_started_total", workflow="acme/ok",
                 environment="acme/dev") == 0  # fmt: skip

    done = run_until_done(run_start(workflow=ok, environment=env_dev, input={}))
    failed = run_until_done(run_start(workflow=bad, environment=env_dev, input={}))
    assert done.status == "completed", done.error
    assert failed.status == "rolled_back", failed.error
    # One more run started but not yet picked up: the queue metrics see it.
    queued = run_start(workflow=ok, environment=env_dev, input={})

    samples = scrape()
    dev = {"environment": "acme/dev"}
    assert value(samples, "trellis_runs_started_total", workflow="acme/ok", **dev) == 2
    assert value(samples, "trellis_runs_started_total", workflow="acme/bad", **dev) == 1
    assert value(samples, "trellis_runs_completed_total", workflow="acme/ok", **dev) == 1
    assert value(samples, "trellis_runs_completed_total", workflow="acme/bad", **dev) == 0
    assert value(samples, "trellis_runs_failed_total", workflow="acme/bad", **dev) == 1
    assert value(samples, "trellis_runs_failed_total", workflow="acme/ok", **dev) == 0
    assert value(samples, "trellis_step_retries_total", workflow="acme/ok", **dev) == 1
    assert value(samples, "trellis_step_reexecutions_total", workflow="acme/ok", **dev) == 0
    assert value(samples, "trellis_compensations_total", workflow="acme/bad", outcome="rolled_back",
                 **dev) == 1  # fmt: skip
    assert value(samples, "trellis_compensations_total", workflow="acme/bad", outcome="failed",
                 **dev) == 0  # fmt: skip
    # CODE attempts: flaky failed once then completed, add completed, boom failed.
    assert value(samples, "trellis_step_duration_seconds_count", event_type="CODE") == 4
    assert value(samples, "trellis_step_duration_seconds_bucket", event_type="CODE",
                 le="+Inf") == 4  # fmt: skip
    assert 0 < value(samples, "trellis_step_duration_seconds_sum", event_type="CODE") < 30
    assert value(samples, "trellis_runs_active", status="pending") == 1
    assert value(samples, "trellis_queue_depth") >= 1
    assert value(samples, "trellis_queue_oldest_age_seconds") >= 0
    assert SequenceRun.objects.filter(run=queued, status="running", lease_owner="").exists()
    assert value(samples, "trellis_database_bytes") > 0
    if connection.vendor == "sqlite":
        wal = os.path.getsize(f"{connection.settings_dict['NAME']}-wal")
        assert 0 < value(samples, "trellis_database_wal_bytes") <= wal
    assert value(samples, "trellis_live_sockets") == 0
    # No run id anywhere in the labels.
    run_ids = {str(r) for r in Run.objects.values_list("pk", flat=True)}
    for _name, labels in samples:
        assert not any(v in run_ids for _k, v in labels)

    # A second scrape counts nothing twice; the queued run's completion is counted once.
    run_until_done(queued)
    again = scrape()
    assert value(again, "trellis_runs_started_total", workflow="acme/ok", **dev) == 2
    assert value(again, "trellis_runs_completed_total", workflow="acme/ok", **dev) == 2
    assert value(again, "trellis_step_duration_seconds_count", event_type="CODE") == 5
    assert value(again, "trellis_queue_depth") == 0


def test_a_step_run_again_after_its_worker_died_is_a_reexecution_and_a_lease_expiry(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    wf = make_workflow(
        product, {"sequences": [{"tag": "m", "events": [code("record", tag="r")]}]}, tag="w"
    )
    run = run_start(workflow=wf, environment=env_dev, input={})
    # A worker took the lease and started the step, then died (its lease ran out).
    seq = SequenceRun.objects.get(run=run)

    with transaction.atomic():
        journal_extend(run, [("step_started", "r", {"attempt": 1})])
        SequenceRun.objects.filter(pk=seq.pk).update(
            lease_owner="dead-worker", lease_until=timezone.now() + timedelta(seconds=60)
        )
        run.steps.filter(tag="r").update(status="running", attempt=1)
    drain()  # the queued task finds the lease taken
    assert run.journal.filter(kind="step_completed").count() == 0

    SequenceRun.objects.filter(pk=seq.pk).update(
        lease_until=timezone.now() - timedelta(seconds=60),
        kicked_at=None,
        started_at=timezone.now() - timedelta(seconds=120),
    )
    sweep.sweep_once()
    run = run_until_done(run)
    assert run.status == "completed", run.error
    samples = scrape()
    labels = {"workflow": "acme/w", "environment": "acme/dev"}
    assert value(samples, "trellis_step_reexecutions_total", **labels) == 1
    assert value(samples, "trellis_task_failures_total", reason="lease_expired", **labels) == 1
    assert value(samples, "trellis_worker_heartbeat_age_seconds") > 0  # never beaten: +Inf
    sweep_kick(force=True)
    assert value(scrape(), "trellis_worker_heartbeat_age_seconds") < 5


def test_totals_are_folded_once_and_survive_the_rows_they_came_from(
    product: Product, env_dev: Environment
) -> None:
    wf = make_workflow(
        product,
        {"sequences": [{"tag": "m", "events": [{"type": "CODE", "event":
                                                "runtime.connectors.code:noop", "tag": "n"}]}]},
        tag="gone",
    )  # fmt: skip
    run = run_until_done(run_start(workflow=wf, environment=env_dev, input={}))
    assert run.status == "completed"
    assert metrics_fold() > 0
    assert metrics_fold() == 0
    run.delete()  # pruned: its journal rows go, the totals stay
    started = MetricTotal.objects.get(name="runs_started", workflow_id=wf.pk)
    assert started.value == 1
    assert value(scrape(), "trellis_runs_completed_total", workflow="acme/gone",
                 environment="acme/dev") == 1  # fmt: skip
