"""The embedded journal layer on PostgreSQL (DATABASE_URL without REDIS_URL): there a lower
journal id can commit after a higher one, which the tailer must not skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.live_harness import LiveStack, entries_until, quiet, receive

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live_stack = LiveStack("embedded-pg", Path(tmp_path_factory.mktemp("live-embedded-pg")))
    try:
        yield live_stack.start()
    finally:
        live_stack.close()


def test_the_journal_layer_streams_from_postgresql(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append(run, 3)
        got = entries_until(ws, run, 3)
    assert [m["seq"] for m in got] == [1, 2, 3]


def test_concurrent_writers_to_many_runs_lose_nothing(stack: LiveStack) -> None:
    """Two writer processes commit interleaved; every run's stream stays complete."""
    runs = [stack.new_run() for _ in range(2)]
    with stack.connect("/ws/workflows/acme/orders/?env=dev") as ws:
        assert receive(ws)["type"] == "runs"
        assert receive(ws)["type"] == "ready"
        second = stack.spawn_writer()  # a second writer process on the same database
        stack.append_async(runs[1], 60, interval=0.0, writer=second)
        stack.append_async(runs[0], 60, interval=0.0)
        got: dict[int, list[int]] = {runs[0]: [], runs[1]: []}
        while len(got[runs[0]]) < 60 or len(got[runs[1]]) < 60:
            message = receive(ws, timeout=30)
            if message["type"] == "entry" and message["run"] in got:
                got[message["run"]].append(message["seq"])
        assert quiet(ws, 0.3) == []
        stack.collect()
        stack.collect(writer=second)
    assert got == {runs[0]: list(range(1, 61)), runs[1]: list(range(1, 61))}
