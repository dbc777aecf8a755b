"""A secret appears nowhere but in the outgoing call of its own component.

The specs here are forced past the compiler (which refuses them: see
test_compiler_secrets.py) so the run-time guard is tested on its own: a ``$Secret`` goes
through every operator into every place a run stores or shows, the run executes, and the
secret's value and its transforms (other case, substrings, split parts) are looked for in
the Run rows, the steps, the journal, the API answers, the run's socket, its HTML page,
the logs, the audit, and what the other event kinds stored (state, checkpoints, a child
run, a schedule, a broker message, a file, a database row, an email). The legitimate flow
still works: the HTTP peer on 127.0.0.1 receives the secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from designer.asgi import application
from designer.models import (
    Activation,
    AuditEntry,
    Component,
    ComponentConfig,
    Environment,
    Product,
    Workflow,
    WorkflowVersion,
)
from designer.secrets import secrets_encrypt
from runtime import compiler
from runtime.compiler import compile_spec, spec_checksum
from runtime.connectors.loader import component_cache_clear
from runtime.models import RUN_FINISHED, JournalEntry, Message, Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import run_until_done, wait_for
from tests.runtime.test_compiler_secrets import WRAPPED

# Every 4-character window, every split part (on '_') and every case of it is looked for.
SECRET = "Zq8wK3yP9_mX7vB2nT4_hR6jLc"
FRAGMENT = 4
TRANSFORMS = sorted(
    {SECRET[i : i + FRAGMENT].lower() for i in range(len(SECRET) - FRAGMENT + 1)}
    | {part.lower() for part in SECRET.split("_")}
)

REF = "$Secret{api_token}"
# The secret through every operator (the compiler test's table, on this secret's name),
# nested under others, and interpolated in text.
EXPRS: dict[str, str] = {"direct": REF, "text": f"Bearer {REF}!"}
for _name, _expr in WRAPPED.items():
    _e = _expr.replace("$Secret{k}", REF)
    EXPRS[_name] = _e
    EXPRS[f"{_name}_nested"] = f"$Lowercase($Concat('a', $Default(null, {_e})))"
    EXPRS[f"{_name}_text"] = f"id={_e};"
EXPRS["split_join"] = f"$Join($Split({REF}, '_'), ' ')"
EXPRS["substrings"] = f"$Concat($Substring({REF}, 0, 5), '|', $Substring({REF}, 10, 9))"


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [t for t in TRANSFORMS if t in low]


# --------------------------------------------------------------------------- the HTTP peer


class Peer:
    """The app's API on 127.0.0.1: /echo answers the request back (200), /reject answers
    it back in a 400 (an API quoting what it was sent in its error)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = {
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                }
                peer.requests.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(400 if parts.path.startswith("/reject") else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = _handle
            do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    component_cache_clear()
    yield
    component_cache_clear()


# --------------------------------------------------------------------------- setup


def components(product: Product, peer: Peer, tmp: Path) -> None:
    """Every component the steps use holds the secret in every environment."""
    db_path = tmp / "app.sqlite3"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, v TEXT)")
    kinds: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "vault": (
            "app",
            {
                "echo": {"method": "POST", "path": "/echo/{id}"},
                "reject": {"method": "POST", "path": "/reject/{id}"},
            },
            {"base_url": peer.url, "auth": {"type": "bearer", "token_secret": "api_token"}},
        ),
        "bus": ("broker", {"news": {}}, {}),
        "files": ("storage", {"upload": {"op": "upload"}}, {"backend": "filesystem"}),
        "db": (
            "database",
            {"save": {"op": "insert", "table": "notes", "columns": ["v"]}},
            {"url": f"sqlite:///{db_path}"},
        ),
        "mailer": (
            "notification",
            {"hello": {"channel": "email", "subject": "Hi {{ v }}", "body": "v={{ v }}"}},
            {"email": {"backend": "locmem", "from": "trellis@example.com"}},
        ),
    }
    Environment.objects.filter(product=product).update(allowed_hosts=["127.0.0.1"])
    for tag, (kind, events, config) in kinds.items():
        comp = Component.objects.create(product=product, kind=kind, tag=tag, events=events)
        for env in product.environments.all():
            ComponentConfig.objects.create(
                component=comp,
                environment=env,
                config=config,
                secrets_encrypted=secrets_encrypt({"api_token": SECRET}),
            )


