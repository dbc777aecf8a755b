"""Races between workers, played by threads of this process at exactly the bad moment.

Each thread has its own database connection, as each worker process has; the engine's
enqueues go to an in-process queue any thread can work off. On PostgreSQL (READ
COMMITTED, the default) these are the interleavings SQLite's single writer never lets
happen: the tests prove row locks and leases decide them, not luck.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from django.db import transaction

from designer.models import Environment, Product
from runtime import engine, executor
from runtime.engine import config
from runtime.journal import journal_append, journal_extend
from runtime.models import JournalEntry, Run, SequenceRun, Signal, StepRun
from runtime.services import run_signal, run_start
from tests.runtime.conftest import make_workflow
from tests.scale import steps
from tests.scale.conftest import LocalQueue, in_threads, journal_problems, kinds, step

pytestmark = [pytest.mark.scale, pytest.mark.django_db(transaction=True)]


def seq_id(run: Run, tag: str) -> int:
    return int(SequenceRun.objects.get(run=run, tag=tag).pk)


def finished(run_ids: list[int]) -> bool:
    return not Run.objects.filter(pk__in=run_ids).exclude(status__in=["completed"]).exists()


@pytest.fixture
def slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen every race window: the scheduling decision (made under the run's lock)
    takes 30 ms, so a second finisher arrives while the first is deciding."""
    real = engine.schedule

    def slow(*args: Any, **kwargs: Any) -> engine.Schedule:
        time.sleep(0.03)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "schedule", slow)


def test_two_parents_finishing_at_once_start_the_join_exactly_once(
    product: Product,
    env_dev: Environment,
    side_effects: Any,
    local_queue: LocalQueue,
    slow_decisions: None,
) -> None:
    gate = {"name": "parents", "parties": 2}
    wf = make_workflow(
        product,
        {
            "sequences": [
                {"tag": "root", "events": [step("mark", "root")]},
                {"tag": "p1", "parents": ["root"], "events": [step("gate", "a", input=gate)]},
                {"tag": "p2", "parents": ["root"], "events": [step("gate", "b", input=gate)]},
                {"tag": "join", "parents": ["p1", "p2"], "events": [step("mark", "joined")]},
            ]
        },
    )
    for _ in range(8):
        run = run_start(workflow=wf, environment=env_dev, input={})
        local_queue.items.clear()  # the root's task: driven by hand below
        root = seq_id(run, "root")
        # One thread drives root, then keeps p1; the other takes p2 from the queue. Both
        # parents pass the gate together and commit their completion at the same time.
        ran = local_queue.ran
        in_threads(
            lambda root=root: executor.sequence_drive(root),  # type: ignore[misc]
            lambda ran=ran: local_queue.work(until=lambda: local_queue.ran > ran),  # type: ignore[misc]
        )
        local_queue.work()
        run.refresh_from_db()
        assert run.status == "completed", run.error
        assert steps.step_counts(run.pk) == {"root": 1, "a": 1, "b": 1, "joined": 1}
        assert kinds(run.pk, "sequence_started", "join") == 1
        assert kinds(run.pk, "sequence_completed", "join") == 1
        assert kinds(run.pk, "run_completed") == 1
    assert journal_problems() == []


def test_many_concurrent_drives_of_one_sequence_run_each_step_once(
    product: Product, env_dev: Environment, side_effects: Any, local_queue: LocalQueue
) -> None:
    wf = make_workflow(
        product,
        {"sequences": [{"tag": "main", "events": [step("mark", f"s{i}") for i in range(5)]}]},
    )
    runs = [run_start(workflow=wf, environment=env_dev, input={}) for _ in range(6)]
    local_queue.items.clear()
    go = threading.Barrier(6)

    def drive_all() -> None:
        go.wait()
        order = [seq_id(r, "main") for r in runs]
        random.shuffle(order)
        for pk in order:
            executor.sequence_drive(pk)

    in_threads(*[drive_all] * 6)
    for run in runs:
        run.refresh_from_db()
        assert run.status == "completed", run.error
        assert steps.step_counts(run.pk) == {f"s{i}": 1 for i in range(5)}
        assert kinds(run.pk, "step_started") == 5
    assert journal_problems() == []


