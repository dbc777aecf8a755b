"""Execution, Django side: drive sequences step by step, hold leases, commit every result.

The code lives in :mod:`runtime.engine` (one module per concern); this module keeps the
names importable from where they always were.

One task drives one sequence (``sequence_drive``): it takes the sequence's lease, then runs
its steps in order. Each step's result is committed in ONE short transaction together
with the start of the next step (StepRun rows, journal entries, ``Run.last_seq``), so the
hot path is one transaction per step with no re-reads. When the sequence ends, the same
kind of transaction (under the run's lock) decides which sequences start next: the first
one is driven by this task without a queue hop, the others are enqueued. Only fan-out,
timers and signals go back through the queue.

Concurrency and crashes:

- A task only works on a sequence while it holds the lease (``SequenceRun.lease_owner``,
  renewed while a step runs); every commit re-checks it (a fenced UPDATE), so a worker that
  lost its lease can never write over the worker that took it. A duplicate task finds the
  lease taken or the sequence done and returns.
- Every transaction that journals first increments ``Run.last_seq`` (the run's row lock on
  PostgreSQL, the write lock on SQLite), which serializes writers of one run: fan-out/join
  decisions, signals and cancels are race-free.
- A completed step is never run again; a step in flight when its worker died is re-run by
  whoever takes the expired lease, with the same idempotency key ``<run>:<step>:<attempt>``.
- The periodic sweep (``runtime.tasks.sweep``) re-enqueues due timers, expired leases and
  interrupted compensations.

Winding down (a step failed, cancel, ROLLBACK, timeout): ``Run.stop_reason`` is set once;
running sequences stop at their next step boundary; the last one out (or the sweep)
compensates per the rollback strategy under the run's own lease, then ends the run.
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
