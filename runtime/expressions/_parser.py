"""The recursive-descent parser of references, operators and conditions (see the
package docstring for why it is hand-written)."""

from __future__ import annotations

import math
import re
from typing import NoReturn

from runtime.errors import ExpressionError
from runtime.expressions._limits import MAX_DEPTH, MAX_INT_DIGITS
from runtime.expressions._nodes import (
    Node,
    Ref,
    _Array,
    _Call,
    _Compare,
    _Literal,
    _Logic,
    _Not,
)
from runtime.expressions._operators import OPERATORS
from runtime.expressions._paths import parse_path
from runtime.expressions._values import COMPARISONS

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
    # Inside a FOREACH body: the current item (or a path in it) and its 0-based index.
    "Item": (0, 1, 0),
    "Index": (0, 0, 0),
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
    "Item": "$Item{path}",
    "Index": "$Index",
}


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
    def dollar(self) -> Node:
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
        return Ref(kind, args, path, start, parse_path(path, where, text))

    def call(self, name: str, start: int) -> _Call:
        op = OPERATORS[name]
        if self.peek() != "(":
            self.error(f"${name} needs arguments: {op.usage}")
        self.pos += 1
        args: list[Node] = []
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

    def operand(self) -> Node:
        self.deeper()
        node = self._operand()
        self.depth -= 1
        return node

    def _operand(self) -> Node:
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
        items: list[Node] = []
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
    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while True:
            self.skip_ws()
            if self.text.startswith("||", self.pos):
                self.pos += 2
                operands.append(self.and_expr())
            else:
                break
        return operands[0] if len(operands) == 1 else _Logic(False, tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.unary()]
        while True:
            self.skip_ws()
            if self.text.startswith("&&", self.pos):
                self.pos += 2
                operands.append(self.unary())
            else:
                break
        return operands[0] if len(operands) == 1 else _Logic(True, tuple(operands))

    def unary(self) -> Node:
        self.skip_ws()
        if self.peek() == "!" and not self.text.startswith("!=", self.pos):
            self.pos += 1
            self.deeper()
            node = _Not(self.unary())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
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

    def primary(self) -> Node:
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