def test_journal_numbers_stay_gap_free_and_unique_under_concurrent_writers(
    product: Product, env_dev: Environment, local_queue: LocalQueue
) -> None:
    wf = make_workflow(product, {"sequences": [{"tag": "main", "events": [step("mark", "only")]}]})
    run = run_start(workflow=wf, environment=env_dev, input={})
    before = Run.objects.get(pk=run.pk).last_seq
    go = threading.Barrier(8)
    committed = [0] * 8

    class Undo(Exception):
        pass

    def writer(n: int) -> None:
        go.wait()
        mine = Run.objects.get(pk=run.pk)
        for i in range(30):
            try:
                with transaction.atomic():
                    if i % 3 == 0:
                        journal_extend(
                            mine, [("log", "", {"w": n, "i": i, "k": k}) for k in range(3)]
                        )
                        size = 3
                    else:
                        journal_append(mine, "log", data={"w": n, "i": i})
                        size = 1
                    if i % 5 == 4:
                        raise Undo()  # rolled back: its numbers must not leave a gap
                committed[n] += size
            except Undo:
                pass

    in_threads(*[lambda n=n: writer(n) for n in range(8)])  # type: ignore[misc]
    seqs = list(JournalEntry.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, before + sum(committed) + 1))
    assert Run.objects.get(pk=run.pk).last_seq == seqs[-1]


def test_a_timer_woken_by_its_task_the_sweep_and_other_drivers_at_once_fires_once(
    product: Product, env_dev: Environment, side_effects: Any, local_queue: LocalQueue
) -> None:
    wf = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        {"type": "SLEEP", "event": "1s", "tag": "nap"},
                        step("mark", "after"),
                    ],
                }
            ]
        },
    )
    runs = [run_start(workflow=wf, environment=env_dev, input={}) for _ in range(5)]
    local_queue.work()  # each run parks on its SLEEP (a delayed task stays queued)
    assert set(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    ) == {"waiting"}
    time.sleep(1.1)
    go = threading.Barrier(6)
    ids = [seq_id(r, "main") for r in runs]

    def driver() -> None:
        go.wait()
        for pk in ids:
            executor.sequence_drive(pk)

    def sweeper() -> None:
        go.wait()
        executor.sweep_once()
        local_queue.work()

    def queue_worker() -> None:
        go.wait()
        local_queue.work()

    in_threads(driver, driver, sweeper, sweeper, queue_worker, queue_worker)
    local_queue.work(until=lambda: finished([r.pk for r in runs]))
    for run in runs:
        run.refresh_from_db()
        assert run.status == "completed", run.error
        assert steps.step_counts(run.pk) == {"after": 1}
        assert kinds(run.pk, "step_completed", "nap") == 1
        assert kinds(run.pk, "step_waiting", "nap") == 1
    assert journal_problems() == []


