"""Startup checks of what code the worker can reach.

Files that designers write (file-system STORAGE steps, under MEDIA_ROOT) must never be
importable: if a dotted module name can reach MEDIA_ROOT from an entry of ``sys.path``,
an uploaded ``evil.py`` is one ``import`` away from running in the worker. The rule is
structural: every directory between a ``sys.path`` entry and MEDIA_ROOT must be a valid
module name for an import to reach it, so one directory whose name is not an identifier
(the default ``var/media.files``) closes every path below it.
"""

from __future__ import annotations

import keyword
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks


def _resolved(path: str | Path) -> Path | None:
    try:
        return Path(path or ".").resolve()
    except (OSError, RuntimeError):
        return None


def importable_as(root: str | Path, paths: Iterable[str] | None = None) -> str | None:
    """The ``sys.path`` entry from which ``root`` (or a directory inside it) is reachable by
    a dotted module name, or None when no entry reaches it."""
    target = _resolved(root)
    if target is None:
        return None
    for entry in sys.path if paths is None else paths:
        base = _resolved(entry)
        if base is None:
            continue
        if base == target or target in base.parents:
            return entry or "."  # a sys.path entry at or inside the root: its files are modules
        if base not in target.parents:
            continue
        parts = target.relative_to(base).parts
        if all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
            return entry or "."
    return None


def media_root_issue() -> str | None:
    """Why MEDIA_ROOT is unsafe, or None."""
    root = getattr(settings, "MEDIA_ROOT", None)
    if not root:
        return None
    entry = importable_as(root)
    if entry is None:
        return None
    return (
        f"MEDIA_ROOT {str(root)!r} is reachable as a Python module path from sys.path entry "
        f"{entry!r}: a file uploaded by a STORAGE step could be imported"
    )


@checks.register(checks.Tags.security)
def media_root_check(**kwargs: Any) -> list[checks.CheckMessage]:
    issue = media_root_issue()
    if issue is None:
        return []
    return [
        checks.Error(
            issue,
            hint="Put MEDIA_ROOT in a directory whose path holds a name with a dot or a dash "
            "(the default is TRELLIS_VAR_DIR/media.files), or outside the project and "
            "every PYTHONPATH entry.",
            id="trellis.E010",
        )
    ]
