"""The round trip across two installs: the demo exported from one (the test's database,
in process) is pushed over HTTP into a freshly migrated server (daphne on its own SQLite
file, nothing in it but a superuser), exported back from there, and the files are the same
bytes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from designer.management.commands.load_demo import demo_load
from runtime.cli import client as cli_client
from tests.cli.conftest import Cli, token_for
from tests.runtime.live_harness import PYTHON, ROOT, LiveStack


class FreshServer(LiveStack):
    """A migrated, empty database and daphne on it: no seed, no worker."""

    def start(self) -> FreshServer:
        for leftover in self.base.glob("db.sqlite3*"):
            leftover.unlink()
        self.call("migrate", "--noinput", manage=True)
        subprocess.run(
            [PYTHON, "manage.py", "createsuperuser", "--noinput", "--username", "root"],
            cwd=ROOT,
            env=self.env | {"DJANGO_SUPERUSER_PASSWORD": "pw-root", "DJANGO_SUPERUSER_EMAIL": ""},
            check=True,
            capture_output=True,
        )
        self.start_server()
        return self


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[FreshServer]:
    server = FreshServer("embedded", tmp_path / "fresh").start()
    try:
        yield server
    finally:
        server.close()


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.django_db
def test_export_push_into_a_fresh_install_export_is_byte_identical(
    cli: Cli, fresh: FreshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_load(base_url="http://127.0.0.1:8000/demo")
    exported = tmp_path / "exported"
    result = cli(
        "export", "acme", str(exported), token=token_for(User.objects.get(username="demo"))
    )
    assert result.exit_code == 0, result.output

    # From here on the CLI talks HTTP to the fresh server, with a stored profile.
    monkeypatch.setattr(cli_client, "TRANSPORT", None)
    url = f"http://127.0.0.1:{fresh.port}"
    result = cli("login", url, "--profile", "fresh", "--username", "root", "--password", "pw-root")
    assert result.exit_code == 0, result.output

    result = cli("--profile", "fresh", "push", str(exported), "--yes", "--publish", "--activate")
    assert result.exit_code == 0, result.output
    assert "created product acme" in result.output
    assert "created environment prd" in result.output
    assert "created component mailer" in result.output
    assert "main_sequence is active in dev" in result.output

    again = tmp_path / "again"
    result = cli("--profile", "fresh", "export", "acme", str(again))
    assert result.exit_code == 0, result.output
    assert _tree(again) == _tree(exported)

    result = cli("--profile", "fresh", "push", str(exported), "--dry-run")
    assert result.exit_code == 0 and "No changes" in result.output
