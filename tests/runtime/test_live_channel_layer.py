"""The embedded channel layer: journal rows reach local groups, woken across processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from designer.models import Product, VersionState, Workflow, WorkflowVersion
from runtime.channel_layer import JournalChannelLayer, journal_wake, wake_dir
from runtime.models import JournalEntry, Run

pytestmark = pytest.mark.django_db(transaction=True)


def make_run(product: Product, env: str = "dev") -> Run:
    workflow, _ = Workflow.objects.get_or_create(product=product, tag="orders", name="Orders")
    version, _ = WorkflowVersion.objects.get_or_create(
        workflow=workflow, state=VersionState.PUBLISHED, number=1
    )
    return Run.objects.create(
        workflow=workflow, version=version, environment=product.environments.get(slug=env)
    )


def add_entry(run: Run, seq: int, kind: str = "log") -> JournalEntry:
    return JournalEntry.objects.create(
        run=run, seq=seq, kind=kind, data={"seq": seq}, at=timezone.now()
    )


async def next_message(layer: JournalChannelLayer, channel: str, timeout: float) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


def test_a_wake_delivers_a_committed_entry_at_once(product: Product, tmp_path: Path) -> None:
    run = make_run(product)

    async def scenario() -> tuple[dict[str, Any], float]:
        layer = JournalChannelLayer(path=str(tmp_path), poll=30)  # only a wake can be quick
        channel = await layer.new_channel()
        await layer.group_add(f"run.{run.pk}", channel)
        await sync_to_async(add_entry, thread_sensitive=False)(run, 1)
        began = time.monotonic()
        assert layer.wake() == 1
        message = await next_message(layer, channel, 5)
        elapsed = time.monotonic() - began
        await layer.close()
        return message, elapsed

    message, elapsed = asyncio.run(scenario())
    assert elapsed < 1
    assert message["type"] == "journal.entries"
    assert (message["run"], message["workflow"]) == (run.pk, run.workflow_id)
    assert [(e["seq"], e["data"]) for e in message["entries"]] == [(1, {"seq": 1})]


def test_a_wake_from_another_process_reaches_the_tailer(product: Product, tmp_path: Path) -> None:
    run = make_run(product)

    async def scenario() -> dict[str, Any]:
        layer = JournalChannelLayer(path=str(tmp_path), poll=30)
        channel = await layer.new_channel()
        await layer.group_add(f"run.{run.pk}", channel)
        await sync_to_async(add_entry, thread_sensitive=False)(run, 1)
        code = f"from runtime.channel_layer import journal_wake; journal_wake({str(tmp_path)!r})"
        await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=dict(os.environ))
        message = await next_message(layer, channel, 10)
        await layer.close()
        return message

    assert [e["seq"] for e in asyncio.run(scenario())["entries"]] == [1]


def test_without_a_wake_the_tailer_still_polls_while_someone_listens(
    product: Product, tmp_path: Path
) -> None:
    run = make_run(product)

    async def scenario() -> dict[str, Any]:
        layer = JournalChannelLayer(path=str(tmp_path), poll=0.1)
        channel = await layer.new_channel()
        await layer.group_add(f"workflow.{run.workflow_id}", channel)
        await sync_to_async(add_entry, thread_sensitive=False)(run, 1)
        message = await next_message(layer, channel, 5)
        await layer.close()
        return message

    assert asyncio.run(scenario())["run"] == run.pk


def test_only_entries_committed_after_joining_are_pushed(product: Product, tmp_path: Path) -> None:
    run = make_run(product)
    add_entry(run, 1)

    async def scenario() -> dict[str, Any]:
        layer = JournalChannelLayer(path=str(tmp_path), poll=0.05)
        channel = await layer.new_channel()
        await layer.group_add(f"run.{run.pk}", channel)
        await sync_to_async(add_entry, thread_sensitive=False)(run, 2)
        message = await next_message(layer, channel, 5)
        await layer.close()
        return message

    # Entry 1 was there before: the consumer reads it from the journal, not from a push.
    assert [e["seq"] for e in asyncio.run(scenario())["entries"]] == [2]


def test_with_nobody_listening_the_tailer_stops_reading(product: Product, tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, int, int]:
        layer = JournalChannelLayer(path=str(tmp_path), poll=0.05)
        channel = await layer.new_channel()
        await layer.group_add("run.1", channel)
        was_tailing = layer.tailing
        await layer.group_discard("run.1", channel)
        await asyncio.sleep(0.3)
        reads = layer.reads
        layer.wake()
        await asyncio.sleep(0.3)
        stopped = not layer.tailing
        await layer.close()
        return was_tailing and stopped, reads, layer.reads

    stopped, reads_before, reads_after = asyncio.run(scenario())
    assert stopped
    assert reads_after == reads_before


def test_other_groups_stay_local_to_the_process(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], bool]:
        layer = JournalChannelLayer(path=str(tmp_path))
        channel = await layer.new_channel()
        await layer.group_add("chat", channel)
        await layer.group_send("chat", {"type": "hello"})
        message = await next_message(layer, channel, 1)
        return message, layer.tailing

    message, tailing = asyncio.run(scenario())
    assert message == {"type": "hello"}
    assert not tailing  # no journal reads for groups that are not live runs


def test_a_wake_removes_the_socket_of_a_dead_process(tmp_path: Path) -> None:
    directory = wake_dir(tmp_path)
    stale = directory / "1-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # the file stays, nobody listens
    assert journal_wake(tmp_path) == 0
    assert not stale.exists()


def test_a_long_directory_maps_to_a_short_socket_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    assert len(str(wake_dir(deep))) < 60
    assert wake_dir(deep) == wake_dir(deep)


def test_ids_skipped_over_are_asked_for_again_until_they_show_up(tmp_path: Path) -> None:
    layer = JournalChannelLayer(path=str(tmp_path), gap_timeout=10)
    layer.cursor = 10
    layer._advance([{"id": 11}, {"id": 14}])
    assert layer.cursor == 14 and set(layer.gaps) == {12, 13}
    layer._advance([{"id": 12}, {"id": 15}])  # 12 committed late: found, no longer missing
    assert layer.cursor == 15 and set(layer.gaps) == {13}
    layer.gaps[13] = time.monotonic() - 11  # a rolled-back insert never shows up
    layer._advance([])
    assert layer.gaps == {}


def test_the_wake_socket_is_removed_when_the_layer_closes(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        layer = JournalChannelLayer(path=str(tmp_path))
        channel = await layer.new_channel()
        await layer.group_add("run.1", channel)
        bound = len(list(wake_dir(tmp_path).glob("*.sock")))
        await layer.close()
        return bound, len(list(wake_dir(tmp_path).glob("*.sock")))

    assert asyncio.run(scenario()) == (1, 0)


def test_the_embedded_default_serves_a_web_process_and_a_worker(tmp_path: Path) -> None:
    """Settings smoke test: without REDIS_URL the layer is the journal layer."""
    code = (
        "import django; django.setup();"
        "from channels.layers import get_channel_layer;"
        "print(type(get_channel_layer()).__name__)"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env |= {"DJANGO_SETTINGS_MODULE": "tests.settings", "TRELLIS_VAR_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "JournalChannelLayer"
