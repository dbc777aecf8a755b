"""A JSON body parser that refuses, with a 4xx naming where, everything that would
otherwise surface later as a 500: bodies over the size cap, nesting deep enough to exhaust
the parser's recursion, NaN/Infinity and numbers out of float range (PostgreSQL's jsonb
refuses them), integers of more than 300 digits (Python cannot print those over 4,300: a
500 later), NUL characters and lone surrogates (neither can be stored)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser

from runtime.expressions import MAX_INT_DIGITS

# Deep enough for any real spec (workflow → sequence → event → input → user JSON),
# shallow enough that nothing downstream (pydantic, json.dumps, the compiler) recurses out.
MAX_DEPTH = 100


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _format(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "$"


def _key(raw: str) -> str:
    return raw if len(raw) <= 100 else raw[:100] + "…"


def _refuse(parts: list[str | int], message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({_format(parts): [message]})


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def nesting_path(text: str, limit: int = MAX_DEPTH) -> list[str | int] | None:
    """Where in raw JSON text the nesting first goes deeper than ``limit``, without
    recursing (used when the real parser has already run out of stack)."""
    # Each frame: [is_object, current key or index, expecting a key]
    stack: list[list[Any]] = []
    for match in _TOKENS.finditer(text):
        piece = match.group()
        if piece in "[{":
            if len(stack) >= limit:
                return [frame[1] for frame in stack if frame[1] is not None]
            stack.append([piece == "{", None if piece == "{" else 0, True])
        elif piece in "]}":
            if stack:
                stack.pop()
        elif piece == ",":
            if stack:
                frame = stack[-1]
                if frame[0]:
                    frame[2] = True
                else:
                    frame[1] += 1
        elif piece == ":":
            if stack:
                stack[-1][2] = False
        elif stack and stack[-1][0] and stack[-1][2]:
            try:
                stack[-1][1] = _key(json.loads(piece))
            except ValueError:
                stack[-1][1] = "?"
    return None


def check_value(data: Any, limit: int = MAX_DEPTH) -> None:
    """Walk parsed JSON iteratively; refuse too deep nesting and unstorable strings."""
    todo: list[tuple[Any, list[str | int]]] = [(data, [])]
    while todo:
        value, parts = todo.pop()
        if isinstance(value, str):
            _check_string(value, parts)
        elif isinstance(value, _BadNumber):
            raise _refuse(parts, value.message)
        elif isinstance(value, Mapping) or isinstance(value, list):
            if len(parts) >= limit:
                raise _refuse(parts, f"nested deeper than {limit} levels")
            if isinstance(value, Mapping):
                for key, item in value.items():
                    _check_string(key, [*parts, _key(key)])
                    todo.append((item, [*parts, _key(key)]))
            else:
                todo.extend((item, [*parts, i]) for i, item in enumerate(value))


def _check_string(value: str, parts: list[str | int]) -> None:
    if "\x00" in value:
        raise _refuse(parts, "text cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(parts, "text is not valid Unicode (lone surrogate)") from None


class _BadNumber:
    """A number json.loads read that nothing downstream can take (an integer of thousands
    of digits cannot even be printed; inf is no JSON): refused by check_value, which knows
    its path."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _finite_float(text: str) -> float | _BadNumber:
    number = float(text)
    if not math.isfinite(number):
        return _BadNumber(f"the number {text[:40]} is out of range")
    return number


def _bounded_int(text: str) -> int | _BadNumber:
    # Numbers are bounded like expression literals (runtime.expressions.MAX_INT_DIGITS).
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        return _BadNumber(f"the number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JSONBodyParser(BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 5 * 1024 * 1024)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"The body is not UTF-8: {exc.reason}.") from None
        try:
            data = json.loads(
                text,
                parse_float=_finite_float,
                parse_int=_bounded_int,
                parse_constant=_no_constants,
            )
        except RecursionError:
            parts = nesting_path(text) or []
            raise _refuse(parts, f"nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        check_value(data)
        return data
