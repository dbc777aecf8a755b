"""Ending a run from a branch (RETURN, FAIL) and the manual rollback (ROLLBACK), through
the real executor with tasks run in-process (``drain``); the same code runs on real
qcluster workers in test_worker_endings.py."""

from __future__ import annotations

from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.compiler import compile_spec
from runtime.errors import SpecError
from runtime.models import Run, SequenceRun, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, journal_kinds, make_workflow, run_until_done

pytestmark = pytest.mark.django_db

UNDO = {"type": "CODE", "event": "tests.runtime.steps:record"}


def spec(*sequences: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sequences": list(sequences), **extra}


def seq(tag: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "events": list(events), **extra}


def returns(output: Any, condition: str | None = None, tag: str = "ret") -> dict[str, Any]:
    event = {"type": "RETURN", "event": "return", "tag": tag, "input": {"output": output}}
    return {**event, "condition": condition} if condition else event


def fails(message: str, condition: str | None = None) -> dict[str, Any]:
    event = {"type": "FAIL", "event": "raise", "tag": "raise", "input": {"message": message}}
    return {**event, "condition": condition} if condition else event


def rollback(condition: str | None = None) -> dict[str, Any]:
    event = {"type": "ROLLBACK", "event": "rollback", "tag": "undo", "input": {"reason": "fraud"}}
    return {**event, "condition": condition} if condition else event


def run(product: Product, env: Environment, body: dict[str, Any], **input: Any) -> Run:
    wf = make_workflow(product, body)
    return run_until_done(run_start(workflow=wf, environment=env, input=input))


def statuses(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(run=run).values_list("tag", "status"))


def sequence_statuses(run: Run) -> dict[str, str]:
    return dict(SequenceRun.objects.filter(run=run).values_list("tag", "status"))


# ---- RETURN


def test_a_return_ends_the_run_with_its_own_output(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(
        seq(
            "m",
            code("add", tag="a", input={"a": "$Input{x}", "b": 1}, rollback=UNDO),
            returns({"early": "$Step{a}{sum}", "x": "$Input{x}"}, "$Input{x} > 1"),
            code("record", tag="later"),
        ),
        output={"late": "$Step{later}{step}"},
    )
    early = run(product, env_dev, body, x=5)
    assert early.status == "completed", early.error
    assert early.output == {"early": 6, "x": 5}
    assert early.error is None
    assert statuses(early) == {"a": "completed", "ret": "completed", "later": "not_run"}
    assert steps.count("later") == 0 and steps.count("a") == 0  # not run, nothing undone
    kinds = journal_kinds(early)
    assert kinds[-1] == ("run_completed", "")
    assert early.journal.get(kind="run_completed").data["output"] == {"early": 6, "x": 5}
    assert ("step_completed", "ret") in kinds

    # The condition does not hold: the RETURN is skipped and the run goes on.
    late = run(product, env_dev, body, x=1)
    assert late.status == "completed", late.error
    assert late.output == {"late": "later"}
    assert statuses(late)["ret"] == "skipped"


def test_a_return_in_one_branch_stops_the_other_sequences(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    """Decided: a RETURN ends the run at once. Sequences still running stop at their next
    step boundary (a step in flight finishes and is journaled), sequences not started
    never start, nothing is compensated, and the run ends ``completed`` with the RETURN's
    output once the last one is out. Every sequence and step ends in a final state."""
    body = spec(
        seq("root", code("add", tag="first", rollback=UNDO)),
        seq("quick", returns({"by": "quick"}), parents=["root"]),
        seq(
            "busy",
            code("slow", tag="busy-1", input={"seconds": 0.01}),
            code("record", tag="busy-2"),
            parents=["root"],
        ),
        seq("after-busy", code("record", tag="tail"), parents=["busy"]),
    )
    done = run(product, env_dev, body)
    assert done.status == "completed", done.error
    assert done.output == {"by": "quick"}
    seqs = sequence_statuses(done)
    assert seqs["root"] == "completed" and seqs["quick"] == "completed"
    assert seqs["busy"] == "cancelled" and seqs["after-busy"] == "not_run"
    assert not SequenceRun.objects.filter(run=done, status__in=["running", "waiting"]).exists()
    assert set(statuses(done).values()) <= {"completed", "cancelled", "not_run"}
    assert steps.count("tail") == 0 and steps.count("first") == 0
    assert journal_kinds(done)[-1] == ("run_completed", "")


def test_a_return_after_a_manual_rollback_ends_rolled_back_with_its_output(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(
        seq(
            "m",
            code("add", tag="charge", rollback=UNDO),
            rollback(),
            returns({"success": False, "undone": "$Step{undo}{rolled_back_steps}"}),
            code("add", tag="never"),
        )
    )
    done = run(product, env_dev, body)
    assert done.status == "rolled_back", done.error
    assert done.output == {"success": False, "undone": ["charge"]}
    assert done.error is None
    assert journal_kinds(done)[-1] == ("run_rolled_back", "")
    assert done.journal.get(kind="run_rolled_back").data["output"] == done.output


# ---- FAIL


def test_a_fail_step_fails_the_run_with_its_message(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq(
            "m",
            code("add", tag="quota", input={"a": "$Input{used}", "b": 0}),
            fails("Rate limit exceeded", "$Step{quota}{sum} > 2"),
            code("add", tag="work"),
        ),
        output={"ok": "$Step{work}{sum}"},
    )
    refused = run(product, env_dev, body, used=3)
    assert refused.status == "failed"
    assert refused.error is not None
    assert refused.error["message"] == "Rate limit exceeded"
    assert (refused.error["code"], refused.error["step"]) == ("raised", "raise")
    assert statuses(refused) == {"quota": "completed", "raise": "failed", "work": "not_run"}
    failed = StepRun.objects.get(run=refused, tag="raise")
    assert failed.attempt == 1  # never retried

    allowed = run(product, env_dev, body, used=1)
    assert allowed.status == "completed", allowed.error
    assert statuses(allowed)["raise"] == "skipped"


def test_a_fail_step_compensates_per_the_rollback_strategy(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(seq("m", code("add", tag="charge", rollback=UNDO), fails("nope")))
    undone = run(product, env_dev, body)
    assert undone.status == "rolled_back"
    assert undone.error is not None and undone.error["message"] == "nope"
    assert statuses(undone)["charge"] == "rolled_back"
    assert steps.count("charge") == 1  # the rollback ran once

    body["options"] = {"rollback_strategy": "none"}
    kept = run(product, env_dev, body)
    assert kept.status == "failed"
    assert statuses(kept)["charge"] == "completed"


# ---- ROLLBACK


def test_a_manual_rollback_compensates_and_the_run_goes_on(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(
        seq(
            "m",
            code("add", tag="charge", rollback=UNDO),
            code("add", tag="reserve", rollback=UNDO),
            code("add", tag="plain"),
            rollback("$Input{fraud} == true"),
            code("add", tag="after", input={"a": 1, "b": 1}),
        ),
        output={"after": "$Step{after}{sum}", "undone": "$Step{undo}{rolled_back_steps}"},
    )
    fraud = run(product, env_dev, body, fraud=True)
    assert fraud.status == "rolled_back", fraud.error
    assert fraud.output == {"after": 2, "undone": ["reserve", "charge"]}  # newest first
    assert fraud.error is None
    s = statuses(fraud)
    assert (s["charge"], s["reserve"], s["plain"]) == ("rolled_back", "rolled_back", "completed")
    assert (s["undo"], s["after"]) == ("completed", "completed")
    undo = StepRun.objects.get(run=fraud, tag="undo")
    assert undo.output == {"rolled_back_steps": ["reserve", "charge"], "reason": "fraud"}
    kinds = journal_kinds(fraud)
    assert kinds.index(("rollback_started", "undo")) < kinds.index(("step_rolled_back", "reserve"))
    assert kinds.index(("step_rolled_back", "charge")) < kinds.index(("step_completed", "undo"))
    assert kinds[-1] == ("run_rolled_back", "")
    assert steps.count("charge") == 1 and steps.count("reserve") == 1

    fine = run(product, env_dev, body, fraud=False)
    assert fine.status == "completed", fine.error
    assert fine.output == {"after": 2, "undone": None}


def test_a_later_failure_does_not_undo_a_manual_rollback_twice(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(
        seq("m", code("add", tag="charge", rollback=UNDO), rollback(), code("boom", tag="boom"))
    )
    done = run(product, env_dev, body)
    assert done.status == "rolled_back"
    assert done.error is not None and done.error["step"] == "boom"
    assert steps.count("charge") == 1


def test_a_manual_rollback_that_fails_fails_the_run(product: Product, env_dev: Environment) -> None:
    broken = {"type": "CODE", "event": "tests.runtime.steps:boom", "retries": 0}
    body = spec(seq("m", code("add", tag="charge", rollback=broken), rollback(), code("add")))
    done = run(product, env_dev, body)
    assert done.status == "failed"
    assert statuses(done)["undo"] == "failed"
    assert StepRun.objects.get(run=done, tag="charge").rollback_status == "failed"


# ---- the compiler


@pytest.mark.parametrize(
    ("event", "path", "message"),
    [
        (
            {"type": "RETURN", "event": "r", "input": {"output": 1, "x": 2}},
            "sequences[0].events[0].input.x",
            "takes only ['output']",
        ),
        (
            {"type": "FAIL", "event": "f", "input": {}},
            "sequences[0].events[0].input.message",
            "needs a message",
        ),
        (
            {"type": "FAIL", "event": "f", "input": {"message": "x"}, "retries": 2},
            "sequences[0].events[0].retries",
            "ends the run",
        ),
        (
            {"type": "RETURN", "event": "r", "input": {"output": 1}, "rollback": UNDO},
            "sequences[0].events[0].rollback",
            "nothing to roll back",
        ),
        (
            {"type": "RETURN", "event": "r", "input": {"output": "$Step{later}{x}"}},
            "sequences[0].events[0].input.output",
            "later",
        ),
    ],
)
def test_the_compiler_checks_endings(event: dict[str, Any], path: str, message: str) -> None:
    body = spec(seq("m", event, code("add", tag="later")))
    with pytest.raises(SpecError) as err:
        compile_spec(body)
    found = [(i.path, i.message) for i in err.value.issues]
    assert any(p == path and message in m for p, m in found), found
