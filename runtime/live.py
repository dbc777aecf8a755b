"""Live runs: push committed journal entries to the browsers watching them.

``publish(entries)`` is called by the engine's ``journal_append`` through
``transaction.on_commit`` — in the worker process, or in the web process for entries an
API call writes. What it does depends on the channel layer:

- embedded (``runtime.channel_layer.JournalChannelLayer``): it only wakes the journal
  tailers of every process (a datagram each); the tailers read the new rows from the
  journal and fan them out to their local consumers.
- scale-out (channels-redis): it ``group_send``s a ``journal.entries`` message per run to
  ``run.<id>`` and ``workflow.<id>``, from one background event loop per process.

Either way the journal stays the truth: a push that is lost (a crash between commit and
publish, a full channel) is recovered by the consumers from the journal, by ``seq``.
This module also holds the reads the consumers need (replay, snapshots) and
:class:`RunCursor`, the per-run "last seq sent" bookkeeping that makes the stream
gap-free and duplicate-free.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.core import checks
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max, Q

from runtime.channel_layer import JournalChannelLayer, run_group, workflow_group
from runtime.models import JournalEntry, Run, SequenceRun, StepRun

logger = logging.getLogger("trellis.live")

#: More missed entries than this and a subscriber gets a snapshot instead of a replay.
REPLAY_LIMIT = int(os.environ.get("TRELLIS_LIVE_REPLAY_LIMIT", "1000"))
#: A pushed entry whose data is larger than this (JSON bytes) travels without its data;
#: the consumer reads it from the journal.
PUSH_MAX_DATA_BYTES = 32 * 1024
#: How long a publisher trusts what it read of a group's members (seconds): a new
#: subscriber may miss pushes for that long; its consumer catches up from the journal then.
WATCH_TTL_S = 0.2
#: Kinds that describe the run as a whole (the runs list needs only these).
RUN_KINDS_PREFIX = "run_"


# -- publishing ---------------------------------------------------------------------------


def publish(entries: list[dict[str, Any]]) -> None:
    """Push committed journal entries to live subscribers in every process.

    ``entries``: ``{run, workflow, environment, seq, kind, step, data, at}`` dicts, as
    committed. Call it after commit only. Never raises: a failed push is logged, and
    subscribers catch up from the journal.
    """
    if not entries:
        return
    try:
        layer = get_channel_layer()
        if layer is None:
            logger.error("live: no channel layer configured (CHANNEL_LAYERS); push dropped")
            return
        if isinstance(layer, JournalChannelLayer):
            layer.wake()
            return
        _publisher().publish(entries)
    except Exception:
        logger.exception("live: push of %d journal entries failed", len(entries))


def push_messages(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``(group, message)`` pairs for committed entries: one message per run and group."""
    by_run: dict[int, list[dict[str, Any]]] = {}
    heads: dict[int, tuple[int, int]] = {}
    for raw in entries:
        entry = _push_entry(raw)
        heads[entry["run"]] = (entry["workflow"], entry["environment"])
        by_run.setdefault(entry["run"], []).append(entry)
    pairs: list[tuple[str, dict[str, Any]]] = []
    for run_id, run_entries in by_run.items():
        run_entries.sort(key=lambda entry: entry["seq"])
        workflow_id, environment_id = heads[run_id]
        message = {
            "type": "journal.entries",
            "run": run_id,
            "workflow": workflow_id,
            "environment": environment_id,
            "entries": run_entries,
        }
        pairs.append((run_group(run_id), message))
        pairs.append((workflow_group(workflow_id), message))
    return pairs


def _push_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    at: Any = raw.get("at")
    entry = {
        "run": _id(raw["run"]),
        "workflow": _id(raw["workflow"]),
        "environment": _id(raw["environment"]),
        "seq": int(raw["seq"]),
        "kind": str(raw["kind"]),
        "step": raw.get("step") or "",
        "data": raw.get("data"),
        "at": at.isoformat() if isinstance(at, datetime) else at,
    }
    # Big outputs stay out of the channel layer (msgpack over Redis, per subscriber
    # copies); the consumer fetches the entry by (run, seq) instead.
    encoded = json.dumps(entry["data"], cls=DjangoJSONEncoder)
    if len(encoded) > PUSH_MAX_DATA_BYTES:
        entry["data"] = None
        entry["truncated"] = True
    else:
        entry["data"] = json.loads(encoded)
    return entry


def _id(value: Any) -> int:
    return int(getattr(value, "pk", value))


