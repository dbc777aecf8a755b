"""The expression language: references, operators and conditions (pure: no Django imports).

A string value in a spec is a *template*: plain text with ``$``-expressions in it.

- References: ``$Input{a.b}``, ``$Step{tag}{a.b}``, ``$Sequence{seq}{step}{a.b}``,
  ``$State{key}``, ``$Variable{app}{key}``, ``$Constant{app}{key}``, ``$Secret{key}``,
  ``$Run{field}``, ``$Now``. Paths use dots and numeric indexes (``items.0.id`` or
  ``items[0].id``); a missing path resolves to ``None``, never an error.
- Operators: ``$Name(arg, ...)`` where an argument is a literal (``'text'``, ``"text"``,
  numbers, ``true``/``false``/``null``, ``[a, b]``), a reference or another operator.
- A string that is exactly one expression keeps the value's type (``"$Input{n}"`` → ``5``);
  expressions inside longer text are interpolated (``None`` → ``""``, objects as JSON).
- ``$$`` is a literal ``$``; a ``$`` not followed by a capitalised name is plain text, and so is
  ``$Word`` not followed by ``(`` or ``{`` (``"costs $USD"``); ``$Unknown(...)`` is an error.

Conditions (step ``condition``, sequence ``skip_if``) compare operands with
``== === != !== > >= < <=``, combine with ``&& ||`` and ``!``, and group with parentheses.
Equality is JSON-typed: numbers compare by value (``1 == 1.0``), there is no string/number
coercion (``1 == '1'`` is false) and ``==``/``===`` mean the same, as in the seed's table.
Ordering works on two numbers or two strings; anything else (``None > 1``) is false.
A bare operand is tested for truthiness (``None``, ``false``, ``0``, ``''``, empty = false).

Why a hand-written recursive-descent parser instead of lark: references are
brace-delimited and read "until the closing brace" (tags may contain ``-`` and ``.``), and
expressions sit inside free text — both awkward for a context-free lexer. The grammar is
tiny, positions in errors come for free, and it is several times faster than a general
parser. Parsed templates are cached by string, so the engine pays for parsing once.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NoReturn, Protocol

from runtime.errors import ExpressionError

__all__ = [
    "COMPARISONS",
    "OPERATORS",
    "REDACTED",
    "REF_KINDS",
    "WHOLE_SECRET_ARGS",
    "Condition",
    "DictScope",
    "Ref",
    "Scope",
    "Template",
    "evaluate_condition",
    "parse",
    "parse_condition",
    "references",
    "resolve",
    "resolve_masked",
    "resolve_redacted",
]

REDACTED = "•••"

# Bounds on what an expression may hold or produce. A value past them is an
# ExpressionError (the step fails, no retry), never an exception that crashes the worker:
# - integers of more than MAX_INT_DIGITS digits (Python refuses to print those over 4,300,
#   and no JSON peer reads them), and non-finite floats (inf, nan: no JSON, no jsonb);
# - strings and lists longer than max_length (a few doubling $Concat steps would
#   otherwise fill the worker's memory); the engine sets it from TRELLIS_MAX_VALUE_LENGTH;
# - nesting of operators, arrays and parentheses deeper than MAX_DEPTH (the parser and
#   the evaluator recurse).
MAX_INT_DIGITS = 300
_INT_BOUND = 10**MAX_INT_DIGITS
MAX_DEPTH = 64


class _Limits:
    max_length = 1_000_000


LIMITS = _Limits()


def set_limits(*, max_length: int) -> None:
    """Set how long a string or list an operator may produce (the engine calls it)."""
    LIMITS.max_length = max_length


def check_number(value: Any, where: str) -> None:
    """Refuse a non-finite float or an integer of more than MAX_INT_DIGITS digits."""
    if value.__class__ is float:
        if not math.isfinite(value):
            raise ExpressionError(f"{where}: the result is not a finite number")
    elif value.__class__ is int and not -_INT_BOUND < value < _INT_BOUND:
        raise ExpressionError(f"{where}: the number has more than {MAX_INT_DIGITS} digits")


# What the expressions of one resolution (a step's input, a run's output) may still
# produce in all, in characters/items: each value is under max_length, but many of them in
# one input ("$Step{big}x" a thousand times) would still fill the worker's memory.
_budget = threading.local()


@contextmanager
def value_budget(length: int) -> Iterator[None]:
    """Within this block, operators and interpolated text may produce ``length``
    characters (or list items) in all; past that, an ExpressionError."""
    previous = getattr(_budget, "left", None)
    _budget.left = length
    try:
        yield
    finally:
        _budget.left = previous


def _spend(length: int) -> None:
    left = getattr(_budget, "left", None)
    if left is not None:
        left -= length
        if left < 0:
            raise ExpressionError("the expressions produce too much text in all")
        _budget.left = left


def _check_result(name: str, value: Any) -> Any:
    cls = value.__class__
    if cls is float or cls is int:
        check_number(value, f"${name}")
    elif cls is str or cls is list:
        if len(value) > LIMITS.max_length:
            raise ExpressionError(
                f"${name}: the result is longer than {LIMITS.max_length} "
                + ("characters" if cls is str else "items")
            )
        _spend(len(value))
    return value


COMPARISONS = ("===", "!==", "==", "!=", ">=", "<=", ">", "<")

# kind -> (min {..} groups, max {..} groups, how many leading groups are tags (args))
# The group after the tags, when present, is the path.
_REF_SHAPES: dict[str, tuple[int, int, int]] = {
    "Input": (0, 1, 0),
    "Step": (1, 2, 1),
    "Sequence": (2, 3, 2),
    "State": (1, 1, 0),
    "Variable": (2, 2, 1),
    "Constant": (2, 2, 1),
    "Secret": (1, 1, 1),
    "Run": (1, 1, 0),
    "Now": (0, 0, 0),
}
REF_KINDS = frozenset(_REF_SHAPES)


def _groups_pattern(most: int) -> re.Pattern[str]:
    """Up to ``most`` brace groups, each read until its closing brace: ``{a}{b.c}``."""
    pattern = ""
    for _ in range(most):
        pattern = r"(?:\{([^}]*)\}" + pattern + ")?"
    return re.compile(pattern)


_REF_GROUPS = {kind: _groups_pattern(most) for kind, (_, most, _) in _REF_SHAPES.items()}
_REF_USAGE = {
    "Input": "$Input{path}",
    "Step": "$Step{tag}{path}",
    "Sequence": "$Sequence{sequence}{step}{path}",
    "State": "$State{key}",
    "Variable": "$Variable{app}{key}",
    "Constant": "$Constant{app}{key}",
    "Secret": "$Secret{key}",
    "Run": "$Run{field}",
    "Now": "$Now",
}


# --------------------------------------------------------------------------- scope


class Scope(Protocol):
    """Where references get their values. The engine may implement it lazily."""

    def lookup(self, ref: Ref) -> Any:
        """The value ``ref`` points at, or ``None`` when any part of it is missing."""
        ...


def _walk(value: Any, segments: tuple[str | int, ...]) -> Any:
    """Follow a path through dicts and lists; ``None`` as soon as a step is missing."""
    for seg in segments:
        # plain dict/list first: isinstance against the Mapping ABC is several times slower
        if isinstance(value, dict) or isinstance(value, Mapping):
            value = value.get(seg if isinstance(seg, str) else str(seg))
        elif isinstance(value, list | tuple):
            if isinstance(seg, int):
                index = seg
            elif seg.isdigit():
                index = int(seg)
            else:
                return None
            if index >= len(value):
                return None
            value = value[index]
        else:
            return None
        if value is None:
            return None
    return value


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class DictScope:
    """A scope over plain dicts: ``steps={tag: output}``, ``sequences={seq: {step: output}}``,
    ``variables``/``constants`` ``{app: {key: value}}``, ``secrets`` ``{key: value}``,
    ``run`` ``{id, status, completed_steps, current_step}``; ``now`` returns the time
    ``$Now`` gives (a datetime is turned into an ISO 8601 string)."""

    input: Any = None
    steps: Mapping[str, Any] = field(default_factory=dict)
    sequences: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    now: Callable[[], Any] = _now_iso

    def lookup(self, ref: Ref) -> Any:
        kind = ref.kind
        if kind == "Input":
            base = self.input
        elif kind == "Step":
            base = self.steps.get(ref.args[0])
        elif kind == "Sequence":
            base = _walk(self.sequences, ref.args)
        elif kind == "State":
            base = self.state
        elif kind in ("Variable", "Constant"):
            source = self.variables if kind == "Variable" else self.constants
            base = source.get(ref.args[0])
        elif kind == "Secret":
            return self.secrets.get(ref.args[0])
        elif kind == "Run":
            base = self.run
        else:  # Now
            now = self.now()
            return now.isoformat() if isinstance(now, datetime) else now
        return _walk(base, ref.segments) if ref.segments else base


# --------------------------------------------------------------------------- AST


class _Node:
    __slots__ = ()

    def eval(self, scope: Scope) -> Any:
        raise NotImplementedError

    def refs(self) -> list[Ref]:
        return []


# Not frozen: a frozen dataclass costs 3x to build and the parser builds one per reference.
# Refs live in cached templates, so treat them as immutable all the same.
@dataclass(eq=True, unsafe_hash=True, slots=True)
class Ref(_Node):
    """A reference: ``$Step{validate}{a.b}`` is ``Ref('Step', ('validate',), 'a.b')``.

    ======== ================= =====================================
    kind     args              path
    ======== ================= =====================================
    Input    ()                ``a.b`` ('' = the whole input)
    Step     (tag,)            ``a.b`` ('' = the whole output)
    Sequence (sequence, step)  ``a.b`` ('' = the whole output)
    State    ()                ``key`` or ``key.a``
    Variable (app,)            ``key``
    Constant (app,)            ``key``
    Secret   (key,)            '' (a secret is read whole)
    Run      ()                ``status``, ``completed_steps``, ...
    Now      ()                ''
    ======== ================= =====================================
    """

    kind: str
    args: tuple[str, ...] = ()
    path: str = ""
    position: int = field(default=0, compare=False)
    segments: tuple[str | int, ...] = field(default=(), compare=False, repr=False)

    def eval(self, scope: Scope) -> Any:
        return scope.lookup(self)

    def refs(self) -> list[Ref]:
        return [self]

    def __str__(self) -> str:
        parts = "".join("{" + a + "}" for a in self.args)
        return f"${self.kind}{parts}" + ("{" + self.path + "}" if self.path else "")


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def eval(self, scope: Scope) -> Any:
        return self.value


class _Array(_Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Node, ...]) -> None:
        self.items = items

    def eval(self, scope: Scope) -> Any:
        return [item.eval(scope) for item in self.items]

    def refs(self) -> list[Ref]:
        return [r for item in self.items for r in item.refs()]


class _Call(_Node):
    __slots__ = ("args", "fn", "name", "position")

    def __init__(self, name: str, args: tuple[_Node, ...], position: int) -> None:
        self.name = name
        self.args = args
        self.position = position
        self.fn = OPERATORS[name].fn

    def eval(self, scope: Scope) -> Any:
        args = [a.eval(scope) for a in self.args]
        try:
            value = self.fn(args)
        except ExpressionError:
            raise
        except Exception as exc:
            # Any argument an operator cannot work with (a date out of range, a number
            # too large to print, an odd type) is the expression's error, not a crash.
            raise ExpressionError(
                f"${self.name}: cannot compute this ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        return _check_result(self.name, value)

    def refs(self) -> list[Ref]:
        return [r for a in self.args for r in a.refs()]


class _Compare(_Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: _Node, right: _Node) -> None:
        self.op = op
        self.left = left
        self.right = right

    def eval(self, scope: Scope) -> Any:
        return compare(self.left.eval(scope), self.op, self.right.eval(scope))

    def refs(self) -> list[Ref]:
        return self.left.refs() + self.right.refs()


class _Logic(_Node):
    __slots__ = ("is_and", "operands")

    def __init__(self, is_and: bool, operands: tuple[_Node, ...]) -> None:
        self.is_and = is_and
        self.operands = operands

    def eval(self, scope: Scope) -> Any:
        if self.is_and:
            for operand in self.operands:
                if not operand.eval(scope):
                    return False
            return True
        for operand in self.operands:
            if operand.eval(scope):
                return True
        return False

    def refs(self) -> list[Ref]:
        return [r for o in self.operands for r in o.refs()]


class _Not(_Node):
    __slots__ = ("operand",)

    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def eval(self, scope: Scope) -> Any:
        return not truthy(self.operand.eval(scope))

    def refs(self) -> list[Ref]:
        return self.operand.refs()


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """Truthiness: ``None``, ``false``, ``0``, ``''`` and empty containers are false."""
    return bool(value)


def equal(a: Any, b: Any) -> bool:
    """JSON-typed equality: ``1 == 1.0``, ``1 != '1'``, ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    a_num, b_num = _is_number(a), _is_number(b)
    if a_num or b_num:
        return a_num and b_num and a == b
    return bool(a == b)


