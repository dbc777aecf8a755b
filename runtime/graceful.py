"""A graceful stop of a ``qcluster`` on SIGTERM to its whole process group.

systemd (``KillMode=control-group``), supervisord (``stopasgroup``) and a terminal's
Ctrl-C send the signal to every process of the cluster at once. django-q2's sentinel
resets SIGTERM to the default action, so it died at once — while holding the lock of the
stop event the leader then waited on forever — and the workers died in the middle of
their steps (which ran again, on another worker, once their lease expired).

Here the sentinel (and the pusher and monitor it forks) ignore SIGTERM and let the leader
run django-q2's own orderly stop (stop taking tasks, poison pills, join the workers); each
worker notes the signal and hands back the sequence it drives at the next step boundary
(its lease freed and a task for it queued, so another worker continues at once). A step in
flight is finished, not cut — for ``TRELLIS_STOP_GRACE_S`` (25 s) at most: then the worker
ends itself, as it would have on SIGTERM before (its step runs again elsewhere once the
lease expires). The bound also keeps django-q2's own task timeout working: it stops a
worker stuck past ``TRELLIS_TASK_TIMEOUT`` with SIGTERM too.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

_stopping = False
_installed = False


def stopping() -> bool:
    """Whether this worker process was told to stop (hand work back at the next boundary)."""
    return _stopping


def _note_stop(signum: int, frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    from django.conf import settings

    grace = float(getattr(settings, "TRELLIS_STOP_GRACE_S", 25.0))
    timer = threading.Timer(grace, _end_now)
    timer.daemon = True  # a worker that stops in time exits without waiting for it
    timer.start()


def _end_now() -> None:
    """The grace period is over: end this worker as the signal's default action would."""
    os.kill(os.getpid(), signal.SIGKILL)


def worker_started() -> None:
    """In each worker process (django-q2's post_spawn): note SIGTERM instead of dying."""
    signal.signal(signal.SIGTERM, _note_stop)


def install() -> None:
    """Make django-q2's sentinel ignore SIGTERM (the leader stops it in order)."""
    global _installed
    if _installed:
        return
    from django_q import cluster

    original = cluster.Sentinel.start

    def start(self: Any) -> Any:
        # Runs in the sentinel process, after its __init__ set SIGTERM to the default
        # action and before it forks the pusher, the workers and the monitor.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return original(self)

    cluster.Sentinel.start = start
    _installed = True
