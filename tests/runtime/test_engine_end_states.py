"""Truthful end states: when a run ends, however it ends, every step and sequence that had
not finished gets a final journaled state (``cancelled`` if it had started, ``not_run``
if not, with why), so the journal alone rebuilds what the database (and the monitor)
holds. One test per way a run ends, each rebuilding the picture from the journal."""

from __future__ import annotations

import time
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import JournalEntry, Run, SequenceRun, StepRun
from runtime.services import run_cancel
from tests.runtime.conftest import code, drain, run_until_done
from tests.runtime.test_engine_runs import seq, spec, start

pytestmark = pytest.mark.django_db

OPEN = {"pending", "running", "waiting", "retrying"}

STEP_KINDS = {
    "step_started": "running",
    "step_completed": "completed",
    "step_retrying": "retrying",
    "step_skipped": "skipped",
    "step_waiting": "waiting",
    "step_rolled_back": "rolled_back",
    "step_cancelled": "cancelled",
    "step_not_run": "not_run",
}
SEQUENCE_KINDS = {
    "sequence_started": "running",
    "sequence_completed": "completed",
    "sequence_skipped": "skipped",
    "sequence_failed": "failed",
    "sequence_cancelled": "cancelled",
    "sequence_not_run": "not_run",
}
RUN_KINDS = {
    "run_completed": "completed",
    "run_failed": "failed",
    "run_rolled_back": "rolled_back",
    "run_cancelled": "cancelled",
}


def rebuild(entries: list[dict[str, Any]], step_sequences: dict[str, str]) -> dict[str, Any]:
    """The picture the monitor draws, from journal entries alone (as the monitor's own
    model folds them: frontend/src/monitor/model.ts)."""
    steps = dict.fromkeys(step_sequences, "pending")
    sequences: dict[str, str] = {}
    run = "pending"
    for e in entries:
        kind, tag, data = e["kind"], e["step"], e["data"]
        if kind == "step_failed":
            steps[tag] = "failed_allowed" if data.get("allowed") else "failed"
        elif kind in STEP_KINDS:
            steps[tag] = STEP_KINDS[kind]
        elif kind in SEQUENCE_KINDS:
            sequences[tag] = SEQUENCE_KINDS[kind]
            if kind == "sequence_skipped":
                for step, sequence in step_sequences.items():
                    if sequence == tag and steps[step] == "pending":
                        steps[step] = "skipped"
        elif kind in RUN_KINDS:
            run = RUN_KINDS[kind]
    return {"run": run, "steps": steps, "sequences": sequences}


def journal_of(run: Run) -> list[dict[str, Any]]:
    return list(JournalEntry.objects.filter(run=run).order_by("seq").values("kind", "step", "data"))


def assert_journal_tells_the_truth(run: Run) -> dict[str, Any]:
    """Nothing open in the database, and the journal alone gives the same picture."""
    run.refresh_from_db()
    step_rows = dict(StepRun.objects.filter(run=run).values_list("tag", "status"))
    seq_rows = dict(SequenceRun.objects.filter(run=run).values_list("tag", "status"))
    sequences_of = dict(StepRun.objects.filter(run=run).values_list("tag", "sequence"))
    picture = rebuild(journal_of(run), sequences_of)
    assert not OPEN & set(step_rows.values()), step_rows
    assert not {"running", "waiting", "retrying", "pending"} & set(seq_rows.values()), seq_rows
    assert picture["run"] == run.status
    assert picture["steps"] == step_rows
    # Skipped sequences' steps and never-started ones need no entry of their own, but
    # every sequence that ever started or was stopped is there.
    assert {t: s for t, s in seq_rows.items() if t in picture["sequences"]} == picture["sequences"]
    assert set(picture["sequences"]) == set(seq_rows), (picture["sequences"], seq_rows)
    return picture


def whys(run: Run, kind: str) -> dict[str, str]:
    return {e["step"]: e["data"].get("why", "") for e in journal_of(run) if e["kind"] == kind}


