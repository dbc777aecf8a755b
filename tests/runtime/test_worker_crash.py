"""Crash safety on a real qcluster: SIGKILL the cluster mid-step, restart it, and the run
completes — every completed step ran exactly once, the one in flight at most twice (with
the same idempotency key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import Run, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_killed_worker_is_recovered_and_completed_steps_never_rerun(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    code("record", tag="a"),
                    code("slow", tag="b", input={"seconds": 2}),
                    code("record", tag="c"),
                    code("record", tag="d"),
                ],
            }
        ]
    }
    wf = make_workflow(product, spec)
    cluster = worker(env={"TRELLIS_LEASE_S": "3"})
    run = run_start(workflow=wf, environment=env_dev, input={})
    # Wait until step b is in flight, then kill the whole cluster.
    assert wait_for(lambda: (side_effects / "b.start.log").exists(), timeout=30)
    cluster.kill()
    assert steps.count("a") == 1
    assert StepRun.objects.get(run=run, tag="b").status == "running"

    worker(
        env={"TRELLIS_LEASE_S": "3"}
    )  # a fresh cluster: the sweep finds the expired lease and re-enqueues
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status == "completed", timeout=60), (
        Run.objects.get(pk=run.pk).status
    )
    assert steps.count("a") == 1
    assert steps.count("c") == 1
    assert steps.count("d") == 1
    started_b = (side_effects / "b.start.log").read_text().splitlines()
    assert 1 <= len(started_b) <= 2
    assert set(started_b) == {f"{run.pk}:b:1"}  # the same idempotency key both times
    run.refresh_from_db()
    seqs = list(run.journal.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))
    completed = list(run.journal.filter(kind="step_completed").values_list("step", flat=True))
    assert sorted(completed) == ["a", "b", "c", "d"]
