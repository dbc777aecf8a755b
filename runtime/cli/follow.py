"""Follow a run live: the run's WebSocket (``/ws/runs/<id>/``, authenticated with the API
token) feeds a :class:`RunView`, which a terminal shows as a progress bar per sequence with
each step's state, and a log (CI, a pipe) as one line per step change.

The socket protocol is runtime/consumers.py's: entries arrive in ``seq`` order without
gaps from the ``after`` we ask for; after a disconnect we reconnect with the last seq we
applied, and a ``snapshot`` replaces what we knew. Close codes 4400/4401/4404 are final.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

FINISHED = {"completed", "failed", "rolled_back", "cancelled"}
STEP_STATES = {
    "step_started": "running",
    "step_retrying": "retrying",
    "step_completed": "completed",
    "step_skipped": "skipped",
    "step_waiting": "waiting",
    "step_rolled_back": "rolled_back",
}
DONE_STATES = {"completed", "skipped", "failed", "failed_allowed", "rolled_back"}
FINAL_CLOSE_CODES = {4400, 4401, 4404}


class FollowError(Exception):
    pass


@dataclass
class RunView:
    """What is known of a run: sequences in plan order with their steps' states."""

    run_id: int
    sequences: dict[str, list[str]]  # sequence tag → step tags, in plan order
    steps: dict[str, str] = field(default_factory=dict)  # step tag → state
    sequence_states: dict[str, str] = field(default_factory=dict)
    status: str = "pending"
    error: Any = None
    output: Any = None
    last_seq: int = 0
    on_step: Callable[[str, str, str], None] | None = None  # (sequence, step, state)

    def sequence_of(self, step: str) -> str:
        for sequence, steps in self.sequences.items():
            if step in steps:
                return sequence
        return ""

    def set_step(self, step: str, state: str) -> None:
        if not step or self.steps.get(step) == state:
            return
        self.steps[step] = state
        if self.on_step is not None:
            self.on_step(self.sequence_of(step), step, state)

    def apply(self, entry: dict[str, Any]) -> None:
        kind, step, data = entry.get("kind", ""), entry.get("step", ""), entry.get("data") or {}
        self.last_seq = max(self.last_seq, int(entry.get("seq") or 0))
        if kind in STEP_STATES:
            self.set_step(step, STEP_STATES[kind])
        elif kind == "step_failed":
            self.set_step(step, "failed_allowed" if data.get("allowed") else "failed")
        elif kind.startswith("sequence_"):
            state = kind.removeprefix("sequence_")
            self.sequence_states[step] = state
            if state == "skipped":
                for tag in self.sequences.get(step, []):
                    self.set_step(tag, "skipped")
        elif kind.startswith("run_"):
            state = kind.removeprefix("run_")
            if state in FINISHED or state in {"started", "waiting"}:
                self.status = "running" if state == "started" else state
            if state in FINISHED:
                self.error = data.get("error")
                self.output = data.get("output")

    def apply_snapshot(self, message: dict[str, Any]) -> None:
        run = message.get("run") or {}
        for row in message.get("steps") or []:
            self.set_step(str(row.get("tag", "")), str(row.get("status", "")))
        for row in message.get("sequences") or []:
            self.sequence_states[str(row.get("tag", ""))] = str(row.get("status", ""))
        self.status = str(run.get("status") or self.status)
        self.error, self.output = run.get("error"), run.get("output")
        self.last_seq = int(message.get("last_seq") or self.last_seq)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def progress(self, sequence: str) -> tuple[int, int]:
        steps = self.sequences.get(sequence, [])
        return sum(1 for s in steps if self.steps.get(s) in DONE_STATES), len(steps)


def ws_url(server: str, run_id: int, after: int) -> str:
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + f"/ws/runs/{run_id}/"
    return urlunsplit((scheme, parts.netloc, path, f"after={after}", ""))


def follow(
    server: str,
    token: str,
    view: RunView,
    *,
    poll: Callable[[], dict[str, Any]],
    tick: Callable[[], None] = lambda: None,
    timeout: float = 3600.0,
) -> RunView:
    """Apply the run's entries to ``view`` until it finishes (or ``timeout`` seconds).

    ``poll`` reads the run over REST: asked when the socket has been quiet for a while,
    so a run that ended while we were reconnecting is noticed anyway."""
    deadline = time.monotonic() + timeout
    backoff = 0.5
    origin = f"{urlsplit(server).scheme}://{urlsplit(server).netloc}"
    while not view.finished and time.monotonic() < deadline:
        try:
            with connect(
                ws_url(server, view.run_id, view.last_seq),
                additional_headers={"Authorization": f"Token {token}"},
                origin=Origin(origin),
                open_timeout=10,
            ) as socket:
                backoff = 0.5
                _listen(socket, view, poll, tick, deadline)
        except InvalidStatus as exc:
            raise FollowError(f"the server refused the live socket: {exc}") from exc
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code in FINAL_CLOSE_CODES:
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
                raise FollowError(f"the live socket was closed: {code} {reason}") from exc
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        except OSError:
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
    return view


def _listen(
    socket: Any,
    view: RunView,
    poll: Callable[[], dict[str, Any]],
    tick: Callable[[], None],
    deadline: float,
) -> None:
    quiet_since = time.monotonic()
    while not view.finished and time.monotonic() < deadline:
        try:
            raw = socket.recv(timeout=0.5)
        except TimeoutError:
            tick()
            if time.monotonic() - quiet_since > 5:
                quiet_since = time.monotonic()
                run = poll()
                if run.get("status") in FINISHED:
                    # Every entry is in the journal by now: one more round reads the rest.
                    socket.send(json.dumps({"type": "snapshot"}))
            continue
        quiet_since = time.monotonic()
        message = json.loads(raw)
        if message.get("type") == "entry" and message.get("run") == view.run_id:
            view.apply(message)
        elif message.get("type") == "snapshot":
            view.apply_snapshot(message)
        tick()
