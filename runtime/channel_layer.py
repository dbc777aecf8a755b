"""The embedded channel layer: process-local groups fed by a tail of the journal.

Embedded mode runs no message server, yet the worker that writes the journal is another
process than the web server whose consumers hold the browsers' sockets. This layer
bridges them through the database itself, which every process already shares:

- Channels, groups, ``send`` and ``group_send`` behave like ``InMemoryChannelLayer``
  (process-local). Only live groups (``run.<id>``, ``workflow.<id>``) cross processes.
- While this process has members in live groups, ONE tailer task per process reads
  journal rows past its cursor (``JournalEntry.id > cursor``) and ``group_send``s them
  locally as ``journal.entries`` messages — exactly the messages ``runtime.live.publish``
  sends through channels-redis in scale-out mode, so consumers are the same in both modes.
- Wakeups: after each journal commit, ``runtime.live.publish`` (in whatever process
  committed) calls :func:`journal_wake`, which drops a one-byte datagram on every
  UNIX socket in the wake directory (``<TRELLIS_VAR_DIR>/live/``). A tailer wakes at
  once, so a push costs one indexed query, not a polling interval. A wakeup may be
  dropped (full socket queue: the reader is already due to wake; dead process: its
  socket is removed); the tailer also polls every ``poll`` seconds while it has
  subscribers, and not at all when it has none — idle costs nothing.
- Commit order vs id order: on SQLite writers are serialised, so ids appear in commit
  order. On PostgreSQL (DATABASE_URL without REDIS_URL) a lower id can commit after a
  higher one; the tailer remembers the ids it skipped over and asks for them again for
  ``gap_timeout`` seconds (ids of rolled-back inserts never appear and are then dropped).

Consumers still dedupe by ``seq`` and fill gaps from the journal, so a duplicate or a
missed push is harmless; the tailer only has to make the common case fast.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.db import connection
from django.db.models import Max, Q

logger = logging.getLogger("trellis.live")

#: Group name prefixes carried across processes by the journal tailer.
LIVE_GROUP_PREFIXES = ("run.", "workflow.")

_SOCKET_SUFFIX = ".sock"
# sun_path holds 108 bytes including the NUL; keep room for "<pid>-<hex>.sock".
_MAX_SOCKET_PATH = 100


def is_live_group(group: str) -> bool:
    return group.startswith(LIVE_GROUP_PREFIXES)


def run_group(run_id: int) -> str:
    """The group of one run's live entries."""
    return f"run.{run_id}"


def workflow_group(workflow_id: int) -> str:
    """The group of the live entries of every run of one workflow (all environments)."""
    return f"workflow.{workflow_id}"


def wake_dir(path: str | os.PathLike[str]) -> Path:
    """The directory holding the wake sockets; short enough for UNIX socket paths.

    A long TRELLIS_VAR_DIR (test temp dirs) would overflow ``sun_path``; such a
    directory is mapped to a stable short one under the system temp dir instead, so
    every process computes the same place.
    """
    directory = Path(path)
    if len(str(directory)) + 32 > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
        directory = Path(tempfile.gettempdir()) / f"trellis-live-{digest}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


_sender: socket.socket | None = None


def journal_wake(path: str | os.PathLike[str]) -> int:
    """Wake every process tailing the journal (a datagram per socket); never blocks.

    Returns how many sockets were woken. A full socket queue means that reader has
    wakeups pending already; a socket nobody listens on (a dead process) is removed.
    """
    global _sender
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    woken = 0
    try:
        entries = list(os.scandir(wake_dir(path)))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.endswith(_SOCKET_SUFFIX):
            continue
        try:
            _sender.sendto(b"w", entry.path)
            woken += 1
        except BlockingIOError:
            woken += 1
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        except (FileNotFoundError, OSError) as exc:
            logger.debug("journal wake to %s failed: %s", entry.path, exc)
    return woken


def _fetch_entries(cursor: int, gaps: Iterable[int], limit: int) -> list[dict[str, Any]]:
    """Journal rows past the cursor (plus the ids still missing), oldest first."""
    # why here: other processes import this module to wake a tailer, without Django set up.
    from runtime.models import JournalEntry

    where = Q(id__gt=cursor)
    gap_ids = list(gaps)
    if gap_ids:
        where |= Q(id__in=gap_ids)
    rows: Any = (
        JournalEntry.objects.filter(where)
        .order_by("id")
        .values(
            "id",
            "run_id",
            "seq",
            "kind",
            "step",
            "data",
            "at",
            "run__workflow_id",
            "run__environment_id",
        )[:limit]
    )
    return list(rows)


def _max_entry_id() -> int:
    from runtime.models import JournalEntry  # why here: see _fetch_entries

    return JournalEntry.objects.aggregate(top=Max("id"))["top"] or 0


def _reset_connection() -> None:
    connection.close()


