"""``trellis test``: the YAML test cases of a directory, run in process (no server)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from runtime.cli.app import app, client, console, error
from runtime.cli.client import seg


def _django() -> None:
    """runtime.testing runs the engine's own code, which needs Django's settings (not a
    database): the project's, unless the caller chose others."""
    import django
    from django.apps import apps

    if apps.ready:
        return
    if "DJANGO_SETTINGS_MODULE" not in os.environ:
        os.environ["DJANGO_SETTINGS_MODULE"] = "designer.settings"
        # Those settings keep a generated key (and the server's data) in TRELLIS_VAR_DIR:
        # a test run needs none of it, so it gets a directory of its own, gone at exit.
        if "TRELLIS_VAR_DIR" not in os.environ:
            var = tempfile.mkdtemp(prefix="trellis-test-")
            atexit.register(shutil.rmtree, var, ignore_errors=True)
            os.environ["TRELLIS_VAR_DIR"] = var
    django.setup()


def _published(ref: dict[str, Any]) -> dict[str, Any]:
    """A published version's spec, from the server (``version`` absent: the latest)."""
    base = f"products/{seg(ref['product'])}/workflows/{seg(ref['tag'])}/"
    with client() as api:
        number = ref.get("version") or api.get(base)["latest_version"]
        if not number:
            raise ValueError(f"{ref['product']}/{ref['tag']} has no published version")
        return dict(api.get(f"{base}versions/{int(number)}/")["spec"])


@app.command()
def test(
    directory: Path = typer.Argument(..., exists=True, help="A directory (or one test file)."),
    junit: Path = typer.Option(None, help="Write JUnit XML here (for CI)."),
) -> None:
    """Run the YAML test cases under DIRECTORY in process; exit 1 when one fails."""
    _django()
    from runtime.cli.harness import run_file, test_files
    from runtime.cli.junit import junit_xml

    files = test_files(directory)
    if not files:
        error(f"no test files (YAML with `cases:`) under {directory}")
        raise typer.Exit(2)
    results = [result for path in files for result in run_file(path, _published)]
    for result in results:
        mark = ("PASS", "green") if result.ok else ("FAIL", "red")
        console.print(Text.assemble(mark, f" {result.file}: {result.name}"))
        if not result.ok:
            console.print(f"     {result.failure}")
            if result.diff:
                console.print(result.diff)
    failed = sum(1 for r in results if not r.ok)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        root = directory if directory.is_dir() else directory.parent
        junit.write_bytes(junit_xml(results, root))
    console.print(f"{len(results) - failed} passed, {failed} failed.")
    if failed:
        raise typer.Exit(1)
