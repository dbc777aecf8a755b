"""``$Run{current_step}`` and ``$Run{completed_steps}`` as the engine hands them to a
step's input, to the output mapping and to queries."""

from __future__ import annotations

from typing import Any

from designer.models import Environment, Product
from runtime.models import StepRun
from runtime.services import run_query, run_start
from runtime.spec import LOG_EVENT
from tests.runtime.conftest import code, journal_kinds, make_workflow, run_until_done

RUN_INFO = {"current": "$Run{current_step}", "done": "$Run{completed_steps}"}


def log(tag: str, message: str) -> dict[str, Any]:
    return {"type": "CODE", "event": LOG_EVENT, "tag": tag, "input": {"message": message}}


def test_a_step_input_sees_itself_as_current_step_and_logs_are_not_completed_steps(
    product: Product, env_dev: Environment
) -> None:
    body = {
        "sequences": [
            {
                "tag": "m",
                "events": [
                    log("log", "starting"),
                    code("record", tag="a", input=RUN_INFO),
                    log("log-2", "between"),
                    # The sleep parks the run: "b" runs in a new task, from the database.
                    {"type": "SLEEP", "event": "1s", "tag": "nap"},
                    code("record", tag="b", input=RUN_INFO),
                ],
            }
        ],
        "queries": {"progress": {"output": RUN_INFO}},
        "output": {"done": "$Run{completed_steps}"},
    }
    wf = make_workflow(product, body)
    run = run_until_done(run_start(workflow=wf, environment=env_dev, input={}), timeout=10)
    assert run.status == "completed", run.error

    a = StepRun.objects.get(run=run, tag="a").output["input"]
    assert a == {"current": "a", "done": []}
    b = StepRun.objects.get(run=run, tag="b").output["input"]
    assert b == {"current": "b", "done": ["a", "nap"]}
    assert run.output == {"done": ["a", "nap", "b"]}
    assert run_query(run=run, name="progress")["done"] == ["a", "nap", "b"]
    # The log lines are still journaled: their steps and their log entries.
    kinds = journal_kinds(run)
    assert ("step_completed", "log") in kinds and ("step_completed", "log-2") in kinds
    assert [step for kind, step in kinds if kind == "log"] == ["log", "log-2"]
