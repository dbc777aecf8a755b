"""The engine's knobs: leases, budgets and the dotted paths of its tasks.

Other engine modules read these as ``config.NAME`` at call time, so a test can change
one in a single place (``monkeypatch.setattr(config, "LEASE_S", 0.3)``).
"""

from __future__ import annotations

from django.conf import settings

from runtime.expressions import set_limits
from runtime.spec import EventType

# A lease not renewed for this long is taken over (TRELLIS_LEASE_S); a worker renews its
# lease every third of that while a step runs.
LEASE_S = float(getattr(settings, "TRELLIS_LEASE_S", 10.0))
RENEW_S = LEASE_S / 3
REKICK_S = 15.0  # the sweep re-enqueues the same stuck item at most this often
# A started sequence no task has picked up yet is normally just queued (the ORM broker's
# queue row commits with it); only after this long is it presumed lost and re-enqueued.
UNCLAIMED_S = 60.0

# Event types whose work is done by a connector (possibly slow, bounded by a timeout).
WAIT_TYPES = {EventType.SLEEP, EventType.WAIT_SIGNAL, EventType.FEATURE}
ENGINE_TYPES = WAIT_TYPES | {
    EventType.CHECKPOINT,
    EventType.SET_STATE,
    EventType.ROLLBACK,
    EventType.FOREACH,
    EventType.RETURN,
    EventType.FAIL,
}


def max_loop_iterations() -> int:
    """How many items a FOREACH step may loop over (TRELLIS_MAX_LOOP_ITERATIONS)."""
    return int(getattr(settings, "TRELLIS_MAX_LOOP_ITERATIONS", 10_000))


set_limits(max_length=int(getattr(settings, "TRELLIS_MAX_VALUE_LENGTH", 1_000_000)))
# What resolving one step's input (or a run's output) may produce in all: a few values at
# the cap, never thousands (see runtime.expressions.value_budget).
RESOLVE_BUDGET = 4 * int(getattr(settings, "TRELLIS_MAX_VALUE_LENGTH", 1_000_000))

# The engine's tasks, enqueued by dotted path (runtime.tasks keeps these entry points).
DRIVE = "runtime.tasks.sequence_drive"
FINALIZE = "runtime.tasks.run_finalize"
CHILD_FINISHED = "runtime.tasks.child_finished"
SWEEP = "runtime.tasks.sweep"

SWEEP_EVERY_S = 2.0
BEAT_STALE_S = 8.0


def max_task_failures() -> int:
    """Failed tasks in a row after which a run is failed (TRELLIS_RUN_MAX_TASK_FAILURES)."""
    return int(getattr(settings, "TRELLIS_RUN_MAX_TASK_FAILURES", 5))
