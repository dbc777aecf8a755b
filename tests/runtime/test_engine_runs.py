"""Engine behaviour through the real executor, with tasks run in-process (``drain``).

The same code runs on real qcluster workers in test_worker*.py; here each test is fast.
"""

from __future__ import annotations

from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.compiler import SpecError, compile_spec
from runtime.errors import RunRefused
from runtime.models import Run, SequenceRun, Signal, StepRun
from runtime.services import run_cancel, run_signal, run_start
from tests.runtime import steps
from tests.runtime.conftest import code, drain, journal_kinds, make_workflow, run_until_done

pytestmark = pytest.mark.django_db


def spec(*sequences: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sequences": list(sequences), **extra}


def seq(tag: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "events": list(events), **extra}


def start(product: Product, env: Environment, body: dict[str, Any], **input: Any) -> Run:
    wf = make_workflow(product, body)
    return run_start(workflow=wf, environment=env, input=input)


def statuses(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(run=run).values_list("tag", "status"))


def test_it_runs_sequential_steps_and_pipes_outputs(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq(
            "main",
            code("add", tag="first", input={"a": "$Input{x}", "b": 2}),
            code("add", tag="second", input={"a": "$Step{first}{sum}", "b": 10}),
        ),
        output={"total": "$Step{second}{sum}"},
    )
    run = start(product, env_dev, body, x=1)
    assert run.status == "pending"
    run = run_until_done(run)
    assert run.status == "completed", run.error
    assert run.output == {"total": 13}
    assert statuses(run) == {"first": "completed", "second": "completed"}
    kinds = journal_kinds(run)
    assert kinds[0] == ("run_started", "")
    assert kinds[-1] == ("run_completed", "")
    assert ("step_completed", "first") in kinds
    seqs = list(run.journal.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps
    assert run.last_seq == len(seqs)


def test_a_false_condition_skips_the_step(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq(
            "main",
            code("echo_in", tag="validate", input={"available": "$Input{available}"}),
            code("add", tag="pay", condition="$Step{validate}{available} == true"),
            code("add", tag="after"),
        )
    )
    body["sequences"][0]["events"][0] = {
        "type": "CODE",
        "event": "runtime.connectors.code:echo",
        "tag": "validate",
        "input": {"available": "$Input{available}"},
    }
    run = run_until_done(start(product, env_dev, body, available=False))
    assert run.status == "completed", run.error
    assert statuses(run) == {"validate": "completed", "pay": "skipped", "after": "completed"}
    assert ("step_skipped", "pay") in journal_kinds(run)


def test_parallel_sequences_join(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq("root", code("add", tag="r", input={"a": 1, "b": 1})),
        seq("left", code("add", tag="l", input={"a": "$Step{r}{sum}", "b": 1}), parents=["root"]),
        seq("right", code("add", tag="rt", input={"a": "$Step{r}{sum}", "b": 2}), parents=["root"]),
        seq(
            "join",
            code("add", tag="j", input={"a": "$Step{l}{sum}", "b": "$Step{rt}{sum}"}),
            parents=["left", "right"],
        ),
        output="$Step{j}{sum}",
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed", run.error
    assert run.output == 7
    assert set(SequenceRun.objects.filter(run=run).values_list("status", flat=True)) == {
        "completed"
    }


def test_skip_if_skips_a_whole_sequence_and_children_still_run(
    product: Product, env_dev: Environment
) -> None:
    body = spec(
        seq("a", code("add", tag="a1")),
        seq("tests", code("add", tag="t1"), parents=["a"], skip_if="$Input{skip} == true"),
        seq("b", code("add", tag="b1"), parents=["tests"]),
    )
    run = run_until_done(start(product, env_dev, body, skip=True))
    assert run.status == "completed"
    assert statuses(run) == {"a1": "completed", "t1": "skipped", "b1": "completed"}
    assert ("sequence_skipped", "tests") in journal_kinds(run)


def test_retries_then_succeeds(product: Product, env_dev: Environment, side_effects: Any) -> None:
    body = spec(seq("m", code("flaky", tag="f", input={"failures": 2}, retries=2)))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed", run.error
    step = StepRun.objects.get(run=run, tag="f")
    assert step.attempt == 3
    assert [a["status"] for a in step.attempts] == ["failed", "failed", "completed"]
    assert [k for k in journal_kinds(run) if k[0] == "step_retrying"] == [
        ("step_retrying", "f")
    ] * 2


def test_a_long_retry_delay_parks_the_step(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    body = spec(
        seq("m", code("flaky", tag="f", input={"failures": 1}, retries=1, retry_delay="1s"))
    )
    run = start(product, env_dev, body)
    drain()
    run.refresh_from_db()
    step = StepRun.objects.get(run=run, tag="f")
    assert step.status == "retrying"
    assert step.next_attempt_at is not None
    assert SequenceRun.objects.get(run=run).status == "retrying"
    run = run_until_done(run, timeout=5)
    assert run.status == "completed"


def test_allow_fail_lets_the_run_go_on(product: Product, env_dev: Environment) -> None:
    body = spec(seq("m", code("boom", tag="email", allow_fail=True), code("add", tag="next")))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed"
    assert statuses(run) == {"email": "failed_allowed", "next": "completed"}


def test_failure_compensates_newest_first_and_ends_rolled_back(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {
        "type": "CODE",
        "event": "tests.runtime.steps:record",
        "input": {"undo": "$Step{a}{step}"},
    }
    body = spec(
        seq(
            "m",
            code("record", tag="a", rollback=undo),
            code("record", tag="b", rollback={**undo, "input": {"undo": "b"}}),
            code("record", tag="c"),
            code("boom", tag="d"),
        )
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "rolled_back", run.error
    assert statuses(run) == {
        "a": "rolled_back",
        "b": "rolled_back",
        "c": "completed",
        "d": "failed",
    }
    kinds = journal_kinds(run)
    rolled = [s for k, s in kinds if k == "step_rolled_back"]
    assert rolled == ["b", "a"]
    assert kinds[-1] == ("run_rolled_back", "")
    assert run.error["step"] == "d"


def test_a_failing_rollback_is_retried_and_the_run_fails_visibly(
    product: Product, env_dev: Environment
) -> None:
    broken = {"type": "CODE", "event": "tests.runtime.steps:boom", "retries": 1}
    body = spec(seq("m", code("add", tag="a", rollback=broken), code("boom", tag="b")))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    assert "rollback of 'a' failed" in run.error["message"]
    failures = [k for k in journal_kinds(run) if k[0] == "rollback_failed"]
    assert len(failures) == 2  # first attempt + one retry, both journaled
    assert StepRun.objects.get(run=run, tag="a").rollback_status == "failed"


def test_strategy_none_compensates_nothing(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {"type": "CODE", "event": "tests.runtime.steps:record"}
    body = spec(
        seq("m", code("add", tag="a", rollback=undo), code("boom", tag="b")),
        options={"rollback_strategy": "none"},
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    assert statuses(run)["a"] == "completed"


def test_rollback_event_compensates_and_lists_steps(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {"type": "CODE", "event": "tests.runtime.steps:record"}
    body = spec(
        seq(
            "m",
            code("add", tag="charge", rollback=undo),
            {"type": "ROLLBACK", "event": "fraud", "tag": "undo", "input": {"reason": "fraud"}},
            code("add", tag="next"),
        )
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "rolled_back"
    undo_step = StepRun.objects.get(run=run, tag="undo")
    assert undo_step.status == "completed"
    assert undo_step.output == {"rolled_back_steps": ["charge"], "reason": "fraud"}
    # The run goes on after the rollback (ctx.trigger_rollback returns to the handler).
    assert statuses(run)["next"] == "completed"


def test_set_state_checkpoint_and_logs(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq(
            "m",
            {"type": "SET_STATE", "event": "s", "input": {"count": "$Input{n}"}},
            {"type": "CHECKPOINT", "event": "half", "input": {"data": {"n": "$State{count}"}}},
            code("logs", tag="l"),
        ),
        queries={"progress": {"output": {"done": "$Run{completed_steps}", "n": "$State{count}"}}},
    )
    run = run_until_done(start(product, env_dev, body, n=4))
    assert run.status == "completed", run.error
    assert run.state["count"] == 4
    assert run.state["_checkpoints"]["half"]["data"] == {"n": 4}
    kinds = journal_kinds(run)
    assert ("state_set", "s") in kinds and ("checkpoint", "half") in kinds and ("log", "l") in kinds


def test_a_signal_sent_before_the_wait_is_kept(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq(
            "m",
            {"type": "SLEEP", "event": "s", "input": {"duration": 1100}},
            {"type": "WAIT_SIGNAL", "event": "approve", "tag": "wait"},
        ),
        signals={"approve": {"input": {"by": "string"}}},
    )
    run = start(product, env_dev, body)
    drain()  # parks on the sleep
    run_signal(run=run, name="approve", payload={"by": "ann"})
    run = run_until_done(run, timeout=5)
    assert run.status == "completed"
    assert StepRun.objects.get(run=run, tag="wait").output == {"by": "ann", "_signal": "approve"}
    assert Signal.objects.get(run=run).consumed_by == "wait"


def test_wait_signal_parks_until_the_signal(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq("m", {"type": "WAIT_SIGNAL", "event": "w", "input": {"signals": ["yes", "no"]}}),
        signals={"yes": {}, "no": {}},
    )
    run = start(product, env_dev, body)
    drain()
    run.refresh_from_db()
    assert run.status == "waiting"
    run_signal(run=run, name="no", payload={"why": "x"})
    run = run_until_done(run)
    assert run.status == "completed"
    assert StepRun.objects.get(run=run, tag="w").output == {"why": "x", "_signal": "no"}


def test_wait_signal_times_out(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq("m", {"type": "WAIT_SIGNAL", "event": "go", "input": {"timeout": 1000}}),
        signals={"go": {}},
    )
    run = run_until_done(start(product, env_dev, body), timeout=5)
    assert run.status == "failed"
    assert "before the timeout" in run.error["message"]


def test_an_undeclared_or_malformed_signal_is_refused(
    product: Product, env_dev: Environment
) -> None:
    body = spec(
        seq("m", {"type": "WAIT_SIGNAL", "event": "go"}),
        signals={"go": {"input": {"n": "integer"}}},
    )
    run = start(product, env_dev, body)
    with pytest.raises(RunRefused) as undeclared:
        run_signal(run=run, name="nope", payload={})
    assert undeclared.value.status == 404
    with pytest.raises(RunRefused) as bad:
        run_signal(run=run, name="go", payload={"n": "x"})
    assert bad.value.field == "payload.n"


def test_cancel_compensates_and_ends_cancelled(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {"type": "CODE", "event": "tests.runtime.steps:record"}
    body = spec(
        seq("m", code("add", tag="a", rollback=undo), {"type": "WAIT_SIGNAL", "event": "go"}),
        signals={"go": {}},
    )
    run = start(product, env_dev, body)
    drain()
    run_cancel(run=run)
    run = run_until_done(run)
    assert run.status == "cancelled"
    assert statuses(run) == {"a": "rolled_back", "go": "cancelled"}
    assert steps.count("a") == 1  # the rollback ran (record writes under the step's tag)


def test_sleep_parks_the_run(product: Product, env_dev: Environment) -> None:
    body = spec(seq("m", {"type": "SLEEP", "event": "1s"}, code("add", tag="after")))
    run = start(product, env_dev, body)
    drain()
    run.refresh_from_db()
    assert run.status == "waiting"
    assert SequenceRun.objects.get(run=run).status == "waiting"
    run = run_until_done(run, timeout=5)
    assert run.status == "completed"


def test_a_child_workflow_runs_and_wakes_its_parent(product: Product, env_dev: Environment) -> None:
    make_workflow(product, spec(seq("c", code("add", tag="x", input={"a": "$Input{n}", "b": 1}))),
                  tag="child")  # fmt: skip
    body = spec(
        seq("m", {"type": "FEATURE", "event": "child", "tag": "sub", "input": {"n": 41}}),
        output="$Step{sub}",
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed", run.error
    child = Run.objects.get(parent_run=run)
    assert child.status == "completed"
    assert StepRun.objects.get(run=run, tag="sub").output == child.output


def test_start_is_refused_when_inactive_or_input_is_bad(
    product: Product, env_dev: Environment
) -> None:
    wf = make_workflow(product, spec(seq("m", code("add"))), envs=())
    with pytest.raises(RunRefused) as inactive:
        run_start(workflow=wf, environment=env_dev, input={})
    assert inactive.value.status == 409 and "'dev'" in str(inactive.value)
    wf = make_workflow(product, {**spec(seq("m", code("add"))), "input": {"orderId": "string"}})
    with pytest.raises(RunRefused) as bad:
        run_start(workflow=wf, environment=env_dev, input={})
    assert bad.value.field == "input.orderId"


def test_an_idempotency_key_returns_the_same_run(product: Product, env_dev: Environment) -> None:
    wf = make_workflow(product, spec(seq("m", code("add"))))
    first = run_start(workflow=wf, environment=env_dev, input={}, idempotency_key="k1")
    again = run_start(workflow=wf, environment=env_dev, input={}, idempotency_key="k1")
    assert again.pk == first.pk and again.reused and not first.reused


def test_a_step_timeout_fails_the_attempt(product: Product, env_dev: Environment) -> None:
    body = spec(seq("m", code("hang", tag="h", input={"seconds": 2}, timeout=200)))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    assert run.error["code"] == "step_timeout"


def test_code_that_is_not_a_registered_step_function_is_refused(
    product: Product, env_dev: Environment
) -> None:
    body = spec(seq("m", {"type": "CODE", "event": "os:getcwd", "tag": "x"}))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    assert "'os:getcwd' is not a registered step function" in run.error["message"]


def test_the_run_timeout_fails_a_parked_run_through_the_sweep(
    product: Product, env_dev: Environment
) -> None:
    from runtime.executor import sweep_once

    body = spec(seq("m", {"type": "SLEEP", "event": "5s"}), options={"timeout": 200})
    run = start(product, env_dev, body)
    drain()
    import time

    time.sleep(0.3)
    counts = sweep_once()
    assert counts["deadlines"] == 1
    run = run_until_done(run)
    assert run.status == "failed"
    assert run.error["code"] == "run_timeout"
    assert journal_kinds(run)[-1] == ("run_failed", "")


def test_max_concurrency_limits_parallel_sequences(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq("root", code("add", tag="r")),
        *[seq(f"p{i}", code("add", tag=f"s{i}"), parents=["root"]) for i in range(4)],
        options={"max_concurrency": 2},
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed"
    active = peak = 0
    for kind, _step in journal_kinds(run):
        if kind == "sequence_started":
            active += 1
            peak = max(peak, active)
        elif kind == "sequence_completed":
            active -= 1
    assert peak == 2


def test_a_group_limits_its_own_parallel_sequences(product: Product, env_dev: Environment) -> None:
    body = spec(
        seq("root", code("add", tag="r")),
        *[
            seq(f"p{i}", code("add", tag=f"s{i}"), parents=["root"], group="deploy")
            for i in range(4)
        ],
        seq("other", code("add", tag="o"), parents=["root"]),
        options={"groups": {"deploy": {"max_concurrency": 1}}},
    )
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed", run.error
    active = peak = 0
    for kind, tag in journal_kinds(run):
        if tag.startswith("p"):
            active += {"sequence_started": 1, "sequence_completed": -1}.get(kind, 0)
            peak = max(peak, active)
    assert peak == 1
    started = [t for k, t in journal_kinds(run) if k == "sequence_started"]
    assert started.index("other") < started.index("p1")  # not held back by the group


def test_an_undeclared_group_is_refused(product: Product) -> None:
    with pytest.raises(SpecError) as info:
        compile_spec(spec(seq("a", code("add", tag="x"), group="nope")))
    assert [(i.path, i.message) for i in info.value.issues] == [
        ("sequences[0].group", "group 'nope' is not declared in options.groups (declared: none)")
    ]


def test_cancelling_a_parent_terminates_its_child(product: Product, env_dev: Environment) -> None:
    make_workflow(
        product,
        spec(seq("c", {"type": "WAIT_SIGNAL", "event": "go"}), signals={"go": {}}),
        tag="child",
    )
    body = spec(seq("m", {"type": "FEATURE", "event": "child", "tag": "sub", "input": {}}))
    run = start(product, env_dev, body)
    drain()
    child = Run.objects.get(parent_run=run)
    assert child.status == "waiting"
    run_cancel(run=run)
    run = run_until_done(run)
    child = run_until_done(child)
    assert run.status == "cancelled"
    assert child.status == "cancelled"
    assert child.stop_reason == "terminated"


def test_a_request_cancel_policy_cancels_the_child_with_compensation(
    product: Product, env_dev: Environment, side_effects: Any
) -> None:
    undo = {"type": "CODE", "event": "tests.runtime.steps:record"}
    make_workflow(
        product,
        spec(
            seq("c", code("add", tag="x", rollback=undo), {"type": "WAIT_SIGNAL", "event": "go"}),
            signals={"go": {}},
        ),
        tag="child",
    )
    body = spec(
        seq(
            "m",
            {
                "type": "FEATURE",
                "event": "child",
                "tag": "sub",
                "input": {"input": {}, "parent_close_policy": "request_cancel"},
            },
        )
    )
    run = start(product, env_dev, body)
    drain()
    run_cancel(run=run)
    child = run_until_done(Run.objects.get(parent_run=run))
    assert child.status == "cancelled"
    assert steps.count("x") == 1  # its rollback ran


@pytest.mark.django_db(transaction=True)
def test_journal_entries_are_published_once_per_commit_in_order(
    product: Product, env_dev: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import journal

    calls: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(journal, "_live_publisher", lambda: calls.append)
    body = spec(seq("m", code("add", tag="a"), code("add", tag="b")))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "completed"
    entries = [e for batch in calls for e in batch]
    assert [e["seq"] for e in entries] == list(range(1, run.last_seq + 1))
    first = entries[0]
    assert set(first) == {"run", "workflow", "environment", "seq", "kind", "step", "data", "at"}
    assert (first["run"], first["workflow"], first["kind"]) == (
        run.pk,
        run.workflow_id,
        "run_started",
    )
    # One publish per transaction: the first step's completion and the next start together.
    assert any({e["kind"] for e in batch} >= {"step_completed", "step_started"} for batch in calls)


def test_a_retried_child_step_starts_a_new_child(product: Product, env_dev: Environment) -> None:
    make_workflow(product, spec(seq("c", code("boom", tag="x"))), tag="child")
    body = spec(seq("m", {"type": "FEATURE", "event": "child", "tag": "sub", "retries": 1}))
    run = run_until_done(start(product, env_dev, body))
    assert run.status == "failed"
    children = Run.objects.filter(parent_run=run)
    assert children.count() == 2
    assert set(children.values_list("status", flat=True)) == {"failed"}
    assert StepRun.objects.get(run=run, tag="sub").attempt == 2
