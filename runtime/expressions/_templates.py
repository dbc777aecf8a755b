"""Templates (string values with expressions in them) and conditions, parsed once and
cached by text."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from runtime.errors import ExpressionError
from runtime.expressions._limits import LIMITS, spend
from runtime.expressions._nodes import Node, Ref, Scope
from runtime.expressions._operators import OPERATORS
from runtime.expressions._parser import _NAME_RE, _REF_SHAPES, _Parser
from runtime.expressions._secrets import secret_cut_by
from runtime.expressions._values import as_text, truthy


class Template:
    """A parsed string value: ``exact`` (one expression, keeps its type) or interpolated text."""

    __slots__ = ("exact", "has_secret", "parts", "refs", "secret_cut_by", "text")

    def __init__(self, text: str, parts: tuple[str | Node, ...]) -> None:
        self.text = text
        self.parts = parts
        first = parts[0]
        self.exact: Node | None = first if len(parts) == 1 and not isinstance(first, str) else None
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
                    self.secret_cut_by = secret_cut_by(part)

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
        spend(len(text))
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
    parts: list[str | Node] = []
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
    node: Node = field(repr=False)
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
