"""Where in the user's code: the file and line a recording error names."""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from typing import Any

from runtime.errors import TrellisError

# Trellis's own frames around a recording (the recorder, the public surface, the live ctx,
# the test harness, workflow loading) are never "the user's line".
_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERNAL_DIRS = tuple(os.path.join(_RUNTIME, name) + os.sep for name in ("recorder", "context"))
_INTERNAL_FILES = frozenset(
    os.path.join(_RUNTIME, name)
    for name in ("workflows.py", "testing.py", "code_runtime.py", "workflow_modules.py")
)
_STDLIB = sysconfig.get_paths()["stdlib"]


def is_user_file(filename: str) -> bool:
    """False for Trellis's own files, the standard library and frozen modules."""
    if filename in _INTERNAL_FILES or filename.startswith(_INTERNAL_DIRS):
        return False
    if filename.startswith("<frozen"):
        return False
    return not filename.startswith(_STDLIB) or "site-packages" in filename


@dataclass(frozen=True)
class Site:
    """A place in the user's code: file, line and function."""

    filename: str
    lineno: int
    function: str = ""

    def __str__(self) -> str:
        name = self.filename
        try:
            rel = os.path.relpath(name)
            if not rel.startswith(".."):
                name = rel
        except ValueError:
            pass
        return f"{name}:{self.lineno}"

    @property
    def line(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()


def user_site(depth: int = 1) -> Site | None:
    """The innermost frame of user code calling into the recorder."""
    frame: types.FrameType | None = sys._getframe(depth)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def traceback_site(tb: types.TracebackType | None) -> Site | None:
    """The last user frame of a traceback (where user code raised)."""
    found: Site | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if is_user_file(code.co_filename):
            found = Site(code.co_filename, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found


class RecordingError(TrellisError):
    """A handler does something the recorder cannot express; names the line."""

    code = "recording_error"

    def __init__(self, message: str, *, site: Site | None = None) -> None:
        self.message = message
        self.site = site
        text = message
        if site is not None:
            where = f"{site}" + (f" (in {site.function})" if site.function else "")
            text = f"{where}: {message}"
            if site.line:
                text += f"\n    {site.line}"
        super().__init__(text)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.site is not None:
            out["file"] = str(self.site)
            out["line"] = self.site.lineno
        return out
