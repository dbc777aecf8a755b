"""CODE: call a Python function by dotted path with the step's resolved input.

``event`` is ``package.module:function`` (or ``package.module.function``). The function is
called as ``fn(input)`` or, when it takes two parameters, ``fn(input, ctx)`` where ``ctx``
is an immutable :class:`StepInfo` (run id, step, attempt, idempotency key, environment)
with ``ctx.log(message, **data)`` for journaled log lines. Its return value is the step's
output (JSON). Raise :class:`runtime.errors.StepError` to say whether a retry can help;
any other exception fails the attempt and may be retried.

Only registered step functions (runtime.step_functions: ``@step_function`` in deployed
code, ``TRELLIS_STEP_FUNCTIONS``, and the built-ins of this module) can be called: a spec
author must not be able to name ``os:system`` nor make the worker import anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runtime.connectors.call import ConnectorCall
from runtime.errors import StepError
from runtime.step_functions import step_function, step_function_get

_local = threading.local()


@contextmanager
def collect_logs(sink: list[dict[str, Any]]) -> Iterator[None]:
    """Gather ``ctx.log`` lines of the calls made in this block (same thread) into ``sink``."""
    previous = getattr(_local, "logs", None)
    _local.logs = sink
    try:
        yield
    finally:
        _local.logs = previous


@dataclass(frozen=True)
class StepInfo:
    """What a CODE function may know about the step it runs in (read-only)."""

    run_id: int | None
    step: str
    attempt: int
    idempotency_key: str
    environment: str

    def log(self, message: str, level: str = "info", **data: Any) -> None:
        """Write a line to the run's journal (kind ``log``) when the step commits."""
        sink = getattr(_local, "logs", None)
        if sink is not None:
            sink.append({"level": level, "message": str(message), "data": data})


def code_function(path: str) -> tuple[Callable[..., Any], bool]:
    """(function, whether it takes ctx) for a registered name; StepError when unregistered.

    A lookup in the step-function registry only: a name is never imported on demand.
    """
    entry = step_function_get(path)
    return entry.fn, entry.wants_ctx


def code_run(call: ConnectorCall) -> Any:
    """Run the CODE step's function with its input (and ctx)."""
    fn, wants_ctx = code_function(call.event)
    try:
        if not wants_ctx:
            return fn(call.input)
        attempt = call.idempotency_key.rsplit(":", 1)[-1]
        info = StepInfo(
            run_id=call.run_id,
            step=call.step,
            attempt=int(attempt) if attempt.isdigit() else 0,
            idempotency_key=call.idempotency_key,
            environment=call.environment,
        )
        return fn(call.input, info)
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


# --- Built-ins (always registered): handy in examples, tests and the benchmark -------------


@step_function
def noop(input: Any) -> dict[str, Any]:
    """Do nothing; output ``{}``."""
    return {}


@step_function
def echo(input: Any) -> Any:
    """Return the input as the output."""
    return input


@step_function
def fail(input: Any) -> Any:
    """Always fail; ``input.retryable`` (default true) and ``input.message`` shape the error."""
    data = input if isinstance(input, dict) else {}
    raise StepError(
        str(data.get("message", "failed on purpose")), retryable=bool(data.get("retryable", True))
    )