def test_a_signal_racing_the_start_of_its_wait_is_delivered_exactly_once(
    product: Product, env_dev: Environment, side_effects: Any, local_queue: LocalQueue
) -> None:
    wf = make_workflow(
        product,
        {
            "signals": {"go": {"input": {"n": "integer"}}},
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        step("gate", "ready", input={"name": "signal", "parties": 2}),
                        {"type": "WAIT_SIGNAL", "event": "go", "tag": "wait"},
                        step("mark", "after"),
                    ],
                }
            ],
        },
    )
    rng = random.Random(7)
    for n in range(12):
        run = run_start(workflow=wf, environment=env_dev, input={})
        local_queue.items.clear()
        main = seq_id(run, "main")
        jitter = rng.random() * 0.02

        def signaller(run: Run = run, n: int = n, jitter: float = jitter) -> None:
            steps.barrier(f"{run.pk}:signal", 2).wait()  # the driver is at the gate too
            time.sleep(jitter)  # somewhere between "gate done" and "parked"
            run_signal(run=run, name="go", payload={"n": n})

        in_threads(lambda main=main: executor.sequence_drive(main), signaller)  # type: ignore[misc]
        local_queue.work(until=lambda run=run: finished([run.pk]))  # type: ignore[misc]
        run.refresh_from_db()
        assert run.status == "completed", (n, run.error)
        wait = StepRun.objects.get(run=run, tag="wait")
        assert wait.output == {"n": n, "_signal": "go"}
        signal = Signal.objects.get(run=run)
        assert signal.consumed_by == "wait" and signal.consumed_at is not None
        assert kinds(run.pk, "step_completed", "wait") == 1
        assert steps.step_counts(run.pk) == {"ready": 1, "after": 1}
    assert journal_problems() == []


def test_two_waits_on_one_signal_name_each_get_a_different_signal(
    product: Product, env_dev: Environment, side_effects: Any, local_queue: LocalQueue
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
            ],
        },
    )
    for _ in range(5):
        run = run_start(workflow=wf, environment=env_dev, input={})
        local_queue.work()  # both waits park
        go = threading.Barrier(4)

        def send(k: int, run: Run = run) -> None:
            go.wait()
            run_signal(run=run, name="go", payload={"n": k})

        def work() -> None:
            go.wait()
            local_queue.work()

        in_threads(lambda: send(1), lambda: send(2), work, work)
        local_queue.work(until=lambda run=run: finished([run.pk]))  # type: ignore[misc]
        run.refresh_from_db()
        assert run.status == "completed", run.error
        got = sorted(StepRun.objects.get(run=run, tag=t).output["n"] for t in ("wl", "wr"))
        assert got == [1, 2]
        consumers = sorted(Signal.objects.filter(run=run).values_list("consumed_by", flat=True))
        assert consumers == ["wl", "wr"]
    assert journal_problems() == []


def test_a_worker_whose_lease_expired_mid_step_cannot_write_over_the_one_that_took_over(
    product: Product,
    env_dev: Environment,
    side_effects: Any,
    local_queue: LocalQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lease of 0.3 s that nobody renews: the first worker's step outlives it, the sweep
    # hands the sequence to a second worker, which runs the step again (at-least-once:
    # the step was in flight) and goes on. The first worker's late commit is refused.
    monkeypatch.setattr(config, "LEASE_S", 0.3)
    monkeypatch.setattr(config, "RENEW_S", 3600.0)
    monkeypatch.setattr(config, "REKICK_S", 0.0)
    wf = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        step("mark", "slow", input={"seconds": 1.0}),
                        step("mark", "next"),
                    ],
                }
            ]
        },
    )
    run = run_start(workflow=wf, environment=env_dev, input={})
    local_queue.items.clear()
    main = seq_id(run, "main")

    def takeover() -> None:
        time.sleep(0.5)  # the first worker is inside the slow step; its lease expired
        assert executor.sweep_once()["leases"] == 1
        local_queue.work()

    in_threads(lambda: executor.sequence_drive(main), takeover)
    run.refresh_from_db()
    assert run.status == "completed", run.error
    counts = steps.step_counts(run.pk)
    assert counts["slow"] == 2  # in flight when its lease was lost: ran again
    assert counts["next"] == 1
    assert kinds(run.pk, "step_completed", "slow") == 1
    assert kinds(run.pk, "step_completed", "next") == 1
    keys = {key for tag, _a, key, _p in steps.executions(run.pk) if tag == "slow"}
    assert keys == {f"{run.pk}:slow:1"}  # the same attempt, the same idempotency key
    assert journal_problems([run.pk]) == []
