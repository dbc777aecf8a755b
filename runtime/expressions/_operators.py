"""The operators (``$Add``, ``$Concat``, ``$Filter``, ...): arity and implementation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from runtime.errors import ExpressionError
from runtime.expressions._paths import parse_path, walk
from runtime.expressions._values import COMPARISONS, as_text, compare, is_number


def _number(name: str, value: Any) -> int | float:
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number) if number.is_integer() and "." not in value else number
    raise ExpressionError(f"${name}: {value!r} is not a number")


def _op_add(args: list[Any]) -> Any:
    if any(a is None for a in args):
        return None
    return sum(_number("Add", a) for a in args)


def _op_subtract(args: list[Any]) -> Any:
    if args[0] is None or args[1] is None:
        return None
    return _number("Subtract", args[0]) - _number("Subtract", args[1])


def _op_concat(args: list[Any]) -> Any:
    present = [a for a in args if a is not None]
    if present and all(isinstance(a, list) for a in present):
        return [item for a in present for item in a]
    return "".join(as_text(a) for a in args)


def _int_arg(name: str, value: Any) -> int:
    number = _number(name, value)
    return int(number)


def _op_substring(args: list[Any]) -> Any:
    text = args[0]
    if text is None:
        return None
    text = as_text(text)
    start = _int_arg("Substring", args[1])
    if len(args) > 2 and args[2] is not None:
        return text[start : start + max(_int_arg("Substring", args[2]), 0)]
    return text[start:]


def _string_op(fn: Callable[[str], Any]) -> Callable[[list[Any]], Any]:
    def op(args: list[Any]) -> Any:
        return None if args[0] is None else fn(as_text(args[0]))

    return op


def _op_split(args: list[Any]) -> Any:
    if args[0] is None:
        return None
    sep = as_text(args[1])
    text = as_text(args[0])
    return list(text) if sep == "" else text.split(sep)


def _op_pick(args: list[Any]) -> Any:
    key = args[1]
    if key is None:
        return None
    if isinstance(key, int) and not isinstance(key, bool):
        return walk(args[0], (key,))
    return walk(args[0], _runtime_path(as_text(key)))


@lru_cache(maxsize=1024)
def _runtime_path(key: str) -> tuple[str | int, ...]:
    """A path computed at run time ($Pick, $Filter): one that does not parse is a plain key."""
    try:
        return parse_path(key, 0, key)
    except ExpressionError:
        return (key,)


def _op_join(args: list[Any]) -> Any:
    items = args[0]
    if items is None:
        return None
    sep = as_text(args[1]) if len(args) > 1 else ","
    if not isinstance(items, list | tuple):
        return as_text(items)
    return sep.join(as_text(i) for i in items)


_DATE_TOKENS = re.compile(r"YYYY|SSS|MM|DD|HH|mm|ss")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if is_number(value):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text) / 1000, UTC)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise ExpressionError(f"$Dateformat: cannot read {value!r} as a date (ISO 8601 or epoch ms)")


def _op_dateformat(args: list[Any]) -> Any:
    if args[0] is None:
        return None
    moment = _as_datetime(args[0])
    values = {
        "YYYY": f"{moment.year:04d}",
        "MM": f"{moment.month:02d}",
        "DD": f"{moment.day:02d}",
        "HH": f"{moment.hour:02d}",
        "mm": f"{moment.minute:02d}",
        "ss": f"{moment.second:02d}",
        "SSS": f"{moment.microsecond // 1000:03d}",
    }
    return _DATE_TOKENS.sub(lambda m: values[m.group(0)], as_text(args[1]))


def _op_size(args: list[Any]) -> Any:
    value = args[0]
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    return len(as_text(value))


def _matching(name: str, args: list[Any]) -> list[Any]:
    items, key, op, expected = args
    if op not in COMPARISONS:
        raise ExpressionError(
            f"${name}: unknown comparison {op!r}; use one of {', '.join(COMPARISONS)}"
        )
    if not isinstance(items, list | tuple):
        return []
    path = _runtime_path(as_text(key)) if key not in (None, "") else ()
    return [item for item in items if compare(walk(item, path), op, expected)]


def _op_filter(args: list[Any]) -> Any:
    return _matching("Filter", args)


def _op_find(args: list[Any]) -> Any:
    found = _matching("Find", args)
    return found[0] if found else None


def _op_default(args: list[Any]) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class Operator:
    """An operator's arity (checked at parse time) and implementation."""

    min_args: int
    max_args: int | None
    fn: Callable[[list[Any]], Any]
    usage: str


OPERATORS: dict[str, Operator] = {
    "Add": Operator(2, None, _op_add, "$Add(a, b, ...)"),
    "Subtract": Operator(2, 2, _op_subtract, "$Subtract(a, b)"),
    "Concat": Operator(1, None, _op_concat, "$Concat(a, b, ...)"),
    "Substring": Operator(2, 3, _op_substring, "$Substring(text, start, length?)"),
    "Trim": Operator(1, 1, _string_op(str.strip), "$Trim(text)"),
    "Split": Operator(2, 2, _op_split, "$Split(text, separator)"),
    "Pick": Operator(2, 2, _op_pick, "$Pick(object, 'key.path')"),
    "Join": Operator(1, 2, _op_join, "$Join(array, separator)"),
    "Uppercase": Operator(1, 1, _string_op(str.upper), "$Uppercase(text)"),
    "Lowercase": Operator(1, 1, _string_op(str.lower), "$Lowercase(text)"),
    "Dateformat": Operator(2, 2, _op_dateformat, "$Dateformat(date, 'YYYY-MM-DD')"),
    "Size": Operator(1, 1, _op_size, "$Size(value)"),
    "Length": Operator(1, 1, _op_size, "$Length(value)"),
    "Filter": Operator(4, 4, _op_filter, "$Filter(array, 'field', '==', value)"),
    "Find": Operator(4, 4, _op_find, "$Find(array, 'field', '==', value)"),
    "Default": Operator(2, 2, _op_default, "$Default(value, fallback)"),
}
