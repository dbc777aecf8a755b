"""Several qcluster processes on the same runs: each step runs once, a fan-out of 50
joins exactly once, timers fire once, signals are delivered once.

Every execution of a step is recorded by the step itself (tests/scale/steps.py) in a
file shared by all processes, so the counts below are real executions, not journal
entries; the pids show that several processes really worked on the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import Run, Signal, StepRun
from runtime.services import run_signal, run_start
from tests.runtime.conftest import Worker, make_workflow, wait_for
from tests.scale import steps
from tests.scale.conftest import journal_problems, kinds, step

pytestmark = [pytest.mark.worker, pytest.mark.scale, pytest.mark.django_db(transaction=True)]


def all_ended(run_ids: list[int]) -> Callable[[], bool]:
    def check() -> bool:
        return (
            not Run.objects.filter(pk__in=run_ids)
            .exclude(status__in=["completed", "failed", "rolled_back", "cancelled"])
            .exists()
        )

    return check


def assert_completed(run_ids: list[int]) -> None:
    bad = dict(
        Run.objects.filter(pk__in=run_ids).exclude(status="completed").values_list("pk", "error")
    )
    assert bad == {}


def fan_out(n: int) -> dict[str, Any]:
    sequences: list[dict[str, Any]] = [{"tag": "root", "events": [step("mark", "root")]}]
    sequences += [
        {"tag": f"p{i}", "parents": ["root"], "events": [step("mark", f"p{i}")]} for i in range(n)
    ]
    sequences.append(
        {"tag": "join", "parents": [f"p{i}" for i in range(n)], "events": [step("mark", "join")]}
    )
    return {"sequences": sequences}


@pytest.mark.parametrize(("clusters", "workers"), [(2, 1), (2, 2)], ids=["2-workers", "4-workers"])
def test_a_fan_out_of_50_joins_exactly_once_on_several_worker_processes(
    product: Product,
    env_dev: Environment,
    cluster: Callable[..., Worker],
    clusters: int,
    workers: int,
) -> None:
    wf = make_workflow(product, fan_out(50))
    for _ in range(clusters):
        cluster(workers=workers)
    ids = [run_start(workflow=wf, environment=env_dev, input={}).pk for _ in range(4)]
    assert wait_for(all_ended(ids), timeout=120)
    assert_completed(ids)
    expected = {"root": 1, "join": 1} | {f"p{i}": 1 for i in range(50)}
    pids: set[int] = set()
    for run_id in ids:
        assert steps.step_counts(run_id) == expected
        assert kinds(run_id, "sequence_started", "join") == 1
        assert kinds(run_id, "sequence_completed") == 52
        assert kinds(run_id, "run_completed") == 1
        pids |= {pid for *_rest, pid in steps.executions(run_id)}
    assert len(pids) >= 2  # the runs' sequences really were spread over processes
    assert journal_problems(ids) == []


def test_two_parents_finishing_together_in_two_processes_start_the_join_once(
    product: Product, env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    gate = {"name": "parents", "parties": 2}
    wf = make_workflow(
        product,
        {
            "sequences": [
                {"tag": "root", "events": [step("mark", "root")]},
                {"tag": "p1", "parents": ["root"], "events": [step("file_gate", "a", input=gate)]},
                {"tag": "p2", "parents": ["root"], "events": [step("file_gate", "b", input=gate)]},
                {"tag": "join", "parents": ["p1", "p2"], "events": [step("mark", "joined")]},
            ]
        },
    )
    # Two worker processes per cluster: a cluster's pusher takes the next task off the
    # broker while its worker is busy, so with one worker each the second parent's task
    # could wait behind the first parent's gate.
    cluster(workers=2)
    cluster(workers=2)
    ids = []
    for _ in range(8):  # one at a time: two processes are needed at each gate
        run = run_start(workflow=wf, environment=env_dev, input={})
        assert wait_for(all_ended([run.pk]), timeout=60)
        ids.append(run.pk)
    assert_completed(ids)
    for run_id in ids:
        assert steps.step_counts(run_id) == {"root": 1, "a": 1, "b": 1, "joined": 1}
        assert kinds(run_id, "sequence_started", "join") == 1
        by_step = {tag: pid for tag, _a, _k, pid in steps.executions(run_id)}
        assert by_step["a"] != by_step["b"]  # released together, in two processes
    assert journal_problems(ids) == []


def test_each_step_runs_once_when_many_runs_share_several_workers(
    product: Product, env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    wf = make_workflow(
        product,
        {"sequences": [{"tag": "main", "events": [step("mark", f"s{i}") for i in range(10)]}]},
    )
    cluster(workers=2)
    cluster(workers=2)
    ids = [run_start(workflow=wf, environment=env_dev, input={}).pk for _ in range(80)]
    assert wait_for(all_ended(ids), timeout=120)
    assert_completed(ids)
    pids: set[int] = set()
    for run_id in ids:
        assert steps.step_counts(run_id) == {f"s{i}": 1 for i in range(10)}
        pids |= {pid for *_rest, pid in steps.executions(run_id)}
    assert len(pids) >= 2
    assert journal_problems(ids) == []


def test_timers_and_parked_retries_fire_once_on_several_workers(
    product: Product, env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    wf = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        {"type": "SLEEP", "event": "1s", "tag": "nap"},
                        step("mark", "woke"),
                        # Fails once, retried after 1 s: parked, woken by a delayed task.
                        step("fail_first", "flaky", retries=2, retry_delay="1s"),
                        step("mark", "last"),
                    ],
                }
            ]
        },
    )
    cluster(workers=2)
    cluster(workers=1)
    ids = [run_start(workflow=wf, environment=env_dev, input={}).pk for _ in range(12)]
    assert wait_for(all_ended(ids), timeout=120)
    assert_completed(ids)
    for run_id in ids:
        assert steps.step_counts(run_id) == {"woke": 1, "flaky": 2, "last": 1}
        flaky = sorted(key for tag, _a, key, _p in steps.executions(run_id) if tag == "flaky")
        assert flaky == [f"{run_id}:flaky:1", f"{run_id}:flaky:2"]
        assert kinds(run_id, "step_completed", "nap") == 1
        assert kinds(run_id, "step_retrying", "flaky") == 1
    assert journal_problems(ids) == []


def test_signals_are_delivered_once_on_several_workers(
    product: Product, env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    wait = {"type": "WAIT_SIGNAL", "event": "go"}
    wf = make_workflow(
        product,
        {
            "signals": {"go": {"input": {"n": "integer"}}},
            "sequences": [
                {"tag": "root", "events": [step("mark", "root")]},
                {"tag": "left", "parents": ["root"], "events": [{**wait, "tag": "wl"}]},
                {"tag": "right", "parents": ["root"], "events": [{**wait, "tag": "wr"}]},
                {"tag": "end", "parents": ["left", "right"], "events": [step("mark", "end")]},
            ],
        },
    )
    cluster(workers=2)
    cluster(workers=1)
    runs = [run_start(workflow=wf, environment=env_dev, input={}) for _ in range(12)]
    # Half get both signals at once, before or while their waits start; the other half
    # once both waits are parked.
    early, late = runs[:6], runs[6:]
    for run in early:
        run_signal(run=run, name="go", payload={"n": 1})
        run_signal(run=run, name="go", payload={"n": 2})
    assert wait_for(
        lambda: StepRun.objects.filter(run__in=late, status="waiting").count() == 12, timeout=60
    )
    for run in late:
        run_signal(run=run, name="go", payload={"n": 1})
        run_signal(run=run, name="go", payload={"n": 2})
    ids = [run.pk for run in runs]
    assert wait_for(all_ended(ids), timeout=120)
    assert_completed(ids)
    for run in runs:
        got = sorted(StepRun.objects.get(run=run, tag=t).output["n"] for t in ("wl", "wr"))
        assert got == [1, 2]  # each wait got its own signal
        consumed = sorted(Signal.objects.filter(run=run).values_list("consumed_by", flat=True))
        assert consumed == ["wl", "wr"]
        assert steps.step_counts(run.pk) == {"root": 1, "end": 1}
        assert kinds(run.pk, "step_completed", "wl") == kinds(run.pk, "step_completed", "wr") == 1
    assert journal_problems(ids) == []


def test_worker_commits_skip_the_fsync_wait_while_api_commits_keep_it(
    product: Product, env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's; this runs in the scale-out pass")
    wf = make_workflow(product, {"sequences": [{"tag": "m", "events": [step("commit_mode", "c")]}]})
    cluster(workers=1)
    run = run_start(workflow=wf, environment=env_dev, input={})
    assert wait_for(all_ended([run.pk]), timeout=60)
    output = StepRun.objects.get(run=run, tag="c").output
    assert output["mode"] == "off"  # TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT's default
    with connection.cursor() as cursor:  # this process is not a worker: the server default
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
