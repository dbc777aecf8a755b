"""FOREACH steps in the compiler: the plan they give, and every mistake named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.compiler import SpecError, compile_spec, is_iteration, iteration_key


def code(tag: str, **extra: Any) -> dict[str, Any]:
    return {"type": "CODE", "event": "tests.runtime.steps:record", "tag": tag, **extra}


def foreach(*body: dict[str, Any], tag: str = "each", **loop: Any) -> dict[str, Any]:
    loop.setdefault("items", "$Input{items}")
    return {"type": "FOREACH", "event": "each", "tag": tag, "loop": {"body": list(body), **loop}}


def spec(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sequences": [{"tag": "main", "events": list(events)}], **extra}


def issues(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        compile_spec(body)
    return {i.path: i.message for i in info.value.issues}


def test_a_loop_compiles_to_a_step_with_its_body_and_iterations_resolve() -> None:
    plan = compile_spec(
        spec(
            code("first"),
            foreach(
                code("charge", input={"id": "$Item{id}", "n": "$Index", "f": "$Step{first}"}),
                code(
                    "mail",
                    input={"charge": "$Step{charge}{id}"},
                    rollback={"type": "CODE", "event": "tests.runtime.steps:record",
                              "input": {"undo": "$Step{mail}"}},
                ),
                max_concurrency=4,
            ),
            code("after", input={"all": "$Step{each}"}),
        )
    )  # fmt: skip
    loop = plan.step("each")
    assert (loop.input, loop.max_concurrency) == ({"items": "$Input{items}"}, 4)
    assert [(b.tag, b.sequence, b.index, b.loop) for b in loop.body] == [
        ("charge", "each", 0, "each"),
        ("mail", "each", 1, "each"),
    ]
    iteration = plan.sequence("each[7]")
    assert [s.tag for s in iteration.events] == ["charge[7]", "mail[7]"]
    assert plan.step("mail[7]").rollback == loop.body[1].rollback
    assert plan.step("mail[7]").sequence == "each[7]"
    assert [s.tag for s in plan.steps] == ["first", "each", "after"]  # no iteration listed
    assert iteration_key("mail[12]") == ("mail", 12)
    assert is_iteration("each[0]") and not is_iteration("each")
    with pytest.raises(KeyError):
        plan.sequence("nowhere[1]")
    with pytest.raises(KeyError):
        plan.step("charge[x]")


def test_each_loop_mistake_is_named_by_its_path() -> None:
    found = issues(
        spec(
            code("first", input={"q": "$Index"}),
            foreach(
                code("b1", input={"x": "$Step{b2}"}),
                foreach(code("inner"), tag="nested"),
                code("b2", input={"self": "$Step{b2}"}),
                code("first"),
            ),
            code("after", input={"r": "$Step{b1}"}),
            foreach(code("c1"), tag="literal", items="items"),
            {"type": "FOREACH", "event": "bare"},
            {**code("notaloop"), "loop": {"items": "$Input{x}", "body": [code("z")]}},
            foreach(code("d1"), tag="x" * 91),
            {**foreach(code("e1"), tag="withinput"), "input": {"a": 1}},
        )
    )
    assert found == {
        "sequences[0].events[0]": "$Item and $Index exist only inside a FOREACH step's loop.body",
        "sequences[0].events[1].loop.body[0].input.x": "step 'b2' runs after 'b1' in the loop body",
        "sequences[0].events[1].loop.body[1].type": (
            "loops do not nest: a loop body holds no FOREACH"
        ),
        "sequences[0].events[1].loop.body[2].input.self": (
            "step 'b2' cannot refer to its own output"
        ),
        "sequences[0].events[1].loop.body[3].tag": "duplicate step tag 'first': set a unique tag",
        "sequences[0].events[2].input.r": (
            "step 'b1' runs inside loop 'each': read the list of its iterations' results as"
            " $Step{each}"
        ),
        "sequences[0].events[3].loop.items": "an expression giving a list, like $Input{items}",
        "sequences[0].events[4].loop": "a FOREACH step needs a loop: {items, body}",
        "sequences[0].events[5].loop": "only a FOREACH step has a loop",
        "sequences[0].events[6].tag": "a FOREACH step's tag is at most 90 characters",
        "sequences[0].events[7].input": "a FOREACH step takes its list from loop.items",
    }


def test_the_loop_shape_is_checked_by_the_schema() -> None:
    assert set(issues(spec(foreach(max_concurrency=0)))) == {
        "sequences[0].events[0].loop.body",
        "sequences[0].events[0].loop.max_concurrency",
    }


def test_a_loops_items_may_come_from_an_earlier_step_only() -> None:
    found = issues(spec(foreach(code("b"), items="$Step{later}{rows}"), code("later")))
    assert found == {
        "sequences[0].events[0].loop.items": "step 'later' runs after 'each' in sequence 'main'"
    }
    compile_spec(spec(code("rows"), foreach(code("b"), items="$Step{rows}{list}")))


def test_a_secret_cannot_be_looped_over_and_a_rollback_is_no_loop() -> None:
    found = issues(
        spec(
            foreach(code("b"), items="$Secret{key}"),
            {**code("c"), "rollback": {"type": "FOREACH", "event": "x"}},
        )
    )
    assert found["sequences[0].events[0].loop.items"].startswith("$Secret may only be used")
    assert (
        found["sequences[0].events[1].rollback.type"]
        == "a rollback is one event, not a FOREACH loop"
    )
