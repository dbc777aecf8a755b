"""Fixtures for the scale-out tests: several qcluster processes on one database, and an
in-process queue so threads of this process can play several workers at once.

The tests run on whatever the pytest process is configured for: SQLite + the ORM broker
by default, PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set (``make test``
runs them a second time that way, see ``tests/scale/pytest-scale.sh``).
"""

from __future__ import annotations

import os
import pydoc
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from runtime.brokers import TaskCall
from runtime.models import JournalEntry, Run
from tests.runtime.conftest import (  # noqa: F401 - fixtures
    Worker,
    _fresh_plan_cache,
    env_dev,
    side_effects,
)
from tests.scale import steps

STEPS = "tests.scale.steps"


def step(fn: str, tag: str, **extra: Any) -> dict[str, Any]:
    """A CODE event calling ``tests.scale.steps:<fn>``."""
    return {"type": "CODE", "event": f"{STEPS}:{fn}", "tag": tag, **extra}


def journal_problems(run_ids: list[int] | None = None) -> list[str]:
    """Runs whose journal is not numbered 1..last_seq without a gap (empty: all fine)."""
    from django.db.models import Count, Max, Min

    runs = Run.objects.all() if run_ids is None else Run.objects.filter(pk__in=run_ids)
    last = dict(runs.values_list("pk", "last_seq"))
    stats = (
        JournalEntry.objects.filter(run_id__in=list(last))
        .values("run_id")
        .annotate(n=Count("id"), lo=Min("seq"), hi=Max("seq"))
    )
    problems = []
    seen = set()
    for row in stats:
        seen.add(row["run_id"])
        expected = last[row["run_id"]]
        if not (row["lo"] == 1 and row["hi"] == row["n"] == expected):
            problems.append(
                f"run {row['run_id']}: {row['n']} entries, seq {row['lo']}..{row['hi']}, "
                f"last_seq {expected}"
            )
    problems += [f"run {pk}: no journal" for pk in last if pk not in seen]
    return problems


def kinds(run_id: int, kind: str, step: str | None = None) -> int:
    """How many journal entries of ``kind`` (for ``step``) a run has."""
    qs = JournalEntry.objects.filter(run_id=run_id, kind=kind)
    if step is not None:
        qs = qs.filter(step=step)
    return qs.count()


# --- A queue in this process: threads act as workers -----------------------------------------


class LocalQueue:
    """Stands in for the broker: the engine's enqueues land here, and any thread can run
    them (``work``). Delayed tasks become due after their delay, as on a real broker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[float, str, tuple[Any, ...]]] = []
        self.ran = 0

    def put(self, calls: list[TaskCall], delay_s: float = 0.0) -> None:
        due = time.monotonic() + delay_s
        with self.lock:
            self.items.extend((due, func, args) for func, args in calls)

    def take(self) -> tuple[str, tuple[Any, ...]] | None:
        now = time.monotonic()
        with self.lock:
            for n, (due, func, args) in enumerate(self.items):
                if due <= now:
                    del self.items[n]
                    return func, args
        return None

    def work(self, *, until: Callable[[], bool] | None = None, timeout: float = 20.0) -> int:
        """Run due tasks in this thread until the queue is empty (and ``until()`` holds)."""
        deadline = time.monotonic() + timeout
        ran = 0
        while time.monotonic() < deadline:
            task = self.take()
            if task is None:
                if until is None or until():
                    return ran
                time.sleep(0.005)
                continue
            func, args = task
            target = pydoc.locate(func)
            assert callable(target), func
            target(*args)
            ran += 1
            with self.lock:
                self.ran += 1
        raise TimeoutError(f"the queue still had work after {timeout} s")

    def pending(self) -> int:
        with self.lock:
            return len(self.items)


@pytest.fixture
def local_queue(monkeypatch: pytest.MonkeyPatch) -> LocalQueue:
    """Route the engine's enqueues to an in-process queue (after commit, as with Redis)."""
    from runtime.engine import queue as engine_queue

    queue = LocalQueue()
    monkeypatch.setattr(engine_queue, "is_orm_broker", lambda: False)
    monkeypatch.setattr(engine_queue, "enqueue_now", queue.put)
    return queue


def in_threads(*targets: Callable[[], Any], timeout: float = 60.0) -> list[Any]:
    """Run each target in its own thread (own database connection); re-raise the first
    error; return their results in order."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def runner(n: int, target: Callable[[], Any]) -> None:
        try:
            results[n] = target()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=runner, args=(n, t), daemon=True) for n, t in enumerate(targets)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    alive = [t for t in threads if t.is_alive()]
    if alive:
        raise TimeoutError(f"{len(alive)} threads still running after {timeout} s")
    if errors:
        raise errors[0]
    return results


@pytest.fixture(autouse=True)
def _reset_barriers() -> Iterator[None]:
    steps.barriers_reset()
    yield
    steps.barriers_reset()
    for conn in connections.all(initialized_only=True):
        if conn is not connection:
            conn.close()


# --- Several qcluster processes ---------------------------------------------------------------


def process_group(pgid: int) -> list[int]:
    """Live processes of a process group (a qcluster and the processes it forked)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def cluster_wait_ready(w: Worker, timeout: float = 60.0) -> None:
    """Wait until a qcluster forked its sentinel, pusher, monitor and every worker
    process, so the test's runs are spread over all the clusters it started."""
    assert w.proc is not None
    deadline = time.monotonic() + timeout
    while len(process_group(w.proc.pid)) < w.workers + 4:
        if w.proc.poll() is not None:
            raise RuntimeError(f"qcluster exited with {w.proc.returncode}: see {w.log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"qcluster not ready after {timeout} s: see {w.log}")
        time.sleep(0.05)
    time.sleep(0.3)  # the pusher connects to the broker


@pytest.fixture
def cluster(
    transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Worker]]:
    """Start qcluster processes (``cluster(workers=2)``); SIGKILLed after the test (every
    run the test waits for is finished by then; a graceful stop takes ~15 s). The
    processes share the test's effects directory (set before they start)."""
    request.getfixturevalue("side_effects")
    started: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        w = Worker(**kwargs)
        w.log = w.log.with_name(f"{w.log.stem}-{len(started)}.log")
        w.start()
        started.append(w)
        cluster_wait_ready(w)
        return w

    yield start
    for w in started:
        w.kill()
