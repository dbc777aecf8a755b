"""Trellis runtime: spec, expressions, compiler, engine, connectors.

Public surface for code-first users: ``from runtime import workflows``. It is loaded on
first use (module ``__getattr__``) so importing ``runtime`` stays cheap and Django-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime import workflows as workflows

__all__ = ["workflows"]


def __getattr__(name: str) -> Any:
    if name == "workflows":
        return importlib.import_module("runtime.workflows")
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
