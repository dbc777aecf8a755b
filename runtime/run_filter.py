"""The runs page's JSON path filter: ``input.customer.id = 42`` parsed by a small bounded
grammar (never ``eval``), pure: text in, clauses out. The Django side
(``runtime.product_runs``) turns each clause into a JSONField key lookup, which Django
compiles to ``json_extract`` on SQLite and to ``->`` on PostgreSQL's jsonb.

Grammar (whitespace between tokens is free)::

    filter  := clause ( "and" clause )*            at most MAX_CLAUSES
    clause  := root ( "." key )+ op value          at most MAX_DEPTH keys
    root    := "input" | "output"
    key     := [A-Za-z_][A-Za-z0-9_-]* | [0-9]+    (a number indexes a list)
    op      := "=" | "!=" | ">" | ">=" | "<" | "<="
    value   := JSON number | JSON string | true | false | null | bare word (a string)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from runtime.errors import RunRefused

MAX_LENGTH = 500
MAX_CLAUSES = 4
MAX_DEPTH = 8
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")  # longest first
ROOTS = ("input", "output")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.){0,400}")
    | (?P<op>!=|>=|<=|=|>|<)
    | (?P<dot>\.)
    | (?P<word>[A-Za-z0-9_+\-]{1,200}(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?)?)
    )""",
    re.VERBOSE,
)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}|[0-9]{1,6}")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Clause:
    root: str  # "input" or "output"
    path: tuple[str, ...]
    op: str
    value: Any


def _refuse(message: str) -> RunRefused:
    return RunRefused(f"where: {message}", field="where")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _refuse(f"unexpected {text[pos : pos + 10]!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _value(kind: str, raw: str) -> Any:
    if kind == "string":
        try:
            return json.loads(raw)
        except ValueError:
            raise _refuse(f"bad string {raw[:40]!r}") from None
    if raw in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[raw]
    if _NUMBER.fullmatch(raw):
        number = float(raw)
        if not math.isfinite(number):
            raise _refuse(f"number out of range: {raw[:40]}")
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw else number
    return raw  # a bare word: a string


def _clause(tokens: list[tuple[str, str]]) -> Clause:
    if not tokens or tokens[0] != ("word", tokens[0][1]) or tokens[0][1] not in ROOTS:
        raise _refuse("a clause starts with input. or output. (e.g. input.customer.id = 42)")
    root = tokens[0][1]
    path: list[str] = []
    i = 1
    while i < len(tokens) and tokens[i][0] == "dot":
        if i + 1 >= len(tokens) or tokens[i + 1][0] != "word":
            raise _refuse("a key is expected after '.'")
        key = tokens[i + 1][1]
        # "a.1.5" tokenizes as "a", ".", "1.5": a key followed by a fraction is two keys.
        parts = key.split(".")
        for part in parts:
            if not _KEY.fullmatch(part):
                raise _refuse(f"bad key {part[:40]!r}")
            path.append(part)
        i += 2
    if not path:
        raise _refuse(f"{root} needs a key path (e.g. {root}.id = 42)")
    if len(path) > MAX_DEPTH:
        raise _refuse(f"at most {MAX_DEPTH} keys in a path")
    if i >= len(tokens) or tokens[i][0] != "op":
        raise _refuse(f"an operator ({' '.join(OPERATORS)}) is expected after the path")
    op = tokens[i][1]
    if i + 2 != len(tokens) or tokens[i + 1][0] not in ("word", "string"):
        raise _refuse("exactly one value is expected after the operator")
    value = _value(*tokens[i + 1])
    if op in (">", ">=", "<", "<=") and not isinstance(value, int | float):
        raise _refuse(f"{op} compares numbers")
    return Clause(root=root, path=tuple(path), op=op, value=value)


def filter_parse(text: str) -> list[Clause]:
    """Parse a ``where`` filter; RunRefused (400, field ``where``) says what is wrong."""
    if len(text) > MAX_LENGTH:
        raise _refuse(f"at most {MAX_LENGTH} characters")
    if not text.strip():
        return []
    groups: list[list[tuple[str, str]]] = [[]]
    for token in _tokens(text):
        if token == ("word", "and"):
            groups.append([])
        else:
            groups[-1].append(token)
    if len(groups) > MAX_CLAUSES:
        raise _refuse(f"at most {MAX_CLAUSES} clauses")
    return [_clause(group) for group in groups]
