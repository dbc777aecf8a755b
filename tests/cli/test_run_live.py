"""`trellis run` against a live server: daphne and a qcluster worker in processes of their
own (tests/runtime/live_harness.py), the CLI in process talking HTTP and WebSocket to them.
The exit code is 0 for a run that completes and 1 for one that fails, and the live display
shows every step of both."""

from __future__ import annotations

import contextlib
import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.main import app
from tests.runtime.live_harness import LiveStack

pytestmark = pytest.mark.worker

OK_WORKFLOW = """\
tag: cli-ok
name: CLI ok
spec:
  sequences:
    - tag: first
      events:
        - type: CODE
          event: runtime.connectors.code:echo
          tag: hello
          input: {who: "$Input{name}"}
        - {type: CODE, event: "runtime.connectors.code:noop", tag: between}
    - tag: second
      parents: [first]
      events:
        - type: CODE
          event: runtime.connectors.code:echo
          tag: bye
          input: {who: "$Step{hello}{who}"}
  output:
    said: $Step{bye}{who}
"""

BAD_WORKFLOW = """\
tag: cli-bad
name: CLI bad
spec:
  sequences:
    - tag: only
      events:
        - {type: CODE, event: "runtime.connectors.code:noop", tag: fine}
        - type: CODE
          event: runtime.connectors.code:fail
          tag: broken
          input: {retryable: false, message: on purpose}
        - {type: CODE, event: "runtime.connectors.code:noop", tag: never}
"""

ACTIVATIONS = """\
activations:
  cli-ok: {dev: {active: true}}
  cli-bad: {dev: {active: true}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack("embedded", tmp_path_factory.mktemp("cli-live")).start()
    live.start_qcluster()
    try:
        yield live
    finally:
        # SIGTERM to the qcluster leader alone stops it at once (to its whole group, the
        # leader hangs ~30 s); close() then sweeps up whatever is left.
        for cluster in live.clusters:
            cluster.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                cluster.wait(timeout=15)
        live.close()


def _invoke(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"XDG_CONFIG_HOME": str(home)})
    return result.exit_code, result.output


def test_trellis_run_follows_runs_live(stack: LiveStack, tmp_path: Path) -> None:
    home = tmp_path / "config"
    url = f"http://127.0.0.1:{stack.port}"
    code, out = _invoke(home, "login", url, "--username", "alice", "--password", "pw-alice")
    assert code == 0, out
    stored = home / "trellis" / "config.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["profiles"]["default"]["url"] == url

    files = tmp_path / "files"
    (files / "workflows").mkdir(parents=True)
    (files / "workflows" / "cli-ok.yaml").write_text(OK_WORKFLOW)
    (files / "workflows" / "cli-bad.yaml").write_text(BAD_WORKFLOW)
    (files / "activations.yaml").write_text(ACTIVATIONS)
    code, out = _invoke(
        home, "push", str(files), "--product", "acme", "--yes", "--publish", "--activate"
    )
    assert code == 0, out
    assert "published workflow cli-ok version 1" in out

    (tmp_path / "input.json").write_text(json.dumps({"name": "ada"}))
    code, out = _invoke(
        home, "run", "acme/cli-ok", "--env", "dev", "--input", str(tmp_path / "input.json")
    )
    assert code == 0, out
    lines = out.splitlines()
    steps = ["first › hello: completed", "first › between: completed", "second › bye: completed"]
    for line in steps:
        assert line in lines, out
    assert lines.index("first › hello: completed") < lines.index("second › bye: completed")
    assert "completed." in out and '"said": "ada"' in out
    run_id = int(lines[0].split()[1])

    code, out = _invoke(home, "run", "acme/cli-bad", "--env", "dev")
    assert code == 1, out
    lines = out.splitlines()
    assert "only › fine: completed" in lines, out
    assert "only › broken: failed" in lines, out
    assert not any("never: completed" in line for line in lines)
    assert "failed." in out

    code, out = _invoke(home, "runs", "--workflow", "acme/cli-ok", "--json")
    assert code == 0, out
    assert [r["id"] for r in json.loads(out)] == [run_id]

    code, out = _invoke(home, "logs", str(run_id))
    assert code == 0, out
    assert " run_completed " in out and " step_completed bye " in out


def test_the_live_socket_takes_api_tokens_and_refuses_bad_ones(stack: LiveStack) -> None:
    import httpx
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = f"http://127.0.0.1:{stack.port}"
    token = httpx.post(
        f"{url}/api/v1/auth/token", json={"username": "vera", "password": "pw-vera"}
    ).json()["token"]
    run_id = stack.new_run()
    path = f"ws://127.0.0.1:{stack.port}/ws/runs/{run_id}/?snapshot=1"

    with connect(path, additional_headers={"Authorization": f"Token {token}"}, origin=url) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "snapshot" and first["run"]["id"] == run_id

    for header in [f"Token {token[:-1]}x", "Bearer whatever", "Token "]:
        with connect(path, additional_headers={"Authorization": header}, origin=url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    # A bad token is refused even when a good session cookie comes along.
    cookie = f"sessionid={stack.seed['sessions']['vera']}"
    headers = {"Authorization": "Token nope", "Cookie": cookie}
    with connect(path, additional_headers=headers, origin=url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    # An admin of another product is an outsider here, token or not.
    outsider = httpx.post(
        f"{url}/api/v1/auth/token", json={"username": "mallory", "password": "pw-mallory"}
    ).json()["token"]
    headers = {"Authorization": f"Token {outsider}"}
    with connect(path, additional_headers=headers, origin=url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404

    # The origin check still applies to token sockets.
    with pytest.raises(InvalidStatus):
        connect(path, additional_headers={"Authorization": f"Token {token}"}).close()


WAIT_WORKFLOW = """\
tag: cli-wait
name: CLI wait
spec:
  signals:
    approve: {input: {by: string}}
  sequences:
    - tag: main
      events:
        - {type: WAIT_SIGNAL, event: approve, tag: wait}
        - type: CODE
          event: runtime.connectors.code:echo
          tag: after
          input: {by: "$Step{wait}{by}"}
  output:
    approved_by: $Step{after}{by}
