"""A child workflow's ``timeout`` bounds the parent's wait, on a real qcluster: the wait
ends with a ``child_timeout`` step error, the step's retries start a new child, the child
is closed per ``parent_close_policy``, and the timer survives a worker restart."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django_q.models import OrmQ

from designer.models import Environment, Product
from runtime import workflows
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_signal, run_start
from tests.runtime.conftest import make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STUCK_CHILD = {
    "sequences": [{"tag": "c", "events": [{"type": "WAIT_SIGNAL", "event": "go"}]}],
    "signals": {"go": {}},
}


def parent_spec(**feature: Any) -> dict[str, Any]:
    event = {"type": "FEATURE", "event": "stuck", "tag": "sub", "timeout": "2s", **feature}
    return {"sequences": [{"tag": "m", "events": [event]}]}


def finished(run: Run) -> bool:
    return Run.objects.get(pk=run.pk).status in RUN_FINISHED


async def parent_handler(ctx: Any) -> Any:
    # As written in the issue: the timeout given to ctx.workflow bounds the wait.
    return await ctx.workflow("sub", "stuck", {}, {"timeout": "2s", "retries": 1})


def test_a_stuck_child_times_out_and_each_retry_starts_a_new_child(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    make_workflow(product, STUCK_CHILD, tag="stuck")
    recorded = workflows.define(
        product="acme", tag="parent", handler=parent_handler, register=False
    ).spec_json()
    assert recorded["sequences"][0]["events"][0]["timeout"] == "2s"
    wf = make_workflow(product, recorded, tag="parent")
    worker()
    t0 = time.monotonic()
    run = run_start(workflow=wf, environment=env_dev, input={})
    assert wait_for(lambda: finished(run), timeout=60)
    run.refresh_from_db()
    assert time.monotonic() - t0 >= 4.0  # two waits of 2 s each
    assert run.status == "failed"
    assert run.error["code"] == "child_timeout"
    assert run.error["step"] == "sub"
    step = StepRun.objects.get(run=run, tag="sub")
    assert step.attempt == 2
    children = Run.objects.filter(parent_run=run).order_by("pk")
    assert children.count() == 2  # a retry starts a new child
    # The default policy, terminate: each timed-out child is stopped, not left waiting.
    assert wait_for(lambda: all(finished(c) for c in children), timeout=30)
    for child in children:
        child.refresh_from_db()
        assert child.status == "cancelled"
        assert child.stop_reason == "terminated"
    kinds = list(run.journal.order_by("seq").values_list("kind", "data"))
    retrying = [d for k, d in kinds if k == "step_retrying"]
    assert len(retrying) == 1 and retrying[0]["error"]["code"] == "child_timeout"


def test_the_child_timer_survives_a_worker_restart_and_abandon_keeps_the_child(
    product: Product, env_dev: Environment, worker: Any
) -> None:
    make_workflow(product, STUCK_CHILD, tag="stuck")
    feature = {"input": {"input": {}, "parent_close_policy": "abandon"}, "allow_fail": True}
    spec = parent_spec(**feature)
    after = {"type": "SET_STATE", "event": "after", "input": {"x": 1}}
    spec["sequences"][0]["events"].append(after)
    wf = make_workflow(product, spec, tag="parent")
    cluster = worker()
    run = run_start(workflow=wf, environment=env_dev, input={})
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status == "waiting", timeout=30)
    child = Run.objects.get(parent_run=run)
    assert wait_for(lambda: Run.objects.get(pk=child.pk).status == "waiting", timeout=30)
    cluster.kill()
    # Lose every queued task, the parent's delayed wake-up too (as a broker that lost its
    # delayed set would): only the timer kept with the parked sequence is left.
    OrmQ.objects.all().delete()
    time.sleep(2.5)
    assert Run.objects.get(pk=run.pk).status == "waiting"

    worker()  # a fresh cluster: its sweep finds the due timer
    assert wait_for(lambda: finished(run), timeout=60)
    run.refresh_from_db()
    assert run.status == "completed"  # allow_fail: the run goes on after the timeout
    step = StepRun.objects.get(run=run, tag="sub")
    assert step.status == "failed_allowed"
    assert step.error["code"] == "child_timeout"
    assert run.state == {"x": 1}
    # abandon: the child was left running, and it still completes on its own.
    child.refresh_from_db()
    assert child.status == "waiting"
    run_signal(run=child, name="go", payload={})
    assert wait_for(lambda: Run.objects.get(pk=child.pk).status == "completed", timeout=30)
    assert StepRun.objects.get(run=run, tag="sub").status == "failed_allowed"
