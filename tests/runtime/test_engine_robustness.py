"""Runs that used to wedge: values no step can hold, errors in the engine's handling of a
step, and tasks that keep crashing. Each ends the run (failed, journaled), in-process here
and on a real qcluster in test_worker_robustness.py (issue 13, items 4 and 5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from designer.models import Environment, Product
from runtime import executor
from runtime.models import Run, SequenceRun, StepRun
from runtime.services import run_start
from tests.runtime.conftest import drain, journal_kinds, make_workflow, run_until_done

pytestmark = pytest.mark.django_db


def set_state(tag: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "SET_STATE", "event": tag, "tag": tag, "input": values, **extra}


def start(product: Product, env: Environment, events: list[dict[str, Any]], **input: Any) -> Run:
    spec = {"sequences": [{"tag": "main", "events": events}]}
    return run_start(workflow=make_workflow(product, spec), environment=env, input=input)


def step_error(run: Run, tag: str) -> str:
    return str((StepRun.objects.get(run=run, tag=tag).error or {}).get("message", ""))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("$Add(1e308, 1e308)", "not a finite number"),
        ("$Dateformat(99999999999999999999, 'YYYY')", "$Dateformat"),
        ("$Subtract(-1e308, 1e308)", "not a finite number"),
        ("$Add($Input{big}, $Input{big})", "not a finite number"),
    ],
)
def test_a_value_no_step_can_hold_fails_the_step_and_the_run(
    product: Product, env_dev: Environment, expression: str, message: str
) -> None:
    events = [set_state("first", {"ok": 1}), set_state("attack", {"v": expression}, retries=3)]
    run = run_until_done(start(product, env_dev, events, big=1e308))
    assert run.status in ("failed", "rolled_back"), run.status
    step = StepRun.objects.get(run=run, tag="attack")
    assert step.status == "failed"
    assert step.attempt == 1  # an expression error is not retried
    assert message in step_error(run, "attack")
    assert ("step_failed", "attack") in journal_kinds(run)
    assert run.task_failures == 0


def test_a_condition_that_cannot_be_evaluated_fails_its_step(
    product: Product, env_dev: Environment
) -> None:
    events = [set_state("s", {"v": 1}, condition="$Add($Input{x}, 1) > 2")]
    run = run_until_done(start(product, env_dev, events, x="not a number"))
    assert run.status == "failed"
    assert "condition" in step_error(run, "s")


def test_an_unforeseen_error_in_the_engine_fails_the_step_not_the_task(
    product: Product, env_dev: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a bug in the engine")

    monkeypatch.setattr(executor.SequenceDriver, "set_state_step", broken)
    run = run_until_done(start(product, env_dev, [set_state("s", {"v": 1}, retries=2)]))
    assert run.status == "failed"
    step = StepRun.objects.get(run=run, tag="s")
    assert step.status == "failed" and step.attempt == 1
    assert "KeyError" in step_error(run, "s")


def doubling(n: int) -> list[dict[str, Any]]:
    """The attack: each step's text is twice the previous one's."""
    events = [set_state("s0", {"v": "$Input{seed}"})]
    for k in range(1, n + 1):
        prev = f"$Step{{s{k - 1}}}{{v}}"
        events.append(set_state(f"s{k}", {f"v{k}": "x", "v": f"$Concat({prev}, {prev})"}))
    return events


def largest_stored(run: Run) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MAX(LENGTH(output)), MAX(LENGTH(input)) FROM runtime_steprun WHERE run_id = %s",
            [run.pk],
        )
        outputs, inputs = cursor.fetchone()
        cursor.execute(
            "SELECT MAX(LENGTH(data)) FROM runtime_journalentry WHERE run_id = %s", [run.pk]
        )
        (journal,) = cursor.fetchone()
        cursor.execute("SELECT LENGTH(state) FROM runtime_run WHERE id = %s", [run.pk])
        (state,) = cursor.fetchone()
    return max(outputs or 0, inputs or 0, journal or 0, state or 0)


def test_doubling_concat_steps_stop_at_the_step_caps(
    product: Product, env_dev: Environment
) -> None:
    caps = {"TRELLIS_MAX_STEP_OUTPUT_BYTES": 50_000, "TRELLIS_MAX_STEP_INPUT_BYTES": 50_000}
    with override_settings(**caps):
        run = run_until_done(start(product, env_dev, doubling(14), seed="x" * 1000))
    assert run.status in ("failed", "rolled_back")
    failed = StepRun.objects.get(run=run, status="failed")
    assert failed.tag == "s6"  # 64,000 characters: the first value over 50,000 bytes
    assert "is larger than 50000 bytes (TRELLIS_MAX_STEP_" in step_error(run, "s6")
    assert largest_stored(run) < 50_000
    assert not StepRun.objects.filter(run=run, tag="s7", status="completed").exists()


def test_doubling_concat_stops_at_the_expression_length_cap(
    product: Product, env_dev: Environment
) -> None:
    # Defaults: the $Concat result itself is refused before any step output is built.
    run = run_until_done(start(product, env_dev, doubling(14), seed="x" * 100_000))
    assert run.status in ("failed", "rolled_back")
    failed = StepRun.objects.get(run=run, status="failed")
    assert failed.tag == "s4"  # 1.6 M characters: over TRELLIS_MAX_VALUE_LENGTH
    assert "longer than 1000000 characters" in step_error(run, "s4")
    assert largest_stored(run) < 1_000_000


def test_the_run_state_has_a_cap(product: Product, env_dev: Environment) -> None:
    events = [set_state(f"s{k}", {f"k{k}": "$Input{text}"}) for k in range(5)]
    with override_settings(TRELLIS_MAX_STATE_BYTES=35_000):
        run = run_until_done(start(product, env_dev, events, text="y" * 10_000))
    assert run.status in ("failed", "rolled_back")
    assert StepRun.objects.get(run=run, status="failed").tag == "s3"
    assert "TRELLIS_MAX_STATE_BYTES" in step_error(run, "s3")
    assert len(str(Run.objects.get(pk=run.pk).state)) < 35_000


def test_an_oversized_run_output_ends_the_run_with_an_error_output(
    product: Product, env_dev: Environment
) -> None:
    spec = {
        "sequences": [{"tag": "main", "events": [set_state("s", {"v": "$Input{text}"})]}],
        "output": {"a": "$Step{s}{v}", "b": "$Step{s}{v}"},
    }
    wf = make_workflow(product, spec)
    with override_settings(TRELLIS_MAX_RUN_OUTPUT_BYTES=15_000):
        run = run_start(workflow=wf, environment=env_dev, input={"text": "z" * 10_000})
        run = run_until_done(run)
    assert run.status == "completed"
    assert "TRELLIS_MAX_RUN_OUTPUT_BYTES" in run.output["error"]


# --- The poison-run guard -------------------------------------------------------------------


def crash_every_task(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: Any, seq_id: int, seq_tag: str) -> None:
        raise RuntimeError("boom: a bug before any step logic")

    monkeypatch.setattr(executor.SequenceDriver, "drive", crash)


@override_settings(TRELLIS_RUN_MAX_TASK_FAILURES=3)
def test_a_run_whose_task_keeps_crashing_is_failed_after_the_limit(
    product: Product, env_dev: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_q.models import Failure

    crash_every_task(monkeypatch)
    run = start(product, env_dev, [set_state("s", {"v": 1})])
    run = run_until_done(run, timeout=15)
    assert run.status == "failed", run.status
    assert run.error["code"] == "task_failed"
    assert "3 times" in run.error["message"] and "boom" in run.error["message"]
    failures = run.journal.filter(kind="task_failed").order_by("seq")
    assert [e.data["failures"] for e in failures] == [1, 2, 3]
    assert journal_kinds(run)[-1] == ("run_failed", "")
    assert not Failure.objects.exists()  # nothing piles up in django-q2


@override_settings(TRELLIS_RUN_MAX_TASK_FAILURES=3)
def test_a_finished_step_resets_the_count(
    product: Product, env_dev: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = start(product, env_dev, [set_state("a", {"v": 1}), set_state("b", {"v": 2})])
    Run.objects.filter(pk=run.pk).update(task_failures=2)
    run = run_until_done(run)
    assert run.status == "completed"
    assert run.task_failures == 0


@override_settings(TRELLIS_RUN_MAX_TASK_FAILURES=2)
def test_a_dead_worker_counts_and_the_sweep_stops_a_poison_run(
    product: Product, env_dev: Environment
) -> None:
    run = start(product, env_dev, [set_state("s", {"v": 1})])
    seq = SequenceRun.objects.get(run=run)

    def die_holding_the_lease() -> None:
        past = timezone.now() - timedelta(seconds=60)
        SequenceRun.objects.filter(pk=seq.pk).update(
            status="running", lease_owner="dead-worker", lease_until=past, kicked_at=None
        )

    from django_q.models import OrmQ

    OrmQ.objects.all().delete()  # the worker took the task and died
    die_holding_the_lease()
    executor.sweep_once()
    run.refresh_from_db()
    assert run.task_failures == 1 and run.status not in ("failed",)
    OrmQ.objects.all().delete()
    die_holding_the_lease()
    executor.sweep_once()
    run = run_until_done(run)
    assert run.status == "failed"
    assert run.error["code"] == "task_failed"
    assert "stopped (killed or timed out)" in run.error["message"]


@override_settings(TRELLIS_RUN_MAX_TASK_FAILURES=2)
def test_a_compensation_that_keeps_crashing_still_ends_the_run(
    product: Product, env_dev: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Any) -> None:
        raise RuntimeError("compensation bug")

    monkeypatch.setattr(executor.Compensator, "execute", crash)
    run = run_until_done(start(product, env_dev, [set_state("s", {"v": "$Add(1e308, 1e308)"})]))
    assert run.status == "failed"
    assert run.error["code"] == "task_failed"
    assert "compensation bug" in run.error["message"]
    drain()


@override_settings(TRELLIS_RUN_MAX_TASK_FAILURES=1)
def test_a_dead_compensating_worker_counts_and_the_run_still_ends(
    product: Product, env_dev: Environment
) -> None:
    from django_q.models import OrmQ

    run = start(product, env_dev, [set_state("s", {"v": 1})])
    OrmQ.objects.all().delete()
    past = timezone.now() - timedelta(seconds=60)
    # The run is winding down and its compensating worker died holding the run's lease.
    Run.objects.filter(pk=run.pk).update(
        stop_reason="failed", lease_owner="dead-worker", lease_until=past, kicked_at=None
    )
    SequenceRun.objects.filter(run=run).update(status="cancelled")
    executor.sweep_once()
    run.refresh_from_db()
    assert run.status == "failed"
    assert "compensating this run stopped" in run.error["message"]
    # The step the run never got to is journaled as not run, with the run's end.
    assert journal_kinds(run)[-3:] == [
        ("task_failed", ""),
        ("step_not_run", "s"),
        ("run_failed", ""),
    ]


def test_many_copies_of_a_large_value_in_one_input_are_refused_while_resolving(
    product: Product, env_dev: Environment
) -> None:
    # Each copy is under the length cap; a thousand of them would be gigabytes in memory.
    copies = {f"c{k}": "copy: $Step{s0}{v}" for k in range(1000)}
    events = [set_state("s0", {"v": "$Input{text}"}), set_state("many", copies)]
    run = run_until_done(start(product, env_dev, events, text="w" * 600_000))
    assert run.status in ("failed", "rolled_back")
    assert "too much text in all" in step_error(run, "many")
    assert StepRun.objects.get(run=run, tag="many").input is None
