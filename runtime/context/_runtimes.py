"""Who runs a code step (the engine, the test harness, nobody): the :class:`StepRuntime`
behind a live ctx."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from runtime.errors import StepError
from runtime.recorder import MISSING
from runtime.spec import EventType

logger = logging.getLogger("trellis.code")


@runtime_checkable
class StepRuntime(Protocol):
    """What a live ctx needs from whoever runs the step (the engine, or the test harness)."""

    def run_info(self) -> Mapping[str, Any]:
        """``input``, ``steps`` (tag → output), ``state``, ``id``, ``completed_steps``,
        ``current_step``."""
        ...

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        """Run one connector event now and return its result."""
        ...

    def log(self, level: str, message: str, data: Any) -> None: ...

    def set_state(self, key: str, value: Any) -> None: ...

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        """``kind`` is ``variable``, ``constant`` or ``secret``."""
        ...


class BareRuntime:
    """Run data only (from the CODE event's ``ctx`` references); no connectors."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data = dict(data or {})

    def run_info(self) -> Mapping[str, Any]:
        run = self.data.get("run") or {}
        return {
            "input": self.data.get("input") or {},
            "steps": self.data.get("steps") or {},
            "state": self.data.get("state") or {},
            "id": run.get("id"),
            "completed_steps": run.get("completed_steps") or [],
            "current_step": run.get("current_step"),
            "variables": self.data.get("variables") or {},
            "constants": self.data.get("constants") or {},
        }

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        raise StepError("no connectors are available to this code step", retryable=False)

    def log(self, level: str, message: str, data: Any) -> None:
        logger.log(logging.getLevelName(level.upper()), "%s %s", message, data or "")

    def set_state(self, key: str, value: Any) -> None:
        raise StepError(
            "ctx.set_state cannot run inside a step function: call it from the handler "
            "(a SET_STATE step)",
            retryable=False,
        )

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        return None


@runtime_checkable
class WorkflowBound(Protocol):
    """A runtime that knows the workflow of its run (the engine's): a code step runs only
    in the workflow that recorded it."""

    def workflow_key(self) -> str:
        """``product/tag`` of the run's workflow."""
        ...


# Builds the engine's runtime from the StepInfo the engine hands a CODE step and the run
# data of its ``ctx`` references.
EngineRuntimeFactory = Callable[[Any, Mapping[str, Any] | None], StepRuntime]

# The Django side installs the engine's runtime (runtime.code_runtime, from runtime.apps)
# so that this package never imports the ORM or the connectors.
_engine_runtime: EngineRuntimeFactory | None = None


def engine_runtime_install(factory: EngineRuntimeFactory) -> None:
    """Say how a code step run by the engine reaches its run, connectors and components."""
    global _engine_runtime
    _engine_runtime = factory


def runtime_for(ctx: Any, data: Mapping[str, Any] | None) -> StepRuntime:
    """The runtime behind a code step: a test harness's own, the engine's, or bare."""
    if isinstance(ctx, StepRuntime):
        return ctx
    if ctx is not None and getattr(ctx, "run_id", None) is not None:
        if _engine_runtime is None:
            raise StepError(
                "no engine runtime is installed for code steps (runtime.apps installs it "
                "when Django starts)",
                retryable=False,
            )
        return _engine_runtime(ctx, data)
    return BareRuntime(data)


def log_to(ctx: Any, level: str, message: Any, data: Any) -> None:
    """Journal one log line through the runner's ctx (or Python logging without one)."""
    text = "" if message is None else str(message)
    runtime_for(ctx, None).log(level, text, None if data is MISSING else data)
