"""WebSocket consumers for live runs: replay what a client missed, then stream.

Routes (runtime/routing.py), behind the session login and origin check of designer/asgi.py:

- ``/ws/runs/<run_id>/?after=<seq>`` — one run. ``after`` is the last journal ``seq``
  the client has (0 or absent: none). ``&snapshot=1`` asks for a snapshot first.
- ``/ws/workflows/<product>/<workflow_tag>/?env=<slug>&limit=<n>&only=run`` — every run
  of a workflow, in one environment (``env``) or all; ``only=run`` streams only the
  run-level entries (``run_*`` kinds), which is all a runs list needs.

Who may subscribe: any member of the run's product (viewer and up), as for the REST
API. Refusals are sent as close codes right after the handshake, before any data:
4401 not logged in, 4404 no access or no such run/workflow/environment (the same code,
so an outsider learns nothing), 4400 a bad parameter, 1011 the server has no channel
layer. A membership revoked while connected closes the socket with 4404 within one
catch-up interval.

Server → client messages (JSON):

- ``{"type": "entry", "run", "seq", "kind", "step", "data", "at", "workflow",
  "environment"}`` — one journal entry. Per run, seqs arrive strictly increasing and
  without gaps (each seq once) from the client's starting point on.
- ``{"type": "snapshot", "run": {...}, "steps": [...], "sequences": [...],
  "last_seq": n}`` — the run's state including every entry up to ``last_seq``; the
  entries that follow have seq > last_seq. Sent instead of a replay when the client is
  more than REPLAY_LIMIT entries behind (runtime.live), on ``?snapshot=1`` or on request.
- ``{"type": "runs", "runs": [{id, status, last_seq, ...}], "new_after": id}`` — workflow
  subscriptions only, on connect: the newest runs, each with the last seq it includes.
- ``{"type": "ready", ...}`` — the replay is done; what follows is live.
- ``{"type": "pong"}``, ``{"type": "error", "message", "field"?}``.

Client → server: ``{"type": "ping"}``, ``{"type": "snapshot"}`` (run sockets: resend
a snapshot), nothing else.

Reconnect protocol: the client remembers, per run, the highest ``seq`` it has applied
(from ``entry`` messages, or ``last_seq`` of a snapshot). After any disconnect (network,
server restart, deploy) it reconnects to the same URL with ``?after=<that seq>`` (a
runs list simply reconnects: its ``runs`` message is a fresh snapshot), with backoff
(e.g. 0.5 s doubling to 10 s) and stops on 4401/4404/4400. It then receives every entry
it missed exactly once, in order — or a snapshot when it missed too many.

How the server keeps that promise: the consumer joins the run's group BEFORE it reads
the journal, so an entry committed during the replay is both replayed and pushed; a
:class:`runtime.live.RunCursor` drops every entry at or below the last seq sent and,
when a push skips seqs (a lost or late message, a too-slow subscriber whose channel
filled up), reads the missing range from the journal first. When no push arrived for
``CATCHUP_SECONDS``, a catch-up reads the journal once more, for the last entry of a run
whose push was lost (a worker that died between commit and publish). One catch-up also
runs ``JOIN_CATCHUP_SECONDS`` after joining: a scale-out publisher trusts what it read of
a group's members for ``runtime.live.WATCH_TTL_S``, so it may skip a new subscriber's
first pushes; the journal has them by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from designer.models import Environment, Product, Role, Workflow
from designer.permissions import has_role
from runtime import live, metrics
from runtime.channel_layer import run_group, workflow_group
from runtime.models import Run

logger = logging.getLogger("trellis.live")

CATCHUP_SECONDS = float(os.environ.get("TRELLIS_LIVE_CATCHUP_SECONDS", "5"))
#: After joining: once the publishers' cached "nobody listens" has expired (runtime.live).
JOIN_CATCHUP_SECONDS = live.WATCH_TTL_S + 0.1
RUNS_LIMIT_MAX = 500

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_SERVER_ERROR = 1011


class Refused(Exception):
    """A subscription that must not go ahead; carries the close code."""

    def __init__(self, code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin1")
    return {key: values[-1] for key, values in parse_qs(raw).items()}


def _int_param(params: dict[str, str], name: str, default: int, *, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused(CLOSE_BAD_REQUEST, f"{name} must be an integer", name) from None
    if value < 0 or value > maximum:
        raise Refused(CLOSE_BAD_REQUEST, f"{name} must be between 0 and {maximum}", name)
    return value


# -- access checks (sync, run in database_sync_to_async) -----------------------------------------


def run_access(*, user: Any, run_id: int) -> dict[str, int]:
    """The ids a run subscription needs; Refused unless the user is a product member."""
    if user is None or not user.is_authenticated:
        raise Refused(CLOSE_UNAUTHENTICATED, "log in first")
    row = (
        Run.objects.filter(pk=run_id)
        .values("workflow_id", "workflow__product_id", "environment_id")
        .first()
    )
    if row is None or not has_role(user, row["workflow__product_id"], Role.VIEWER):
        raise Refused(CLOSE_NOT_FOUND, "no such run")
    return {
        "workflow": row["workflow_id"],
        "product": row["workflow__product_id"],
        "environment": row["environment_id"],
    }


def workflow_access(
    *, user: Any, product_slug: str, workflow_tag: str, env_slug: str | None
) -> dict[str, int | None]:
    """The ids a workflow subscription needs; Refused unless the user is a member."""
    if user is None or not user.is_authenticated:
        raise Refused(CLOSE_UNAUTHENTICATED, "log in first")
    product = Product.objects.filter(slug=product_slug).values_list("pk", flat=True).first()
    if product is None or not has_role(user, product, Role.VIEWER):
        raise Refused(CLOSE_NOT_FOUND, "no such workflow")
    workflow = (
        Workflow.objects.filter(product_id=product, tag=workflow_tag)
        .values_list("pk", flat=True)
        .first()
    )
    if workflow is None:
        raise Refused(CLOSE_NOT_FOUND, "no such workflow")
    environment = None
    if env_slug:
        environment = (
            Environment.objects.filter(product_id=product, slug=env_slug)
            .values_list("pk", flat=True)
            .first()
        )
        if environment is None:
            raise Refused(CLOSE_NOT_FOUND, "no such environment", "env")
    return {"workflow": workflow, "product": product, "environment": environment}


def still_member(*, user: Any, product_id: int) -> bool:
    user.__dict__.pop("_trellis_roles", None)  # re-read, don't trust the cached role
    return has_role(user, product_id, Role.VIEWER)


# -- the consumers ----------------------------------------------------------------------------


class _LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels: untyped
    """What both subscriptions share: refusal, the cursor, delivery and catch-up."""

    groups_joined: list[str]
    cursor: live.RunCursor
    product_id: int

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.accepted = False
        self.groups_joined = []
        self.cursor = live.RunCursor()
        self._lock = asyncio.Lock()
        self._catchup: asyncio.Task[None] | None = None
        self.last_push = 0.0
        try:
            if self.channel_layer is None:
                logger.error("live: no channel layer (CHANNEL_LAYERS); socket refused")
                raise Refused(CLOSE_SERVER_ERROR, "live updates are not configured")
            await self.subscribe()
        except Refused as refused:
            if not self.accepted:
                await self.accept()
            error: dict[str, Any] = {"type": "error", "message": refused.message}
            if refused.field:
                error["field"] = refused.field
            if refused.code == CLOSE_BAD_REQUEST:
                await self.send_json(error)
            await self.close(code=refused.code)
            return
        self._catchup = asyncio.get_running_loop().create_task(self._catchup_loop())
        self.counted = True
        metrics.LIVE_SOCKETS.inc()

    async def subscribe(self) -> None:
        raise NotImplementedError

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        self.accepted = True
        await super().accept(subprotocol, headers)

    async def join(self, group: str) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.LIVE_SOCKETS.dec()
        if self._catchup is not None:
            self._catchup.cancel()
        if self.channel_layer is not None:
            for group in self.groups_joined:
                with contextlib.suppress(Exception):
                    await self.channel_layer.group_discard(group, self.channel_name)
        await super().websocket_disconnect(message)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "snapshot" and hasattr(self, "run_id"):
            async with self._lock:
                await self.send_snapshot(self.run_id)
        else:
            await self.send_json({"type": "error", "message": "unknown message type"})

    # -- delivery ---------------------------------------------------------------------------

    def wants(self, entry: dict[str, Any]) -> bool:
        return True

    async def journal_entries(self, event: dict[str, Any]) -> None:
        """A ``journal.entries`` push from the channel layer."""
        self.last_push = time.monotonic()
        async with self._lock:
            await self.deliver(int(event["run"]), event["entries"])
        for entry in event["entries"]:
            metrics.observe_push(entry.get("at", ""))

    async def deliver(self, run_id: int, entries: list[dict[str, Any]]) -> None:
        plan = self.cursor.plan(run_id, entries)
        if plan.snapshot:
            await self.send_snapshot(run_id)
            return
        batch = plan.send
        if plan.fetch is not None:
            after, upto = plan.fetch
            batch = await database_sync_to_async(live.journal_entries)(
                run_id=run_id, after=after, upto=upto
            )
        for entry in batch:
            if entry["seq"] <= (self.cursor.last(run_id) or 0):
                continue
            if self.wants(entry):
                entry.pop("truncated", None)
                await self.send_json({"type": "entry", **entry})
            self.cursor.mark(run_id, entry["seq"])

    async def send_snapshot(self, run_id: int) -> None:
        snapshot = await database_sync_to_async(live.run_snapshot)(run_id=run_id)
        await self.send_json({"type": "snapshot", **snapshot})
        self.cursor.known[run_id] = snapshot["last_seq"]

    async def catch_up(self) -> None:
        """Read the journal past what was sent (the safety net for lost pushes)."""
        for run_id, last in list(self.cursor.known.items()):
            missed = await database_sync_to_async(live.journal_entries)(
                run_id=run_id, after=last, limit=self.cursor.replay_limit + 1
            )
            if missed:
                if len(missed) > self.cursor.replay_limit:
                    await self.send_snapshot(run_id)
                else:
                    await self.deliver(run_id, missed)

    async def _catchup_loop(self) -> None:
        # The first catch-up comes right after a publisher's "nobody listens" (read before
        # we joined) has expired: what it skipped meanwhile is in the journal by then.
        first = True
        while True:
            await asyncio.sleep(JOIN_CATCHUP_SECONDS if first else CATCHUP_SECONDS)
            try:
                allowed = await database_sync_to_async(still_member)(
                    user=self.scope["user"], product_id=self.product_id
                )
                if not allowed:
                    await self.close(code=CLOSE_NOT_FOUND)
                    return
                # Only a quiet stream needs the journal read: while pushes flow, a gap
                # shows up as one and is filled then (and entries still in flight are
                # not "missed" — reading them here would look like falling behind).
                if first or time.monotonic() - self.last_push >= CATCHUP_SECONDS:
                    async with self._lock:
                        await self.catch_up()
                first = False
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live: catch-up failed")


class RunConsumer(_LiveConsumer):
    """One run: replay from ``after``, then stream (see the module docstring)."""

    run_id: int

    async def subscribe(self) -> None:
        params = _query(self.scope)
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        after = _int_param(params, "after", 0, maximum=2**62)
        want_snapshot = params.get("snapshot") in {"1", "true", "yes"}
        ids = await database_sync_to_async(run_access)(user=self.scope["user"], run_id=self.run_id)
        self.product_id = ids["product"]
        await self.accept()
        # Join before reading: whatever commits from now on is pushed to us, and
        # whatever committed before is in the journal we are about to read.
        await self.join(run_group(self.run_id))
        last_seq = await database_sync_to_async(live.journal_last_seq)(run_id=self.run_id)
        replayed = 0
        # A client ahead of the journal saw entries a crash of the database host took back
        # (asynchronous worker commits): it must start over from a snapshot.
        if want_snapshot or after > last_seq or last_seq - after > self.cursor.replay_limit:
            await self.send_snapshot(self.run_id)
        else:
            self.cursor.known[self.run_id] = after
            missed = await database_sync_to_async(live.journal_entries)(
                run_id=self.run_id, after=after
            )
            replayed = len(missed)
            await self.deliver(self.run_id, missed)
        await self.send_json(
            {
                "type": "ready",
                "run": self.run_id,
                "last_seq": self.cursor.last(self.run_id),
                "replayed": replayed,
            }
        )


class WorkflowConsumer(_LiveConsumer):
    """Every run of a workflow (in one environment or all): a runs snapshot, then stream."""

    workflow_id: int
    environment_id: int | None
    only_runs: bool

    async def subscribe(self) -> None:
        params = _query(self.scope)
        kwargs = self.scope["url_route"]["kwargs"]
        limit = _int_param(params, "limit", 50, maximum=RUNS_LIMIT_MAX)
        only = params.get("only", "")
        if only not in {"", "run"}:
            raise Refused(CLOSE_BAD_REQUEST, "only must be 'run' or absent", "only")
        self.only_runs = only == "run"
        ids = await database_sync_to_async(workflow_access)(
            user=self.scope["user"],
            product_slug=kwargs["product"],
            workflow_tag=kwargs["workflow"],
            env_slug=params.get("env") or None,
        )
        assert ids["product"] is not None and ids["workflow"] is not None
        self.product_id = ids["product"]
        self.workflow_id = ids["workflow"]
        self.environment_id = ids["environment"]
        await self.accept()
        await self.join(workflow_group(ids["workflow"]))
        runs, top = await database_sync_to_async(live.runs_snapshot)(
            workflow_id=ids["workflow"], environment_id=self.environment_id, limit=limit
        )
        self.cursor.new_after = top
        for run in runs:
            self.cursor.known[run["id"]] = run["last_seq"]
        await self.send_json({"type": "runs", "runs": runs, "new_after": top})
        await self.send_json({"type": "ready", "workflow": ids["workflow"]})

    def wants(self, entry: dict[str, Any]) -> bool:
        return not self.only_runs or entry["kind"].startswith(live.RUN_KINDS_PREFIX)

    async def journal_entries(self, event: dict[str, Any]) -> None:
        if self.environment_id is not None and event["environment"] != self.environment_id:
            return
        await super().journal_entries(event)

    async def catch_up(self) -> None:
        # One query for the whole list: which runs have entries past what was sent.
        behind = await database_sync_to_async(live.runs_behind)(
            workflow_id=self.workflow_id,
            environment_id=self.environment_id,
            known=dict(self.cursor.known),
            new_after=self.cursor.new_after or 0,
        )
        for run_id, last in behind.items():
            missed = await database_sync_to_async(live.journal_entries)(
                run_id=run_id, after=last, limit=self.cursor.replay_limit + 1
            )
            if len(missed) > self.cursor.replay_limit:
                await self.send_snapshot(run_id)
            elif missed:
                self.cursor.known.setdefault(run_id, last)
                await self.deliver(run_id, missed)

    async def send_snapshot(self, run_id: int) -> None:
        # A runs list does not need the steps: the run's summary, then on from its seq.
        snapshot = await database_sync_to_async(live.run_snapshot)(run_id=run_id)
        await self.send_json(
            {"type": "run", "run": snapshot["run"] | {"last_seq": snapshot["last_seq"]}}
        )
        self.cursor.known[run_id] = snapshot["last_seq"]
