"""The runs page's ``where`` grammar (runtime/run_filter.py): pure, bounded, never eval'ed."""

from __future__ import annotations

import pytest

from runtime.errors import RunRefused
from runtime.run_filter import MAX_CLAUSES, Clause, filter_parse


def test_it_parses_clauses_joined_by_and() -> None:
    text = (
        'input.customer.id = 42 and output.total >= 3.5 and input.name != "a b"'
        " and input.items.0.sku = abc"
    )
    assert filter_parse(text) == [
        Clause("input", ("customer", "id"), "=", 42),
        Clause("output", ("total",), ">=", 3.5),
        Clause("input", ("name",), "!=", "a b"),
        Clause("input", ("items", "0", "sku"), "=", "abc"),
    ]


def test_json_literals_keep_their_type() -> None:
    values = [
        filter_parse(f"input.x = {v}")[0].value for v in ("true", "null", "-7", '"42"', "1e3")
    ]
    assert values == [True, None, -7, "42", 1000.0]
    assert filter_parse("   ") == []


@pytest.mark.parametrize(
    "text",
    [
        "customer.id = 1",  # no root
        "input = 1",  # no key
        "input.a",  # no operator
        "input.a = ",  # no value
        "input.a = 1 2",  # two values
        "input.a ~ 1",  # unknown operator
        "input.a < abc",  # order needs a number
        "input.a = 1e999",  # not a finite number
        "input.a = __import__('os')",  # not a value: refused, never evaluated
        " and ".join(["input.a = 1"] * (MAX_CLAUSES + 1)),
        "input." + "a" * 101 + " = 1",
        "x" * 501,
    ],
)
def test_anything_else_is_refused_naming_where(text: str) -> None:
    with pytest.raises(RunRefused) as caught:
        filter_parse(text)
    assert caught.value.field == "where"