def force_workflow(product: Product, spec: dict[str, Any], tag: str) -> Workflow:
    """Publish ``spec`` past the compiler's secret rule (as a plan written by other means
    would be): only the run-time guard stands between the secret and the stores."""
    original = compiler._Compiler.secret_issue
    compiler._Compiler.secret_issue = lambda self, where, message: None  # type: ignore[method-assign]
    try:
        plan = compile_spec(spec)
    finally:
        compiler._Compiler.secret_issue = original  # type: ignore[method-assign]
    if "$Secret" in json.dumps(spec):
        with pytest.raises(compiler.SpecError):
            compile_spec(spec)  # it really is a spec the compiler refuses
    workflow, _ = Workflow.objects.get_or_create(product=product, tag=tag, defaults={"name": tag})
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        state="published",
        number=workflow.versions.count() + 1,
        spec=spec,
        plan=plan.model_dump(mode="json"),
        checksum=spec_checksum(spec),
        published_at=timezone.now(),
    )
    for env in product.environments.all():
        Activation.objects.update_or_create(
            workflow=workflow, environment=env, defaults={"active": True, "version": version}
        )
    return workflow


def leaky_spec() -> dict[str, Any]:
    """The secret, through every operator, into every place a step or a run keeps."""
    every = dict(EXPRS)
    return {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    # The legitimate flow: the secret in the outgoing call (params, query,
                    # body, headers); the peer echoes it all back.
                    {
                        "type": "ACTION",
                        "app": "vault",
                        "event": "echo",
                        "tag": "call",
                        "input": {
                            "params": {"id": f"$Lowercase({REF})"},
                            "query": {"t": f"$Substring({REF}, 2, 10)"},
                            "headers": {"X-Token": REF, "X-Upper": f"$Uppercase({REF})"},
                            "body": every,
                        },
                        # Its compensation is a CODE step: it must not get the secret.
                        "rollback": {
                            "type": "CODE",
                            "app": "vault",
                            "event": "tests.runtime.steps:record",
                            "input": every,
                        },
                    },
                    # An API quoting what it got in its error.
                    {
                        "type": "ACTION",
                        "app": "vault",
                        "event": "reject",
                        "tag": "rejected",
                        "allow_fail": True,
                        "input": {"params": {"id": REF}, "body": every},
                    },
                    {"type": "SET_STATE", "app": "vault", "event": "keep", "input": every},
                    {
                        "type": "CHECKPOINT",
                        "app": "vault",
                        "event": "cp",
                        "input": {"name": "cp", "data": every},
                    },
                    {
                        "type": "CODE",
                        "app": "vault",
                        "event": "tests.runtime.steps:record",
                        "tag": "code",
                        "input": every,
                    },
                    {
                        "type": "CODE",
                        "app": "vault",
                        "event": "tests.runtime.steps:logs",
                        "tag": "logged",
                        "input": every,
                    },
                    {
                        "type": "FEATURE",
                        "app": "vault",
                        "event": "child",
                        "tag": "child",
                        "input": {"input": every},
                    },
                    {
                        "type": "JOB",
                        "app": "vault",
                        "event": "child",
                        "tag": "later",
                        "input": {"input": every, "delay": "1h"},
                    },
                    {
                        "type": "PUBLISH",
                        "app": "bus",
                        "event": "bus:news",
                        "tag": "announce",
                        "input": {"message": every},
                    },
                    {
                        "type": "STORAGE",
                        "app": "files",
                        "event": "upload",
                        "tag": "file",
                        "input": {"text": json.dumps(every), "fileName": "leak.txt"},
                    },
                    {
                        "type": "DB_ACTION",
                        "app": "db",
                        "event": "save",
                        "tag": "row",
                        "input": {"data": {"v": EXPRS["Lowercase_text"]}},
                    },
                    {
                        "type": "NOTIFICATION",
                        "app": "mailer",
                        "event": "hello",
                        "tag": "mail",
                        "input": {
                            "recipients": ["someone@example.com"],
                            "subject": {"v": EXPRS["Uppercase"]},
                            "template": {"v": EXPRS["Split"]},
                        },
                    },
                    {
                        "type": "ACTION",
                        "app": "vault",
                        "event": "echo",
                        "tag": "gated",
                        "condition": f"$Lowercase({REF}) != 'x' && $Size({REF}) > 3",
                        "input": {"params": {"id": "g"}},
                    },
                    # Compensates (the run ends rolled back), with a reason built from the
                    # secret.
                    {
                        "type": "ROLLBACK",
                        "app": "vault",
                        "event": "stop",
                        "tag": "stop",
                        "input": {"reason": f"$Concat('because ', {REF})"},
                    },
                ],
            },
            {"tag": "skipped", "parents": ["main"], "skip_if": f"$Size({REF}) > 3", "events": []},
        ],
        "output": {"mapped": every, "echo": "$Step{call}"},
        "queries": {"peek": {"output": every}},
    }


