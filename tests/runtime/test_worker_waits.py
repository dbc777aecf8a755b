"""Waiting holds no worker: runs parked on WAIT_SIGNAL and on a 2 s SLEEP resume while a
single worker process serves 20 other runs; a signal sent before the wait is not lost."""

from __future__ import annotations

import time
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_signal, run_start
from tests.runtime.conftest import code, make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_parked_runs_resume_while_one_worker_serves_others(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    waiter = make_workflow(
        product,
        {
            "sequences": [{"tag": "m", "events": [{"type": "WAIT_SIGNAL", "event": "go"}]}],
            "signals": {"go": {"input": {"who": "string"}}},
        },
        tag="waiter",
    )
    sleeper = make_workflow(
        product,
        {"sequences": [{"tag": "m", "events": [{"type": "SLEEP", "event": "2s"}, code("add")]}]},
        tag="sleeper",
    )
    early = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "m",
                    "events": [
                        {"type": "SLEEP", "event": "1500ms"},
                        {"type": "WAIT_SIGNAL", "event": "go", "tag": "wait"},
                    ],
                }
            ],
            "signals": {"go": {}},
        },
        tag="early",
    )
    busy = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "m",
                    "events": [
                        code("slow", tag=f"s{i}", input={"seconds": 0.05}) for i in range(4)
                    ],
                }
            ]
        },
        tag="busy",
    )
    worker(workers=1)
    t0 = time.monotonic()
    parked_signal = run_start(workflow=waiter, environment=env_dev, input={})
    parked_sleep = run_start(workflow=sleeper, environment=env_dev, input={})
    signalled_early = run_start(workflow=early, environment=env_dev, input={})
    others = [run_start(workflow=busy, environment=env_dev, input={}) for _ in range(20)]

    assert wait_for(lambda: Run.objects.get(pk=parked_signal.pk).status == "waiting", timeout=30)
    # The early run is still sleeping: its signal arrives before its WAIT_SIGNAL.
    assert StepRun.objects.get(run=signalled_early, tag="wait").status == "pending"
    run_signal(run=signalled_early, name="go", payload={})

    ids = [r.pk for r in others]
    assert wait_for(
        lambda: Run.objects.filter(pk__in=ids, status="completed").count() == 20, timeout=90
    )
    assert Run.objects.get(pk=parked_signal.pk).status == "waiting"  # held no worker

    assert wait_for(lambda: Run.objects.get(pk=parked_sleep.pk).status in RUN_FINISHED, timeout=60)
    slept = Run.objects.get(pk=parked_sleep.pk)
    assert slept.status == "completed"
    assert slept.finished_at is not None and slept.started_at is not None
    assert (slept.finished_at - slept.started_at).total_seconds() >= 2.0

    assert wait_for(
        lambda: Run.objects.get(pk=signalled_early.pk).status in RUN_FINISHED, timeout=60
    )
    assert Run.objects.get(pk=signalled_early.pk).status == "completed"
    assert StepRun.objects.get(run=signalled_early, tag="wait").output == {"_signal": "go"}

    run_signal(run=parked_signal, name="go", payload={"who": "ops"})
    assert wait_for(lambda: Run.objects.get(pk=parked_signal.pk).status in RUN_FINISHED, timeout=60)
    done = Run.objects.get(pk=parked_signal.pk)
    assert done.status == "completed"
    assert StepRun.objects.get(run=done, tag="go").output == {"who": "ops", "_signal": "go"}
    assert time.monotonic() - t0 < 120
