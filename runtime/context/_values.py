"""Run data with attribute access (JS-like: ``result.id``), still plain JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AttrDict(dict[str, Any]):
    """A dict whose keys read as attributes too (``result.id``), as in the seed's JS.

    A key wins over a dict method of the same name (``ctx.input.items`` is the field);
    the methods stay reachable through ``dict.items(value)``."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("__") and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no field {name!r} (fields: {', '.join(map(str, self)) or 'none'})")


def wrap(value: Any) -> Any:
    """Plain JSON → the same data with attribute access on every object."""
    if isinstance(value, Mapping):
        return AttrDict({str(k): wrap(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [wrap(v) for v in value]
    return value
