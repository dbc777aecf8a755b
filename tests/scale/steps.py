"""CODE step functions for the scale-out tests (registered by tests/settings.py only).

Every execution is appended to ``$TRELLIS_TEST_EFFECTS/<run id>.log`` as one line
``<step> <attempt> <idempotency key> <pid>``: the file is shared by the test process and
every qcluster process, and appends of one short line are atomic, so a test can count how
often each step really ran, whichever process ran it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from runtime.errors import StepError


def _effects() -> Path:
    raw = os.environ.get("TRELLIS_TEST_EFFECTS")
    if not raw:
        raise RuntimeError("TRELLIS_TEST_EFFECTS is not set (use the side_effects fixture)")
    return Path(raw)


def _record(ctx: Any) -> None:
    with (_effects() / f"{ctx.run_id}.log").open("a") as f:
        f.write(f"{ctx.step} {ctx.attempt} {ctx.idempotency_key} {os.getpid()}\n")


def executions(run_id: int) -> list[tuple[str, int, str, int]]:
    """Every recorded execution of a run's steps: (step, attempt, key, pid)."""
    file = _effects() / f"{run_id}.log"
    if not file.exists():
        return []
    out = []
    for line in file.read_text().splitlines():
        step, attempt, key, pid = line.split()
        out.append((step, int(attempt), key, int(pid)))
    return out


def step_counts(run_id: int) -> Counter[str]:
    """How many times each step of a run was executed (all attempts)."""
    return Counter(step for step, _attempt, _key, _pid in executions(run_id))


def mark(input: Any, ctx: Any) -> dict[str, Any]:
    """Record the execution; output the step tag (and sleep ``input.seconds`` first)."""
    seconds = float((input or {}).get("seconds", 0) or 0)
    if seconds:
        time.sleep(seconds)
    _record(ctx)
    return {"step": ctx.step}


def fail_first(input: Any, ctx: Any) -> dict[str, Any]:
    """Record the execution; fail (retryably) attempts below ``input.succeed_at``."""
    _record(ctx)
    if ctx.attempt < int((input or {}).get("succeed_at", 2)):
        raise StepError(f"attempt {ctx.attempt} fails on purpose", retryable=True)
    return {"attempt": ctx.attempt}


# --- In-process rendezvous (thread tests): several steps finish at the same instant --------

_barriers: dict[str, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def barrier(name: str, parties: int) -> threading.Barrier:
    with _barriers_lock:
        found = _barriers.get(name)
        if found is None:
            found = _barriers[name] = threading.Barrier(parties, timeout=20)
        return found


def barriers_reset() -> None:
    with _barriers_lock:
        _barriers.clear()


def gate(input: Any, ctx: Any) -> dict[str, Any]:
    """Wait until ``input.parties`` threads reached the gate ``<run>:<input.name>``, record."""
    data = input or {}
    barrier(f"{ctx.run_id}:{data.get('name', 'gate')}", int(data.get("parties", 2))).wait()
    _record(ctx)
    return {"step": ctx.step}


def file_gate(input: Any, ctx: Any) -> dict[str, Any]:
    """Cross-process rendezvous: note the arrival, wait until ``input.parties`` steps of
    this run arrived (or 20 s), then record. Makes sequences of different worker
    processes finish together, so their commits race."""
    data = input or {}
    folder = _effects() / f"gate-{ctx.run_id}-{data.get('name', 'gate')}"
    folder.mkdir(exist_ok=True)
    (folder / ctx.step).touch()
    parties = int(data.get("parties", 2))
    deadline = time.monotonic() + 20
    while len(list(folder.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.001)
    _record(ctx)
    return {"step": ctx.step}


def commit_mode(input: Any, ctx: Any) -> dict[str, str]:
    """The synchronous_commit setting of this worker process's database session."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return {"mode": cursor.fetchone()[0], "pid": str(os.getpid())}
