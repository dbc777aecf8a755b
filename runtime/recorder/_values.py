"""Recorded values: references (``$Step{pay}{id}``) and comparisons of them, which only
turn into real values when the workflow runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from runtime.recorder._sites import RecordingError, user_site
from runtime.recorder._text import MISSING


class Decider(Protocol):
    """What a recorded value asks the recording it belongs to (``Recording``)."""

    def child_of(self, parent: Recorded, key: str | int) -> Recorded: ...

    def decide_truth(self, value: Recorded) -> bool: ...

    def decide_comparison(self, cond: RecordedCondition) -> bool: ...

    def iterate(self, value: Recorded) -> Iterator[Any]: ...


class Recorded:
    """A value that only exists when the workflow runs: a reference or an expression.

    Reading a field gives another reference (``$Step{pay}{id}``); formatting it into a
    string interpolates the expression; anything that needs the real value (truthiness,
    comparison, arithmetic, iteration) only works when the recording options supplied one.
    """

    __slots__ = ("_r_origin", "_r_rec", "_r_ref", "_r_sample", "_r_text")
    _r_origin: str | None
    _r_rec: Decider
    _r_ref: tuple[str, tuple[str, ...], str] | None
    _r_sample: Any
    _r_text: str

    def __init__(
        self,
        rec: Decider,
        text: str,
        *,
        ref: tuple[str, tuple[str, ...], str] | None = None,
        sample: Any = MISSING,
        origin: str | None = None,
    ) -> None:
        object.__setattr__(self, "_r_rec", rec)
        object.__setattr__(self, "_r_text", text)
        object.__setattr__(self, "_r_ref", ref)
        object.__setattr__(self, "_r_sample", sample)
        object.__setattr__(self, "_r_origin", origin)

    # fields ---------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Recorded:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._r_child(name)

    def __getitem__(self, key: Any) -> Recorded:
        if isinstance(key, Recorded):
            raise self._r_misuse("index a recorded value with another recorded value")
        if isinstance(key, slice):
            raise self._r_misuse("slice a recorded value (use ctx.transform)")
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise self._r_misuse(f"index a recorded value with a {type(key).__name__}")
        return self._r_child(key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise self._r_misuse("assign to a field of a recorded value (build a new dict instead)")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise self._r_misuse("assign to a field of a recorded value (build a new dict instead)")

    def _r_child(self, key: str | int) -> Recorded:
        if self._r_ref is None:
            raise self._r_misuse(f"read field {key!r} of a computed value")
        return self._r_rec.child_of(self, key)

    # strings ----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._r_text

    def __format__(self, spec: str) -> str:
        if spec:
            raise self._r_misuse(f"format a recorded value with {spec!r} (use ctx.transform)")
        return self._r_text

    def __repr__(self) -> str:
        return f"<recorded {self._r_text}>"

    def __hash__(self) -> int:
        return id(self)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return self._r_text + other
        raise self._r_misuse("use `+` on", op=True)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other + self._r_text
        raise self._r_misuse("use `+` on", op=True)

    # decisions ----------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self._r_rec.decide_truth(self)

    def __eq__(self, other: object) -> RecordedCondition:  # type: ignore[override]
        return RecordedCondition(self, "==", other)

    def __ne__(self, other: object) -> RecordedCondition:  # type: ignore[override]
        return RecordedCondition(self, "!=", other)

    def __lt__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, "<", other)

    def __le__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, "<=", other)

    def __gt__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, ">", other)

    def __ge__(self, other: Any) -> RecordedCondition:
        return RecordedCondition(self, ">=", other)

    def __iter__(self) -> Iterator[Any]:
        return self._r_rec.iterate(self)

    def __len__(self) -> int:
        sample = self._r_sample
        if isinstance(sample, list | dict | str):
            return len(sample)
        raise self._r_misuse(
            "take len() of", hint="use ctx.transform.length(...) for a runtime value"
        )

    def __contains__(self, item: Any) -> bool:
        raise self._r_misuse("use `in` on", hint="test it inside a step function")

    def _r_misuse(self, what: str, *, op: bool = False, hint: str | None = None) -> RecordingError:
        if op:
            message = (
                f"cannot {what} a recorded value ({self._r_text}): it is not known until the "
                "workflow runs; use ctx.transform (e.g. ctx.transform.add) or compute it inside "
                "a step function"
            )
        else:
            message = f"cannot {what} a recorded value ({self._r_text})"
            if hint:
                message += f": {hint}"
        return RecordingError(message, site=user_site(2))


def _arith(symbol: str) -> Callable[..., Any]:
    def method(self: Recorded, *args: Any) -> Any:
        raise self._r_misuse(f"use `{symbol}` on", op=True)

    return method


for _name, _symbol in {
    "sub": "-",
    "mul": "*",
    "truediv": "/",
    "floordiv": "//",
    "mod": "%",
    "pow": "**",
    "matmul": "@",
    "and": "&",
    "or": "|",
    "xor": "^",
    "lshift": "<<",
    "rshift": ">>",
    "divmod": "divmod",
}.items():
    setattr(Recorded, f"__{_name}__", _arith(_symbol))
    setattr(Recorded, f"__r{_name}__", _arith(_symbol))
for _name, _symbol in {
    "neg": "unary -",
    "pos": "unary +",
    "abs": "abs()",
    "invert": "~",
    "int": "int()",
    "float": "float()",
    "index": "an index",
    "round": "round()",
    "complex": "complex()",
}.items():
    setattr(Recorded, f"__{_name}__", _arith(_symbol))


class RecordedCondition:
    """``recorded <op> value``: decided during recording from a known value, and kept as a
    step condition for the steps that follow (unless it only tests a scenario's input)."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: Recorded, op: str, right: Any) -> None:
        self.left = left
        self.op = op
        self.right = right

    def __bool__(self) -> bool:
        return self.left._r_rec.decide_comparison(self)

    def __repr__(self) -> str:
        return f"<recorded condition {self.left._r_text} {self.op} {self.right!r}>"

    __hash__ = object.__hash__


def contains_recorded(value: Any, _depth: int = 0) -> bool:
    """Whether ``value`` holds a recorded value anywhere (50 levels deep at most)."""
    if isinstance(value, Recorded | RecordedCondition):
        return True
    if _depth > 50:
        return False
    if isinstance(value, Mapping):
        return any(contains_recorded(v, _depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_recorded(v, _depth + 1) for v in value)
    return False
