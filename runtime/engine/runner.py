"""Running a connector call with a bound on time, keeping the lease alive meanwhile."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection

from runtime.connectors import ConnectorCall, execute
from runtime.connectors.code import collect_logs
from runtime.engine import config
from runtime.errors import StepTimeout

logger = logging.getLogger("trellis.executor")

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _step_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="step")
        return _pool


def _abandon_pool() -> None:
    """A step thread is stuck past its timeout: leave it and use a fresh one."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = None


def run_bounded(
    fn: Callable[[], Any], *, timeout_s: float | None, renew: Callable[[], None] | None
) -> Any:
    """Run ``fn`` and keep the lease alive while it runs.

    Without a timeout it runs right here (no thread hop: the hot path) while the heartbeat
    thread renews the lease if it takes long. With one, it runs in the step thread and
    raises StepTimeout when it takes longer than ``timeout_s`` (the thread is then
    abandoned, not killed: Python cannot kill a thread).
    """
    if not timeout_s:
        with _heartbeat.watch(renew):
            return fn()
    future = _step_pool().submit(fn)
    deadline = time.monotonic() + timeout_s
    while True:
        wait = min(config.RENEW_S, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            if time.monotonic() >= deadline:
                _abandon_pool()
                raise StepTimeout(
                    f"step timed out after {timeout_s:.3g} s", retryable=True
                ) from None
            if renew is not None:
                renew()


def call_bounded(
    call: ConnectorCall,
    logs: list[dict[str, Any]],
    *,
    timeout_s: float | None,
    renew: Callable[[], None],
    redact: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Any:
    """Execute a connector call within its timeout, collecting its logs into ``logs``
    (then ``redact``\\ ed in place, even when the call failed)."""

    def work() -> Any:
        try:
            with collect_logs(logs):
                return execute(call)
        finally:
            if redact is not None and logs:
                redact(logs)

    return run_bounded(work, timeout_s=timeout_s, renew=renew)


class _Heartbeat:
    """One daemon thread per process renewing the lease of a step that runs long.

    ``watch`` only sets two attributes (no lock, no wake-up), so fast steps pay nothing;
    the thread looks once a second and renews when the current step is older than RENEW_S.
    """

    def __init__(self) -> None:
        self.renew: Callable[[], None] | None = None
        self.since = 0.0
        self.renewed = 0.0
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def watch(self, renew: Callable[[], None] | None) -> Iterator[None]:
        if renew is None:
            yield
            return
        self.ensure_thread()
        self.since = self.renewed = time.monotonic()
        self.renew = renew
        try:
            yield
        finally:
            self.renew = None

    def ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self.loop, name="lease-heartbeat", daemon=True
                )
                self.thread.start()

    def loop(self) -> None:
        while True:
            time.sleep(1.0)
            renew = self.renew
            if renew is None or time.monotonic() - self.renewed < config.RENEW_S:
                continue
            try:
                renew()
                self.renewed = time.monotonic()
            except Exception:
                logger.exception("lease renewal failed")
            finally:
                connection.close()  # this thread's own connection


_heartbeat = _Heartbeat()
