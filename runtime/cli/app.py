"""The Typer application the commands register on, and what they share: the consoles,
the selected server profile, and turning API errors into a message and an exit code."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.text import Text

from runtime.cli.client import ApiError, Client
from runtime.cli.config import NotLoggedIn, Profile, profile_get

app = typer.Typer(
    name="trellis",
    help="Trellis from the command line: workflows as files, runs, and tests in CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# No markup: what is printed comes from servers and files (`sequences[0]` is not a style).
console = Console(highlight=False, soft_wrap=True, markup=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

F = TypeVar("F", bound=Callable[..., Any])


class State:
    profile: str | None = None


@app.callback()
def _options(
    profile: str = typer.Option(
        None, "--profile", "-p", envvar="TRELLIS_PROFILE", help="Server profile (trellis login)."
    ),
) -> None:
    State.profile = profile


def server() -> Profile:
    return profile_get(State.profile)


def client() -> Client:
    found = server()
    return Client(found.url, found.token)


def error(message: str) -> None:
    errors.print(Text.assemble(("error: ", "bold red"), message))


def warning(message: str) -> None:
    errors.print(Text.assemble(("warning: ", "yellow"), message))


def handled(command: F) -> F:
    """API errors and a missing login end the command with a message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NotLoggedIn as exc:
            error(str(exc))
            raise typer.Exit(2) from None
        except ApiError as exc:
            error(str(exc))
            if exc.status == 401:
                errors.print("Log in again: trellis login URL (or set TRELLIS_TOKEN).")
            raise typer.Exit(2) from None
        except httpx.HTTPError as exc:
            error(f"cannot reach the server: {exc}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def json_argument(value: str | None, what: str) -> Any:
    """JSON given inline, or ``@file.json`` / a path to a file holding it."""
    if value is None:
        return None
    text = value
    if value.startswith("@") or (
        not value.lstrip().startswith(("{", "[")) and Path(value).is_file()
    ):
        text = Path(value.removeprefix("@")).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{what} is not JSON: {exc}") from None