def compare(a: Any, op: str, b: Any) -> bool:
    """Apply a comparison operator (one of :data:`COMPARISONS`)."""
    if op in ("==", "==="):
        return equal(a, b)
    if op in ("!=", "!=="):
        return not equal(a, b)
    if _is_number(a) and _is_number(b):
        pass
    elif not (isinstance(a, str) and isinstance(b, str)):
        return False
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    raise ExpressionError(f"unknown comparison {op!r}")


def as_text(value: Any) -> str:
    """How a value reads when interpolated into text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- operators


def _number(name: str, value: Any) -> int | float:
    if _is_number(value):
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
        return _walk(args[0], (key,))
    return _walk(args[0], _runtime_path(as_text(key)))


@lru_cache(maxsize=1024)
def _runtime_path(key: str) -> tuple[str | int, ...]:
    """A path computed at run time ($Pick, $Filter): one that does not parse is a plain key."""
    try:
        return _parse_path(key, 0, key)
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
    if _is_number(value):
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
    return [item for item in items if compare(_walk(item, path), op, expected)]


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


# --------------------------------------------------------------------------- parser


def _parse_path(path: str, offset: int, text: str) -> tuple[str | int, ...]:
    """``items[0].id`` / ``items.0.id`` → ``('items', 0, 'id')`` / ``('items', '0', 'id')``."""
    if not path:
        return ()
    if "[" not in path and "]" not in path:
        parts = [p.strip() for p in path.split(".")]
        if all(parts):  # the common case: a.b.0.c
            return tuple(parts)
    segments: list[str | int] = []
    i, n = 0, len(path)
    expect_segment = True
    while i < n:
        c = path[i]
        if c == "[":
            close = path.find("]", i)
            inner = path[i + 1 : close] if close > 0 else ""
            if close < 0 or not inner.isdigit():
                raise ExpressionError(
                    "an index is written [0]", text=text or path, position=offset + i
                )
            segments.append(int(inner))
            i = close + 1
            expect_segment = False
        elif c == ".":
            if expect_segment:
                raise ExpressionError("empty path segment", text=text or path, position=offset + i)
            expect_segment = True
            i += 1
        elif c == "]":
            raise ExpressionError("unexpected ']'", text=text or path, position=offset + i)
        else:
            if not expect_segment:
                raise ExpressionError(
                    "expected '.' or '[' in path", text=text or path, position=offset + i
                )
            j = i
            while j < n and path[j] not in ".[]":
                j += 1
            segments.append(path[i:j].strip())
            expect_segment = False
            i = j
    if expect_segment:
        raise ExpressionError("empty path segment", text=text or path, position=offset + n)
    return tuple(segments)


_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/", "$": "$"}


class _Parser:
    __slots__ = ("depth", "n", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)
        self.depth = 0

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(f"nested deeper than {MAX_DEPTH} levels")

    def error(self, message: str, position: int | None = None) -> NoReturn:
        raise ExpressionError(
            message, text=self.text, position=self.pos if position is None else position
        )

    def skip_ws(self) -> None:
        text, n = self.text, self.n
        while self.pos < n and text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def describe(self) -> str:
        return repr(self.text[self.pos]) if self.pos < self.n else "end of text"

    # $Name... at self.pos
    def dollar(self) -> _Node:
        start = self.pos
        match = _NAME_RE.match(self.text, start + 1)
        if not match:
            self.error("expected a reference or operator name after '$'", start)
        name = match.group(0)
        self.pos = match.end()
        if name in _REF_SHAPES:
            return self.reference(name, start)
        if name in OPERATORS:
            return self.call(name, start)
        self.error(f"unknown operator '${name}'", start)

    def reference(self, kind: str, start: int) -> Ref:
        least, most, n_args = _REF_SHAPES[kind]
        text = self.text
        match = _REF_GROUPS[kind].match(text, self.pos)
        assert match is not None  # every group is optional: it always matches
        end = match.end()
        values = [g for g in match.groups() if g is not None]
        if len(values) < most and end < self.n and text[end] == "{":
            self.error(f"unclosed '{{' in ${kind}: write {_REF_USAGE[kind]}", end)
        self.pos = end
        if len(values) < least:
            self.error(f"${kind} is written {_REF_USAGE[kind]}", start)
        args = tuple(v.strip() for v in values[:n_args])
        for k, value in enumerate(args):
            if not value:
                self.error(f"empty name in ${kind}: write {_REF_USAGE[kind]}", match.start(k + 1))
        path = values[n_args].strip() if len(values) > n_args else ""
        if not path:
            if kind in ("State", "Run"):
                where = match.start(n_args + 1) if len(values) > n_args else end
                self.error(f"empty key in ${kind}: write {_REF_USAGE[kind]}", where)
            return Ref(kind, args, "", start, ())
        raw = values[n_args]
        where = match.start(n_args + 1) + len(raw) - len(raw.lstrip())
        return Ref(kind, args, path, start, _parse_path(path, where, text))

    def call(self, name: str, start: int) -> _Call:
        op = OPERATORS[name]
        if self.peek() != "(":
            self.error(f"${name} needs arguments: {op.usage}")
        self.pos += 1
        args: list[_Node] = []
        self.skip_ws()
        if self.peek() == ")":
            self.pos += 1
        else:
            while True:
                args.append(self.operand())
                self.skip_ws()
                c = self.peek()
                if c == ",":
                    self.pos += 1
                elif c == ")":
                    self.pos += 1
                    break
                else:
                    self.error(f"expected ',' or ')' in ${name}(...), found {self.describe()}")
        count = len(args)
        if count < op.min_args or (op.max_args is not None and count > op.max_args):
            if op.max_args is None:
                wanted = f"at least {op.min_args}"
            elif op.min_args == op.max_args:
                wanted = str(op.min_args)
            else:
                wanted = f"{op.min_args} to {op.max_args}"
            plural = "" if wanted == "1" else "s"
            self.error(f"${name} takes {wanted} argument{plural}, got {count}: {op.usage}", start)
        if name in ("Filter", "Find") and isinstance(args[2], _Literal):
            if args[2].value not in COMPARISONS:
                self.error(
                    f"${name}: unknown comparison {args[2].value!r}; use one of "
                    + ", ".join(COMPARISONS),
                    start,
                )
        return _Call(name, tuple(args), start)

    def operand(self) -> _Node:
        self.deeper()
        node = self._operand()
        self.depth -= 1
        return node

    def _operand(self) -> _Node:
        self.skip_ws()
        c = self.peek()
        if c == "$":
            return self.dollar()
        if c in ("'", '"'):
            return _Literal(self.string())
        if c == "[":
            return self.array()
        match = _NUMBER_RE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            raw = match.group(0)
            if any(ch in raw for ch in ".eE"):
                value: int | float = float(raw)
                if not math.isfinite(value):
                    self.error(f"number {raw[:40]} is out of range", match.start())
            elif len(raw.lstrip("-")) > MAX_INT_DIGITS:
                self.error(f"a number has more than {MAX_INT_DIGITS} digits", match.start())
            else:
                value = int(raw)
            return _Literal(value)
        match = _NAME_RE.match(self.text, self.pos)
        if match:
            word = match.group(0)
            if word in ("true", "false", "null"):
                self.pos = match.end()
                return _Literal({"true": True, "false": False, "null": None}[word])
            self.error(f"unexpected word {word!r}: quote text ('{word}') or use $Input{{...}}")
        if not c:
            self.error("expected a value, found end of text")
        self.error(f"expected a value, found {c!r}")

    def string(self) -> str:
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text, n = self.text, self.n
        while self.pos < n:
            c = text[self.pos]
            if c == quote:
                self.pos += 1
                return "".join(out)
            if c == "\\" and self.pos + 1 < n:
                nxt = text[self.pos + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1
        self.error("unterminated string", start)

    def array(self) -> _Array:
        self.pos += 1
        items: list[_Node] = []
        self.skip_ws()
        if self.peek() == "]":
            self.pos += 1
            return _Array(())
        while True:
            items.append(self.operand())
            self.skip_ws()
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "]":
                self.pos += 1
                return _Array(tuple(items))
            else:
                self.error(f"expected ',' or ']', found {self.describe()}")

    # conditions: or := and ('||' and)* ; and := unary ('&&' unary)* ;
    # unary := '!' unary | comparison ; comparison := primary (cmp primary)? ;
    # primary := '(' or ')' | operand
    def or_expr(self) -> _Node:
        operands = [self.and_expr()]
        while True:
            self.skip_ws()
            if self.text.startswith("||", self.pos):
                self.pos += 2
                operands.append(self.and_expr())
            else:
                break
        return operands[0] if len(operands) == 1 else _Logic(False, tuple(operands))

    def and_expr(self) -> _Node:
        operands = [self.unary()]
        while True:
            self.skip_ws()
            if self.text.startswith("&&", self.pos):
                self.pos += 2
                operands.append(self.unary())
            else:
                break
        return operands[0] if len(operands) == 1 else _Logic(True, tuple(operands))

    def unary(self) -> _Node:
        self.skip_ws()
        if self.peek() == "!" and not self.text.startswith("!=", self.pos):
            self.pos += 1
            self.deeper()
            node = _Not(self.unary())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.primary()
        self.skip_ws()
        for op in COMPARISONS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                right = self.primary()
                return _Compare(op, left, right)
        if self.peek() == "=":
            self.error("use == to compare ('=' alone is not an operator)")
        return left

    def primary(self) -> _Node:
        self.skip_ws()
        if self.peek() == "(":
            start = self.pos
            self.pos += 1
            self.deeper()
            inner = self.or_expr()
            self.depth -= 1
            self.skip_ws()
            if self.peek() != ")":
                self.error(
                    f"expected ')' to close the '(' at position {start}, found {self.describe()}"
                )
            self.pos += 1
            return inner
        return self.operand()


# --------------------------------------------------------------------------- templates


class Template:
    """A parsed string value: ``exact`` (one expression, keeps its type) or interpolated text."""

    __slots__ = ("exact", "has_secret", "parts", "refs", "secret_cut_by", "text")

    def __init__(self, text: str, parts: tuple[str | _Node, ...]) -> None:
        self.text = text
        self.parts = parts
        first = parts[0]
        self.exact: _Node | None = first if len(parts) == 1 and not isinstance(first, str) else None
        refs: list[Ref] = []
        for part in parts:
            if not isinstance(part, str):
                refs.extend(part.refs())
        self.refs: tuple[Ref, ...] = tuple(refs)
        self.has_secret = False
        for ref in refs:
            if ref.kind == "Secret":
                self.has_secret = True
        # The operator that takes a secret apart or compares with it, if any (see
        # WHOLE_SECRET_ARGS): such an expression is never evaluated, even for an outgoing call.
        self.secret_cut_by: str | None = None
        if self.has_secret:
            for part in parts:
                if not isinstance(part, str) and self.secret_cut_by is None:
                    self.secret_cut_by = _secret_cut_by(part)

    @property
    def is_static(self) -> bool:
        """True when the text holds no expression at all."""
        return not self.refs and all(isinstance(p, str) for p in self.parts)

    def evaluate(self, scope: Scope) -> Any:
        if self.exact is not None:
            return self.exact.eval(scope)
        try:
            pieces = [p if isinstance(p, str) else as_text(p.eval(scope)) for p in self.parts]
        except ExpressionError:
            raise
        except Exception as exc:  # a value that cannot be written as text (nested too deep)
            raise ExpressionError(
                f"cannot write this value as text ({type(exc).__name__})"
            ) from None
        text = "".join(pieces)
        if len(text) > LIMITS.max_length:
            raise ExpressionError(f"the text is longer than {LIMITS.max_length} characters")
        _spend(len(text))
        return text

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


# Big enough for every distinct string of a few large workflows (a Template is ~1 KB).
@lru_cache(maxsize=16384)
def parse(text: str) -> Template:
    """Parse a string value into a :class:`Template`; raises ExpressionError with a position."""
    if "$" not in text:
        return Template(text, (text,))
    parser = _Parser(text)
    parts: list[str | _Node] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            buf.append(text[i:])
            break
        buf.append(text[i:j])
        if text.startswith("$$", j):
            buf.append("$")
            i = j + 2
            continue
        match = _NAME_RE.match(text, j + 1)
        name = match.group(0) if match else ""
        is_expression = name in _REF_SHAPES or name in OPERATORS
        if not is_expression and not (
            name[:1].isupper() and match and match.end() < n and text[match.end()] in "({"
        ):
            buf.append("$")  # plain text: "costs $5", "$USD"
            i = j + 1
            continue
        pending = "".join(buf)
        if pending:
            parts.append(pending)
        buf = []
        parser.pos = j
        parts.append(parser.dollar())
        i = parser.pos
    if buf and "".join(buf):
        parts.append("".join(buf))
    if not parts:
        parts.append("")
    if all(isinstance(p, str) for p in parts):
        return Template(text, ("".join(p for p in parts if isinstance(p, str)),))
    return Template(text, tuple(parts))


@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``evaluate`` returns a bool."""

    text: str
    node: _Node = field(repr=False)
    refs: tuple[Ref, ...] = field(default=(), repr=False)

    def evaluate(self, scope: Scope) -> bool:
        return truthy(self.node.eval(scope))


