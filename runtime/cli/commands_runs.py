"""Commands for runs: run (start and follow live), runs, logs, signal, cancel."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from runtime.cli.app import app, client, console, error, handled, json_argument, server
from runtime.cli.client import Client, seg
from runtime.cli.follow import FollowError, RunView, follow

STATE_STYLES = {
    "completed": "green",
    "running": "cyan",
    "retrying": "yellow",
    "waiting": "magenta",
    "skipped": "dim",
    "failed": "red",
    "failed_allowed": "yellow",
    "rolled_back": "red",
}


def _plan_sequences(api: Client, run: dict[str, Any]) -> dict[str, list[str]]:
    """Sequence tag → step tags, from the run's published version's plan."""
    workflow = run["workflow"]
    path = (
        f"products/{seg(workflow['product'])}/workflows/{seg(workflow['tag'])}"
        f"/versions/{run['version']}/"
    )
    plan = api.get(path).get("plan") or {}
    return {
        sequence["tag"]: [step["tag"] for step in sequence.get("events", [])]
        for sequence in plan.get("sequences", [])
    }


def render(view: RunView) -> Group:
    parts: list[Any] = []
    for sequence, steps in view.sequences.items():
        done, total = view.progress(sequence)
        table = Table.grid(padding=(0, 1))
        table.add_row(
            Text(sequence, style="bold"),
            ProgressBar(total=max(total, 1), completed=done, width=30),
            f"{done}/{total}",
        )
        for step in steps:
            state = view.steps.get(step, "pending")
            table.add_row(f"  {step}", Text(state, style=STATE_STYLES.get(state, "")), "")
        parts.append(table)
    parts.append(Text.assemble(f"run {view.run_id}: ", (view.status, "bold")))
    return Group(*parts)


def _workflow_ref(workflow: str, product: str | None) -> str:
    if "/" in workflow or workflow.isdigit():
        return workflow
    if not product:
        raise typer.BadParameter("give PRODUCT/WORKFLOW or --product", param_hint="WORKFLOW")
    return f"{product}/{workflow}"


@app.command()
@handled
def run(
    workflow: str = typer.Argument(..., help="PRODUCT/WORKFLOW (or WORKFLOW with --product)."),
    env: str = typer.Option("dev", "--env", "-e", help="Environment slug."),
    input: str = typer.Option(None, "--input", "-i", help="Input JSON, or a file holding it."),
    product: str = typer.Option(None, help="Product slug."),
    idempotency_key: str = typer.Option(None, help="Start at most one run for this key."),
    wait: bool = typer.Option(True, "--follow/--no-follow", help="Follow the run live."),
    timeout: float = typer.Option(3600.0, help="Stop following after this many seconds."),
) -> None:
    """Start a run and follow it live. Exit code 0 only when the run completes."""
    body: dict[str, Any] = {
        "workflow": _workflow_ref(workflow, product),
        "env": env,
        "input": json_argument(input, "--input") or {},
    }
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    profile = server()
    with Client(profile.url, profile.token) as api:
        started = api.post("runs", body)
        run_id = int(started["id"])
        console.print(f"Run {run_id} of {body['workflow']} in {env}: {started['status']}")
        if not wait:
            return
        view = RunView(run_id=run_id, sequences=_plan_sequences(api, started))

        def poll() -> dict[str, Any]:
            return dict(api.get(f"runs/{run_id}"))

        view = _follow(profile.url, profile.token, view, poll, timeout)
    _finish(view)


def _follow(url: str, token: str, view: RunView, poll: Any, timeout: float) -> RunView:
    try:
        if console.is_terminal:
            with Live(render(view), console=console, refresh_per_second=8) as live:
                return follow(
                    url,
                    token,
                    view,
                    poll=poll,
                    tick=lambda: live.update(render(view)),
                    timeout=timeout,
                )
        view.on_step = lambda sequence, step, state: console.print(f"{sequence} › {step}: {state}")
        return follow(url, token, view, poll=poll, timeout=timeout)
    except FollowError as exc:
        error(str(exc))
        raise typer.Exit(2) from None


def _finish(view: RunView) -> None:
    console.print(f"Run {view.run_id} {view.status}.")
    if view.status == "completed":
        if view.output is not None:
            console.print_json(json.dumps(view.output, default=str))
        return
    if view.error:
        error(json.dumps(view.error, default=str))
    raise typer.Exit(1)


@app.command()
@handled
def runs(
    workflow: str = typer.Option(None, help="PRODUCT/WORKFLOW or an id."),
    env: str = typer.Option(None, help="Environment slug."),
    status: str = typer.Option(None, help="Statuses, comma-separated."),
    product: str = typer.Option(None, help="Product slug."),
    parent: str = typer.Option(None, help="Id of the parent run."),
    created_after: str = typer.Option(None, help="ISO 8601 date-time."),
    created_before: str = typer.Option(None, help="ISO 8601 date-time."),
    q: str = typer.Option(None, help="Text in the run's input."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List runs, newest first, with the same filters as GET /api/v1/runs."""
    filters = {
        "workflow": workflow, "env": env, "status": status, "product": product,
        "parent": parent, "created_after": created_after, "created_before": created_before,
        "q": q,
    }  # fmt: skip
    params = {k: v for k, v in filters.items() if v is not None}
    with client() as api:
        found = api.pages("runs", params, limit=limit)
    if as_json:
        console.print_json(json.dumps(found, default=str))
        return
    table = Table("id", "workflow", "env", "version", "status", "created")
    for row in found:
        table.add_row(
            str(row["id"]),
            f"{row['workflow']['product']}/{row['workflow']['tag']}",
            row["environment"],
            str(row["version"]),
            row["status"],
            str(row["created_at"]),
        )
    console.print(table)


@app.command()
@handled
def logs(run_id: int = typer.Argument(..., metavar="RUN")) -> None:
    """Print a run's journal, entry by entry."""
    after = 0
    with client() as api:
        while True:
            page = api.get(f"runs/{run_id}/journal", params={"after_seq": after, "limit": 500})
            for entry in page["entries"]:
                data = json.dumps(entry.get("data") or {}, default=str, sort_keys=True)
                step = entry.get("step") or "-"
                console.print(
                    f"{entry['seq']:>5} {entry.get('at', '')} {entry['kind']} {step} {data}"
                )
                after = entry["seq"]
            if not page["entries"] or after >= page["last_seq"]:
                return


@app.command()
@handled
def signal(
    run_id: int = typer.Argument(..., metavar="RUN"),
    name: str = typer.Argument(...),
    data: str = typer.Option(None, help="The payload: JSON, or a file holding it."),
) -> None:
    """Send a signal to a waiting run."""
    with client() as api:
        sent = api.post(f"runs/{run_id}/signals/{seg(name)}", json_argument(data, "--data") or {})
    console.print(f"Signal {name} sent to run {run_id} (#{sent['id']}).")


@app.command()
@handled
def cancel(
    run_id: int = typer.Argument(..., metavar="RUN"),
    reason: str = typer.Option("", help="Why (kept in the audit log)."),
) -> None:
    """Cancel a run."""
    with client() as api:
        answer = api.post(f"runs/{run_id}/cancel", {"reason": reason} if reason else {})
    console.print(f"Run {run_id}: {answer.get('status', 'cancel requested')}.")
