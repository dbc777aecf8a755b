"""On a real qcluster (issue 13, items 4 and 5): the inputs that used to crash the task on
every re-lease (228 failed-task rows in 25 minutes, runs pending forever) now end their
runs ``failed`` within seconds with a clear error, and no failed django-q2 task rows pile
up; doubling $Concat steps stop at the output cap with nothing oversized stored."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django_q.models import Failure, Task

from designer.models import Environment, Product
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def set_state(tag: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "SET_STATE", "event": tag, "tag": tag, "input": values, **extra}


def test_the_reported_attack_inputs_fail_their_runs_within_seconds(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    attacks = {
        "inf": "$Add(1e308, 1e308)",
        "date": "$Dateformat(99999999999999999999, 'YYYY')",
    }
    runs = {}
    for tag, expression in attacks.items():
        events = [set_state("before", {"ok": 1}), set_state("attack", {"v": expression})]
        spec = {"sequences": [{"tag": "main", "events": events}]}
        wf = make_workflow(product, spec, tag=tag)
        runs[tag] = run_start(workflow=wf, environment=env_dev, input={})
    worker()
    started = time.monotonic()

    def all_done() -> bool:
        return all(Run.objects.get(pk=r.pk).status in RUN_FINISHED for r in runs.values())

    assert wait_for(all_done, timeout=30), {
        t: Run.objects.get(pk=r.pk).status for t, r in runs.items()
    }
    assert time.monotonic() - started < 20
    messages = {}
    for tag, run in runs.items():
        run.refresh_from_db()
        assert run.status == "failed", (tag, run.status)
        step = StepRun.objects.get(run=run, tag="attack")
        assert step.status == "failed" and step.attempt == 1
        messages[tag] = step.error["message"]
        kinds = list(run.journal.values_list("kind", flat=True))
        assert "step_failed" in kinds and kinds[-1] == "run_failed"
        assert "task_failed" not in kinds
        assert run.task_failures == 0
    assert "$Add: the result is not a finite number" in messages["inf"]
    assert "$Dateformat" in messages["date"]
    time.sleep(1)  # the sweep keeps ticking: still nothing failed, nothing re-leased
    assert not Failure.objects.exists()
    assert not Task.objects.filter(success=False).exists()


def test_doubling_concat_steps_stop_at_the_cap_on_a_worker(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    events = [set_state("s0", {"v": "$Input{seed}"})]
    for k in range(1, 15):
        prev = f"$Step{{s{k - 1}}}{{v}}"
        events.append(set_state(f"s{k}", {"v": f"$Concat({prev}, {prev})"}))
    wf = make_workflow(product, {"sequences": [{"tag": "main", "events": events}]})
    cap = 100_000
    worker(
        env={"TRELLIS_MAX_STEP_OUTPUT_BYTES": str(cap), "TRELLIS_MAX_STEP_INPUT_BYTES": str(cap)}
    )
    run = run_start(workflow=wf, environment=env_dev, input={"seed": "x" * 1000})
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=30)
    run.refresh_from_db()
    assert run.status == "failed"
    failed = StepRun.objects.get(run=run, status="failed")
    assert failed.tag == "s7"  # 128,000 characters: the first value over the cap
    assert "TRELLIS_MAX_STEP_" in failed.error["message"]
    # Stored sizes, measured the same way on SQLite (text) and PostgreSQL (jsonb).
    length = "LENGTH(CAST({} AS TEXT))"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX({length.format('output')}), MAX({length.format('input')})"
            " FROM runtime_steprun WHERE run_id = %s",
            [run.pk],
        )
        largest = max(v or 0 for v in cursor.fetchone())
        cursor.execute(
            f"SELECT MAX({length.format('data')}) FROM runtime_journalentry WHERE run_id = %s",
            [run.pk],
        )
        largest = max(largest, cursor.fetchone()[0] or 0)
    assert largest < cap
    assert not Failure.objects.exists()


def test_a_run_that_kills_its_worker_every_time_is_failed_after_the_limit(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    from tests.runtime.conftest import code

    spec = {"sequences": [{"tag": "main", "events": [code("die", tag="poison")]}]}
    wf = make_workflow(product, spec)
    worker(
        workers=2,
        env={"TRELLIS_LEASE_S": "2", "TRELLIS_RUN_MAX_TASK_FAILURES": "2"},
    )
    run = run_start(workflow=wf, environment=env_dev, input={})
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=90), (
        Run.objects.get(pk=run.pk).status
    )
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error["code"] == "task_failed"
    assert "killed or timed out" in run.error["message"]
    failures = list(run.journal.filter(kind="task_failed").values_list("data", flat=True))
    counts = [f["failures"] for f in failures]
    # The step's 2nd failure stops the run. In scale-out (PostgreSQL + Redis) the task
    # compensating the stopped run is lost once more since runs close their open steps at
    # the end (a known follow-up, session 4's note): the guard then ends the run as it
    # stands, so one extra failure at most.
    assert counts[:2] == [1, 2] and len(counts) <= 3, counts
    assert f"{counts[-1]} times in a row" in run.error["message"]
    assert run.journal.order_by("-seq").first().kind == "run_failed"
