"""The compiler: spec → plan, and every check it makes, asserted by JSON path and message."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from runtime.compiler import (
    ComponentInfo,
    Plan,
    PlanStep,
    compile_spec,
    spec_checksum,
    validation_issues,
)
from runtime.errors import Issue, SpecError
from runtime.spec import EventType, WorkflowSpec

# The seed's "Sequencing Events" example, as JSON (no app fields: they are implied).
MAIN_SEQUENCE: dict[str, Any] = {
    "tag": "main_sequence",
    "events": [
        {
            "type": "ACTION",
            "event": "validate_user",
            "input": {"userId": "$Input{user_id}"},
            "retries": 2,
            "allow_fail": False,
        },
        {
            "type": "NOTIFICATION",
            "event": "send_welcome_email",
            "input": {"email": "$Input{email}"},
            "retries": 1,
            "allow_fail": True,
        },
    ],
}

COMPONENTS = {
    "users-api": ComponentInfo("app", frozenset({"validate_user", "create_user"})),
    "stripe": ComponentInfo("app", frozenset({"create-charge", "refund"})),
    "mailer": ComponentInfo("notification", frozenset({"send_welcome_email"})),
    "orders-db": ComponentInfo("database", frozenset({"create", "find"})),
    "warehouse": ComponentInfo("broker", frozenset({"new-order"})),
    "files": ComponentInfo("storage", frozenset({"upload"})),
}


def action(event: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ACTION", "event": event, **extra}


def seq(tag: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "events": list(events), **extra}


def issues_of(spec: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        compile_spec(spec, **kwargs)
    return [(i.path, i.message) for i in info.value.issues]


def assert_issue(spec: dict[str, Any], path: str, fragment: str, **kwargs: Any) -> None:
    found = issues_of(spec, **kwargs)
    assert any(p == path and fragment in m for p, m in found), found


# ----------------------------------------------------------------- the seed example


def test_the_seed_main_sequence_compiles_with_its_apps_implied() -> None:
    plan = compile_spec({"sequences": [MAIN_SEQUENCE]}, components=COMPONENTS)
    seq_plan = plan.sequence("main_sequence")
    assert seq_plan.level == 0
    assert [s.tag for s in plan.roots] == ["main_sequence"]
    validate = plan.step("validate_user")
    assert validate.app == "users-api"
    assert validate.retries == 2
    assert validate.input == {"userId": "$Input{user_id}"}
    email = plan.step("send_welcome_email")
    assert (email.app, email.allow_fail, email.index, email.sequence) == (
        "mailer",
        True,
        1,
        "main_sequence",
    )


def test_the_seed_main_sequence_compiles_without_components() -> None:
    plan = compile_spec({"sequences": [MAIN_SEQUENCE]})
    assert plan.step("validate_user").app is None


def test_a_plan_round_trips_through_json() -> None:
    spec = {
        "sequences": [
            MAIN_SEQUENCE,
            seq(
                "pay",
                action(
                    "create-charge",
                    app="stripe",
                    tag="charge",
                    input={"body": {"user": "$Step{validate_user}{id}"}},
                    retry_delay="2s",
                    timeout="1m",
                    backoff="exponential",
                    critical=True,
                    condition="$Step{validate_user}{ok} == true",
                    rollback={
                        "type": "ACTION",
                        "event": "refund",
                        "app": "stripe",
                        "input": {"id": "$Step{charge}{id}"},
                        "retry_delay": "500ms",
                    },
                ),
                parents=["main_sequence"],
                skip_if="$Input{free} == true",
            ),
        ],
        "options": {"timeout": "5m", "rollback_strategy": "critical_only", "max_concurrency": 4},
        "signals": {"approve": {"input": {"approver_id": "string"}}},
        "queries": {"getProgress": {"output": {"done": "$Run{completed_steps}"}}},
        "input": {"type": "object"},
        "output": {"charge": "$Step{charge}{id}"},
        "triggers": [{"event": "warehouse:new-order"}],
    }
    plan = compile_spec(spec, components=COMPONENTS)
    data = json.loads(json.dumps(plan.model_dump(mode="json")))
    again = Plan.model_validate(data)
    assert again == plan
    assert again.step("charge").rollback == {
        "type": "ACTION",
        "event": "refund",
        "app": "stripe",
        "input": {"id": "$Step{charge}{id}"},
        "retries": 2,
        "retry_delay_ms": 500,
        "timeout_ms": None,
    }
    charge = again.step("charge")
    assert (charge.retry_delay_ms, charge.timeout_ms, charge.backoff, charge.critical) == (
        2000,
        60_000,
        "exponential",
        True,
    )
    assert charge.type is EventType.ACTION
    assert charge.condition == "$Step{validate_user}{ok} == true"
    assert again.sequence("pay").skip_if == "$Input{free} == true"
    assert again.sequence("pay").parents == ["main_sequence"]
    assert again.sequence("main_sequence").children == ["pay"]
    assert again.options.model_dump() == {
        "timeout_ms": 300_000,
        "rollback_strategy": "critical_only",
        "max_concurrency": 4,
        "groups": {},
    }
    assert again.signals == {"approve": {"approver_id": "string"}}
    assert again.queries == {"getProgress": {"done": "$Run{completed_steps}"}}
    assert again.input_schema == {"type": "object"}
    assert again.output == {"charge": "$Step{charge}{id}"}
    assert again.triggers == [{"type": "topic", "event": "warehouse:new-order", "input": None}]
    assert [s.tag for s in again.steps] == ["validate_user", "send_welcome_email", "charge"]
    with pytest.raises(KeyError):
        again.step("nope")


def test_a_plan_is_immutable() -> None:
    plan = compile_spec({"sequences": [MAIN_SEQUENCE]})
    with pytest.raises(Exception, match="frozen"):
        plan.output = 1  # type: ignore[misc]


def test_a_spec_model_compiles_like_its_dict() -> None:
    spec = {"sequences": [MAIN_SEQUENCE]}
    assert compile_spec(WorkflowSpec.model_validate(spec)) == compile_spec(spec)


def test_an_empty_workflow_compiles_to_an_empty_plan() -> None:
    plan = compile_spec({})
    assert plan.sequences == [] and plan.levels() == []


# ----------------------------------------------------------------- levels and order


def test_levels_are_the_longest_path_from_a_root_and_order_follows_them() -> None:
    spec = {
        "sequences": [
            seq("d", parents=["b", "c"]),
            seq("c", parents=["a"]),
            seq("b", parents=["a", "c"]),
            seq("a"),
            seq("e"),
        ]
    }
    plan = compile_spec(spec)
    assert {s.tag: s.level for s in plan.sequences} == {"a": 0, "e": 0, "c": 1, "b": 2, "d": 3}
    assert [s.tag for s in plan.sequences] == ["a", "e", "c", "b", "d"]
    assert plan.levels() == [["a", "e"], ["c"], ["b"], ["d"]]
    assert [s.tag for s in plan.roots] == ["a", "e"]
    assert plan.sequence("a").children == ["c", "b"]


def test_a_given_level_that_agrees_is_accepted() -> None:
    spec = {"sequences": [seq("a", level=0), seq("b", parents=["a"], level=1)]}
    assert compile_spec(spec).sequence("b").level == 1


def test_a_given_level_above_its_parents_names_the_lowest_allowed() -> None:
    spec = {"sequences": [seq("a"), seq("b", parents=["a"]), seq("c", parents=["b"], level=1)]}
    assert_issue(spec, "sequences[2].level", "level 1 is above its parents: at least 2")


def test_a_given_level_is_bounded() -> None:
    assert_issue({"sequences": [seq("a", level=10_001)]}, "sequences[0].level", "10000")


def test_a_given_level_orders_roots_and_pushes_descendants_down() -> None:
    spec = {
        "sequences": [
            seq("second", level=2),
            seq("first", level=1),
            seq("free"),
            seq("tail", parents=["second"]),
        ]
    }
    plan = compile_spec(spec)
    assert {s.tag: s.level for s in plan.sequences} == {
        "free": 0,
        "first": 1,
        "second": 2,
        "tail": 3,
    }
    assert [s.tag for s in plan.sequences] == ["free", "first", "second", "tail"]
    given = {s.tag: s.level_given for s in plan.sequences}
    assert given == {"free": False, "first": True, "second": True, "tail": False}


def test_a_sequence_with_a_given_level_may_read_steps_of_lower_levels() -> None:
    def reader(tag: str, ref: str, **extra: Any) -> dict[str, Any]:
        event = {"type": "CODE", "event": "m:f", "tag": f"{tag}-x", "input": {"v": ref}}
        return {"tag": tag, "events": [event], **extra}

    ok = {"sequences": [reader("a", "1", level=1), reader("b", "$Step{a-x}", level=2)]}
    assert compile_spec(ok).sequence("b").level == 2
    # Without a level on the reader, nothing orders it after `a`.
    bad = {"sequences": [reader("a", "1", level=1), reader("b", "$Step{a-x}")]}
    assert_issue(bad, "sequences[1].events[0].input.v", "is not guaranteed to run before")


# ----------------------------------------------------------------- structure errors


def test_a_cycle_is_rejected_naming_the_cycle() -> None:
    spec = {
        "sequences": [
            seq("start"),
            seq("a", parents=["start", "b"]),
            seq("b", parents=["a"]),
            seq("after", parents=["b"]),
        ]
    }
    assert issues_of(spec) == [("sequences[1].parents", "cycle: a -> b -> a")]


def test_every_separate_cycle_is_named() -> None:
    spec = {
        "sequences": [
            seq("x", parents=["z"]),
            seq("y", parents=["x"]),
            seq("z", parents=["y"]),
            seq("p", parents=["q"]),
            seq("q", parents=["p"]),
        ]
    }
    assert issues_of(spec) == [
        ("sequences[0].parents", "cycle: x -> y -> z -> x"),
        ("sequences[3].parents", "cycle: p -> q -> p"),
    ]


def test_a_missing_parent_is_named_at_its_index() -> None:
    spec = {"sequences": [seq("a"), seq("b", parents=["a", "ghost"])]}
    assert issues_of(spec) == [("sequences[1].parents[1]", "unknown parent 'ghost'")]


def test_a_sequence_cannot_be_its_own_parent() -> None:
    spec = {"sequences": [seq("a", parents=["a"])]}
    assert issues_of(spec) == [("sequences[0].parents[0]", "sequence 'a' cannot be its own parent")]


def test_a_parent_listed_twice_is_refused() -> None:
    spec = {"sequences": [seq("a"), seq("b", parents=["a", "a"])]}
    assert issues_of(spec) == [("sequences[1].parents[1]", "parent 'a' is listed twice")]


def test_duplicate_sequence_tags_are_refused() -> None:
    spec = {"sequences": [seq("a"), seq("b"), seq("a")]}
    assert issues_of(spec) == [
        ("sequences[2].tag", "duplicate sequence tag 'a' (also sequences[0])")
    ]


def test_duplicate_step_tags_are_refused_across_the_workflow() -> None:
    spec = {
        "sequences": [
            seq("a", action("charge")),
            seq("b", action("create-charge", tag="charge"), action("refund"), action("refund")),
        ]
    }
    assert issues_of(spec) == [
        (
            "sequences[1].events[0].tag",
            "duplicate step tag 'charge' (also sequences[0].events[0]); set a unique tag",
        ),
        (
            "sequences[1].events[2].event",
            "duplicate step tag 'refund' (also sequences[1].events[1]); set a unique tag",
        ),
    ]


def test_the_same_event_twice_is_fine_with_distinct_tags() -> None:
    spec = {"sequences": [seq("a", action("refund", tag="r1"), action("refund", tag="r2"))]}
    assert [s.tag for s in compile_spec(spec).steps] == ["r1", "r2"]


def test_an_event_name_with_braces_needs_a_tag() -> None:
    spec = {"sequences": [seq("a", action("GET /users/{id}"))]}
    assert_issue(spec, "sequences[0].events[0].event", "cannot be referenced")
    spec = {"sequences": [seq("a", action("GET /users/{id}", tag="get-user"))]}
    compile_spec(spec)


# ----------------------------------------------------------------- references


def test_a_reference_to_an_earlier_step_in_the_same_sequence_is_fine() -> None:
    spec = {"sequences": [seq("a", action("pay"), action("ship", input={"id": "$Step{pay}{id}"}))]}
    compile_spec(spec)


def test_a_reference_to_an_ancestor_step_is_fine_through_several_levels() -> None:
    spec = {
        "sequences": [
            seq("root", action("pay")),
            seq("mid", action("noop"), parents=["root"]),
            seq(
                "leaf",
                action("ship", input={"a": "$Step{pay}", "b": "$Sequence{root}{pay}{id}"}),
                parents=["mid"],
                skip_if="$Step{noop}{skip} == true",
            ),
        ]
    }
    compile_spec(spec)


def test_an_unknown_step_is_named_with_the_field() -> None:
    spec = {
        "sequences": [
            seq("a", action("x")),
            seq("b"),
            seq("c", action("ship", input={"body": {"id": "$Step{pay}{id}"}})),
        ]
    }
    assert issues_of(spec) == [
        ("sequences[2].events[0].input.body.id", "unknown step 'pay' in $Step{pay}{id}")
    ]


def test_a_forward_reference_in_the_same_sequence_is_refused() -> None:
    spec = {"sequences": [seq("a", action("ship", input={"id": "$Step{pay}{id}"}), action("pay"))]}
    assert issues_of(spec) == [
        ("sequences[0].events[0].input.id", "step 'pay' runs after 'ship' in sequence 'a'")
    ]


def test_a_step_cannot_read_its_own_output() -> None:
    spec = {"sequences": [seq("a", action("pay", input={"id": "$Step{pay}{id}"}))]}
    assert issues_of(spec) == [
        ("sequences[0].events[0].input.id", "step 'pay' cannot refer to its own output")
    ]


def test_a_reference_to_a_sibling_branch_is_refused_naming_both() -> None:
    spec = {
        "sequences": [
            seq("root", action("start")),
            seq("x", action("pay"), parents=["root"]),
            seq("y", action("ship", input={"id": "$Step{pay}{id}"}), parents=["root"]),
        ]
    }
    assert issues_of(spec) == [
        (
            "sequences[2].events[0].input.id",
            "step 'pay' in sequence 'x' is not guaranteed to run before 'ship' (not an ancestor)",
        )
    ]


def test_a_reference_to_a_descendant_is_refused() -> None:
    spec = {
        "sequences": [
            seq("a", action("ship", condition="$Step{pay}{ok} == true")),
            seq("b", action("pay"), parents=["a"]),
        ]
    }
    assert issues_of(spec) == [
        (
            "sequences[0].events[0].condition",
            "step 'pay' in sequence 'b' is not guaranteed to run before 'ship' (not an ancestor)",
        )
    ]


def test_sequence_references_check_sequence_and_step() -> None:
    spec = {
        "sequences": [
            seq("a", action("pay")),
            seq(
                "b",
                action(
                    "ship",
                    input={
                        "x": "$Sequence{nope}{pay}{id}",
                        "y": "$Sequence{a}{nope}",
                        "z": "$Sequence{b}{pay}",
                        "ok": "$Sequence{a}{pay}{id}",
                    },
                ),
                parents=["a"],
            ),
        ]
    }
    assert issues_of(spec) == [
        ("sequences[1].events[0].input.x", "unknown sequence 'nope' in $Sequence{nope}{pay}{id}"),
        (
            "sequences[1].events[0].input.y",
            "unknown step 'nope' in sequence 'a' in $Sequence{a}{nope}",
        ),
        (
            "sequences[1].events[0].input.z",
            "unknown step 'pay' in sequence 'b' in $Sequence{b}{pay}",
        ),
    ]


def test_skip_if_may_only_read_ancestors() -> None:
    spec = {
        "sequences": [
            seq("a", action("pay")),
            seq("b", action("ship"), skip_if="$Step{ship}{x} == 1 || $Step{pay}{x} == 1"),
        ]
    }
    found = issues_of(spec)
    assert found == [
        (
            "sequences[1].skip_if",
            "step 'ship' is in sequence 'b' itself, whose skip_if is evaluated before any of"
            " its steps run",
        ),
        (
            "sequences[1].skip_if",
            "step 'pay' in sequence 'a' is not guaranteed to run before 'b' (not an ancestor)",
        ),
    ]


def test_a_rollback_may_read_its_own_step_but_not_later_ones() -> None:
    rollback = {"type": "ACTION", "event": "refund", "input": {"id": "$Step{pay}{id}"}}
    compile_spec({"sequences": [seq("a", action("pay", rollback=rollback))]})
    rollback = {"type": "ACTION", "event": "refund", "input": {"id": "$Step{ship}{id}"}}
    spec = {"sequences": [seq("a", action("pay", rollback=rollback), action("ship"))]}
    assert issues_of(spec) == [
        (
            "sequences[0].events[0].rollback.input.id",
            "step 'ship' runs after 'pay.rollback' in sequence 'a'",
        )
    ]


def test_output_and_queries_may_read_any_step_but_not_unknown_ones() -> None:
    spec = {
        "sequences": [seq("a", action("pay")), seq("b", action("ship"))],
        "output": {"pay": "$Step{pay}{id}", "ship": "$Step{ship}", "bad": "$Step{nope}"},
        "queries": {"progress": {"output": ["$Step{ship}{x}", "$Step{gone}{x}"]}},
    }
    assert issues_of(spec) == [
        ("output.bad", "unknown step 'nope' in $Step{nope}"),
        ("queries.progress.output[1]", "unknown step 'gone' in $Step{gone}{x}"),
    ]


def test_trigger_input_can_only_use_the_message() -> None:
    spec = {
        "sequences": [seq("a", action("pay"))],
        "triggers": [
            {"event": "warehouse:new-order", "input": {"id": "$Step{pay}{id}", "m": "$Input{id}"}}
        ],
    }
    assert_issue(spec, "triggers[0].input.id", "a trigger starts the run")


def test_reference_paths_are_json_paths_into_lists_and_odd_keys() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                action(
                    "x",
                    input={"items": [{"id": "ok"}, {"id": "$Step{nope}"}], "X-Id z": "$Step{no}"},
                ),
            )
        ]
    }
    assert [p for p, _ in issues_of(spec)] == [
        "sequences[0].events[0].input.items[1].id",
        'sequences[0].events[0].input["X-Id z"]',
    ]


# ----------------------------------------------------------------- expressions


def test_a_malformed_condition_is_refused_with_its_position() -> None:
    spec = {"sequences": [seq("a", action("x", condition="$Input{a} = 'b'"))]}
    assert issues_of(spec) == [
        (
            "sequences[0].events[0].condition",
            "malformed condition: use == to compare ('=' alone is not an operator) at position 10",
        )
    ]


def test_a_malformed_skip_if_is_refused() -> None:
    spec = {"sequences": [seq("a", skip_if="($Input{a} == 1")]}
    assert_issue(spec, "sequences[0].skip_if", "malformed condition: expected ')'")


def test_an_unknown_operator_is_refused_with_its_path_and_position() -> None:
    spec = {"sequences": [seq("a", action("x", input={"body": {"name": "Hi $Shout($Input{n})"}}))]}
    assert issues_of(spec) == [
        ("sequences[0].events[0].input.body.name", "unknown operator '$Shout' at position 3")
    ]


def test_wrong_arity_is_refused_at_compile_time() -> None:
    spec = {"sequences": [seq("a", action("x", input={"s": "$Subtract(1)"}))]}
    assert_issue(spec, "sequences[0].events[0].input.s", "$Subtract takes 2 arguments, got 1")


def test_expressions_in_rollback_output_and_queries_are_parsed() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                action(
                    "x", rollback={"type": "ACTION", "event": "undo", "input": {"a": "$Nope(1)"}}
                ),
            )
        ],
        "output": "$Upper(1)",
        "queries": {"q": {"output": {"k": "$Step{"}}},
    }
    assert [p for p, _ in issues_of(spec)] == [
        "sequences[0].events[0].rollback.input.a",
        "output",
        "queries.q.output.k",
    ]


# ----------------------------------------------------------------- event types


def test_durations_are_checked_everywhere() -> None:
    spec = {
        "options": {"timeout": "soon"},
        "sequences": [
            seq(
                "a",
                action(
                    "x",
                    retry_delay="fast",
                    timeout=-5,
                    rollback={"type": "ACTION", "event": "u", "timeout": "1 week"},
                ),
            )
        ],
    }
    assert [p for p, _ in issues_of(spec)] == [
        "sequences[0].events[0].retry_delay",
        "sequences[0].events[0].timeout",
        "sequences[0].events[0].rollback.timeout",
        "options.timeout",
    ]


def test_wait_signal_must_name_declared_signals() -> None:
    spec = {
        "signals": {"approve": {"input": {"by": "string"}}, "reject": {}},
        "sequences": [
            seq(
                "a",
                {"type": "WAIT_SIGNAL", "event": "approve", "input": {"timeout": "24h"}},
                {
                    "type": "WAIT_SIGNAL",
                    "event": "decide",
                    "tag": "d",
                    "input": {"signals": ["approve", "reject"]},
                },
                {"type": "WAIT_SIGNAL", "event": "cancel-order", "tag": "c"},
                {
                    "type": "WAIT_SIGNAL",
                    "event": "w",
                    "input": {"signals": ["approve", "nope"], "timeout": "x"},
                },
            )
        ],
    }
    assert issues_of(spec) == [
        (
            "sequences[0].events[2].event",
            "signal 'cancel-order' is not declared in signals (declared: approve, reject)",
        ),
        (
            "sequences[0].events[3].input.signals[1]",
            "signal 'nope' is not declared in signals (declared: approve, reject)",
        ),
        (
            "sequences[0].events[3].input.timeout",
            "invalid duration 'x': use ms or '500ms', '5s', '5m', '1h', '1d'",
        ),
    ]


def test_sleep_needs_a_duration() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                {"type": "SLEEP", "event": "5m"},
                {"type": "SLEEP", "event": "pause", "input": {"duration": 5000}},
                {"type": "SLEEP", "event": "p2", "input": {"duration": "$Input{wait}"}},
                {"type": "SLEEP", "event": "nap"},
                {"type": "SLEEP", "event": "p3", "input": {"duration": "later"}},
            )
        ]
    }
    assert issues_of(spec) == [
        (
            "sequences[0].events[3].event",
            "SLEEP needs a duration: an event like '5m' or input.duration (got 'nap')",
        ),
        (
            "sequences[0].events[4].input.duration",
            "invalid duration 'later': use ms or '500ms', '5s', '5m', '1h', '1d'",
        ),
    ]


def test_feature_names_a_workflow_and_code_a_dotted_path() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                {"type": "FEATURE", "event": "payment-processing"},
                {"type": "FEATURE", "event": "not a tag!", "tag": "f2"},
                {"type": "CODE", "event": "myapp.steps:score"},
                {"type": "CODE", "event": "myapp.steps.score", "tag": "c2"},
                {"type": "CODE", "event": "score", "tag": "c3"},
            )
        ]
    }
    assert issues_of(spec) == [
        ("sequences[0].events[1].event", "'not a tag!' is not a workflow tag"),
        (
            "sequences[0].events[4].event",
            "'score' is not a dotted path like 'package.module:function'",
        ),
    ]


# ----------------------------------------------------------------- components


def test_components_must_exist_be_of_the_right_kind_and_declare_the_event() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                action("create-charge", app="stripe"),
                action("x1", app="ghost"),
                action("x2", app="mailer"),
                action("fly", app="stripe"),
                {"type": "NOTIFICATION", "event": "nobody-sends-this"},
                {"type": "DB_ACTION", "event": "orders-db:create"},
                {"type": "DB_ACTION", "event": "find", "tag": "f", "app": "orders-db"},
                {"type": "DB_ACTION", "event": "orders-db:drop", "tag": "d"},
                {"type": "STORAGE", "event": "upload"},
            )
        ]
    }
    assert issues_of(spec, components=COMPONENTS) == [
        ("sequences[0].events[1].app", "unknown app component 'ghost'"),
        (
            "sequences[0].events[2].app",
            "component 'mailer' is a notification; a ACTION event needs a app",
        ),
        ("sequences[0].events[3].event", "app 'stripe' has no event 'fly'"),
        (
            "sequences[0].events[4].event",
            "no notification component declares event 'nobody-sends-this'",
        ),
        ("sequences[0].events[7].event", "database 'orders-db' has no event 'drop'"),
    ]


def test_implied_apps_are_resolved_into_the_plan() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                action("refund"),
                {"type": "DB_ACTION", "event": "orders-db:create"},
                {"type": "PUBLISH", "event": "warehouse:new-order"},
                {"type": "STORAGE", "event": "upload"},
            )
        ]
    }
    plan = compile_spec(spec, components=COMPONENTS)
    assert [s.app for s in plan.steps] == ["stripe", "orders-db", "warehouse", "files"]


def test_an_event_declared_by_several_components_needs_an_app() -> None:
    components = {**COMPONENTS, "billing": ComponentInfo("app", frozenset({"refund"}))}
    spec = {"sequences": [seq("a", action("refund"))]}
    assert issues_of(spec, components=components) == [
        (
            "sequences[0].events[0].app",
            "event 'refund' is declared by several app components (billing, stripe): set app",
        )
    ]


def test_publish_is_broker_colon_topic() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                {"type": "PUBLISH", "event": "warehouse:new-order"},
                {"type": "PUBLISH", "event": "new-order", "tag": "p2", "app": "warehouse"},
                {"type": "PUBLISH", "event": "just-a-topic", "tag": "p3"},
                {"type": "PUBLISH", "event": "nowhere:topic", "tag": "p4"},
                {"type": "PUBLISH", "event": "warehouse:topic", "tag": "p5", "app": "other"},
            )
        ]
    }
    assert issues_of(spec, components=COMPONENTS) == [
        ("sequences[0].events[2].event", "a PUBLISH event is 'broker:topic', got 'just-a-topic'"),
        ("sequences[0].events[3].event", "unknown broker component 'nowhere'"),
        (
            "sequences[0].events[4].app",
            "app 'other' does not match 'warehouse' in event 'warehouse:topic'",
        ),
        ("sequences[0].events[4].app", "unknown broker component 'other'"),
    ]


def test_rollback_events_are_checked_like_events() -> None:
    spec = {
        "sequences": [
            seq(
                "a",
                action("create-charge", rollback={"type": "ACTION", "event": "refund"}),
                action("create_user", rollback={"type": "ACTION", "event": "delete_user"}),
            )
        ]
    }
    assert issues_of(spec, components=COMPONENTS) == [
        ("sequences[0].events[1].rollback.event", "no app component declares event 'delete_user'")
    ]
    del spec["sequences"][0]["events"][1]
    plan = compile_spec(spec, components=COMPONENTS)
    assert plan.step("create-charge").rollback["app"] == "stripe"  # type: ignore[index]


def test_triggers_name_a_broker() -> None:
    spec = {"sequences": [], "triggers": [{"event": "ghost:topic"}, {"event": "no-colon"}]}
    assert issues_of(spec, components=COMPONENTS) == [
        ("triggers[0].event", "unknown broker component 'ghost'"),
        ("triggers[1].event", "a trigger event is 'broker:topic', got 'no-colon'"),
    ]


def test_without_components_component_checks_are_skipped() -> None:
    spec = {"sequences": [seq("a", action("anything", app="ghost"))]}
    assert compile_spec(spec).step("anything").app == "ghost"


# ----------------------------------------------------------------- validation


def test_validation_errors_are_mapped_to_json_paths() -> None:
    spec = {
        "sequences": [
            {
                "tag": "a",
                "events": [{"type": "TELEPORT", "event": "x", "timeout": [1], "colour": "red"}],
            },
            {"tag": "bad tag!", "events": []},
        ],
        "signals": {"no spaces": {}},
    }
    found = dict(issues_of(spec))
    assert found["sequences[0].events[0].type"].startswith("Input should be 'ACTION'")
    assert found["sequences[0].events[0].timeout"] == (
        "a duration is a number of ms or a string like '5m'"
    )
    assert found["sequences[0].events[0].colour"] == "Extra inputs are not permitted"
    assert "should match pattern" in found["sequences[1].tag"]
    assert "invalid name 'no spaces'" in found["signals"]


def test_a_non_object_spec_is_refused_at_the_root() -> None:
    assert issues_of([1, 2]) == [
        ("$", "Input should be a valid dictionary or instance of WorkflowSpec")
    ]  # type: ignore[arg-type]


def test_validation_issues_can_take_a_prefix() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        WorkflowSpec.model_validate({"sequences": [{"events": []}]})
    assert validation_issues(info.value, prefix="spec") == [
        Issue("spec.sequences[0].tag", "Field required")
    ]


def test_all_problems_are_reported_at_once() -> None:
    spec = {
        "sequences": [
            seq("a", action("x", condition="=="), action("y", input={"v": "$Nope(1)"})),
            seq("a", parents=["ghost"]),
            seq("c", parents=["d"]),
            seq("d", parents=["c"]),
        ]
    }
    paths = [p for p, _ in issues_of(spec)]
    assert paths == [
        "sequences[1].tag",
        "sequences[2].parents",
        "sequences[0].events[0].condition",
        "sequences[0].events[1].input.v",
    ]


# ----------------------------------------------------------------- checksum


def test_the_checksum_is_stable_and_ignores_key_order_and_defaults() -> None:
    spec = {"sequences": [MAIN_SEQUENCE]}
    reordered = json.loads(json.dumps(spec, sort_keys=True))
    with_defaults = compile_spec(spec) and WorkflowSpec.model_validate(spec).model_dump(mode="json")
    assert spec_checksum(spec) == spec_checksum(reordered) == spec_checksum(with_defaults)
    assert spec_checksum(spec) == spec_checksum(WorkflowSpec.model_validate(spec))
    changed = copy.deepcopy(spec)
    changed["sequences"][0]["events"][0]["retries"] = 3
    assert spec_checksum(changed) != spec_checksum(spec)
    assert len(spec_checksum(spec)) == 64
    assert len(spec_checksum({"sequences": "not valid"})) == 64


def test_plan_steps_are_typed() -> None:
    step = compile_spec({"sequences": [MAIN_SEQUENCE]}).steps[0]
    assert isinstance(step, PlanStep)


# ----------------------------------------------------------------- limits and purity


def test_input_nested_too_deeply_is_refused_not_crashing() -> None:
    deep: Any = "$Input{x}"
    for _ in range(200):
        deep = {"a": deep}
    spec = {"sequences": [seq("a", action("x", input={"body": deep}))]}
    [(path, message)] = issues_of(spec)
    assert path.startswith("sequences[0].events[0].input.body.a.a.a")
    assert message == "nested more than 64 levels deep"


def test_the_compiler_and_expressions_import_no_django() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, runtime.compiler, runtime.expressions;"
        "bad = [m for m in sys.modules if m.startswith('django')];"
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
