"""The live-run consumers in process: who may subscribe, the replay, the protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from designer.asgi import application
from designer.models import Membership, Product
from runtime import consumers
from runtime.models import JournalEntry, Run
from tests.runtime.test_live_channel_layer import make_run

pytestmark = pytest.mark.django_db(transaction=True)


def cookie_for(user: User | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def run_with_entries(product: Product, count: int) -> Run:
    run = make_run(product)
    for seq in range(1, count + 1):
        JournalEntry.objects.create(
            run=run, seq=seq, kind="log", step="a", data={"n": seq}, at=timezone.now()
        )
    return run


def talk(
    path: str, user: User | None, script: Callable[[WebsocketCommunicator], Awaitable[Any]]
) -> Any:
    headers = cookie_for(user)

    async def scenario() -> Any:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        try:
            return await script(communicator)
        finally:
            await communicator.disconnect()
            layer = get_channel_layer()
            if layer is not None:
                await layer.flush()

    return asyncio.run(scenario())


async def close_code(communicator: WebsocketCommunicator) -> tuple[list[Any], int]:
    """Messages sent before the close, and the close code."""
    sent = []
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return sent, output.get("code", 1000)
        sent.append(output)


async def messages(communicator: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await communicator.receive_json_from(timeout=5) for _ in range(count)]


def test_a_viewer_gets_the_missed_entries_then_ready(product: Product, viewer_user: User) -> None:
    run = run_with_entries(product, 3)
    got = talk(f"/ws/runs/{run.pk}/?after=1", viewer_user, lambda c: messages(c, 3))
    assert [(m["type"], m.get("seq")) for m in got] == [("entry", 2), ("entry", 3), ("ready", None)]
    assert got[0]["data"] == {"n": 2} and got[0]["step"] == "a"
    assert got[2] == {"type": "ready", "run": run.pk, "last_seq": 3, "replayed": 2}


def test_an_outsider_is_closed_with_4404_before_any_data(product: Product, outsider: User) -> None:
    run = run_with_entries(product, 2)
    assert talk(f"/ws/runs/{run.pk}/", outsider, close_code) == ([], 4404)
    path = "/ws/workflows/acme/orders/"
    assert talk(path, outsider, close_code) == ([], 4404)


def test_anonymous_is_closed_with_4401(product: Product) -> None:
    run = run_with_entries(product, 1)
    assert talk(f"/ws/runs/{run.pk}/", None, close_code) == ([], 4401)


def test_a_superuser_without_membership_may_watch(product: Product) -> None:
    root = User.objects.create_superuser(username="root", password="pw-root")
    run = run_with_entries(product, 1)
    got = talk(f"/ws/runs/{run.pk}/", root, lambda c: messages(c, 2))
    assert [m["type"] for m in got] == ["entry", "ready"]


def test_without_a_channel_layer_the_socket_is_refused_not_a_500(
    product: Product, viewer_user: User
) -> None:
    run = run_with_entries(product, 1)
    with override_settings(CHANNEL_LAYERS={}):
        assert get_channel_layer() is None
        assert talk(f"/ws/runs/{run.pk}/", viewer_user, close_code) == ([], 1011)


def test_a_snapshot_can_be_asked_for(product: Product, viewer_user: User) -> None:
    run = run_with_entries(product, 2)

    async def script(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
        first = await messages(communicator, 2)
        await communicator.send_json_to({"type": "snapshot"})
        return [*first, await communicator.receive_json_from(timeout=5)]

    snapshot, ready, again = talk(f"/ws/runs/{run.pk}/?snapshot=1", viewer_user, script)
    assert snapshot["type"] == "snapshot" and snapshot["last_seq"] == 2
    assert snapshot["run"]["id"] == run.pk and snapshot["steps"] == []
    assert ready["last_seq"] == 2 and ready["replayed"] == 0
    assert again["type"] == "snapshot"


def test_a_client_ahead_of_the_journal_starts_over_from_a_snapshot(
    product: Product, viewer_user: User
) -> None:
    # It saw entries the journal no longer has (a database host crash took back
    # asynchronous worker commits): replaying "after 5" would skip what is written next.
    run = run_with_entries(product, 2)
    snapshot, ready = talk(f"/ws/runs/{run.pk}/?after=5", viewer_user, lambda c: messages(c, 2))
    assert snapshot["type"] == "snapshot" and snapshot["last_seq"] == 2
    assert ready["type"] == "ready" and ready["last_seq"] == 2


def test_ping_pong_and_unknown_messages(product: Product, viewer_user: User) -> None:
    run = run_with_entries(product, 0)

    async def script(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
        await communicator.receive_json_from(timeout=5)  # ready
        await communicator.send_json_to({"type": "ping"})
        await communicator.send_json_to({"type": "subscribe-everything"})
        return await messages(communicator, 2)

    assert talk(f"/ws/runs/{run.pk}/", viewer_user, script) == [
        {"type": "pong"},
        {"type": "error", "message": "unknown message type"},
    ]


def test_a_revoked_membership_ends_the_subscription(
    product: Product, viewer_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "CATCHUP_SECONDS", 0.1)
    run = run_with_entries(product, 0)

    async def script(communicator: WebsocketCommunicator) -> tuple[list[Any], int]:
        await communicator.receive_json_from(timeout=5)  # ready
        await asyncio.to_thread(Membership.objects.filter(user=viewer_user).delete)
        return await close_code(communicator)

    assert talk(f"/ws/runs/{run.pk}/", viewer_user, script) == ([], 4404)


def test_a_lost_push_is_caught_up_from_the_journal(
    product: Product, viewer_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "CATCHUP_SECONDS", 0.1)
    run = run_with_entries(product, 1)

    def commit_silently() -> None:  # no publish, no wake: as if the worker died
        JournalEntry.objects.create(run=run, seq=2, kind="run_completed", at=timezone.now())

    async def script(communicator: WebsocketCommunicator) -> dict[str, Any]:
        await messages(communicator, 2)  # entry 1, ready
        await asyncio.to_thread(commit_silently)
        return await communicator.receive_json_from(timeout=5)

    with override_settings(
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "runtime.channel_layer.JournalChannelLayer",
                "CONFIG": {"poll": 60},  # the tailer will not find it in time
            }
        }
    ):
        caught = talk(f"/ws/runs/{run.pk}/", viewer_user, script)
    assert (caught["seq"], caught["kind"]) == (2, "run_completed")


def test_a_workflow_subscription_lists_the_newest_runs_of_its_environment(
    product: Product, viewer_user: User
) -> None:
    older = run_with_entries(product, 2)
    newer = run_with_entries(product, 1)
    make_run(product, "staging")
    got = talk("/ws/workflows/acme/orders/?env=dev&limit=1", viewer_user, lambda c: messages(c, 2))
    runs, ready = got
    assert runs["type"] == "runs" and ready["type"] == "ready"
    assert [(r["id"], r["last_seq"], r["environment_slug"]) for r in runs["runs"]] == [
        (newer.pk, 1, "dev")
    ]
    assert runs["new_after"] > newer.pk > older.pk  # the staging run is newer still


@pytest.mark.parametrize(
    ("query", "field"),
    [("env=dev&limit=9999", "limit"), ("env=dev&only=steps", "only"), ("limit=-1", "limit")],
)
def test_bad_workflow_parameters_are_named(
    product: Product, viewer_user: User, query: str, field: str
) -> None:
    sent, code = talk(f"/ws/workflows/acme/orders/?{query}", viewer_user, close_code)
    assert code == 4400
    assert f'"field": "{field}"' in sent[0]["text"]


def test_an_unknown_environment_is_not_found(product: Product, viewer_user: User) -> None:
    make_run(product)
    assert talk("/ws/workflows/acme/orders/?env=nope", viewer_user, close_code) == ([], 4404)


def test_a_runs_list_catches_up_a_new_run_whose_pushes_were_lost(
    product: Product, viewer_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "CATCHUP_SECONDS", 0.1)
    make_run(product)  # the workflow exists

    def start_silently() -> int:
        run = make_run(product)
        JournalEntry.objects.create(
            run=run, seq=1, kind="run_started", data={"input": {}}, at=timezone.now()
        )
        return run.pk

    async def script(communicator: WebsocketCommunicator) -> tuple[int, dict[str, Any]]:
        await messages(communicator, 2)  # runs, ready
        run_id = await asyncio.to_thread(start_silently)
        return run_id, await communicator.receive_json_from(timeout=5)

    with override_settings(
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "runtime.channel_layer.JournalChannelLayer",
                "CONFIG": {"poll": 60},
            }
        }
    ):
        run_id, caught = talk("/ws/workflows/acme/orders/?env=dev&only=run", viewer_user, script)
    assert (caught["run"], caught["seq"], caught["kind"]) == (run_id, 1, "run_started")


def test_open_sockets_and_push_latency_are_measured(product: Product, viewer_user: User) -> None:
    from runtime import metrics
    from runtime.channel_layer import run_group

    def sample(metric: Any, name: str) -> float:
        return next(s.value for s in metric.collect()[0].samples if s.name == name)

    run = run_with_entries(product, 1)
    pushes = sample(metrics.PUSH_LATENCY, "trellis_push_latency_seconds_count")
    sockets = sample(metrics.LIVE_SOCKETS, "trellis_live_sockets")

    async def script(communicator: WebsocketCommunicator) -> dict[str, Any]:
        await messages(communicator, 2)  # the entry, then ready
        assert sample(metrics.LIVE_SOCKETS, "trellis_live_sockets") == sockets + 1
        entry = {"run": run.pk, "seq": 2, "kind": "log", "step": "a", "data": {"n": 2},
                 "at": timezone.now().isoformat()}  # fmt: skip
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(
            run_group(run.pk), {"type": "journal.entries", "run": run.pk, "entries": [entry]}
        )
        pushed: dict[str, Any] = await communicator.receive_json_from(timeout=5)
        return pushed

    pushed = talk(f"/ws/runs/{run.pk}/", viewer_user, script)
    assert (pushed["type"], pushed["seq"]) == ("entry", 2)
    assert sample(metrics.LIVE_SOCKETS, "trellis_live_sockets") == sockets
    assert sample(metrics.PUSH_LATENCY, "trellis_push_latency_seconds_count") == pushes + 1
    assert sample(metrics.PUSH_LATENCY, "trellis_push_latency_seconds_sum") < 60
