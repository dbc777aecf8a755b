"""JSON paths of issues (``sequences[2].events[0].input.body``), pydantic errors mapped
to them, and the walk that finds expression strings in a value."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from runtime.errors import Issue
from runtime.spec import duration_ms

# pydantic adds the union member it tried to the location ('timeout', 'int'); drop it.
_UNION_TAG = re.compile(r"^(int|float|str|bool|none|dict|list|constrained-\w+|[\w-]+\[.*\])$")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_DURATION_FIELDS = frozenset({"timeout", "retry_delay"})


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{path}.{key}" if path else key


def validation_issues(exc: ValidationError, prefix: str = "") -> list[Issue]:
    """pydantic errors as issues with JSON paths: ('sequences', 2, 'events', 0) →
    ``sequences[2].events[0]``; messages for the same field are merged."""
    merged: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = list(err["loc"])
        while len(loc) > 1 and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]):
            loc.pop()
        path = prefix
        for part in loc:
            path = _join(path, part)
        messages = merged.setdefault(path or "$", [])
        if err["msg"] not in messages:
            messages.append(err["msg"])
    issues = []
    for path, messages in merged.items():
        if path.rsplit(".", 1)[-1] in _DURATION_FIELDS and len(messages) > 1:
            messages = ["a duration is a number of ms or a string like '5m'"]
        issues.append(Issue(path=path, message=" or ".join(messages)))
    return issues


# Where an issue is: a path, or (base path, keys below it) formatted only when reported, so
# walking a big spec's inputs builds no strings.
_Keys = tuple[str | int, ...]
_Where = str | tuple[str, _Keys]
# Deeper input is refused: the engine resolves values recursively, and nobody means it.
MAX_DEPTH = 64


class _TooDeep(Exception):
    def __init__(self, keys: _Keys) -> None:
        self.keys = keys


@lru_cache(maxsize=4096)
def _key_text(key: str | int) -> str:
    return _join("", key) if isinstance(key, int) or not _PLAIN_KEY.match(key) else "." + key


def _where_text(where: _Where) -> str:
    if isinstance(where, str):
        return where
    base, keys = where
    path = base + "".join(_key_text(k) for k in keys)
    return path.lstrip(".") if not base else path


def _collect_strings(value: Any, keys: _Keys, out: list[tuple[_Keys, str]]) -> None:
    """Append every string holding a ``$`` under ``value`` with its keys (document order)."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(child, str):
            if "$" in child:
                out.append(((*keys, key), child))
        elif isinstance(child, dict | list):
            if len(keys) >= MAX_DEPTH:
                raise _TooDeep((*keys, key))
            _collect_strings(child, (*keys, key), out)


# Specs repeat the same few durations ('1s', 30000, None): parse each once.
_duration_ms = lru_cache(maxsize=1024)(duration_ms)
