"""The compiler's secret rule: a ``$Secret`` (directly, through any operator at any depth,
or interpolated in text) may appear only in the input of an event that sends it out in
its own component's call (``SECRET_OUTGOING``: an ACTION's params, query, body, headers).
Everywhere else it would be stored or shown below admin, and the spec is refused with
the path of the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from runtime.compiler import compile_spec
from runtime.errors import SpecError
from runtime.expressions import OPERATORS, WHOLE_SECRET_ARGS, parse
from runtime.spec import SECRET_OUTGOING, EventType
from tests.conftest import client_for

MESSAGE = "$Secret may only be used in an outgoing call's input"

# Each operator wrapping a secret, with arguments that parse (arity is checked at parse).
WRAPPED: dict[str, str] = {
    "Add": "$Add($Secret{k}, 1)",
    "Subtract": "$Subtract($Secret{k}, 1)",
    "Concat": "$Concat('x', $Secret{k})",
    "Substring": "$Substring($Secret{k}, 0, 4)",
    "Trim": "$Trim($Secret{k})",
    "Split": "$Split($Secret{k}, '_')",
    "Pick": "$Pick([$Secret{k}], '0')",
    "Join": "$Join([$Secret{k}], '-')",
    "Uppercase": "$Uppercase($Secret{k})",
    "Lowercase": "$Lowercase($Secret{k})",
    "Dateformat": "$Dateformat($Secret{k}, 'YYYY')",
    "Size": "$Size($Secret{k})",
    "Length": "$Length($Secret{k})",
    "Filter": "$Filter([$Secret{k}], '', '==', 'x')",
    "Find": "$Find(['a'], '', '==', $Secret{k})",
    "Default": "$Default(null, $Secret{k})",
}


def test_the_table_covers_every_operator() -> None:
    # A new operator must be added here, so the rule is proven for it too.
    assert set(WRAPPED) == set(OPERATORS)


def _forms() -> list[tuple[str, str]]:
    forms = [("direct", "$Secret{k}"), ("text", "Bearer $Secret{k}")]
    for name, expr in WRAPPED.items():
        forms.append((name, expr))
        # Nested under other operators, and interpolated in text.
        forms.append((f"{name}-nested", f"$Lowercase($Concat('a', $Default(null, {expr})))"))
        forms.append((f"{name}-text", f"id={expr}; done"))
    return forms


FORMS = _forms()
# Forms that hand the secret on whole: all an outgoing call may send.
WHOLE_FORMS = [(form, expr) for form, expr in FORMS if parse(expr).secret_cut_by is None]
CUT_FORMS = [(form, expr) for form, expr in FORMS if parse(expr).secret_cut_by is not None]
CUT = "$Secret may only be sent whole"


def test_only_operators_that_keep_a_secret_whole_may_send_one() -> None:
    cut = {name for name, expr in WRAPPED.items() if parse(expr).secret_cut_by == name}
    assert cut == {"Add", "Subtract", "Substring", "Split", "Dateformat", "Size", "Length",
                   "Filter", "Find"}  # fmt: skip
    assert cut == set(OPERATORS) - set(WHOLE_SECRET_ARGS)
    # $Pick's key is a comparison with the secret.
    assert parse("$Pick($Input{table}, $Secret{k})").secret_cut_by == "Pick"
    assert parse("$Concat('a', $Pick([$Secret{k}], 0))").secret_cut_by is None


def _step(type_: EventType, expr: str) -> dict[str, Any]:
    event = {
        EventType.SLEEP: "1s",
        EventType.WAIT_SIGNAL: "go",
        EventType.FEATURE: "child",
        EventType.CODE: "tests.runtime.steps:record",
        EventType.PUBLISH: "bus:topic",
        EventType.DB_ACTION: "db:op",
    }.get(type_, "op")
    return {"type": type_.value, "event": event, "app": "a", "input": {"value": expr}}


def _spec(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "sequences": [
            {"tag": "main", "events": [{"type": "ACTION", "event": "ok", "app": "a"}]},
            {"tag": "s", "parents": ["main"], "events": list(events)},
        ],
        "signals": {"go": {}},
        **extra,
    }


def _stored_places() -> list[tuple[str, Callable[[str], dict[str, Any]], str]]:
    """(name, spec with the expression in that place, the path the error must name)."""
    places: list[tuple[str, Callable[[str], dict[str, Any]], str]] = []
    for type_ in EventType:
        if type_ in SECRET_OUTGOING:
            continue
        places.append(
            (
                f"{type_.value}-input",
                lambda e, t=type_: _spec(_step(EventType.ACTION, "fine"), _step(t, e)),
                "sequences[1].events[1].input.value",
            )
        )
        places.append(
            (
                f"{type_.value}-rollback-input",
                lambda e, t=type_: _spec(
                    {**_step(EventType.ACTION, "fine"), "rollback": _step(t, e)}
                ),
                "sequences[1].events[0].rollback.input.value",
            )
        )
    places += [
        (
            "condition",
            lambda e: _spec({**_step(EventType.ACTION, "x"), "condition": f"{e} == 'x'"}),
            "sequences[1].events[0].condition",
        ),
        (
            "skip_if",
            lambda e: {**_spec(), "sequences": [{"tag": "m", "skip_if": f"!{e}", "events": []}]},
            "sequences[0].skip_if",
        ),
        ("output", lambda e: _spec(output={"deep": [{"v": e}]}), "output.deep[0].v"),
        ("query", lambda e: _spec(queries={"peek": {"output": {"v": e}}}), "queries.peek.output.v"),
        (
            "trigger",
            lambda e: _spec(triggers=[{"event": "bus:t", "input": {"v": e}}]),
            "triggers[0].input.v",
        ),
        (
            "state-nested",
            lambda e: _spec(
                {"type": "SET_STATE", "event": "s", "input": {"a": {"b": [1, {"c": e}]}}}
            ),
            "sequences[1].events[0].input.a.b[1].c",
        ),
    ]
    return places


PLACES = _stored_places()


# Conditions are expressions, not text: interpolated forms do not apply to them.
CASES = [
    pytest.param(build, path, expr, id=f"{place}-{form}")
    for place, build, path in PLACES
    for form, expr in FORMS
    if not (place in ("condition", "skip_if") and form.endswith("text"))
]


@pytest.mark.parametrize(("build", "path", "expr"), CASES)
def test_a_secret_that_could_be_stored_or_shown_is_refused_with_its_path(
    build: Callable[[str], dict[str, Any]], path: str, expr: str
) -> None:
    with pytest.raises(SpecError) as info:
        compile_spec(build(expr))
    mine = [i for i in info.value.issues if i.message.startswith(MESSAGE)]
    assert [i.path for i in mine] == [path], info.value.issues


@pytest.mark.parametrize(("form", "expr"), WHOLE_FORMS, ids=[f[0] for f in WHOLE_FORMS])
def test_a_whole_secret_in_an_outgoing_calls_input_is_accepted(form: str, expr: str) -> None:
    call = {
        "params": {"id": expr},
        "query": {"q": expr},
        "body": {"deep": [{"v": expr}]},
        "headers": {"Authorization": expr},
    }
    rollback = {"type": "ACTION", "event": "undo", "app": "a", "input": {"body": {"v": expr}}}
    spec = _spec(
        {"type": "ACTION", "event": "pay", "app": "a", "input": call},
        {"type": "SLEEP", "event": "1s", "tag": "nap", "rollback": rollback},
    )
    plan = compile_spec(spec)
    assert plan.step("pay").input == call


@pytest.mark.parametrize(("form", "expr"), CUT_FORMS, ids=[f[0] for f in CUT_FORMS])
def test_a_secret_taken_apart_is_refused_even_in_an_outgoing_call(form: str, expr: str) -> None:
    rollback = {"type": "ACTION", "event": "undo", "app": "a", "input": {"v": expr}}
    spec = _spec(
        {"type": "ACTION", "event": "pay", "app": "a", "input": {"body": {"deep": [expr]}}},
        {"type": "SLEEP", "event": "1s", "tag": "nap", "rollback": rollback},
    )
    with pytest.raises(SpecError) as info:
        compile_spec(spec)
    assert [(i.path, i.message.startswith(CUT)) for i in info.value.issues] == [
        ("sequences[1].events[0].input.body.deep[0]", True),
        ("sequences[1].events[1].rollback.input.v", True),
    ]


def test_every_stored_place_is_reported_at_once() -> None:
    spec = _spec(
        {"type": "SET_STATE", "event": "s", "input": {"token": "$Secret{api_token}"}},
        {
            "type": "ACTION",
            "event": "x",
            "app": "a",
            "condition": "$Size($Secret{k}) > 3",
            "input": {"body": {"v": "$Lowercase($Secret{k})"}},
        },
        output={"t": "$Substring($Secret{k}, 0, 4)"},
    )
    with pytest.raises(SpecError) as info:
        compile_spec(spec)
    assert [f"{i.path}: {i.message}" for i in info.value.issues] == [
        f"sequences[1].events[0].input.token: {MESSAGE} (ACTION), not in a SET_STATE step's input",
        f"sequences[1].events[1].condition: {MESSAGE} (ACTION), not in a condition",
        f"output.t: {MESSAGE} (ACTION), not in the workflow's output",
    ]


@pytest.mark.django_db
def test_validate_and_publish_answer_400_naming_the_field(
    designer_user: User, product: Any
) -> None:
    from designer import services

    services.workflow_create(product=product, tag="leak", name="Leak", author=designer_user)
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {
                        "type": "SET_STATE",
                        "event": "keep",
                        "app": "stripe",
                        "input": {"value": "$Lowercase($Substring($Secret{api_token}, 0, 8))"},
                    }
                ],
            }
        ]
    }
    client = client_for(designer_user)
    base = "/api/v1/products/acme/workflows/leak/"
    for verb in ("validate", "publish"):
        response = client.post(base + verb, {"spec": spec}, format="json")
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"]
        paths = {e["path"]: e["message"] for e in body["errors"]}
        where = next(p for p in paths if p.endswith("sequences[0].events[0].input.value"))
        assert paths[where].startswith(MESSAGE)
