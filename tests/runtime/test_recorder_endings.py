"""The recorder records every arm of a branch on a branch_overrides value: each path's
early return becomes a RETURN step, each path's ``raise`` a FAIL step, conditioned on
the branches that lead there; runs (in-process, runtime.testing) end the way the handler
would have on that path."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.recorder import registry
from runtime.testing import WorkflowTestEnvironment
from runtime.workflows import RecordingError, define


@pytest.fixture(autouse=True)
def isolated() -> Any:
    with registry.isolated():
        yield


def record(handler: Any, **kwargs: Any) -> Any:
    return define(product="acme", tag="t", handler=handler, register=False, **kwargs)


def events(definition: Any) -> list[dict[str, Any]]:
    return [e for s in definition.spec_json()["sequences"] for e in s["events"]]


def by_tag(definition: Any) -> dict[str, dict[str, Any]]:
    return {e["tag"]: e for e in events(definition)}


def call(ctx: Any, tag: str) -> Any:
    return ctx.step(tag, lambda: ctx.action.run(app="api", event=tag))


def test_an_early_return_becomes_a_return_step_right_after_its_branch() -> None:
    async def handler(ctx: Any) -> Any:
        check = await call(ctx, "check")
        if not check.ok:
            return {"ok": False, "why": check.reason}
        paid = await call(ctx, "pay")
        return {"ok": True, "id": paid.id}

    d = record(handler, branch_overrides={"check": {"ok": True}})
    assert [e["tag"] for e in events(d)] == ["check", "return", "pay"]
    ret = by_tag(d)["return"]
    assert ret["type"] == "RETURN"
    assert ret["condition"] == "$Step{check}{ok} != true"
    assert ret["input"] == {"output": {"ok": False, "why": "$Step{check}{reason}"}}
    assert by_tag(d)["pay"]["condition"] == "$Step{check}{ok} == true"
    assert d.spec.output == {"ok": True, "id": "$Step{pay}{id}"}

    env = WorkflowTestEnvironment(fakes={"pay": {"id": 7}})
    bad = env.run(d, {}, fakes={"check": {"ok": False, "reason": "stock"}})
    assert (bad.status, bad.output) == ("completed", {"ok": False, "why": "stock"})
    assert bad.steps["pay"].status == "not_run"
    good = env.run(d, {}, fakes={"check": {"ok": True}})
    assert (good.status, good.output) == ("completed", {"ok": True, "id": 7})
    assert good.steps["return"].status == "skipped"


def test_a_raise_on_one_arm_becomes_a_fail_step_with_its_message() -> None:
    async def handler(ctx: Any) -> Any:
        quota = await call(ctx, "quota")
        if not quota.allowed:
            raise RuntimeError(f"Rate limit exceeded for {ctx.input.user}")
        done = await call(ctx, "work")
        return {"done": done.n}

    d = record(handler, branch_overrides={"quota": {"allowed": True}})
    fail = by_tag(d)["raise"]
    assert fail["type"] == "FAIL"
    assert fail["condition"] == "$Step{quota}{allowed} != true"
    assert fail["input"] == {"message": "Rate limit exceeded for $Input{user}"}
    assert by_tag(d)["work"]["condition"] == "$Step{quota}{allowed} == true"

    env = WorkflowTestEnvironment(fakes={"work": {"n": 1}})
    refused = env.run(d, {"user": "ada"}, fakes={"quota": {"allowed": False}})
    assert refused.status == "failed"
    assert refused.error is not None
    assert refused.error["message"] == "Rate limit exceeded for ada"
    assert refused.error["code"] == "raised"
    assert refused.steps["work"].status == "not_run"
    allowed = env.run(d, {"user": "ada"}, fakes={"quota": {"allowed": True}})
    assert (allowed.status, allowed.output) == ("completed", {"done": 1})


def test_an_error_that_is_not_a_raise_statement_is_still_a_recording_error() -> None:
    async def handler(ctx: Any) -> Any:
        check = await call(ctx, "check")
        if not check.ok:
            return {}["missing"]  # a bug on the other arm, not a deliberate raise
        return {"ok": True}

    with pytest.raises(RecordingError, match="raised KeyError while recording"):
        record(handler, branch_overrides={"check": {"ok": True}})


def test_branches_that_join_again_with_the_same_return_add_no_step() -> None:
    async def handler(ctx: Any) -> Any:
        check = await call(ctx, "check")
        if check.fast:
            await call(ctx, "express")
        else:
            await call(ctx, "standard")
        await call(ctx, "ship")
        return {"shipped": True}

    d = record(handler, branch_overrides={"check": {"fast": True}})
    assert sorted(by_tag(d)) == ["check", "express", "ship", "standard"]
    assert by_tag(d)["express"]["condition"] == "$Step{check}{fast} == true"
    assert by_tag(d)["standard"]["condition"] == "$Step{check}{fast} != true"
    assert "condition" not in by_tag(d)["ship"]


def test_nested_branches_record_every_path_with_its_whole_condition() -> None:
    async def handler(ctx: Any) -> Any:
        a = await call(ctx, "a")
        if a.score > 5:
            b = await call(ctx, "b")
            if b.ok:
                return {"path": "high-ok"}
            return {"path": "high-not-ok"}
        return {"path": "low"}

    d = record(handler, branch_overrides={"a": {"score": 9}, "b": {"ok": True}})
    assert d.spec.output == {"path": "high-ok"}
    returns = {
        e["input"]["output"]["path"]: e["condition"] for e in events(d) if e["type"] == "RETURN"
    }
    assert returns == {
        "low": "$Step{a}{score} <= 5",
        "high-not-ok": "$Step{a}{score} > 5 && $Step{b}{ok} != true",
    }
    env = WorkflowTestEnvironment()
    cases = [({"score": 1}, {}, "low"), ({"score": 9}, {"ok": False}, "high-not-ok"),
             ({"score": 9}, {"ok": True}, "high-ok")]  # fmt: skip
    for a, b, path in cases:
        run = env.run(d, {}, fakes={"a": a, "b": b})
        assert (run.status, run.output) == ("completed", {"path": path}), (a, b)


def test_scenarios_that_return_different_outputs_each_get_their_return() -> None:
    async def handler(ctx: Any) -> Any:
        if ctx.input.kind == "a":
            got = await call(ctx, "handle-a")
            return {"a": got.x}
        got = await call(ctx, "handle-b")
        return {"b": got.y}

    d = record(handler, record_scenarios=[{"kind": "a"}, {"kind": "b"}])
    assert d.spec.output == {"a": "$Step{handle-a}{x}"}
    ret = by_tag(d)["return"]
    assert ret["condition"] == "$Input{kind} == 'b'"
    assert ret["input"] == {"output": {"b": "$Step{handle-b}{y}"}}
    env = WorkflowTestEnvironment(fakes={"handle-a": {"x": 1}, "handle-b": {"y": 2}})
    assert env.run(d, {"kind": "a"}).output == {"a": 1}
    assert env.run(d, {"kind": "b"}).output == {"b": 2}


def test_trigger_rollback_then_return_records_the_rollback_and_the_other_return() -> None:
    async def handler(ctx: Any) -> Any:
        pay = await ctx.step(
            "pay",
            lambda: ctx.action.run(app="api", event="pay"),
            lambda result: ctx.action.run(app="api", event="refund"),
        )
        risk = await call(ctx, "risk")
        if risk.score > 0.8:
            undone = await ctx.trigger_rollback("fraud")
            return {"ok": False, "undone": undone.rolled_back_steps}
        return {"ok": True, "id": pay.id}

    d = record(handler, branch_overrides={"risk": {"score": 0.9}})
    assert [e["type"] for e in events(d)] == ["ACTION", "ACTION", "RETURN", "ROLLBACK"]
    env = WorkflowTestEnvironment(fakes={"pay": {"id": 3}, "pay:rollback": {}})
    fraud = env.run(d, {}, fakes={"risk": {"score": 0.95}})
    assert fraud.status == "rolled_back"
    assert fraud.output == {"ok": False, "undone": ["pay"]}
    fine = env.run(d, {}, fakes={"risk": {"score": 0.1}})
    assert (fine.status, fine.output) == ("completed", {"ok": True, "id": 3})


def test_an_if_without_else_or_exit_is_recorded_once() -> None:
    """Its other arm runs the same code without the step (which has a condition): no
    recording of its own, so ten such ifs do not make 1024 recordings."""

    async def handler(ctx: Any) -> Any:
        flags = await call(ctx, "flags")
        for key in "abcdefghij":
            if flags[key]:
                await call(ctx, f"on-{key}")
        return {"done": True}

    d = record(handler, branch_overrides={"flags": {k: True for k in "abcdefghij"}})
    assert by_tag(d)["on-a"]["condition"] == "$Step{flags}{a} == true"
    assert sorted(by_tag(d)) == ["flags", *(f"on-{k}" for k in "abcdefghij")]
    assert not [e for e in events(d) if e["type"] in ("RETURN", "FAIL")]


def test_a_handler_with_too_many_paths_is_refused() -> None:
    async def handler(ctx: Any) -> Any:
        flags = await call(ctx, "flags")
        for key in "abcdefg":
            if flags[key]:
                await call(ctx, f"on-{key}")
            else:
                await call(ctx, f"off-{key}")
        return {}

    overrides = {"flags": {k: True for k in "abcdefg"}}
    with pytest.raises(RecordingError, match="more than 64 paths"):
        record(handler, branch_overrides=overrides)


def test_made_up_tags_do_not_clash_between_paths() -> None:
    """Each recording numbers ``log``, ``log-2``... in its own order: the other arm's own
    log line gets a fresh tag instead of clashing with the main path's second one."""

    async def handler(ctx: Any) -> Any:
        ctx.log.info("start")
        check = await call(ctx, "check")
        if not check.ok:
            ctx.log.warn("refused")
            charged = await ctx.action.run(app="api", event="fee")
            return {"ok": False, "fee": charged.id}
        ctx.log.info("accepted")
        paid = await ctx.action.run(app="api", event="fee", input={"body": {"full": True}})
        return {"ok": True, "fee": paid.id}

    d = record(handler, branch_overrides={"check": {"ok": True}})
    messages = {t: e["input"].get("message") for t, e in by_tag(d).items() if t.startswith("log")}
    assert messages == {"log": "start", "log-2": "accepted", "log-3": "refused"}
    assert by_tag(d)["fee"]["input"] == {"body": {"full": True}}
    assert by_tag(d)["fee-2"].get("input", {}) == {}
    assert by_tag(d)["return"]["input"] == {"output": {"ok": False, "fee": "$Step{fee-2}{id}"}}
    env = WorkflowTestEnvironment(fakes={"fee": {"id": 4}, "fee-2": {"id": 5}})
    refused = env.run(d, {}, fakes={"check": {"ok": False}})
    assert refused.output == {"ok": False, "fee": 5}
    assert [log["message"] for log in refused.logs] == ["start", "refused"]
    accepted = env.run(d, {}, fakes={"check": {"ok": True}})
    assert accepted.output == {"ok": True, "fee": 4}
    assert [log["message"] for log in accepted.logs] == ["start", "accepted"]
