"""A RETURN in one branch while another branch has a step in flight, on real qcluster
worker processes: the run ends with the RETURN's output, the step in flight finishes and
is journaled, nothing after it runs, nothing is compensated, and every sequence and step
ends in a final state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import RUN_FINISHED, Run, SequenceRun, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

UNDO = {"type": "CODE", "event": "tests.runtime.steps:record"}


def test_a_return_stops_the_branch_still_running(
    product: Product, env_dev: Environment, side_effects: Path, worker: Any
) -> None:
    spec = {
        "sequences": [
            {"tag": "root", "events": [code("add", tag="first", rollback=UNDO)]},
            {
                "tag": "quick",
                "parents": ["root"],
                "events": [
                    code("slow", tag="think", input={"seconds": 0.5}),
                    {"type": "RETURN", "event": "return", "tag": "ret",
                     "input": {"output": {"by": "quick", "thought": "$Step{think}{step}"}}},
                ],
            },
            {
                "tag": "busy",
                "parents": ["root"],
                "events": [
                    code("slow", tag="busy-1", input={"seconds": 2.5}),
                    code("record", tag="busy-2"),
                ],
            },
            {"tag": "after-busy", "parents": ["busy"], "events": [code("record", tag="tail")]},
        ],
    }  # fmt: skip
    workflow = make_workflow(product, spec)
    worker(workers=2)
    run = run_start(workflow=workflow, environment=env_dev, input={})
    assert wait_for(lambda: steps.count("busy-1.start") == 1, timeout=30)
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=30), (
        Run.objects.get(pk=run.pk).status
    )
    run.refresh_from_db()

    assert run.status == "completed", run.error
    assert run.output == {"by": "quick", "thought": "think"}
    assert run.error is None
    # The step in flight when the RETURN ran finished and was journaled; nothing after it.
    assert steps.count("busy-1") == 1
    assert steps.count("busy-2") == 0 and steps.count("tail") == 0
    assert steps.count("first") == 0  # a returned run is not compensated
    status = dict(StepRun.objects.filter(run=run).values_list("tag", "status"))
    assert status["ret"] == "completed" and status["busy-1"] == "completed"
    assert status["busy-2"] == "cancelled" and status["tail"] == "not_run"
    seqs = dict(SequenceRun.objects.filter(run=run).values_list("tag", "status"))
    assert seqs == {
        "root": "completed",
        "quick": "completed",
        "busy": "cancelled",
        "after-busy": "not_run",
    }
    journal = list(run.journal.order_by("seq").values_list("kind", "step"))
    assert journal.index(("step_completed", "ret")) < journal.index(("step_completed", "busy-1"))
    assert journal[-1] == ("run_completed", "")
    ended = run.journal.get(kind="run_completed")
    assert ended.data["output"] == run.output