def test_a_completed_run_with_skipped_work_tells_it_all_in_the_journal(
    product: Product, env_dev: Environment
) -> None:
    body = spec(
        seq("a", code("add", tag="one"), code("add", tag="skip-me", condition="1 == 2")),
        seq("b", code("add", tag="two"), parents=["a"]),
        seq("c", code("add", tag="three"), parents=["a"], skip_if="1 == 1"),
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed", run.error
    picture = assert_journal_tells_the_truth(run)
    assert picture["steps"] == {
        "one": "completed",
        "skip-me": "skipped",
        "two": "completed",
        "three": "skipped",
    }


def test_a_rolled_back_run_journals_the_steps_it_never_ran(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {
        "type": "CODE",
        "event": "tests.runtime.steps:record",
        "input": {"undo": "$Step{a}{sum}"},
    }
    body = spec(
        seq("m", code("add", tag="a", rollback=undo), code("boom", tag="b"), code("add", tag="c")),
        seq("side", {"type": "WAIT_SIGNAL", "event": "go", "tag": "wait"}),
        seq("after", code("add", tag="d"), parents=["m"]),
        signals={"go": {}},
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "rolled_back", run.error
    picture = assert_journal_tells_the_truth(run)
    # "side" may have parked on its signal before "b" failed, or not have begun.
    waited = picture["steps"].pop("wait")
    assert waited in {"cancelled", "not_run"}
    assert picture["steps"] == {"a": "rolled_back", "b": "failed", "c": "not_run", "d": "not_run"}
    assert picture["sequences"] == {
        "m": "failed",
        "side": "cancelled",
        "after": "not_run",
    }
    assert whys(run, "step_not_run")["c"].startswith("the run ended rolled_back")
    assert "boom" in whys(run, "step_not_run")["c"]
    assert "(failed)" in whys(run, "sequence_cancelled")["side"]
    # The rollback call's own input and output are journaled (the monitor shows them).
    (undone,) = [e["data"] for e in journal_of(run) if e["kind"] == "step_rolled_back"]
    assert undone["input"] == {"undo": 0}
    assert undone["output"] == {"step": "a", "input": {"undo": 0}}
    # The final entries come with (before) the run's end, in one transaction.
    kinds = [e["kind"] for e in journal_of(run)]
    assert kinds[-1] == "run_rolled_back"
    assert kinds.index("step_not_run") > kinds.index("step_rolled_back")


def test_a_cancelled_run_shows_no_step_waiting(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {"type": "CODE", "event": "tests.runtime.steps:record"}
    body = spec(
        seq(
            "m",
            code("add", tag="a", rollback=undo),
            {"type": "WAIT_SIGNAL", "event": "approve", "tag": "wait"},
            code("add", tag="finish"),
        ),
        signals={"approve": {}},
    )
    run = start(product, env_dev, body)
    drain()
    run_cancel(run=run, reason="customer called")
    run = run_until_done(run)
    assert run.status == "cancelled"
    picture = assert_journal_tells_the_truth(run)
    assert picture["steps"] == {"a": "rolled_back", "wait": "cancelled", "finish": "not_run"}
    assert picture["sequences"] == {"m": "cancelled"}
    assert "customer called" in whys(run, "step_cancelled")["wait"]
    assert whys(run, "step_cancelled")["wait"].startswith("the run ended cancelled")


def test_a_failed_run_without_compensation_closes_what_was_open(
    product: Product, env_dev: Environment
) -> None:
    body = spec(
        seq("m", code("add", tag="a"), code("boom", tag="b"), code("add", tag="c")),
        seq("slow", {"type": "SLEEP", "event": "30s", "tag": "nap"}, code("add", tag="e")),
        options={"rollback_strategy": "none"},
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    picture = assert_journal_tells_the_truth(run)
    assert picture["steps"]["c"] == "not_run"
    assert picture["steps"]["e"] == "not_run"
    assert picture["steps"]["nap"] in {"cancelled", "not_run"}  # parked, or not begun


def test_a_timed_out_run_journals_its_parked_step(product: Product, env_dev: Environment) -> None:
    from runtime.executor import sweep_once

    body = spec(
        seq("m", {"type": "SLEEP", "event": "5s", "tag": "nap"}, code("add", tag="after")),
        options={"timeout": 200},
    )
    run = start(product, env_dev, body)
    drain()
    time.sleep(0.3)
    assert sweep_once()["deadlines"] == 1
    run = run_until_done(run)
    assert run.status == "failed"
    picture = assert_journal_tells_the_truth(run)
    assert picture["steps"] == {"nap": "cancelled", "after": "not_run"}


def test_a_terminated_child_and_its_cancelled_parent_both_tell_the_truth(
    product: Product, env_dev: Environment
) -> None:
    from tests.runtime.conftest import make_workflow

    make_workflow(
        product,
        spec(seq("c", {"type": "WAIT_SIGNAL", "event": "go", "tag": "w"}), signals={"go": {}}),
        tag="child",
    )
    body = spec(seq("m", {"type": "FEATURE", "event": "child", "tag": "sub", "input": {}}))
    run = start(product, env_dev, body)
    drain()
    run_cancel(run=run)
    run = run_until_done(run)
    child = run_until_done(Run.objects.get(parent_run=run))
    assert (run.status, child.status) == ("cancelled", "cancelled")
    assert assert_journal_tells_the_truth(run)["steps"] == {"sub": "cancelled"}
    assert assert_journal_tells_the_truth(child)["steps"] == {"w": "cancelled"}


def test_a_run_ended_outright_by_the_poison_guard_closes_its_steps(
    product: Product, env_dev: Environment
) -> None:
    from runtime.engine.finishing import run_end_broken
    from runtime.engine.store import store

    body = spec(
        seq("m", {"type": "WAIT_SIGNAL", "event": "go", "tag": "w"}, code("add", tag="x")),
        signals={"go": {}},
    )
    run = start(product, env_dev, body)
    drain()
    from django.db import transaction

    with transaction.atomic():
        store().lock_run(run.pk)
        run_end_broken(Run.objects.get(pk=run.pk), {"code": "task_failed", "message": "crash"})
    picture = assert_journal_tells_the_truth(run)
    assert picture["run"] == "failed"
    assert picture["steps"] == {"w": "cancelled", "x": "not_run"}
    assert "crash" in whys(run, "step_not_run")["x"]
