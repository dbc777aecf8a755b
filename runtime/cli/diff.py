"""Field-level differences between two sets of product files (local → server)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

ADDED, CHANGED, REMOVED = "added", "changed", "removed"
_MISSING = object()


@dataclass(frozen=True)
class Change:
    kind: str  # added | changed | removed
    file: str
    path: str  # JSON path in the file; "" for the whole file
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        where = f"{self.file} {self.path}".rstrip()
        if self.kind == ADDED:
            return f"+ {where}" + (f": {_short(self.new)}" if self.path else "")
        if self.kind == REMOVED:
            return f"- {where}" + (f": {_short(self.old)}" if self.path else "")
        return f"~ {where}: {_short(self.old)} → {_short(self.new)}"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def value_changes(file: str, old: Any, new: Any, path: str = "") -> list[Change]:
    """What differs from ``old`` to ``new``, as deep as both sides have the same shape."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            here = _join(path, str(key))
            if key not in old:
                out.append(Change(ADDED, file, here, None, new[key]))
            elif key not in new:
                out.append(Change(REMOVED, file, here, old[key], None))
            else:
                out.extend(value_changes(file, old[key], new[key], here))
        return out
    if isinstance(old, list) and isinstance(new, list):
        return _list_changes(file, old, new, path)
    # 1 and 1.0, True and 1 are different values here (JSON and YAML keep them apart).
    if type(old) is not type(new) or old != new:
        return [Change(CHANGED, file, path, old, new)]
    return []


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _list_changes(file: str, old: list[Any], new: list[Any], path: str) -> list[Change]:
    """Items matched as a text diff matches lines: a step inserted in the middle is one
    addition, not a change of every step after it. Replaced items are compared field by
    field, pairwise; what is left over is removed (old index) or added (new index)."""
    matcher = SequenceMatcher(
        a=[_canonical(v) for v in old], b=[_canonical(v) for v in new], autojunk=False
    )
    out: list[Change] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)  # 0 unless replaced: then compared one for one
        for k in range(paired):
            out.extend(value_changes(file, old[i1 + k], new[j1 + k], _join(path, j1 + k)))
        out.extend(
            Change(REMOVED, file, _join(path, i), old[i], None) for i in range(i1 + paired, i2)
        )
        out.extend(
            Change(ADDED, file, _join(path, j), None, new[j]) for j in range(j1 + paired, j2)
        )
    return out


def file_changes(remote: dict[str, Any], local: dict[str, Any]) -> list[Change]:
    """Every change that pushing ``local`` over ``remote`` means, file by file."""
    out: list[Change] = []
    for name in sorted(set(remote) | set(local)):
        if name not in remote:
            out.append(Change(ADDED, name, "", None, local[name]))
        elif name not in local:
            out.append(Change(REMOVED, name, "", remote[name], None))
        else:
            out.extend(value_changes(name, remote[name], local[name]))
    return out
