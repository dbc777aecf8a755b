"""Commands for workflows as files: login, export, push (import) and validate."""

from __future__ import annotations

from pathlib import Path

import typer

from runtime.cli import config
from runtime.cli.app import State, app, client, console, error, handled, warning
from runtime.cli.bundle import ACTIVATIONS_FILE, PRODUCT_FILE, files_read, files_write, server_files
from runtime.cli.client import Client
from runtime.cli.diff import Change, file_changes
from runtime.cli.push import Push
from runtime.cli.validate import validate_directory
from runtime.cli.yamlio import YamlFileError


@app.command()
@handled
def login(
    url: str = typer.Argument(..., help="The server, e.g. https://trellis.example.com"),
    username: str = typer.Option(..., prompt=True),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    profile: str = typer.Option(None, help="Name to store it under (default: --profile's)."),
) -> None:
    """Get an API token and store it (0600) for this server profile."""
    profile = profile or State.profile or config.DEFAULT_PROFILE
    with Client(url) as anonymous:
        answer = anonymous.token_create(username, password)
    path = config.profile_save(profile, url, answer["token"])
    expires = answer.get("expires") or "never"
    console.print(
        f"Logged in to {url} as {answer['username']} (profile {profile}; expires {expires})."
    )
    console.print(f"Token stored in {path}")


@app.command()
def logout(profile: str = typer.Option(None, help="Default: --profile's.")) -> None:
    """Forget a server profile's token (the server keeps it until it expires)."""
    profile = profile or State.profile or config.DEFAULT_PROFILE
    removed = config.profile_remove(profile)
    console.print(f"Profile {profile} removed." if removed else f"No profile {profile}.")


@app.command()
@handled
def export(
    product: str = typer.Argument(..., help="Product slug."),
    directory: Path = typer.Argument(..., file_okay=False, help="Where to write the files."),
) -> None:
    """Write a product as YAML files: workflows, components, environments, activations."""
    with client() as api:
        files = server_files(api, product)
    if files is None:
        error(f"no product {product!r} (or you are not a member)")
        raise typer.Exit(2)
    written = files_write(directory, files)
    console.print(f"Exported {product}: {len(written)} files in {directory}")


def _describe(change: Change, activate: bool) -> str:
    text = change.describe()
    if change.file == ACTIVATIONS_FILE and not activate:
        return text + "  (not applied without --activate)"
    if change.kind == "removed" and not change.path:
        return text + "  (only on the server: left alone)"
    return text


@app.command()
@handled
def push(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    product: str = typer.Option(None, help="Product slug (default: product.yaml's)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (CI)."),
    publish: bool = typer.Option(False, help="Publish every pushed workflow."),
    activate: bool = typer.Option(False, help="Apply activations.yaml too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the differences only."),
) -> None:
    """Show what differs from the server, field by field, and apply it after confirmation."""
    try:
        local, _ = files_read(directory)
    except YamlFileError as exc:
        error(str(exc))
        raise typer.Exit(1) from None
    slug = product or (local.get(PRODUCT_FILE) or {}).get("slug")
    if not slug:
        error("no product: give --product or a product.yaml with a slug")
        raise typer.Exit(2)
    with client() as api:
        remote = server_files(api, slug) or {}
        if PRODUCT_FILE in local:
            local = {**local, PRODUCT_FILE: {**local[PRODUCT_FILE], "slug": slug}}
        changes = file_changes(remote, local)
        if not changes:
            console.print(f"No changes: {directory} matches {slug} on the server.")
            if not publish:
                return
            console.print("Publishing each workflow (where its spec is not published yet).")
        else:
            console.print(f"{len(changes)} change(s) to {slug}:")
        for change in changes:
            console.print("  " + _describe(change, activate))
        if dry_run:
            return
        if not yes and not typer.confirm("Apply these changes?", default=False):
            console.print("Nothing applied.")
            raise typer.Exit(1)
        result = Push(
            api,
            slug,
            local,
            remote,
            publish=publish,
            activate=activate,
            say=lambda text: console.print("  " + text),
        ).run()
    for text in result.warnings:
        warning(text)
    console.print(f"Applied {len(result.done)} change(s).")


app.command("import", help="Same as push: show the differences, then apply them.")(push)


@app.command()
def validate(directory: Path = typer.Argument(..., exists=True, file_okay=False)) -> None:
    """Compile every workflow file locally; print each problem's file, line and JSON path."""
    checked, problems = validate_directory(directory)
    for problem in problems:
        console.print(problem.describe())
    if problems:
        console.print(f"{len(problems)} problem(s) in {checked} workflow(s).")
        raise typer.Exit(1)
    console.print(f"{checked} workflow(s) compile.")