class JournalChannelLayer(InMemoryChannelLayer):  # type: ignore[misc]  # channels: untyped
    """In-memory channel layer whose live groups are fed from the journal (see module doc).

    CONFIG: ``path`` (wake socket directory), ``poll`` (seconds between reads while
    someone listens, default 0.5), ``min_interval`` (least seconds between two reads,
    batching bursts, default 0.002), ``batch`` (rows per read), ``gap_timeout`` (seconds a
    skipped id is asked for again), plus InMemoryChannelLayer's options.
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        path: str | None = None,
        poll: float = 0.5,
        min_interval: float = 0.002,
        batch: int = 500,
        gap_timeout: float = 10.0,
        capacity: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(capacity=capacity, **kwargs)
        if path is None:
            path = str(Path(settings.VAR_DIR) / "live")
        self.path = path
        self.poll = poll
        self.min_interval = min_interval
        self.batch = batch
        self.gap_timeout = gap_timeout
        self.cursor = 0
        self.gaps: dict[int, float] = {}  # id skipped over -> when first missed
        self._last_read = 0.0
        self.reads = 0  # journal reads done by the tailer (for tests and the bench)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tailer: asyncio.Task[None] | None = None
        self._start_lock: asyncio.Lock | None = None
        self._woken: asyncio.Event | None = None
        self._socket: socket.socket | None = None
        self._socket_path: str | None = None
        # One thread with its own long-lived connection: the tailer never queues behind
        # slow sync views in the shared thread-sensitive executor.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-tail")
        atexit.register(self._unlink_socket)

    # -- public helpers -----------------------------------------------------------------

    def wake(self) -> int:
        """Wake every tailer (this process's included) after a journal commit."""
        return journal_wake(self.path)

    @property
    def tailing(self) -> bool:
        return self._tailer is not None and not self._tailer.done()

    # -- groups -------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        if is_live_group(group):
            # Returns only once the tailer's cursor is read: a consumer that reads the
            # journal after joining therefore misses nothing between the two.
            await self._ensure_tailer()

    async def flush(self) -> None:
        await super().flush()
        if self._tailer is not None:
            self._tailer.cancel()
            self._tailer = None

    async def close(self) -> None:
        await self.flush()
        self._unlink_socket()

    def _has_live_members(self) -> bool:
        return any(members for group, members in self.groups.items() if is_live_group(group))

    # -- the tailer ---------------------------------------------------------------------

    async def _ensure_tailer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._switch_loop(loop)
        assert self._start_lock is not None
        async with self._start_lock:
            if self.tailing:
                return
            self.cursor = await loop.run_in_executor(self._executor, _max_entry_id)
            self.gaps.clear()
            self._tailer = loop.create_task(self._tail(), name="journal-tailer")

    def _switch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the wake socket and the tailer's primitives to the running loop."""
        if self._loop is not None and self._socket is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._socket.fileno())
        if self._tailer is not None and not self._tailer.done():
            self._tailer.cancel()
        self._tailer = None
        self._loop = loop
        self._start_lock = asyncio.Lock()
        self._woken = asyncio.Event()
        if self._socket is None:
            directory = wake_dir(self.path)
            self._socket_path = str(directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(self._socket_path)
            self._socket = sock
        loop.add_reader(self._socket.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        assert self._socket is not None
        while True:
            try:
                self._socket.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        if self._woken is not None:
            self._woken.set()

    async def _tail(self) -> None:
        assert self._woken is not None
        loop = asyncio.get_running_loop()
        while self._has_live_members():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self.poll)
            self._woken.clear()
            # Under a burst of commits, read at most every min_interval: one read then
            # carries many entries. An isolated commit is read at once.
            pause = self._last_read + self.min_interval - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._last_read = loop.time()
            try:
                more = True
                while more and self._has_live_members():
                    rows = await loop.run_in_executor(
                        self._executor, _fetch_entries, self.cursor, list(self.gaps), self.batch
                    )
                    self.reads += 1
                    more = len(rows) >= self.batch
                    self._advance(rows)
                    await self._dispatch(rows)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A broken connection (database restart) must not end live updates.
                logger.exception("journal tailer read failed; retrying")
                await loop.run_in_executor(self._executor, _reset_connection)
                await asyncio.sleep(self.poll)

    def _advance(self, rows: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for row in rows:
            self.gaps.pop(row["id"], None)
        fresh = sorted(row["id"] for row in rows if row["id"] > self.cursor)
        expected = self.cursor + 1
        for row_id in fresh:
            for missing in range(expected, row_id):
                self.gaps.setdefault(missing, now)
            expected = row_id + 1
        if fresh:
            self.cursor = fresh[-1]
        for row_id, since in list(self.gaps.items()):
            if now - since > self.gap_timeout:
                del self.gaps[row_id]
        if len(self.gaps) > 10_000:  # bounded memory under pathological churn
            for row_id in sorted(self.gaps)[: len(self.gaps) - 10_000]:
                del self.gaps[row_id]

    async def _dispatch(self, rows: list[dict[str, Any]]) -> None:
        by_run: dict[int, list[dict[str, Any]]] = {}
        heads: dict[int, tuple[int, int]] = {}
        for row in rows:
            run_id = row["run_id"]
            heads[run_id] = (row["run__workflow_id"], row["run__environment_id"])
            by_run.setdefault(run_id, []).append(
                {
                    "run": run_id,
                    "workflow": row["run__workflow_id"],
                    "environment": row["run__environment_id"],
                    "seq": row["seq"],
                    "kind": row["kind"],
                    "step": row["step"],
                    "data": row["data"],
                    "at": row["at"].isoformat() if row["at"] is not None else None,
                }
            )
        for run_id, entries in by_run.items():
            entries.sort(key=lambda entry: entry["seq"])
            workflow_id, environment_id = heads[run_id]
            message = {
                "type": "journal.entries",
                "run": run_id,
                "workflow": workflow_id,
                "environment": environment_id,
                "entries": entries,
            }
            for group in (run_group(run_id), workflow_group(workflow_id)):
                if self.groups.get(group):
                    await self.group_send(group, message)

    def _unlink_socket(self) -> None:
        if self._socket_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._socket_path)
            self._socket_path = None
        if self._socket is not None:
            with contextlib.suppress(Exception):
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
