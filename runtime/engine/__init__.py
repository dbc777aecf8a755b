"""The engine: what happens next in a run, and the Django side that makes it happen.

Importing the package gives only the pure decisions (:mod:`runtime.engine.decisions`: no
Django, no I/O), so ``from runtime import engine; engine.schedule(...)`` stays cheap and
pure. The Django side lives in the submodules, each importing only those listed above it:

- ``decisions``: what happens next (pure); ``config``: leases, budgets, task names
- ``state``: the in-memory types of a run (typed rows, step state, control flow)
- ``store``: every statement of the engine, one class per database dialect
  (``base`` the hot path, ``records`` runs/steps/sequences, ``sweeps`` the sweep's)
- ``queue``: enqueueing tasks with the commit; ``plans``: the compiled-plan cache
- ``context``: what one task knows about a run; ``runner``: a call bounded in time
- ``finishing``: the end of a run; ``compensation``: rolling back; ``guard``: poison runs
- ``starting``: the first sequences of a run; ``creation``: creating a run (no driver)
- ``commit``: the fenced step commit; ``transitions``: step transitions
- ``sequence_end``: what starts next; ``loops``: FOREACH steps and their iterations
- ``steps``: the engine's own step kinds
- ``driver``: the loop that drives sequences; ``wake``: waking parked sequences
- ``sweep``: the periodic sweep; ``tasks``: the task bodies ``runtime.tasks`` calls
"""

from __future__ import annotations

from runtime.engine.decisions import (
    INLINE_DELAY_MS,
    SEQUENCE_ACTIVE,
    SEQUENCE_DONE,
    SEQUENCE_FINISHED,
    STEP_FINISHED,
    FailAllowed,
    FailRun,
    FailureDecision,
    Retry,
    RollbackStrategy,
    RunEnd,
    Schedule,
    SequenceLike,
    StepLike,
    StepView,
    compensation_targets,
    idempotency_key,
    on_step_failure,
    retry_delay_ms,
    returned_status,
    run_activity,
    run_end_status,
    schedule,
)

__all__ = [
    "INLINE_DELAY_MS",
    "SEQUENCE_ACTIVE",
    "SEQUENCE_DONE",
    "SEQUENCE_FINISHED",
    "STEP_FINISHED",
    "FailAllowed",
    "FailRun",
    "FailureDecision",
    "Retry",
    "RollbackStrategy",
    "RunEnd",
    "Schedule",
    "SequenceLike",
    "StepLike",
    "StepView",
    "compensation_targets",
    "idempotency_key",
    "on_step_failure",
    "retry_delay_ms",
    "returned_status",
    "run_activity",
    "run_end_status",
    "schedule",
]
