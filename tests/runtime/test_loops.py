"""FOREACH loops through the real executor, tasks run in-process (``drain``).

The same loops run on a real qcluster worker in test_worker_loops.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from designer.models import Environment, Product
from runtime.models import Run, SequenceRun, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, journal_kinds, make_workflow, run_until_done

pytestmark = pytest.mark.django_db


def foreach(items: str, *body: dict[str, Any], tag: str = "each", **loop: Any) -> dict[str, Any]:
    return {
        "type": "FOREACH",
        "event": "each item",
        "tag": tag,
        "loop": {"items": items, "body": list(body), **loop},
    }


def loop_spec(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sequences": [{"tag": "main", "events": list(events)}], **extra}


def start(product: Product, env: Environment, body: dict[str, Any], **input: Any) -> Run:
    return run_start(workflow=make_workflow(product, body), environment=env, input=input)


def test_a_loop_runs_its_body_once_per_item_and_outputs_the_results(
    product: Product, env_dev: Environment
) -> None:
    body = loop_spec(
        code("add", tag="base", input={"a": 100, "b": 0}),
        foreach(
            "$Input{items}",
            code("add", tag="price", input={"a": "$Item{amount}", "b": "$Index"}),
            code(
                "add",
                tag="total",
                input={"a": "$Step{price}{sum}", "b": "$Step{base}{sum}"},
            ),
        ),
        code("add", tag="after", input={"a": "$Step{each}{2.sum}", "b": 1}),
        output={"all": "$Step{each}", "last": "$Step{after}{sum}"},
    )
    items = [{"amount": 1}, {"amount": 2}, {"amount": 3}]
    run = run_until_done(start(product, env_dev, body, items=items))
    assert run.status == "completed", run.error
    # price = amount + index; total = price + 100
    assert run.output == {"all": [{"sum": 101}, {"sum": 103}, {"sum": 105}], "last": 106}
    tags = dict(StepRun.objects.filter(run=run).values_list("tag", "status"))
    assert tags == {
        "base": "completed",
        "each": "completed",
        "after": "completed",
        **{f"{t}[{i}]": "completed" for t in ("price", "total") for i in range(3)},
    }
    kinds = journal_kinds(run)
    assert [k for k in kinds if k[0] == "sequence_started"] == [
        ("sequence_started", "main"),
        ("sequence_started", "each[0]"),
        ("sequence_started", "each[1]"),
        ("sequence_started", "each[2]"),
    ]
    # One after the other by default: iteration 1 starts after iteration 0 completed.
    assert kinds.index(("sequence_completed", "each[0]")) < kinds.index(
        ("sequence_started", "each[1]")
    )


def test_an_empty_list_runs_no_iteration(product: Product, env_dev: Environment) -> None:
    body = loop_spec(foreach("$Input{items}", code("add", tag="b")), output="$Step{each}")
    run = run_until_done(start(product, env_dev, body, items=[]))
    assert run.status == "completed", run.error
    assert run.output == []
    assert not SequenceRun.objects.filter(run=run, tag__startswith="each[").exists()
    assert not StepRun.objects.filter(run=run, tag__startswith="b[").exists()


def test_items_that_are_not_a_list_fail_the_step(product: Product, env_dev: Environment) -> None:
    body = loop_spec(foreach("$Input{items}", code("add", tag="b")))
    run = run_until_done(start(product, env_dev, body, items={"a": 1}))
    assert run.status == "failed"
    assert "FOREACH items must be a list, got an object" in run.error["message"]


@override_settings(TRELLIS_MAX_LOOP_ITERATIONS=5)
def test_more_items_than_the_bound_fail_the_step_before_any_iteration(
    product: Product, env_dev: Environment
) -> None:
    body = loop_spec(foreach("$Input{items}", code("add", tag="b")))
    run = run_until_done(start(product, env_dev, body, items=list(range(6))))
    assert run.status == "failed"
    assert "more than the 5 iterations" in run.error["message"]
    assert "TRELLIS_MAX_LOOP_ITERATIONS" in run.error["message"]
    assert not SequenceRun.objects.filter(run=run, tag__startswith="each[").exists()
    ok = run_until_done(start(product, env_dev, body, items=list(range(5))))
    assert ok.status == "completed", ok.error


def test_a_failing_iteration_compensates_the_completed_ones_newest_first(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = loop_spec(
        foreach(
            "$Input{items}",
            code(
                "record",
                tag="charge",
                input={"item": "$Item", "fail": "$Item{fail}"},
                rollback={
                    "type": "CODE",
                    "event": "tests.runtime.steps:record",
                    "input": {"refund": "$Step{charge}{input.item.id}", "index": "$Index"},
                },
            ),
            code("boom", tag="check", condition="$Item{fail} == true"),
        )
    )
    items = [{"id": "a"}, {"id": "b"}, {"id": "c", "fail": True}, {"id": "d"}]
    run = run_until_done(start(product, env_dev, body, items=items))
    assert run.status == "rolled_back", run.error
    rolled = [
        e.data["output"]["input"]
        for e in run.journal.filter(kind="step_rolled_back").order_by("seq")
    ]
    assert rolled == [
        {"refund": "c", "index": 2},
        {"refund": "b", "index": 1},
        {"refund": "a", "index": 0},
    ]
    assert steps.count("charge[3]") == 0  # never started
    assert (
        SequenceRun.objects.get(run=run, tag="each[3]").status == "not_run"
    )  # never started either


def test_max_concurrency_bounds_the_iterations_in_flight(
    product: Product, env_dev: Environment
) -> None:
    body = loop_spec(
        foreach("$Input{items}", code("add", tag="b", input={"a": "$Item"}), max_concurrency=3),
        output="$Step{each}",
    )
    run = run_until_done(start(product, env_dev, body, items=list(range(10))))
    assert run.status == "completed", run.error
    assert run.output == [{"sum": i} for i in range(10)]
    in_flight = peak = 0
    for kind, tag in journal_kinds(run):
        if tag.startswith("each["):
            in_flight += {"sequence_started": 1, "sequence_completed": -1}.get(kind, 0)
            peak = max(peak, in_flight)
    assert peak == 3
