"""The expression language: references, operators, conditions, errors with positions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ExpressionError
from runtime.expressions import (
    COMPARISONS,
    OPERATORS,
    REDACTED,
    Condition,
    DictScope,
    Ref,
    evaluate_condition,
    parse,
    parse_condition,
    references,
    resolve,
    resolve_masked,
    resolve_redacted,
)

ITEMS = [
    {"id": 1, "status": "new", "price": 5},
    {"id": 2, "status": "paid", "price": 12.5},
    {"id": 3, "status": "paid", "price": 20},
]


@pytest.fixture
def scope() -> DictScope:
    return DictScope(
        input={
            "n": 5,
            "zero": 0,
            "name": "  Ada Lovelace ",
            "email": "ADA@Example.com",
            "flag": True,
            "none": None,
            "csv": "a,b,c",
            "items": ITEMS,
            "user": {"address": {"city": "Paris"}},
            "when": "2024-03-05T07:08:09Z",
            "epoch": 1709622489000,
            "count": "7",
        },
        steps={
            "validate": {"valid": True, "score": 82, "reason": None},
            "fetch-data.v2": {"rows": [{"id": "r1"}]},
            "plain": "just text",
        },
        sequences={"main": {"validate": {"valid": True}}},
        state={"retryCount": 2, "cart": {"total": 9}},
        variables={"stripe": {"api_version": "2024-01"}},
        constants={"stripe": {"default_currency": "usd"}},
        secrets={"stripe_key": "sk_live_123"},
        run={"id": 42, "status": "running", "completed_steps": ["validate"]},
        now=lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


# ----------------------------------------------------------------- references and typing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$Input{n}", 5),
        ("$Input{flag}", True),
        ("$Input{user.address.city}", "Paris"),
        ("$Input{user}", {"address": {"city": "Paris"}}),
        ("$Input{items.1.id}", 2),
        ("$Input{items[2].status}", "paid"),
        ("$Input{items[0]}", ITEMS[0]),
        ("$Step{validate}{valid}", True),
        ("$Step{validate}", {"valid": True, "score": 82, "reason": None}),
        ("$Step{fetch-data.v2}{rows[0].id}", "r1"),
        ("$Step{plain}", "just text"),
        ("$Sequence{main}{validate}{valid}", True),
        ("$Sequence{main}{validate}", {"valid": True}),
        ("$State{retryCount}", 2),
        ("$State{cart.total}", 9),
        ("$Variable{stripe}{api_version}", "2024-01"),
        ("$Constant{stripe}{default_currency}", "usd"),
        ("$Secret{stripe_key}", "sk_live_123"),
        ("$Run{status}", "running"),
        ("$Run{completed_steps}", ["validate"]),
        ("$Now", "2024-01-02T03:04:05+00:00"),
    ],
)
def test_a_string_that_is_one_reference_keeps_the_value_type(
    scope: DictScope, text: str, expected: object
) -> None:
    assert resolve(text, scope) == expected
    assert type(resolve(text, scope)) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "$Input{missing}",
        "$Input{user.nothing.deeper}",
        "$Input{items.9.id}",
        "$Input{items.x}",
        "$Input{n.x}",
        "$Step{nope}{a}",
        "$Step{validate}{reason.x}",
        "$Sequence{nope}{validate}{valid}",
        "$State{nope}",
        "$Variable{nope}{k}",
        "$Constant{stripe}{nope}",
        "$Secret{nope}",
        "$Run{nope}",
    ],
)
def test_a_missing_path_resolves_to_none_not_an_error(scope: DictScope, text: str) -> None:
    assert resolve(text, scope) is None


def test_references_inside_text_are_interpolated(scope: DictScope) -> None:
    assert resolve("n=$Input{n}!", scope) == "n=5!"
    assert resolve("$Input{n}$Input{n}", scope) == "55"
    assert resolve("ok: $Step{validate}{valid}", scope) == "ok: true"
    assert resolve("none: [$Input{none}]", scope) == "none: []"
    assert resolve("city $Input{user}", scope) == 'city {"address": {"city": "Paris"}}'
    assert resolve("ids $Input{items.0.id} ", scope) == "ids 1 "
    assert resolve("$Input{items[0].price} USD", scope) == "5 USD"


def test_surrounding_whitespace_makes_a_reference_interpolated(scope: DictScope) -> None:
    assert resolve(" $Input{n}", scope) == " 5"


def test_plain_dollars_are_text(scope: DictScope) -> None:
    assert resolve("costs $5 in $USD", scope) == "costs $5 in $USD"
    assert resolve("$$Input{n} is literal", scope) == "$Input{n} is literal"
    assert resolve("a lone $", scope) == "a lone $"
    assert parse("costs $5").is_static


def test_resolve_walks_dicts_and_lists_and_keeps_other_values(scope: DictScope) -> None:
    value = {
        "body": {"id": "$Input{items.0.id}", "tags": ["$Input{csv}", 3, None, True]},
        "$Input{n}": "keys are not resolved",
    }
    assert resolve(value, scope) == {
        "body": {"id": 1, "tags": ["a,b,c", 3, None, True]},
        "$Input{n}": "keys are not resolved",
    }


def test_tags_may_hold_dashes_and_dots(scope: DictScope) -> None:
    ref = parse("$Step{fetch-data.v2}{rows}").refs[0]
    assert ref == Ref("Step", ("fetch-data.v2",), "rows")


def test_references_lists_every_reference_in_nested_values() -> None:
    value = {
        "a": ["$Step{validate}{valid}", {"b": "x $Sequence{main}{pay}{id} y"}],
        "c": "$Concat($Input{first}, $Variable{app}{key})",
        "d": 5,
    }
    assert references(value) == [
        Ref("Step", ("validate",), "valid"),
        Ref("Sequence", ("main", "pay"), "id"),
        Ref("Input", (), "first"),
        Ref("Variable", ("app",), "key"),
    ]
    assert references("$Now") == [Ref("Now")]
    assert references("$Secret{k}") == [Ref("Secret", ("k",), "")]


def test_dictscope_now_may_return_a_string() -> None:
    assert resolve("$Now", DictScope(now=lambda: "2020-01-01")) == "2020-01-01"


def test_default_now_is_an_iso_string_in_utc() -> None:
    value = resolve("$Now", DictScope())
    assert datetime.fromisoformat(value).tzinfo is not None


# ----------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$Add(1, 2)", 3),
        ("$Add($Input{n}, 2, 0.5)", 7.5),
        ("$Add($Input{count}, 1)", 8),
        ("$Add($Input{missing}, 1)", None),
        ("$Subtract(10, $Input{n})", 5),
        ("$Subtract(1.5, 1)", 0.5),
        ("$Subtract($Input{missing}, 1)", None),
        ("$Concat('a', $Input{n}, '-', true)", "a5-true"),
        ("$Concat('x', $Input{missing})", "x"),
        ("$Concat([1, 2], [3], $Input{items[0].id})", "[1, 2][3]1"),
        ("$Concat([1, 2], [3])", [1, 2, 3]),
        ("$Concat($Input{items}, [4])", [*ITEMS, 4]),
        ("$Substring('abcdef', 2)", "cdef"),
        ("$Substring('abcdef', 1, 3)", "bcd"),
        ("$Substring($Input{missing}, 1)", None),
        ("$Trim($Input{name})", "Ada Lovelace"),
        ("$Trim($Input{missing})", None),
        ("$Split($Input{csv}, ',')", ["a", "b", "c"]),
        ("$Split('abc', '')", ["a", "b", "c"]),
        ("$Pick($Input{user}, 'address.city')", "Paris"),
        ("$Pick($Input{items}, '1.status')", "paid"),
        ("$Pick($Input{items}, 0)", ITEMS[0]),
        ("$Pick($Input{user}, 'nope')", None),
        ("$Pick($Input{user}, 'bad..path')", None),
        ("$Pick($Input{user}, $Input{missing})", None),
        ("$Join(['a', 'b', 3], ', ')", "a, b, 3"),
        ("$Join($Split($Input{csv}, ','), '|')", "a|b|c"),
        ("$Join(['a', 'b'])", "a,b"),
        ("$Uppercase('MiXed')", "MIXED"),
        ("$Lowercase($Input{email})", "ada@example.com"),
        ("$Dateformat($Input{when}, 'YYYY-MM-DD HH:mm:ss')", "2024-03-05 07:08:09"),
        ("$Dateformat($Input{epoch}, 'DD/MM/YYYY')", "05/03/2024"),
        ("$Dateformat('1709622489000', 'YYYY')", "2024"),
        ("$Dateformat(0, 'YYYY-MM-DDTHH:mm:ss.SSS')", "1970-01-01T00:00:00.000"),
        ("$Dateformat($Now, 'YYYY')", "2024"),
        ("$Dateformat($Input{missing}, 'YYYY')", None),
        ("$Size($Input{items})", 3),
        ("$Size($Input{user})", 1),
        ("$Size('four')", 4),
        ("$Size($Input{missing})", 0),
        ("$Length($Input{csv})", 5),
        ("$Length([1, 2])", 2),
        ("$Filter($Input{items}, 'status', '==', 'paid')", ITEMS[1:]),
        ("$Filter($Input{items}, 'price', '>', 10)", ITEMS[1:]),
        ("$Filter($Input{items}, 'price', '<=', 5)", ITEMS[:1]),
        ("$Filter($Input{missing}, 'price', '<=', 5)", []),
        ("$Find($Input{items}, 'status', '==', 'paid')", ITEMS[1]),
        ("$Find($Input{items}, 'id', '!==', 1)", ITEMS[1]),
        ("$Find($Input{items}, 'status', '==', 'gone')", None),
        ("$Default($Input{missing}, 'usd')", "usd"),
        ("$Default($Input{zero}, 3)", 0),
        ("$Default($Step{validate}{reason}, 'none given')", "none given"),
        ("$Uppercase($Default($Input{missing}, 'x'))", "X"),
    ],
)
def test_operators(scope: DictScope, text: str, expected: object) -> None:
    assert resolve(text, scope) == expected


def test_every_operator_has_a_test() -> None:
    tested = set()
    for name in OPERATORS:
        params = test_operators.pytestmark[0].args[1]  # type: ignore[attr-defined]
        if any(f"${name}(" in text for text, _ in params):
            tested.add(name)
    assert tested == set(OPERATORS)


def test_operator_arguments_may_be_literals_of_every_kind(scope: DictScope) -> None:
    assert resolve("$Concat('a\\'b', \"c\\\"d\", '\\n')", scope) == "a'bc\"d\n"
    assert resolve("$Default(null, -2.5e1)", scope) == -25.0
    assert resolve("$Default(null, false)", scope) is False
    assert resolve("$Size([ 1 , [2, 3] , 'x' ])", scope) == 3
    assert resolve("$Concat( 'a' ,  'b' )", scope) == "ab"


def test_operators_interpolate_inside_text(scope: DictScope) -> None:
    assert resolve("Hello $Uppercase($Trim($Input{name}))!", scope) == "Hello ADA LOVELACE!"


def test_operators_on_wrong_types_raise_an_expression_error(scope: DictScope) -> None:
    with pytest.raises(ExpressionError, match="not a number"):
        resolve("$Add('x', 1)", scope)
    with pytest.raises(ExpressionError, match="cannot read"):
        resolve("$Dateformat('yesterday', 'YYYY')", scope)
    with pytest.raises(ExpressionError, match="unknown comparison"):
        resolve("$Filter($Input{items}, 'id', $Input{csv}, 1)", scope)


# ----------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("$Foo(1)", "unknown operator '$Foo'", 0),
        ("id: $Bogus{x}", "unknown operator '$Bogus'", 4),
        ("$Add(1)", "$Add takes at least 2 arguments, got 1", 0),
        ("x $Trim('a', 'b')", "$Trim takes 1 argument, got 2", 2),
        ("$Substring('a')", "$Substring takes 2 to 3 arguments, got 1", 0),
        ("$Filter([], 'a', '=~', 1)", "unknown comparison '=~'", 0),
        ("$Step", "$Step is written $Step{tag}{path}", 0),
        ("$Sequence{main}", "$Sequence is written $Sequence{sequence}{step}{path}", 0),
        ("$Variable{app}", "$Variable is written $Variable{app}{key}", 0),
        ("$Step{ }{a}", "empty name in $Step", 6),
        ("$Input{a..b}", "empty path segment", 9),
        ("$Input{a.}", "empty path segment", 9),
        ("$Input{a[x]}", "an index is written [0]", 8),
        ("$Input{a", "unclosed '{'", 6),
        ("$Trim", "$Trim needs arguments", 5),
        ("$Concat('a' 'b')", "expected ',' or ')'", 12),
        ("$Concat('a', x)", "unexpected word 'x'", 13),
        ("$Concat('a", "unterminated string", 8),
        ("$Concat(", "expected a value, found end of text", 8),
        ("$Concat([1, 2)", "expected ',' or ']'", 13),
        ("$Concat(#)", "expected a value, found '#'", 8),
        ("$State{}", "empty key in $State", 7),
    ],
)
def test_parse_errors_name_the_problem_and_its_position(
    text: str, message: str, position: int
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert message in info.value.message
    assert info.value.position == position
    assert f"at position {position}" in str(info.value)
    assert info.value.text == text


def test_references_raises_on_a_malformed_string() -> None:
    with pytest.raises(ExpressionError):
        references({"a": ["$Nope(1)"]})


# ----------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("1", "==", "1", True),
        ("1", "==", "1.0", True),
        ("1", "===", "1.0", True),
        ("1", "==", "'1'", False),
        ("1", "===", "'1'", False),
        ("true", "==", "1", False),
        ("true", "==", "true", True),
        ("null", "==", "null", True),
        ("null", "==", "0", False),
        ("'a'", "==", "'a'", True),
        ("'a'", "!=", "'b'", True),
        ("'a'", "!==", "'a'", False),
        ("1", "!=", "'1'", True),
        ("2", ">", "1", True),
        ("1", ">", "1", False),
        ("1", ">=", "1", True),
        ("0.5", "<", "1", True),
        ("2", "<=", "1", False),
        ("'b'", ">", "'a'", True),
        ("'apple'", "<", "'banana'", True),
        ("'10'", ">", "9", False),
        ("null", ">", "1", False),
        ("null", "<", "1", False),
        ("null", ">=", "null", False),
        ("true", ">", "false", False),
    ],
)
def test_comparisons(scope: DictScope, left: str, op: str, right: str, expected: bool) -> None:
    assert evaluate_condition(f"{left} {op} {right}", scope) is expected


def test_every_comparison_has_a_test() -> None:
    params = test_comparisons.pytestmark[0].args[1]  # type: ignore[attr-defined]
    assert {op for _, op, _, _ in params} == set(COMPARISONS)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # the seed's examples
        ("$Step{validate}{valid} == true", True),
        ("$Input{type} == 'premium'", False),
        ("$Step{validate}{score} >= 80 && $Input{role} != 'guest'", True),
        ("($Input{region} == 'eu') || ($Input{region} == 'uk')", False),
        ("$Input{count} <= 100", False),  # '7' is a string: no coercion
        ('$Input{name} != "draft"', True),
        # combinations, precedence, grouping
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("!false", True),
        ("!($Input{n} > 3)", False),
        ("!!$Input{flag}", True),
        ("$Input{n} > 3 && $Input{n} < 10 && $Input{flag}", True),
        ("$Input{missing} == null", True),
        ("$Input{missing}", False),
        ("$Input{zero}", False),
        ("$Input{items}", True),
        ("$Size($Input{items}) == 3", True),
        ("$Lowercase($Input{email}) == 'ada@example.com'", True),
        ("$Default($Input{missing}, 'x') === 'x'", True),
        ("$Run{status} == 'running'", True),
        ("$State{retryCount} < 3", True),
        ("  $Input{n}==5  ", True),
        ("$Input{n}!=5", False),
    ],
)
def test_conditions(scope: DictScope, condition: str, expected: bool) -> None:
    assert evaluate_condition(condition, scope) is expected


def test_a_parsed_condition_can_be_evaluated_many_times(scope: DictScope) -> None:
    cond = parse_condition("$Input{n} > $Add(1, 2)")
    assert isinstance(cond, Condition)
    assert cond.refs == (Ref("Input", (), "n"),)
    assert evaluate_condition(cond, scope) is True
    assert evaluate_condition(cond, DictScope(input={"n": 1})) is False


def test_conditions_short_circuit(scope: DictScope) -> None:
    # the right side would raise if evaluated
    assert evaluate_condition("true || $Add('x', 1) == 1", scope) is True
    assert evaluate_condition("false && $Add('x', 1) == 1", scope) is False


@pytest.mark.parametrize(
    ("condition", "message", "position"),
    [
        ("", "empty condition", 0),
        ("   ", "empty condition", 0),
        ("$Input{a} = 1", "use == to compare", 10),
        ("$Input{a} == ", "expected a value, found end of text", 13),
        ("($Input{a} == 1", "expected ')' to close the '(' at position 0", 15),
        ("$Input{a} == 1)", "unmatched ')'", 14),
        ("$Input{a} == 1 & true", "use && or ||", 15),
        ("$Input{a} == 1 | true", "use && or ||", 15),
        ("$Input{a} == 1 true", "expected &&, || or the end", 15),
        ("$Input{a} == draft", "unexpected word 'draft'", 13),
        ("$Input{a} == $Nope(1)", "unknown operator '$Nope'", 13),
        ("$Input{a} == 'x", "unterminated string", 13),
        ("$Step{validate}{valid} == true &&", "expected a value", 33),
        ("1 == 1 == 1", "expected &&, || or the end", 7),
    ],
)
def test_malformed_conditions_name_the_position(
    condition: str, message: str, position: int
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_condition(condition)
    assert message in info.value.message
    assert info.value.position == position


# ----------------------------------------------------------------- secrets


def test_resolve_redacted_hides_every_secret_in_the_stored_copy(scope: DictScope) -> None:
    value = {
        "headers": {"Authorization": "Bearer $Secret{stripe_key}"},
        "key": "$Secret{stripe_key}",
        "joined": "$Concat('k=', $Secret{stripe_key})",
        "list": ["$Secret{stripe_key}", "$Input{n}"],
        "plain": "$Input{n}",
        "missing": "$Secret{nope}",
    }
    resolved, redacted = resolve_redacted(value, scope)
    assert resolved == {
        "headers": {"Authorization": "Bearer sk_live_123"},
        "key": "sk_live_123",
        "joined": "k=sk_live_123",
        "list": ["sk_live_123", 5],
        "plain": 5,
        "missing": None,
    }
    # Every expression that involves a secret is redacted whole (an operator's result
    # included), whether or not the secret is set; plain text around it is kept.
    assert redacted == {
        "headers": {"Authorization": f"Bearer {REDACTED}"},
        "key": REDACTED,
        "joined": REDACTED,
        "list": [REDACTED, 5],
        "plain": 5,
        "missing": REDACTED,
    }
    assert "sk_live_123" not in repr(redacted)


@pytest.mark.parametrize(
    "text",
    [
        "$Lowercase($Secret{stripe_key})",
        "$Uppercase($Secret{stripe_key})",
        "$Substring($Secret{stripe_key}, 3, 4)",
        "$Split($Secret{stripe_key}, '_')",
        "$Join($Split($Secret{stripe_key}, ''), '-')",
        "$Size($Secret{stripe_key})",
        "$Default(null, $Trim($Secret{stripe_key}))",
        "$Filter([1, 2], '', '==', $Size($Secret{stripe_key}))",
        "key: $Pick([$Secret{stripe_key}], '0') ok",
    ],
)
def test_the_stored_copy_holds_no_transform_of_a_secret(scope: DictScope, text: str) -> None:
    _, redacted = resolve_redacted({"v": text}, scope)
    assert resolve_masked({"v": text}, scope) == redacted
    shown = repr(redacted)
    for fragment in ("live", "LIVE", "123", "11"):  # a piece, another case, the size
        assert fragment not in shown
    assert REDACTED in shown


# ----------------------------------------------------------------- speed


def test_parsing_is_cached_and_resolving_is_fast(scope: DictScope) -> None:
    assert parse("$Input{n} and $Input{flag}") is parse("$Input{n} and $Input{flag}")
    value = {"body": {"a": "$Input{n}", "b": "plain text", "c": "x $Step{validate}{score}"}}
    resolve(value, scope)
    start = time.perf_counter()
    for _ in range(10_000):
        resolve(value, scope)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"10k resolves took {elapsed:.3f}s"


def test_scopes_may_hold_any_mapping_and_tuples() -> None:
    from types import MappingProxyType

    scope = DictScope(input=MappingProxyType({"a": MappingProxyType({"b": (10, 20)})}))
    assert resolve("$Input{a.b.1}", scope) == 20
    assert resolve("$Input{a.b[0]}", scope) == 10


def test_a_custom_scope_only_needs_lookup() -> None:
    class Fixed:
        def lookup(self, ref: Ref) -> object:
            return f"{ref.kind}:{'/'.join(ref.args)}:{ref.path}"

    assert resolve("$Step{a}{b.c} $Secret{k}", Fixed()) == "Step:a:b.c Secret:k:"


# ----------------------------------------------------------------- fuzzing

# Text built from the language's own pieces, so the fuzzer reaches deep into the parser.
PIECES = st.sampled_from(
    [
        "$Input", "$Step", "$Sequence", "$Secret", "$Now", "$Add", "$Concat", "$Filter",
        "$Nope", "$", "$$", "{", "}", "(", ")", "[", "]", ",", ".", "'", '"', "\\", "a", "b.c",
        "0", "-1", "2.5", " ", "==", "===", "!=", ">", "<=", "&&", "||", "!", "true", "null",
    ]
)  # fmt: skip
FUZZ = st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=25).map("".join))


@settings(max_examples=1500, deadline=None)
@given(text=FUZZ)
def test_parsing_any_text_either_works_or_raises_an_expression_error(text: str) -> None:
    scope = DictScope(input={"a": 1, "b": {"c": [1, 2]}})
    for parse_fn in (parse, parse_condition):
        try:
            parsed = parse_fn(text)
        except ExpressionError as exc:
            assert exc.position is not None and 0 <= exc.position <= len(text)
            continue
        try:
            if isinstance(parsed, Condition):
                assert evaluate_condition(parsed, scope) in (True, False)
            else:
                parsed.evaluate(scope)
        except ExpressionError:
            pass  # e.g. $Add('x', 1): a run-time type error, reported as such


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60).filter(lambda t: "$" not in t))
def test_text_without_a_dollar_is_returned_unchanged(text: str) -> None:
    assert resolve(text, DictScope()) is text
    assert parse(text).is_static


JSON_VALUES = st.recursive(
    # JSON values: no inf or nan (an operator result that is not finite is an error)
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_an_exact_reference_returns_the_value_itself(value: object) -> None:
    scope = DictScope(input={"v": value}, steps={"s": value})
    assert resolve("$Input{v}", scope) == value
    assert resolve("$Step{s}", scope) == value
    assert resolve("$Default($Input{v}, 'd')", scope) == ("d" if value is None else value)
