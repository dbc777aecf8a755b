"""A given ``level`` orders sequences that parents do not: two root sequences at levels 1
and 2 run in that order (Ductape's sequences "laid out in levels")."""

from __future__ import annotations

from designer.models import Environment, Product
from runtime.models import StepRun
from runtime.services import run_start
from tests.runtime.conftest import code, journal_kinds, make_workflow, run_until_done


def test_two_root_sequences_at_levels_1_and_2_run_in_that_order(
    product: Product, env_dev: Environment
) -> None:
    body = {
        "sequences": [
            # Listed first, and a root: only its level keeps it after `first`.
            {
                "tag": "second",
                "level": 2,
                "events": [code("add", tag="b", input={"a": "$Step{a}{sum}", "b": 1})],
            },
            {"tag": "first", "level": 1, "events": [code("add", tag="a", input={"a": 41})]},
            {"tag": "free", "events": [code("add", tag="f")]},
        ],
        "output": "$Step{b}{sum}",
    }
    wf = make_workflow(product, body)
    run = run_until_done(run_start(workflow=wf, environment=env_dev, input={}))
    assert run.status == "completed", run.error
    assert run.output == 42
    kinds = journal_kinds(run)
    started = [step for kind, step in kinds if kind == "sequence_started"]
    assert started == ["free", "first", "second"]
    # A level waits for every lower level to finish, the unordered root (level 0) too.
    assert kinds.index(("sequence_started", "first")) > kinds.index(("sequence_completed", "free"))
    assert kinds.index(("sequence_started", "second")) > kinds.index(
        ("sequence_completed", "first")
    )
    assert StepRun.objects.get(run=run, tag="b").output == {"sum": 42}