"""


def _status_of(home: Path, run_id: int, wanted: str) -> str:
    """The run's status once it is ``wanted`` (or the last one seen after a while)."""
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        code, out = _invoke(home, "runs", "--workflow", "acme/cli-wait", "--json")
        assert code == 0, out
        status = next(r["status"] for r in json.loads(out) if r["id"] == run_id)
        if status == wanted:
            break
        time.sleep(0.2)
    return status


def test_signal_and_cancel_act_on_runs(stack: LiveStack, tmp_path: Path) -> None:
    home = tmp_path / "config"
    url = f"http://127.0.0.1:{stack.port}"
    assert _invoke(home, "login", url, "--username", "alice", "--password", "pw-alice")[0] == 0
    files = tmp_path / "files"
    (files / "workflows").mkdir(parents=True)
    (files / "workflows" / "cli-wait.yaml").write_text(WAIT_WORKFLOW)
    (files / "activations.yaml").write_text("activations:\n  cli-wait: {dev: {active: true}}\n")
    code, out = _invoke(
        home, "push", str(files), "--product", "acme", "-y", "--publish", "--activate"
    )
    assert code == 0, out

    code, out = _invoke(home, "run", "acme/cli-wait", "--no-follow")
    assert code == 0, out
    approved = int(out.split()[1])
    assert _status_of(home, approved, "waiting") == "waiting"
    code, out = _invoke(home, "signal", str(approved), "approve", "--data", '{"by": "ada"}')
    assert code == 0, out
    assert _status_of(home, approved, "completed") == "completed"

    code, out = _invoke(home, "run", "acme/cli-wait", "--no-follow")
    cancelled = int(out.split()[1])
    code, out = _invoke(home, "cancel", str(cancelled), "--reason", "not needed")
    assert code == 0, out
    assert _status_of(home, cancelled, "cancelled") == "cancelled"

    # A signal the workflow does not declare is refused with the API's message.
    code, out = _invoke(home, "signal", str(approved), "nope")
    assert code == 2
    assert "nope" in out


def test_in_a_terminal_the_run_shows_progress_per_sequence(
    stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from runtime.cli import commands_runs

    home = tmp_path / "config"
    url = f"http://127.0.0.1:{stack.port}"
    assert _invoke(home, "login", url, "--username", "alice", "--password", "pw-alice")[0] == 0
    files = tmp_path / "files"
    (files / "workflows").mkdir(parents=True)
    (files / "workflows" / "cli-ok.yaml").write_text(OK_WORKFLOW)
    (files / "activations.yaml").write_text("activations:\n  cli-ok: {dev: {active: true}}\n")
    args = ["push", str(files), "--product", "acme", "--yes", "--publish", "--activate"]
    assert _invoke(home, *args)[0] == 0

    terminal = Console(force_terminal=True, record=True, width=100, file=io.StringIO())
    monkeypatch.setattr(commands_runs, "console", terminal)
    code, out = _invoke(home, "run", "acme/cli-ok", "--input", '{"name": "bo"}')
    assert code == 0, out
    shown = terminal.export_text()
    assert "first" in shown and "2/2" in shown and "second" in shown and "1/1" in shown
    assert "hello" in shown and "bye" in shown
    assert "completed." in shown
