"""Live runs end to end: a real daphne server, journal entries committed by another
process, WebSocket clients — in embedded mode (SQLite + the journal layer) and in
scale-out mode (PostgreSQL + channels-redis on the machine's servers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.runtime.live_harness import LiveStack, entries_until, quiet, receive

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module", params=["embedded", "scale"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    live_stack = LiveStack(request.param, Path(tmp_path_factory.mktemp(f"live-{request.param}")))
    try:
        yield live_stack.start()
    finally:
        live_stack.close()


def seqs(messages: list[dict]) -> list[int]:
    return [message["seq"] for message in messages]


def test_a_viewer_receives_entries_committed_by_another_process(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws) == {"type": "ready", "run": run, "last_seq": 0, "replayed": 0}
        written = stack.append(run, 5, kind="step_completed")
        got = entries_until(ws, run, written[-1]["seq"])
    assert seqs(got) == [1, 2, 3, 4, 5]
    assert {message["kind"] for message in got} == {"step_completed"}
    assert got[0]["data"]["n"] == 0 and got[0]["step"] == "s"
    assert got[0]["environment"] == stack.seed["environments"]["dev"]


def test_a_client_that_reconnects_with_its_last_seq_gets_every_missed_entry_once_in_order(
    stack: LiveStack,
) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/?after=0") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append_async(run, 40, interval=0.01)
        first = entries_until(ws, run, 8)
    last = first[-1]["seq"]
    time.sleep(0.15)  # the run goes on while the client is away
    with stack.connect(f"/ws/runs/{run}/?after={last}") as ws:
        ready_or_entry = []
        rest = []
        while not rest or rest[-1]["seq"] < 40:
            message = receive(ws)
            if message["type"] == "entry":
                rest.append(message)
            else:
                ready_or_entry.append(message)
        assert quiet(ws) == []
    written = stack.collect()
    assert seqs(first) == list(range(1, last + 1))
    assert seqs(rest) == list(range(last + 1, 41))  # each once, in order
    assert ready_or_entry[0]["type"] == "ready" and ready_or_entry[0]["replayed"] > 0
    assert [entry["seq"] for entry in written] == list(range(1, 41))


def test_entries_committed_during_the_replay_are_neither_lost_nor_repeated(
    stack: LiveStack,
) -> None:
    run = stack.new_run()
    stack.append(run, 30)
    stack.append_async(run, 100, interval=0.0)
    with stack.connect(f"/ws/runs/{run}/?after=0") as ws:
        start = 0
        got: list[dict] = []
        while (got[-1]["seq"] if got else start) < 130:
            message = receive(ws)
            if message["type"] == "snapshot":  # fell more than the replay limit behind
                start, got = message["last_seq"], []
            elif message["type"] == "entry":
                got.append(message)
        assert quiet(ws, 0.3) == []
    stack.collect()
    assert seqs(got) == list(range(start + 1, 131))


def test_a_burst_of_entries_arrives_complete_and_in_order(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append_async(run, 400, interval=0.0)
        start, got = 0, []
        while (got[-1]["seq"] if got else start) < 400:
            message = receive(ws, timeout=30)
            if message["type"] == "snapshot":  # fell more than the replay limit behind
                start, got = message["last_seq"], []
            elif message["type"] == "entry":
                got.append(message)
        assert quiet(ws, 0.3) == []
    stack.collect()
    assert seqs(got) == list(range(start + 1, 401))


def test_a_client_too_far_behind_gets_a_snapshot_then_the_stream(stack: LiveStack) -> None:
    run = stack.new_run()
    stack.append(run, 80)  # the stack's replay limit is 50
    with stack.connect(f"/ws/runs/{run}/?after=5") as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["last_seq"] == 80
        assert snapshot["run"]["id"] == run and snapshot["run"]["status"] == "running"
        assert snapshot["run"]["input"] == {"order": 1}
        assert receive(ws) == {"type": "ready", "run": run, "last_seq": 80, "replayed": 0}
        stack.append(run, 3)
        assert seqs(entries_until(ws, run, 83)) == [81, 82, 83]


def test_an_entry_too_big_to_push_arrives_whole(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append(run, 1, big=100_000)
        (entry,) = entries_until(ws, run, 1)
    assert len(entry["data"]["blob"]) == 100_000
    assert "truncated" not in entry


def test_an_entry_whose_push_was_lost_still_arrives_from_the_journal(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append(run, 1, kind="run_completed", silent=True)  # committed, never published
        (entry,) = entries_until(ws, run, 1, timeout=5)
    assert entry["kind"] == "run_completed"


def test_a_server_restart_loses_nothing(stack: LiveStack) -> None:
    run = stack.new_run()
    with stack.connect(f"/ws/runs/{run}/") as ws:
        assert receive(ws)["type"] == "ready"
        stack.append(run, 3)
        got = entries_until(ws, run, 3)
        stack.stop_server()
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=5)
    stack.append(run, 4)  # committed while no server runs
    stack.start_server()
    with stack.connect(f"/ws/runs/{run}/?after={got[-1]['seq']}") as ws:
        missed = entries_until(ws, run, 7)
    assert seqs(got) + seqs(missed) == list(range(1, 8))


def test_a_run_executed_by_a_real_qcluster_streams_every_step(stack: LiveStack) -> None:
    stack.start_qcluster()
    run = stack.engine_run(steps=3)
    with stack.connect(f"/ws/runs/{run}/?after=0") as ws:
        got = []
        while not got or not got[-1]["kind"].startswith(("run_completed", "run_failed")):
            message = receive(ws, timeout=30)
            if message["type"] == "entry":
                got.append(message)
    assert seqs(got) == list(range(1, len(got) + 1))
    assert got[-1]["kind"] == "run_completed"
    completed = [m["step"] for m in got if m["kind"] == "step_completed"]
    assert completed == ["s0", "s1", "s2"]


# -- who may subscribe ---------------------------------------------------------------------------


def closed_with(stack: LiveStack, path: str, user: str | None) -> tuple[int, list[dict]]:
    """Connect, collect what the server sends before closing, return the close code."""
    messages = []
    with stack.connect(path, user=user) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(receive(ws))
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, messages


def test_an_outsider_cannot_subscribe_to_a_run(stack: LiveStack) -> None:
    run = stack.new_run()
    stack.append(run, 2)
    assert closed_with(stack, f"/ws/runs/{run}/", "mallory") == (4404, [])
    assert closed_with(stack, "/ws/workflows/acme/orders/?env=dev", "mallory") == (4404, [])


def test_anonymous_cannot_subscribe(stack: LiveStack) -> None:
    run = stack.new_run()
    stack.append(run, 2)
    assert closed_with(stack, f"/ws/runs/{run}/", None) == (4401, [])
    assert closed_with(stack, "/ws/workflows/acme/orders/", None) == (4401, [])


def test_a_missing_run_looks_the_same_as_a_forbidden_one(stack: LiveStack) -> None:
    assert closed_with(stack, "/ws/runs/999999/", "vera") == (4404, [])
    assert closed_with(stack, "/ws/workflows/acme/nope/", "vera") == (4404, [])


def test_a_socket_from_a_foreign_origin_is_refused(stack: LiveStack) -> None:
    run = stack.new_run()
    with pytest.raises(InvalidStatus) as refused:
        stack.connect(f"/ws/runs/{run}/", origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_a_socket_from_another_port_of_the_same_host_is_refused(stack: LiveStack) -> None:
    # Another service on this machine (http://127.0.0.1:9999) is another origin: the
    # viewer's session cookie must not open a socket for it.
    run = stack.new_run()
    for origin in ("http://127.0.0.1:9999", f"https://127.0.0.1:{stack.port}", "null"):
        with pytest.raises(InvalidStatus) as refused:
            stack.connect(f"/ws/runs/{run}/", origin=origin)
        assert refused.value.response.status_code == 403, origin
    with stack.connect(f"/ws/runs/{run}/") as ws:  # the site's own origin still works
        assert receive(ws)["type"] == "ready"


def test_a_bad_cursor_is_a_named_error(stack: LiveStack) -> None:
    run = stack.new_run()
    code, messages = closed_with(stack, f"/ws/runs/{run}/?after=abc", "vera")
    assert code == 4400
    assert messages == [{"type": "error", "message": "after must be an integer", "field": "after"}]


# -- all runs of a workflow ----------------------------------------------------------------------


def test_a_workflow_subscription_streams_every_run_of_its_environment(stack: LiveStack) -> None:
    old = stack.new_run("dev")
    stack.append(old, 2)
    with stack.connect("/ws/workflows/acme/orders/?env=dev") as ws:
        runs = receive(ws)
        assert runs["type"] == "runs"
        listed = {run["id"]: run for run in runs["runs"]}
        assert listed[old]["last_seq"] == 2 and listed[old]["status"] == "running"
        assert all(run["environment_slug"] == "dev" for run in runs["runs"])
        assert receive(ws)["type"] == "ready"
        fresh = stack.new_run("dev")
        elsewhere = stack.new_run("staging")
        stack.append(elsewhere, 2)
        stack.append(fresh, 3)
        stack.append(old, 1)
        got = []
        while len(got) < 4:
            message = receive(ws)
            assert message["type"] == "entry"
            got.append(message)
        assert quiet(ws, 0.3) == []
    assert {(m["run"], m["seq"]) for m in got} == {(fresh, 1), (fresh, 2), (fresh, 3), (old, 3)}
    assert seqs([m for m in got if m["run"] == fresh]) == [1, 2, 3]


def test_a_runs_list_can_ask_for_run_level_entries_only(stack: LiveStack) -> None:
    with stack.connect("/ws/workflows/acme/orders/?env=dev&only=run") as ws:
        assert receive(ws)["type"] == "runs"
        assert receive(ws)["type"] == "ready"
        run = stack.new_run("dev")
        stack.append(run, 3, kind="step_started")
        stack.append(run, 1, kind="run_completed")
        message = receive(ws)
        assert quiet(ws, 0.3) == []
    assert (message["run"], message["seq"], message["kind"]) == (run, 4, "run_completed")
