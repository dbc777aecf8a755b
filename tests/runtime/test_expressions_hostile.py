"""Every operator fed hostile arguments (issue 13, item 4): huge, negative and non-finite
numbers, huge integers, deep nesting, odd types, long strings, bad dates and formats. Each
outcome is a value the engine can store, an ExpressionError, or (past a size cap) the
step's own StepError — never another exception, which used to crash the worker's task on
every re-lease."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ExpressionError, StepError
from runtime.executor import json_bounded
from runtime.expressions import COMPARISONS, OPERATORS, DictScope, parse, parse_condition

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**5000),
    st.integers(min_value=-(10**5000), max_value=-(10**300)),
    st.floats(),  # nan, inf, -inf, subnormals, -0.0
    st.sampled_from([1e308, -1e308, 99999999999999999999, -99999999999999999999, 2**63, 0]),
)
TEXTS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "9" * 5000,
            "1e999",
            "-1e999",
            "NaN",
            "Infinity",
            "99999999999999999999",
            "-62135596800001",
            "2024-13-45",
            "99999-01-01T00:00:00",
            "0000-00-00",
            "2024-02-30T25:61:61Z",
            "YYYY-MM-DD HH:mm:ss.SSS",
            "YYYY" * 1000,
            "items[0].id",
            "a..b",
            "[99999999999999999999]",
            "",
            "\x00",
            "\ud800",
        ]
    ),
    st.integers(min_value=0, max_value=200_000).map(lambda n: "x" * n),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS, st.sampled_from(COMPARISONS))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = st.one_of(
    VALUES,
    st.integers(min_value=100, max_value=5000).map(nested),  # deep nesting
    st.integers(min_value=0, max_value=300_000).map(lambda n: list(range(n))),  # long lists
)


def outcome(text: str, args: list[Any]) -> None:
    scope = DictScope(input={f"a{i}": a for i, a in enumerate(args)})
    try:
        value = parse(text).evaluate(scope)
    except ExpressionError:
        return
    try:
        stored = json_bounded(value, limit_setting="TRELLIS_MAX_STEP_OUTPUT_BYTES", what="output")
    except StepError:
        return
    json.loads(stored)  # what the engine stores reads back


@pytest.mark.parametrize("name", sorted(OPERATORS))
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_operator_turns_hostile_arguments_into_a_value_or_an_error(
    name: str, data: st.DataObject
) -> None:
    op = OPERATORS[name]
    most = op.max_args if op.max_args is not None else op.min_args + 3
    count = data.draw(st.integers(min_value=op.min_args, max_value=most))
    args = [data.draw(HOSTILE) for _ in range(count)]
    refs = ", ".join(f"$Input{{a{i}}}" for i in range(count))
    outcome(f"${name}({refs})", args)  # as the exact value of a field
    outcome(f"value: ${name}({refs}) and more", args)  # interpolated into text
    # and as a condition operand
    scope = DictScope(input={f"a{i}": a for i, a in enumerate(args)})
    try:
        parse_condition(f"${name}({refs}) > 1 || !${name}({refs})").evaluate(scope)
    except ExpressionError:
        pass


@pytest.mark.parametrize(
    "text",
    [
        "$Add(" + "9" * 5000 + ", 1)",
        "$Add(1e999, 1)",
        "$Add(-1e999, 1)",
        "$Concat(" * 500 + "1" + ")" * 500,
        "$Concat(" + "[" * 500 + "]" * 500 + ")",
        "$Default(" * 2000 + "1" + ", 2)" * 2000,
    ],
)
def test_hostile_literals_are_refused_when_parsed(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


@pytest.mark.parametrize("text", ["!" * 5000 + "true", "(" * 5000 + "true" + ")" * 5000])
def test_deeply_nested_conditions_are_refused_when_parsed(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_condition(text)


def test_the_two_reported_attacks_are_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="not a finite number"):
        parse("$Add(1e308, 1e308)").evaluate(DictScope())
    with pytest.raises(ExpressionError, match=r"\$Dateformat"):
        parse("$Dateformat(99999999999999999999, 'YYYY')").evaluate(DictScope())


def test_a_concat_result_over_the_length_cap_is_an_expression_error() -> None:
    scope = DictScope(input={"t": "x" * 600_000})
    with pytest.raises(ExpressionError, match="longer than 1000000 characters"):
        parse("$Concat($Input{t}, $Input{t})").evaluate(scope)
    with pytest.raises(ExpressionError, match="longer than 1000000 characters"):
        parse("$Join([$Input{t}, $Input{t}], '')").evaluate(scope)
    with pytest.raises(ExpressionError, match="longer than 1000000 characters"):
        parse("$Input{t}$Input{t}").evaluate(scope)


def test_a_value_budget_bounds_what_one_resolution_produces() -> None:
    from runtime.expressions import resolve, value_budget

    scope = DictScope(input={"t": "x" * 1000})
    value = {f"k{i}": "$Concat($Input{t}, '!')" for i in range(10)}
    with value_budget(5000), pytest.raises(ExpressionError, match="too much text in all"):
        resolve(value, scope)
    with value_budget(20_000):
        assert len(resolve(value, scope)) == 10
    assert len(resolve(value, scope)) == 10  # outside a budget: per-value caps only
