"""The engine's public names, where they have always been importable from.

The code lives in :mod:`runtime.engine`, one module per concern (see its docstring); the
concurrency model is described in :mod:`runtime.engine.driver`.
"""

from __future__ import annotations

from runtime.engine.compensation import Compensator, run_finalize
from runtime.engine.config import (
    BEAT_STALE_S,
    CHILD_FINISHED,
    DRIVE,
    ENGINE_TYPES,
    FINALIZE,
    LEASE_S,
    REKICK_S,
    RENEW_S,
    RESOLVE_BUDGET,
    SWEEP,
    SWEEP_EVERY_S,
    UNCLAIMED_S,
    WAIT_TYPES,
)
from runtime.engine.context import RunContext, RunScope
from runtime.engine.driver import SequenceDriver, sequence_drive
from runtime.engine.finishing import run_stop
from runtime.engine.guard import finalize_task, run_task_failed
from runtime.engine.plans import plan_cache_clear, plan_for_version
from runtime.engine.queue import enqueue
from runtime.engine.runner import run_bounded
from runtime.engine.starting import start_sequences
from runtime.engine.state import (
    STEP_FIELDS,
    Encoded,
    LeaseLost,
    Pending,
    RunLock,
    StepRow,
    StepState,
    Stop,
    json_bounded,
    json_load,
    new_token,
)
from runtime.engine.store import store
from runtime.engine.sweep import sweep_kick, sweep_once, sweep_schedule_ensure, sweep_tick
from runtime.engine.tasks import child_finished_task, sequence_task
from runtime.engine.wake import child_finished, wake_for_signal
from runtime.models import Run

__all__ = [
    "BEAT_STALE_S",
    "CHILD_FINISHED",
    "DRIVE",
    "ENGINE_TYPES",
    "FINALIZE",
    "LEASE_S",
    "REKICK_S",
    "RENEW_S",
    "RESOLVE_BUDGET",
    "STEP_FIELDS",
    "SWEEP",
    "SWEEP_EVERY_S",
    "UNCLAIMED_S",
    "WAIT_TYPES",
    "Compensator",
    "Encoded",
    "LeaseLost",
    "Pending",
    "RunContext",
    "RunScope",
    "SequenceDriver",
    "StepState",
    "Stop",
    "child_finished",
    "child_finished_task",
    "enqueue",
    "finalize_task",
    "json_bounded",
    "json_load",
    "lock_run",
    "new_token",
    "plan_cache_clear",
    "plan_for_version",
    "run_bounded",
    "run_finalize",
    "run_row",
    "run_stop",
    "run_task_failed",
    "sequence_drive",
    "sequence_task",
    "start_sequences",
    "step_rows",
    "sweep_kick",
    "sweep_once",
    "sweep_schedule_ensure",
    "sweep_tick",
    "wake_for_signal",
]


def lock_run(run_id: int) -> RunLock:
    """Lock the run row for this transaction and read what decisions need."""
    return store().lock_run(run_id)


def run_row(run_id: int) -> Run | None:
    """The run (with its environment) as a model instance from one raw SELECT."""
    return store().run_row(run_id)


def step_rows(run_id: int) -> list[StepRow]:
    """Every StepRun of a run, as the engine reads it."""
    return store().step_rows(run_id)
