"""CODE step functions used by the engine tests (registered by tests/settings.py only).

Side effects are appended to files under $TRELLIS_TEST_EFFECTS so a test can count how
often each step really ran, also when a separate worker process ran it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from runtime.errors import StepError


def _effects() -> Path | None:
    raw = os.environ.get("TRELLIS_TEST_EFFECTS")
    return Path(raw) if raw else None


def record(input: Any, ctx: Any) -> dict[str, Any]:
    """Append ``<key>`` to the effects file named after the step; output the input."""
    path = _effects()
    if path is not None:
        with (path / f"{ctx.step}.log").open("a") as f:
            f.write(f"{ctx.idempotency_key}\n")
    return {"step": ctx.step, "input": input}


def count(step: str) -> int:
    path = _effects()
    if path is None:
        return 0
    file = path / f"{step}.log"
    return len(file.read_text().splitlines()) if file.exists() else 0


def keys(step: str) -> list[str]:
    path = _effects()
    file = path / f"{step}.log" if path else None
    return file.read_text().splitlines() if file and file.exists() else []


def slow(input: Any, ctx: Any) -> dict[str, Any]:
    """Record the start, sleep ``input.seconds``, record the end."""
    path = _effects()
    if path is not None:
        with (path / f"{ctx.step}.start.log").open("a") as f:
            f.write(f"{ctx.idempotency_key}\n")
    time.sleep(float((input or {}).get("seconds", 1)))
    return record(input, ctx)


def add(input: Any) -> dict[str, Any]:
    return {"sum": (input or {}).get("a", 0) + (input or {}).get("b", 0)}


def flaky(input: Any, ctx: Any) -> dict[str, Any]:
    """Fail the first ``input.failures`` attempts (counted in the effects dir), then succeed."""
    path = _effects()
    assert path is not None
    file = path / f"{ctx.step}.attempts"
    n = len(file.read_text().splitlines()) if file.exists() else 0
    with file.open("a") as f:
        f.write(f"{ctx.idempotency_key}\n")
    if n < int((input or {}).get("failures", 1)):
        raise StepError(f"flaky failure {n + 1}", retryable=True)
    return {"attempts": n + 1}


def boom(input: Any) -> Any:
    raise RuntimeError("boom")


def logs(input: Any, ctx: Any) -> dict[str, Any]:
    ctx.log("hello from a step", n=1)
    return {"logged": True}


def not_json(input: Any) -> Any:
    return object()


def hang(input: Any) -> Any:
    time.sleep(float((input or {}).get("seconds", 30)))
    return {}


def die(input: Any) -> Any:
    """Kill the worker process running this step (a poison run: it dies on every try)."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)


def pid(input: Any) -> dict[str, Any]:
    """The worker process's id, after sleeping ``input.seconds`` (default 0)."""
    time.sleep(float((input or {}).get("seconds", 0)))
    return {"pid": os.getpid()}


def span(input: Any, ctx: Any) -> dict[str, Any]:
    """Record ``enter``/``exit`` lines with wall-clock times around a sleep of
    ``input.seconds`` (default 0) in ``spans.log``: a test counts how many of these ran at
    once, across worker processes. Outputs the input with the step's key."""
    path = _effects()
    data = input if isinstance(input, dict) else {}
    if path is not None:
        with (path / "spans.log").open("a") as f:
            f.write(f"enter {ctx.step} {time.time():.6f}\n")
    time.sleep(float(data.get("seconds") or 0))
    if path is not None:
        with (path / "spans.log").open("a") as f:
            f.write(f"exit {ctx.step} {time.time():.6f}\n")
    return {**data, "step": ctx.step}


def spans() -> list[tuple[str, str, float]]:
    """``(enter|exit, step, time)`` lines of ``spans.log``, in time order."""
    path = _effects()
    file = path / "spans.log" if path else None
    if file is None or not file.exists():
        return []
    out = []
    for line in file.read_text().splitlines():
        kind, step, at = line.split(" ")
        out.append((kind, step, float(at)))
    return sorted(out, key=lambda e: (e[2], e[0] == "enter"))


def most_at_once(events: list[tuple[str, str, float]]) -> int:
    """The largest number of spans open at the same time."""
    open_now = peak = 0
    for kind, _, _ in events:
        open_now += 1 if kind == "enter" else -1
        peak = max(peak, open_now)
    return peak
