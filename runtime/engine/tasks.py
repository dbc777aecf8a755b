"""The bodies of the engine's tasks (``runtime.tasks`` names them by dotted path): a
crash is counted against the run (the poison-run guard), never raised to django-q2."""

from __future__ import annotations

import contextlib
import logging

from django.core.exceptions import ObjectDoesNotExist

from runtime.engine.driver import sequence_drive
from runtime.engine.guard import finalize_task, run_task_failed
from runtime.engine.state import describe
from runtime.engine.store import store
from runtime.engine.sweep import sweep_kick, sweep_tick
from runtime.engine.wake import child_finished

logger = logging.getLogger("trellis.executor")

__all__ = ["child_finished_task", "finalize_task", "sequence_task", "sweep_kick", "sweep_tick"]


def sequence_task(sequence_run_id: int) -> None:
    """The ``sequence_drive`` task: a crash is counted against the run, not raised."""
    try:
        sequence_drive(sequence_run_id)
    except Exception as exc:
        logger.exception("sequence task %s crashed", sequence_run_id)
        with contextlib.suppress(ObjectDoesNotExist):
            run_id, tag = store().sequence_of(sequence_run_id)
            run_task_failed(run_id=run_id, step=tag, error=describe(exc), seq_id=sequence_run_id)


def child_finished_task(child_run_id: int) -> None:
    """The ``child_finished`` task: a crash is counted against the parent run."""
    try:
        child_finished(child_run_id)
    except Exception as exc:
        logger.exception("child_finished task of run %s crashed", child_run_id)
        parent_id = store().parent_of(child_run_id)
        if parent_id:
            with contextlib.suppress(ObjectDoesNotExist):
                run_task_failed(run_id=parent_id, step="", error=describe(exc), requeue=False)
