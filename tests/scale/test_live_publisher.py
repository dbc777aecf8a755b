"""The scale-out publisher (channels-redis): workers do not pay for pushes nobody reads,
and whatever piles up goes out merged, in order. On the machine's Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from runtime import live

pytestmark = pytest.mark.scale

REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/8"


def entry(run: int, seq: int, workflow: int = 9) -> dict[str, Any]:
    return {
        "run": run,
        "workflow": workflow,
        "environment": 3,
        "seq": seq,
        "kind": "log",
        "data": {},
    }


@pytest.fixture
def redis_layer() -> Iterator[dict[str, Any]]:
    prefix = f"trellis-test-{secrets.token_hex(4)}"
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends.clear()
        yield layers
        live._publisher().drain()
    channel_layers.backends.clear()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_messages_for_one_group_and_run_are_merged_in_seq_order() -> None:
    pairs = live.push_messages([entry(1, 2), entry(2, 1)]) + live.push_messages(
        [entry(1, 3), entry(1, 1)]
    )
    merged = live.merge_messages(pairs)
    assert [(group, message["run"]) for group, message in merged] == [
        ("run.1", 1),
        ("workflow.9", 1),
        ("run.2", 2),
        ("workflow.9", 2),
    ]
    assert [e["seq"] for e in merged[0][1]["entries"]] == [1, 2, 3]


def test_only_groups_someone_listens_to_are_sent_to(redis_layer: dict[str, Any]) -> None:
    layer = channel_layers.make_backend("default")

    async def scenario() -> tuple[list[Any], list[Any]]:
        watcher = await layer.new_channel()
        await layer.group_add("run.1", watcher)
        live.publish([entry(1, 1), entry(2, 1)])  # run 2: nobody watches, nothing sent
        live.publish([entry(1, 2)])
        got = [await asyncio.wait_for(layer.receive(watcher), 5)]
        while sum(len(m["entries"]) for m in got) < 2:
            got.append(await asyncio.wait_for(layer.receive(watcher), 5))
        publisher = live._publisher()
        assert publisher.watchers is not None
        return got, sorted(publisher.watchers(["run.1", "run.2", "workflow.9"]))

    got, watched = asyncio.run(scenario())
    assert [e["seq"] for m in got for e in m["entries"]] == [1, 2]
    assert {m["run"] for m in got} == {1}
    assert watched == ["run.1"]


def test_who_listens_is_read_once_per_group_while_a_run_commits_step_after_step(
    redis_layer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = live._publisher()
    assert publisher.watchers is not None
    reads: list[list[str]] = []
    real = publisher.watchers

    def counting(groups: list[str]) -> set[str]:
        reads.append(groups)
        return set(real(groups))

    monkeypatch.setattr(publisher, "watchers", counting)
    monkeypatch.setattr(live, "WATCH_TTL_S", 0.3)
    for seq in range(1, 11):  # ten steps of run 7 in well under WATCH_TTL_S
        live.publish([entry(7, seq)])
    assert reads == [["run.7", "workflow.9"]]
    live.publish([entry(8, 1)])  # another run of the same workflow: only its own group
    assert reads[1:] == [["run.8"]]
    import time

    time.sleep(0.35)
    live.publish([entry(7, 11)])  # expired: read again, so a new listener is found
    assert reads[2:] == [["run.7", "workflow.9"]]


def test_a_listener_joining_while_nobody_listened_gets_the_skipped_entries_with_the_next_push(
    redis_layer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What RunCursor does for a consumer: a push past a gap reads the gap from the journal.
    live._publisher()  # a fresh publisher for this layer
    monkeypatch.setattr(live, "WATCH_TTL_S", 0.3)
    layer = channel_layers.make_backend("default")

    async def scenario() -> list[int]:
        live.publish([entry(21, 1)])  # nobody listens: skipped, and remembered so
        watcher = await layer.new_channel()
        await layer.group_add("run.21", watcher)
        live.publish([entry(21, 2)])  # still within WATCH_TTL_S: skipped too
        await asyncio.sleep(0.35)
        live.publish([entry(21, 3)])  # read again: sent
        message = await asyncio.wait_for(layer.receive(watcher), 5)
        return [e["seq"] for e in message["entries"]]

    # The first push to arrive is seq 3: the consumer's cursor sees 2 missing after its
    # replay and reads it (tests/runtime/test_consumers.py covers that part).
    assert asyncio.run(scenario()) == [3]