class _Publisher:
    """One event loop thread and one layer instance per process for sync publishers.

    ``async_to_sync`` would build a new event loop (and a new Redis connection) for
    every push; a worker pushes several times per step. Two things keep a worker's
    step loop from paying for pushes nobody reads:

    - with channels-redis, the groups' member counts are read first, synchronously in
      one round trip (``ZCARD``), and only groups someone listens to are sent to (most
      runs have no watcher; a group_send costs several round trips and a Lua script,
      and waking the loop thread costs the worker the GIL). What was read is kept for
      ``WATCH_TTL_S`` (a run's steps commit every millisecond or so: one read per run
      and group instead of one per step). Skipping is safe: the commit came first, a
      subscriber joins its group before it reads the journal, and what a stale "nobody
      listens" skipped in its first ``WATCH_TTL_S`` reaches it with the next push (its
      :class:`RunCursor` reads a skipped range from the journal) or the catch-up;
    - ``send`` does not wait for Redis: this thread pushes in commit order, and what
      piles up meanwhile goes out merged (one message per run and group).
    """

    #: Messages waiting beyond this are dropped, oldest first (the journal keeps them).
    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.config = repr(settings.CHANNEL_LAYERS.get(DEFAULT_CHANNEL_LAYER))
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.watchers = _redis_group_counter(self.layer)
        self.watched_until: dict[str, tuple[float, bool]] = {}  # group -> (expiry, watched)
        self.loop = asyncio.new_event_loop()
        self.lock = threading.Lock()
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.flushing = False
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="trellis-live-publisher", daemon=True
        )
        self.thread.start()
        atexit.register(self.drain)

    def publish(self, entries: list[dict[str, Any]]) -> None:
        """Push committed entries to the groups someone listens to (see the class)."""
        if self.watchers is None:
            self.send(push_messages(entries))
            return
        groups = set()
        for entry in entries:
            groups.add(run_group(_id(entry["run"])))
            groups.add(workflow_group(_id(entry["workflow"])))
        watched = self.watched(groups)
        if watched:
            self.send([pair for pair in push_messages(entries) if pair[0] in watched])

    def watched(self, groups: set[str]) -> set[str]:
        """The groups someone listens to: read for those not known since WATCH_TTL_S."""
        now = time.monotonic()
        known = self.watched_until
        stale = sorted(g for g in groups if (hit := known.get(g)) is None or hit[0] <= now)
        if stale:
            try:
                found = self.watchers(stale)
            except Exception:
                logger.exception("live: reading group members failed; pushing anyway")
                return groups
            if len(known) > 10_000:  # forget the runs that ended long ago
                self.watched_until = known = {g: v for g, v in known.items() if v[0] > now}
            until = now + WATCH_TTL_S
            for group in stale:
                known[group] = (until, group in found)
        return {group for group in groups if known[group][1]}

    def send(self, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        """Queue ``(group, message)`` pairs for the loop thread; returns at once."""
        if not pairs:
            return
        with self.lock:
            self.pending.extend(pairs)
            excess = len(self.pending) - self.MAX_PENDING
            if excess > 0:
                del self.pending[:excess]
                logger.warning("live: %d pushes dropped (the channel layer is too slow)", excess)
            if self.flushing:
                return  # the running flush picks them up
            self.flushing = True
        asyncio.run_coroutine_threadsafe(self._flush(), self.loop)

    async def _flush(self) -> None:
        while True:
            with self.lock:
                batch, self.pending = self.pending, []
                if not batch:
                    self.flushing = False
                    return
            for group, message in merge_messages(batch):
                try:
                    await self.layer.group_send(group, message)
                except Exception:
                    logger.exception("live: push to %s failed", group)

    def drain(self, timeout: float = 2.0) -> None:
        """Wait (a little) for queued pushes to go out: a process about to exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending and not self.flushing:
                    return
            time.sleep(0.005)


def _redis_group_counter(layer: Any) -> Any:
    """For channels-redis: ``fn(groups) -> set of groups with members`` (one pipeline
    per host, synchronous); None for other layers (they are always sent to)."""
    key_of = getattr(layer, "_group_key", None)
    hosts = getattr(layer, "hosts", None)
    if key_of is None or not hosts or not hasattr(layer, "consistent_hash"):
        return None
    import redis

    clients = []
    for host in hosts:
        # Read before the layer connects: channels-redis pops "address" when it does.
        address = host.get("address") if isinstance(host, dict) else None
        if not isinstance(address, str) or set(host) - {"address"}:
            return None  # sentinels, TLS options…: keep to the layer's own code
        clients.append(redis.Redis.from_url(address, socket_timeout=2))

    def watched(groups: list[str]) -> set[str]:
        by_host: dict[int, list[str]] = {}
        for group in groups:
            by_host.setdefault(layer.consistent_hash(group), []).append(group)
        found: set[str] = set()
        for index, names in by_host.items():
            pipe = clients[index].pipeline(transaction=False)
            for group in names:
                pipe.zcard(key_of(group))
            counts = pipe.execute()
            found.update(group for group, n in zip(names, counts, strict=True) if n)
        return found

    return watched


def merge_messages(pairs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Messages for the same group and run merged into one, entries in seq order."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for group, message in pairs:
        found = merged.get((group, message["run"]))
        if found is None:
            merged[(group, message["run"])] = {**message, "entries": list(message["entries"])}
        else:
            found["entries"].extend(message["entries"])
    for message in merged.values():
        message["entries"].sort(key=lambda entry: entry["seq"])
    return [(group, message) for (group, _run), message in merged.items()]


_publisher_lock = threading.Lock()
_publisher_instance: _Publisher | None = None


def _publisher() -> _Publisher:
    global _publisher_instance
    with _publisher_lock:
        current = _publisher_instance
        config = repr(settings.CHANNEL_LAYERS.get(DEFAULT_CHANNEL_LAYER))
        # A forked child has no publisher thread; changed settings (tests) need a new layer.
        if current is None or current.pid != os.getpid() or current.config != config:
            current = _publisher_instance = _Publisher()
        return current


# -- the configuration check ----------------------------------------------------------------


@checks.register(checks.Tags.compatibility)
def channel_layer_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """A broken CHANNEL_LAYERS fails silently at run time (no layer → sockets 500): say so."""
    try:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    except Exception as exc:
        return [
            checks.Error(
                f"CHANNEL_LAYERS['{DEFAULT_CHANNEL_LAYER}'] cannot be loaded: {exc}",
                hint="Unset it to use the embedded journal layer, or fix BACKEND/CONFIG.",
                id="trellis.E101",
            )
        ]
    if "groups" not in getattr(layer, "extensions", []):
        return [
            checks.Error(
                f"The channel layer {type(layer).__name__} does not support groups.",
                id="trellis.E102",
            )
        ]
    return []


# -- reads for the consumers ------------------------------------------------------------------


def journal_entries(
    *, run_id: int, after: int, upto: int | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """A run's journal entries with ``after < seq <= upto``, in order."""
    entries = JournalEntry.objects.filter(run_id=run_id, seq__gt=after)
    if upto is not None:
        entries = entries.filter(seq__lte=upto)
    rows: Any = entries.order_by("seq").values(
        "run_id", "seq", "kind", "step", "data", "at", "run__workflow_id", "run__environment_id"
    )
    if limit is not None:
        rows = rows[:limit]
    return [
        {
            "run": row["run_id"],
            "workflow": row["run__workflow_id"],
            "environment": row["run__environment_id"],
            "seq": row["seq"],
            "kind": row["kind"],
            "step": row["step"],
            "data": row["data"],
            "at": row["at"].isoformat() if row["at"] is not None else None,
        }
        for row in rows
    ]


def journal_last_seq(*, run_id: int) -> int:
    return JournalEntry.objects.filter(run_id=run_id).aggregate(top=Max("seq"))["top"] or 0


def run_snapshot(*, run_id: int) -> dict[str, Any]:
    """The run's current state and steps, and the last seq they include.

    The seq is read first: the state read after it includes at least the entries up
    to it, so a client applying the entries after ``last_seq`` on top loses nothing
    (applying an entry twice sets the same state twice).
    """
    last_seq = journal_last_seq(run_id=run_id)
    run = Run.objects.select_related("workflow__product", "environment", "version").get(pk=run_id)
    steps = list(
        StepRun.objects.filter(run_id=run_id)
        .order_by("id")
        .values(
            "tag",
            "sequence",
            "index",
            "status",
            "attempt",
            "attempts",
            "input",
            "output",
            "error",
            "started_at",
            "finished_at",
            "next_attempt_at",
            "rollback_status",
            "rollback_error",
        )
    )
    sequences = list(
        SequenceRun.objects.filter(run_id=run_id)
        .order_by("id")
        .values("tag", "status", "started_at", "finished_at")
    )
    return {
        "run": run_summary(run) | {"state": run.state, "output": run.output},
        "steps": steps,
        "sequences": sequences,
        "last_seq": last_seq,
    }


def run_summary(run: Any, *, last_seq: int | None = None) -> dict[str, Any]:
    """What a runs list shows of a run."""
    summary = {
        "id": run.pk,
        "workflow": run.workflow_id,
        "environment": run.environment_id,
        "environment_slug": run.environment.slug,
        "version": run.version.number if run.version_id else None,
        "status": run.status,
        "input": run.input,
        "error": run.error,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "parent_run": run.parent_run_id,
        "origin": run.origin_id,
        "origin_kind": run.origin_kind,
    }
    if last_seq is not None:
        summary["last_seq"] = last_seq
    return summary


def runs_snapshot(
    *, workflow_id: int, environment_id: int | None, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The newest runs of a workflow (in one environment, or all) with their last seq,
    and the highest run id that existed when they were read."""
    runs = Run.objects.filter(workflow_id=workflow_id)
    if environment_id is not None:
        runs = runs.filter(environment_id=environment_id)
    # One statement: each run's status and its last seq are read together.
    rows = list(
        runs.select_related("environment", "version")
        .annotate(journal_last=Max("journal__seq"))
        .order_by("-id")[:limit]
    )
    top = Run.objects.aggregate(top=Max("id"))["top"] or 0
    return [run_summary(run, last_seq=run.journal_last or 0) for run in rows], top


# -- the per-subscriber cursor ------------------------------------------------------------------


@dataclass
class Delivery:
    """What to do with pushed entries: send these now, or first read the journal."""

    send: list[dict[str, Any]] = field(default_factory=list)
    # (after, upto): read the journal for this range (a gap or truncated data) and
    # send what it returns instead of ``send``.
    fetch: tuple[int, int] | None = None
    # Too far behind: send a fresh snapshot of the run.
    snapshot: bool = False


@dataclass
class RunCursor:
    """The last seq sent to one subscriber, per run: nothing twice, nothing skipped.

    ``known`` maps run id → last seq sent. ``new_after`` is the highest run id that
    existed when the subscriber's snapshot was read: a run above it is new, so its
    entries are due from seq 1; an older run the subscriber was not shown (outside its
    snapshot) starts at whatever arrives first.
    """

    known: dict[int, int] = field(default_factory=dict)
    new_after: int | None = None
    replay_limit: int = REPLAY_LIMIT

    def last(self, run_id: int) -> int | None:
        return self.known.get(run_id)

    def plan(self, run_id: int, entries: Iterable[Mapping[str, Any]]) -> Delivery:
        """Decide how pushed entries reach the subscriber, in order and exactly once."""
        ordered = sorted(entries, key=lambda entry: entry["seq"])
        last = self.known.get(run_id)
        if last is None:
            if self.new_after is not None and run_id > self.new_after:
                last = 0
            elif ordered:
                last = ordered[0]["seq"] - 1
            else:
                return Delivery()
        fresh = [dict(entry) for entry in ordered if entry["seq"] > last]
        if not fresh:
            return Delivery()
        upto = fresh[-1]["seq"]
        contiguous = all(entry["seq"] == last + n for n, entry in enumerate(fresh, start=1))
        if contiguous and not any(entry.get("truncated") for entry in fresh):
            return Delivery(send=fresh)
        if upto - last > self.replay_limit:
            return Delivery(snapshot=True)
        return Delivery(fetch=(last, upto))

    def mark(self, run_id: int, seq: int) -> None:
        if seq > self.known.get(run_id, 0):
            self.known[run_id] = seq


def runs_behind(
    *, workflow_id: int, environment_id: int | None, known: Mapping[int, int], new_after: int
) -> dict[int, int]:
    """Runs of a workflow whose journal goes past what a subscriber was sent.

    Returns run id → the last seq the subscriber has (0 for a run newer than its
    snapshot that it was never sent anything of).
    """
    runs = Run.objects.filter(workflow_id=workflow_id)
    if environment_id is not None:
        runs = runs.filter(environment_id=environment_id)
    rows = (
        runs.filter(Q(id__in=list(known)) | Q(id__gt=new_after))
        .annotate(top=Max("journal__seq"))
        .values_list("id", "top")
    )
    behind: dict[int, int] = {}
    for run_id, top in rows:
        have = known.get(run_id, 0)
        if (top or 0) > have:
            behind[run_id] = have
    return behind
