"""FOREACH loops on a real qcluster: lists resolved at run time (0, 3 and 500 items), the
loop's max_concurrency observed across worker processes, the iteration bound, and a
SIGKILL mid-loop that re-runs no completed iteration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from designer.models import Environment, Product
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def loop_workflow(product: Product, *, max_concurrency: int | None) -> Any:
    loop: dict[str, Any] = {
        "items": "$Input{items}",
        "body": [code("span", tag="work", input={"seconds": "$Item{s}", "index": "$Index"})],
    }
    if max_concurrency is not None:
        loop["max_concurrency"] = max_concurrency
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {"type": "FOREACH", "event": "each item", "tag": "each", "loop": loop},
                    code("record", tag="after"),
                ],
            }
        ],
        "output": {"results": "$Step{each}"},
    }
    return make_workflow(product, spec)


def finished(run: Run, timeout: float) -> Run:
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=timeout)
    run.refresh_from_db()
    return run


def iterations_started(run: Run) -> list[str]:
    started = run.journal.filter(kind="sequence_started", step__startswith="each[")
    return list(started.order_by("seq").values_list("step", flat=True))


def test_loops_over_0_3_and_500_items_run_the_body_that_many_times(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any, api: APIClient
) -> None:
    wf = loop_workflow(product, max_concurrency=3)
    worker(workers=4)

    empty = finished(run_start(workflow=wf, environment=env_dev, input={"items": []}), 60)
    assert empty.status == "completed", empty.error
    assert empty.output == {"results": []}
    assert iterations_started(empty) == []
    assert steps.spans() == []

    # Three slow items, at most three at once: all three overlap on four worker processes.
    three = run_start(workflow=wf, environment=env_dev, input={"items": [{"s": 1.5}] * 3})
    three = finished(three, 90)
    assert three.status == "completed", three.error
    assert [r["index"] for r in three.output["results"]] == [0, 1, 2]
    assert iterations_started(three) == ["each[0]", "each[1]", "each[2]"]
    spans = steps.spans()
    assert sorted(s for kind, s, _ in spans if kind == "exit") == ["work[0]", "work[1]", "work[2]"]
    assert steps.most_at_once(spans) == 3
    body = api.get(f"/api/v1/runs/{three.pk}").json()
    shown = {s["tag"]: s["status"] for s in body["steps"]}
    assert shown == {
        "each": "completed",
        "after": "completed",
        "work[0]": "completed",
        "work[1]": "completed",
        "work[2]": "completed",
    }
    assert [s["tag"] for s in body["sequences"]] == ["main", "each[0]", "each[1]", "each[2]"]

    (side_effects / "spans.log").unlink()
    big = run_start(workflow=wf, environment=env_dev, input={"items": [{"s": 0}] * 500})
    big = finished(big, 300)
    assert big.status == "completed", big.error
    assert [r["index"] for r in big.output["results"]] == list(range(500))
    assert iterations_started(big) == [f"each[{i}]" for i in range(500)]
    spans = steps.spans()
    entered = [s for kind, s, _ in spans if kind == "enter"]
    assert sorted(entered) == sorted(f"work[{i}]" for i in range(500))  # each exactly once
    assert steps.most_at_once(spans) <= 3
    completed = StepRun.objects.filter(run=big, tag__startswith="work[", status="completed")
    assert completed.count() == 500
    journaled = big.journal.filter(kind="step_completed", step__startswith="work[")
    assert journaled.count() == 500


def test_a_sequential_loop_never_overlaps_its_iterations(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    wf = loop_workflow(product, max_concurrency=None)
    worker(workers=3)
    run = run_start(workflow=wf, environment=env_dev, input={"items": [{"s": 0.3}] * 4})
    run = finished(run, 60)
    assert run.status == "completed", run.error
    spans = steps.spans()
    assert [s for kind, s, _ in spans if kind == "enter"] == [f"work[{i}]" for i in range(4)]
    assert steps.most_at_once(spans) == 1


def test_the_iteration_bound_fails_the_loop_on_a_worker(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    wf = loop_workflow(product, max_concurrency=2)
    worker(env={"TRELLIS_MAX_LOOP_ITERATIONS": "4"})
    run = finished(run_start(workflow=wf, environment=env_dev, input={"items": [{}] * 5}), 60)
    assert run.status == "failed"
    assert "FOREACH over 5 items: more than the 4 iterations" in run.error["message"]
    assert steps.spans() == []
    ok = finished(run_start(workflow=wf, environment=env_dev, input={"items": [{}] * 4}), 60)
    assert ok.status == "completed", ok.error


def test_a_worker_killed_mid_loop_reruns_no_completed_iteration(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    wf = loop_workflow(product, max_concurrency=2)
    cluster = worker(workers=2, env={"TRELLIS_LEASE_S": "3"})
    run = run_start(workflow=wf, environment=env_dev, input={"items": [{"s": 0.6}] * 8})

    def some_done_and_more_running() -> bool:
        done = StepRun.objects.filter(run=run, tag__startswith="work[", status="completed")
        running = StepRun.objects.filter(run=run, tag__startswith="work[", status="running")
        return done.count() >= 3 and running.exists()

    assert wait_for(some_done_and_more_running, timeout=60)
    cluster.kill()
    done_before = set(
        StepRun.objects.filter(run=run, tag__startswith="work[", status="completed").values_list(
            "tag", flat=True
        )
    )
    assert len(done_before) >= 3

    worker(workers=2, env={"TRELLIS_LEASE_S": "3"})
    run = finished(run, 120)
    assert run.status == "completed", run.error
    assert [r["index"] for r in run.output["results"]] == list(range(8))
    entered: dict[str, int] = {}
    for kind, tag, _ in steps.spans():
        if kind == "enter":
            entered[tag] = entered.get(tag, 0) + 1
    assert set(entered) == {f"work[{i}]" for i in range(8)}
    assert all(entered[tag] == 1 for tag in done_before)  # completed ones never re-ran
    assert sum(n - 1 for n in entered.values()) <= 2  # only those in flight at the kill
    seqs = list(run.journal.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))


def test_a_group_of_parallel_sequences_keeps_its_max_concurrency_on_workers(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    # Smithers' <Parallel maxConcurrency={2}> of four <Sequence>s.
    spec = {
        "sequences": [
            {"tag": "start", "events": [code("record", tag="go")]},
            *[
                {
                    "tag": f"build-{i}",
                    "parents": ["start"],
                    "group": "parallel",
                    "events": [code("span", tag=f"build{i}", input={"seconds": 1})],
                }
                for i in range(4)
            ],
        ],
        "options": {"groups": {"parallel": {"max_concurrency": 2}}},
    }
    wf = make_workflow(product, spec)
    worker(workers=4)
    run = finished(run_start(workflow=wf, environment=env_dev, input={}), 90)
    assert run.status == "completed", run.error
    spans = steps.spans()
    assert sorted(s for kind, s, _ in spans if kind == "exit") == [f"build{i}" for i in range(4)]
    assert steps.most_at_once(spans) == 2
