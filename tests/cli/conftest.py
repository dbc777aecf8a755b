"""The CLI in process (typer's CliRunner) against the Django app in process: the REST
client's httpx talks WSGI to the test database instead of a socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from typer.testing import CliRunner

from designer import accounts
from runtime.cli import client as cli_client
from runtime.cli.main import app

SERVER = "http://testserver"


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory of the test's own, and no server chosen by the environment."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("TRELLIS_URL", "TRELLIS_TOKEN", "TRELLIS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def in_process(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cli_client, "TRANSPORT", httpx.WSGITransport(app=get_wsgi_application()))
    # As Django's test client does: the end of a request must not close the connection
    # that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, token: str | None = None, input: str | None = None) -> Any:
        env = {"TRELLIS_URL": SERVER, "TRELLIS_TOKEN": token} if token else {}
        return self.runner.invoke(app, list(args), env=env, input=input)


@pytest.fixture
def cli(in_process: None) -> Cli:
    return Cli()


def token_for(user: object) -> str:
    return str(accounts.token_issue(user=user).key)
