"""The ``trellis`` console script (``[project.scripts]`` in pyproject.toml): the app with
every command registered."""

from __future__ import annotations

from runtime.cli import commands_files, commands_runs, commands_test
from runtime.cli.app import app

__all__ = ["app", "commands_files", "commands_runs", "commands_test", "main"]


def main() -> None:
    app(prog_name="trellis")
