"""The poison-run guard.

A task that crashes (an engine bug, a value nothing foresaw) or whose worker dies (killed,
out of memory, over django-q2's timeout) would be re-leased by the sweep forever. Each such
failure is counted on the run (``Run.task_failures``, durable, journaled as
``task_failed``); a finished step resets the count; at TRELLIS_RUN_MAX_TASK_FAILURES the
run is failed (compensation per its strategy, or ended outright when compensating is what
keeps failing). A caught crash never reaches django-q2, so no failed task rows pile up.
"""

from __future__ import annotations

import contextlib
import logging

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone

from runtime.engine import config
from runtime.engine.compensation import run_finalize
from runtime.engine.finishing import append_entries, run_end_broken, run_stop, stop_why
from runtime.engine.queue import enqueue
from runtime.engine.state import describe
from runtime.engine.store import store
from runtime.models import RUN_FINISHED

logger = logging.getLogger("trellis.executor")


def finalize_task(run_id: int) -> None:
    """The ``run_finalize`` task: a crash is counted against the run, not raised."""
    try:
        run_finalize(run_id)
    except Exception as exc:
        logger.exception("finalize task of run %s crashed", run_id)
        with contextlib.suppress(ObjectDoesNotExist):
            run_task_failed(run_id=run_id, step="", error=describe(exc), finalize=True)


def run_task_failed(
    *,
    run_id: int,
    step: str,
    error: str,
    seq_id: int | None = None,
    finalize: bool = False,
    requeue: bool = True,
) -> int:
    """Count one failed task of a run (journaled); retry it after a short pause, or, at
    the limit, fail the run. Returns the new count."""
    limit = config.max_task_failures()
    now = timezone.now()
    with transaction.atomic():
        db = store()
        row = db.lock_run(run_id)
        if row["status"] in RUN_FINISHED:
            return 0
        run = db.count_task_failure(run_id)
        count = run.task_failures
        data = {"code": "task_failed", "message": error, "failures": count, "limit": limit}
        append_entries(run, [("task_failed", step, data)], now)
        if seq_id is not None:  # free the lease now: the retry need not wait for it to expire
            db.release_sequence(seq_id)
        if finalize:
            db.release_run_lease(run_id)
        if count < limit:
            if requeue:
                call = (config.FINALIZE, (run_id,)) if finalize else (config.DRIVE, (seq_id,))
                if finalize or seq_id is not None:
                    enqueue([call], delay_s=0.5 * count)  # a short, growing pause
            return count
        message = (
            f"the engine failed {count} times in a row on this run "
            f"(TRELLIS_RUN_MAX_TASK_FAILURES); last error: {error}"
        )
        cause = {"code": "task_failed", "message": message, "step": step}
        if row["stop_reason"]:
            # Compensation itself keeps failing: end the run here, as it stands.
            run_end_broken(run, cause)
            return count
        if seq_id is not None:
            db.release_sequence(seq_id, status="failed", finished_at=now)
            tag = db.sequence_of(seq_id)[1]
            append_entries(run, [("sequence_failed", tag, stop_why("failed", cause))], now)
        if run_stop(run_id=run_id, reason="failed", cause=cause):
            enqueue([(config.FINALIZE, (run_id,))])
    return count
