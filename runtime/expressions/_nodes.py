"""The parsed form of an expression: nodes that evaluate against a :class:`Scope` (where
references get their values) and list their references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.errors import ExpressionError
from runtime.expressions._limits import check_result
from runtime.expressions._operators import OPERATORS
from runtime.expressions._values import compare, truthy


class Scope(Protocol):
    """Where references get their values. The engine may implement it lazily."""

    def lookup(self, ref: Ref) -> Any:
        """The value ``ref`` points at, or ``None`` when any part of it is missing."""
        ...


class Node:
    """A parsed expression: evaluates against a scope, lists its references."""

    __slots__ = ()

    def eval(self, scope: Scope) -> Any:
        raise NotImplementedError

    def refs(self) -> list[Ref]:
        return []


# Not frozen: a frozen dataclass costs 3x to build and the parser builds one per reference.
# Refs live in cached templates, so treat them as immutable all the same.
@dataclass(eq=True, unsafe_hash=True, slots=True)
class Ref(Node):
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
    Item     ()                ``a.b`` ('' = the whole item; FOREACH body)
    Index    ()                '' (the item's 0-based index)
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


class _Literal(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def eval(self, scope: Scope) -> Any:
        return self.value


class _Array(Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Node, ...]) -> None:
        self.items = items

    def eval(self, scope: Scope) -> Any:
        return [item.eval(scope) for item in self.items]

    def refs(self) -> list[Ref]:
        return [r for item in self.items for r in item.refs()]


class _Call(Node):
    __slots__ = ("args", "fn", "name", "position")

    def __init__(self, name: str, args: tuple[Node, ...], position: int) -> None:
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
        return check_result(self.name, value)

    def refs(self) -> list[Ref]:
        return [r for a in self.args for r in a.refs()]


class _Compare(Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Node, right: Node) -> None:
        self.op = op
        self.left = left
        self.right = right

    def eval(self, scope: Scope) -> Any:
        return compare(self.left.eval(scope), self.op, self.right.eval(scope))

    def refs(self) -> list[Ref]:
        return self.left.refs() + self.right.refs()


class _Logic(Node):
    __slots__ = ("is_and", "operands")

    def __init__(self, is_and: bool, operands: tuple[Node, ...]) -> None:
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


class _Not(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node) -> None:
        self.operand = operand

    def eval(self, scope: Scope) -> Any:
        return not truthy(self.operand.eval(scope))

    def refs(self) -> list[Ref]:
        return self.operand.refs()
