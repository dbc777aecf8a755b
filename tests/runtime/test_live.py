"""runtime.live: publishing, the per-subscriber cursor, the channel-layer check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from runtime import live
from runtime.live import RunCursor


def entry(seq: int, run: int = 7, **extra: object) -> dict:
    return {"run": run, "seq": seq, "kind": "log", "step": "", "data": {}, **extra}


# -- RunCursor: in order, each seq once ---------------------------------------------------------


def test_the_cursor_sends_contiguous_entries_as_they_are() -> None:
    cursor = RunCursor(known={7: 2})
    plan = cursor.plan(7, [entry(4), entry(3)])
    assert [e["seq"] for e in plan.send] == [3, 4]
    assert plan.fetch is None and not plan.snapshot


def test_the_cursor_drops_entries_already_sent() -> None:
    cursor = RunCursor(known={7: 5})
    assert cursor.plan(7, [entry(4), entry(5)]).send == []
    assert [e["seq"] for e in cursor.plan(7, [entry(5), entry(6)]).send] == [6]


def test_the_cursor_reads_the_journal_for_a_gap() -> None:
    cursor = RunCursor(known={7: 2})
    plan = cursor.plan(7, [entry(5), entry(6)])
    assert plan.send == [] and plan.fetch == (2, 6)


def test_the_cursor_reads_the_journal_for_an_entry_pushed_without_its_data() -> None:
    cursor = RunCursor(known={7: 2})
    assert cursor.plan(7, [entry(3, truncated=True)]).fetch == (2, 3)


def test_the_cursor_asks_for_a_snapshot_when_too_far_behind() -> None:
    cursor = RunCursor(known={7: 2}, replay_limit=10)
    assert cursor.plan(7, [entry(13)]).snapshot
    assert cursor.plan(7, [entry(12)]).fetch == (2, 12)


def test_a_run_newer_than_the_snapshot_is_due_from_its_first_entry() -> None:
    cursor = RunCursor(new_after=100)
    assert cursor.plan(101, [entry(2, run=101)]).fetch == (0, 2)
    assert [e["seq"] for e in cursor.plan(101, [entry(1, run=101)]).send] == [1]


def test_an_older_run_outside_the_snapshot_starts_where_its_pushes_start() -> None:
    cursor = RunCursor(new_after=100)
    assert [e["seq"] for e in cursor.plan(50, [entry(9, run=50)]).send] == [9]


def test_marking_never_moves_the_cursor_back() -> None:
    cursor = RunCursor(known={7: 5})
    cursor.mark(7, 3)
    cursor.mark(8, 1)
    assert cursor.known == {7: 5, 8: 1}


# -- push messages -------------------------------------------------------------------------------


def test_pushes_go_to_the_run_and_the_workflow_groups_one_message_per_run() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    entries = [
        {"run": 1, "workflow": 9, "environment": 3, "seq": 2, "kind": "x", "data": {}, "at": at},
        {"run": 1, "workflow": 9, "environment": 3, "seq": 1, "kind": "y", "data": {"a": 1}},
        {"run": 2, "workflow": 9, "environment": 4, "seq": 1, "kind": "z", "data": None},
    ]
    pairs = live.push_messages(entries)
    assert [group for group, _ in pairs] == ["run.1", "workflow.9", "run.2", "workflow.9"]
    first = pairs[0][1]
    assert first["type"] == "journal.entries" and first["environment"] == 3
    assert [e["seq"] for e in first["entries"]] == [1, 2]
    assert first["entries"][1]["at"] == "2025-01-02T03:04:05+00:00"
    assert first["entries"][0]["step"] == ""


def test_a_big_entry_is_pushed_without_its_data() -> None:
    blob = "x" * (live.PUSH_MAX_DATA_BYTES + 1)
    entries = [{"run": 1, "workflow": 9, "environment": 3, "seq": 1, "kind": "log"}]
    entries[0]["data"] = {"blob": blob}
    (pushed,) = live.push_messages(entries)[0][1]["entries"]
    assert pushed["data"] is None and pushed["truncated"] is True


def test_publishing_without_a_channel_layer_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with override_settings(CHANNEL_LAYERS={}):
        live.publish([entry(1, workflow=1, environment=1)])
    assert "no channel layer" in caplog.text


# -- the configuration check --------------------------------------------------------------------


def test_the_check_passes_on_the_default_configuration() -> None:
    assert live.channel_layer_check() == []


def test_a_channel_layer_that_cannot_load_is_a_startup_error() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "no.such.Layer"}}):
        (error,) = live.channel_layer_check()
    assert error.id == "trellis.E101"


def test_a_missing_channel_layer_is_a_startup_error() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        (error,) = live.channel_layer_check()
    assert error.id == "trellis.E101"


def test_a_channel_layer_without_groups_is_a_startup_error() -> None:
    layers = {"default": {"BACKEND": "channels.layers.BaseChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=layers):
        (error,) = live.channel_layer_check()
    assert error.id == "trellis.E102"
