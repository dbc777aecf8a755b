"""Paths into values: ``items[0].id`` parsed into segments, and followed through dicts
and lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.errors import ExpressionError


def walk(value: Any, segments: tuple[str | int, ...]) -> Any:
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


def parse_path(path: str, offset: int, text: str) -> tuple[str | int, ...]:
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