def child_spec() -> dict[str, Any]:
    return {
        "sequences": [
            {
                "tag": "m",
                "events": [
                    {
                        "type": "CODE",
                        "event": "tests.runtime.steps:record",
                        "tag": "got",
                        "input": {"got": "$Input"},
                    }
                ],
            }
        ],
        "output": "$Step{got}",
    }


def subscriber_spec() -> dict[str, Any]:
    return {**child_spec(), "triggers": [{"type": "topic", "event": "bus:news"}]}


# --------------------------------------------------------------------------- observing


def socket_messages(run_id: int, user: User) -> list[dict[str, Any]]:
    """Everything the run's WebSocket sends a subscriber from the first entry to 'ready'."""
    client = Client()
    client.force_login(user)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]

    async def scenario() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(application, f"/ws/runs/{run_id}/?after=0", headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        got: list[dict[str, Any]] = []
        try:
            while not got or got[-1].get("type") != "ready":
                got.append(await communicator.receive_json_from(timeout=5))
        finally:
            await communicator.disconnect()
            layer = get_channel_layer()
            if layer is not None and hasattr(layer, "flush"):
                await layer.flush()
        return got

    return asyncio.run(scenario())


def rows(model: Any, **filters: Any) -> str:
    return json.dumps(list(model.objects.filter(**filters).values()), default=str)


def stored_everywhere(product: Product, media: Path, db_file: Path) -> dict[str, str]:
    from django_q.models import Schedule

    with sqlite3.connect(db_file) as db:
        notes = db.execute("SELECT v FROM notes").fetchall()
    files = {str(p): p.read_text(errors="replace") for p in media.rglob("*") if p.is_file()}
    return {
        "runs": rows(Run),
        "steps": rows(StepRun),
        "journal": rows(JournalEntry),
        "messages": rows(Message),
        "schedules": rows(Schedule),
        "audit": rows(AuditEntry),
        "files": json.dumps(files),
        "database rows": json.dumps(notes),
        "emails": json.dumps([[m.subject, m.body] for m in mail.outbox]),
    }


def shown_everywhere(run: Run, user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    runs = list(Run.objects.values_list("pk", flat=True))
    pages: dict[str, str] = {}
    for pk in runs:
        for url in (
            f"/api/v1/runs/{pk}",
            f"/api/v1/runs/{pk}/journal",
            f"/api/v1/runs/{pk}/related",
            f"/p/acme/runs/{pk}/",
        ):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            pages[url] = response.content.decode()
    for url in (
        f"/api/v1/runs/{run.pk}/query/peek",
        "/api/v1/runs?product=acme",
        "/api/v1/products/acme/audit/",
        "/p/acme/w/leaky/runs/",
        "/p/acme/w/leaky/",
        "/p/acme/audit/",
        # The file the STORAGE step wrote, as the product's members get it.
        str(StepRun.objects.get(run=run, tag="file").output["url"]),
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        pages[url] = body.decode(errors="replace")
    for pk in runs:
        pages[f"socket {pk}"] = json.dumps(socket_messages(pk, user))
    return pages


# --------------------------------------------------------------------------- the test


@pytest.mark.django_db(transaction=True)
def test_a_secret_through_every_operator_into_every_place_appears_nowhere(
    product: Product,
    admin_user: User,
    peer: Peer,
    tmp_path: Path,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    components(product, peer, tmp_path)
    force_workflow(product, child_spec(), "child")
    force_workflow(product, subscriber_spec(), "subscriber")
    wf = force_workflow(product, leaky_spec(), "leaky")
    env = Environment.objects.get(product=product, slug="dev")
    run = run_until_done(run_start(workflow=wf, environment=env, input={"n": 1}), timeout=60)
    for other in Run.objects.exclude(pk=run.pk):
        run_until_done(other, timeout=30)

    # The run went the way its definition says.
    steps = {s.tag: s for s in StepRun.objects.filter(run=run)}
    assert run.status == "rolled_back", (run.status, run.error)
    assert steps["call"].status == "rolled_back"
    assert steps["rejected"].status == "failed_allowed"
    assert steps["gated"].status == "skipped"
    for tag in ("keep", "cp", "code", "logged", "child", "later", "announce", "file", "row"):
        assert steps[tag].status == "completed", (tag, steps[tag].error)
    assert steps["mail"].status == "completed", steps["mail"].error
    assert Run.objects.filter(workflow__tag="subscriber").exists()
    assert len(mail.outbox) == 1

    # The legitimate flow: the peer got the secret and its transforms.
    sent = json.dumps(peer.requests)
    (call, rejected, *_) = peer.requests
    assert call["headers"]["authorization"] == f"Bearer {SECRET}"
    assert call["headers"]["x-token"] == SECRET
    assert call["headers"]["x-upper"] == SECRET.upper()
    assert call["path"] == f"/echo/{SECRET.lower()}"
    assert call["body"]["Concat_nested"] == f"ax{SECRET}".lower()
    assert call["body"]["text"] == f"Bearer {SECRET}!"
    # A piece of it, or a value computed from it, is never sent (an echo would show it).
    assert call["query"]["t"] == "•••"
    assert call["body"]["Split"] == call["body"]["substrings"] == call["body"]["Size"] == "•••"
    assert rejected["path"] == f"/reject/{SECRET}"
    assert set(leaks(sent)) == set(TRANSFORMS)

    # ...and nothing Trellis keeps or shows holds it, or any transform of it.
    places = stored_everywhere(product, tmp_path / "media", tmp_path / "app.sqlite3")
    places |= shown_everywhere(run, admin_user)
    out, err = capsys.readouterr()
    places |= {"logs": caplog.text, "stdout": out, "stderr": err}
    found = {where: leaks(text) for where, text in places.items() if leaks(text)}
    assert found == {}
    # The redaction is visible where the secret would have been.
    assert steps["code"].output["input"]["Lowercase"] == "•••"
    assert run.state["Substring"] == "•••"
    # $Concat("because ", secret): redacted whole in what the ROLLBACK step hands back.
    assert steps["stop"].output["reason"] == "•••"
    assert "/reject/••• answered 400" in steps["rejected"].error["message"]
    assert json.loads(places["files"])  # the STORAGE step wrote its (redacted) file


# --------------------------------------------------------------------------- a real qcluster


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_a_real_qcluster_the_run_socket_never_carries_the_secret(
    product: Product, admin_user: User, peer: Peer, tmp_path: Path, worker: Any
) -> None:
    components(product, peer, tmp_path)
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {
                        "type": "ACTION",
                        "app": "vault",
                        "event": "echo",
                        "tag": "call",
                        "input": {"params": {"id": "p"}, "body": EXPRS},
                    },
                    {"type": "SET_STATE", "app": "vault", "event": "keep", "input": EXPRS},
                    {
                        "type": "CODE",
                        "app": "vault",
                        "event": "tests.runtime.steps:record",
                        "tag": "code",
                        "input": EXPRS,
                    },
                ],
            }
        ],
        "output": {"echo": "$Step{call}", "state": "$State{Lowercase}"},
    }
    wf = force_workflow(product, spec, "leaky")
    env = Environment.objects.get(product=product, slug="dev")
    cluster = worker()
    run = run_start(workflow=wf, environment=env, input={})

    # Subscribe while the worker runs it: replayed entries, then live pushes, until the end.
    client = Client()
    client.force_login(admin_user)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]

    async def watch() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?after=0", headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        got: list[dict[str, Any]] = []
        end = time.monotonic() + 60
        try:
            while time.monotonic() < end:
                message = await communicator.receive_json_from(timeout=60)
                got.append(message)
                if message.get("type") == "entry" and message["kind"].startswith("run_"):
                    if message["kind"] not in ("run_started",):
                        break
        finally:
            await communicator.disconnect()
        return got

    got = asyncio.run(watch())
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=30)
    run.refresh_from_db()
    assert run.status == "completed", run.error
    kinds = [m.get("kind") for m in got if m.get("type") == "entry"]
    assert "step_completed" in kinds and kinds[-1] == "run_completed", kinds
    assert peer.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert peer.requests[0]["body"]["Lowercase"] == SECRET.lower()
    places = {
        "socket": json.dumps(got),
        "runs": rows(Run),
        "steps": rows(StepRun),
        "journal": rows(JournalEntry),
        "worker log": cluster.log.read_text(errors="replace"),
    }
    assert {where: leaks(text) for where, text in places.items() if leaks(text)} == {}
    assert run.output["state"] == "•••"