@lru_cache(maxsize=4096)
def parse_condition(text: str) -> Condition:
    """Parse ``$Step{validate}{valid} == true && $Input{n} > 2``; raises ExpressionError."""
    parser = _Parser(text)
    parser.skip_ws()
    if parser.pos >= parser.n:
        parser.error("empty condition", 0)
    node = parser.or_expr()
    parser.skip_ws()
    if parser.pos < parser.n:
        c = parser.text[parser.pos]
        if c == ")":
            parser.error("unmatched ')'")
        if c in "&|":
            parser.error(f"use && or || (found {c!r} alone)")
        parser.error(f"unexpected {parser.describe()}: expected &&, || or the end")
    return Condition(text, node, tuple(node.refs()))


def evaluate_condition(cond: Condition | str, scope: Scope) -> bool:
    """Evaluate a condition (parsed or text) against a scope."""
    if isinstance(cond, str):
        cond = parse_condition(cond)
    return cond.evaluate(scope)


# --------------------------------------------------------------------------- JSON values


def resolve(value: Any, scope: Scope) -> Any:
    """Deep-resolve every string in a JSON value (dict keys are left as they are)."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        return parse(value).evaluate(scope)
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    return value


def _involves_secret(node: _Node) -> bool:
    return any(ref.kind == "Secret" for ref in node.refs())


# Operators that hand a secret on whole (in another letter case at most), and which of their
# arguments may hold one: all an outgoing call may do with a secret. Every other operator
# takes it apart ($Substring, $Split), measures it ($Size) or compares with it ($Filter,
# $Find; $Pick's key): an API that echoes the request would hand the pieces, or the answers
# of an oracle, back into the run, below what masking recognises as the secret.
WHOLE_SECRET_ARGS: dict[str, frozenset[int] | None] = {  # None: any argument
    "Concat": None,
    "Default": None,
    "Join": None,
    "Trim": frozenset({0}),
    "Uppercase": frozenset({0}),
    "Lowercase": frozenset({0}),
    "Pick": frozenset({0}),
}


def _secret_cut_by(node: _Node) -> str | None:
    """The first operator (outermost first) through which a secret does not pass whole."""
    if isinstance(node, _Call):
        allowed = WHOLE_SECRET_ARGS.get(node.name, frozenset())
        for k, arg in enumerate(node.args):
            if allowed is not None and k not in allowed and _involves_secret(arg):
                return node.name
            inner = _secret_cut_by(arg)
            if inner is not None:
                return inner
    elif isinstance(node, _Array):
        for item in node.items:
            inner = _secret_cut_by(item)
            if inner is not None:
                return inner
    return None


def _masked(template: Template, scope: Scope) -> Any:
    """A template with a secret, as it may be stored: every expression that involves a
    secret, at any depth of operators, reads ``•••`` and is never evaluated. Redacting the
    expression rather than the secret's value is what keeps transforms out too
    (``$Lowercase``, ``$Substring``, ``$Split`` of a secret, or a comparison with one)."""
    if template.exact is not None:
        return REDACTED
    return "".join(
        [
            p if isinstance(p, str) else REDACTED if _involves_secret(p) else as_text(p.eval(scope))
            for p in template.parts
        ]
    )


def resolve_masked(value: Any, scope: Scope) -> Any:
    """Deep-resolve like :func:`resolve`, but every expression that involves a ``$Secret``
    reads ``•••`` (no secret is looked up): the input of a step that stores or shows it."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        template = parse(value)
        return _masked(template, scope) if template.has_secret else template.evaluate(scope)
    if isinstance(value, dict):
        return {k: resolve_masked(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_masked(v, scope) for v in value]
    return value


def resolve_redacted(value: Any, scope: Scope) -> tuple[Any, Any]:
    """``(resolved, redacted)``: the same value twice, but in the second (what the journal
    and StepRun.input may store) every expression involving a ``$Secret`` reads ``•••``;
    one that takes a secret apart (``Template.secret_cut_by``) reads ``•••`` in both."""
    if isinstance(value, str):
        if "$" not in value:
            return value, value
        template = parse(value)
        if template.secret_cut_by is not None:
            masked = _masked(template, scope)  # a piece of a secret is never sent either
            return masked, masked
        resolved = template.evaluate(scope)
        if not template.has_secret:
            return resolved, resolved
        return resolved, _masked(template, scope)
    if isinstance(value, dict):
        resolved_d: dict[Any, Any] = {}
        redacted_d: dict[Any, Any] = {}
        for k, v in value.items():
            resolved_d[k], redacted_d[k] = resolve_redacted(v, scope)
        return resolved_d, redacted_d
    if isinstance(value, list):
        pairs = [resolve_redacted(v, scope) for v in value]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return value, value


def references(value: Any) -> list[Ref]:
    """Every reference in a (nested) JSON value; raises ExpressionError on a malformed string."""
    found: list[Ref] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "$" in item:
                found.extend(parse(item).refs)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found
