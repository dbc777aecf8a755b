"""Issue 13, item 3 (SSRF), replayed on a real qcluster: ACTION steps aimed at this
server's API, PostgreSQL's and Redis's ports, cloud metadata, [::1], a name resolving to
loopback and a redirect from an allowed host all fail without retry and without a
connection; a production environment with an empty list reaches nothing; an address an
admin lists is reached."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from designer.models import Component, ComponentConfig, Environment, Product
from runtime.models import Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PORTS = range(8700, 8800)  # this suite's ports


class Recorder:
    """A real HTTP server on 127.0.0.1 that records every request; with ``redirect_to``
    it answers each one with a 302 there."""

    def __init__(self, redirect_to: str = "") -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                raw = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET

        for port in PORTS:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free port in 8700-8799")
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A bare TCP listener (a stand-in for PostgreSQL, Redis or an IPv6 service) that
    counts the connections it accepts."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.accepted = 0
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        for port in PORTS:
            try:
                self.sock.bind((host, port))
                break
            except OSError:
                continue
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.fixture
def api_stand_in() -> Iterator[Recorder]:
    """Stands in for this Trellis server's API (/api/v1/…) on a loopback port."""
    server = Recorder()
    yield server
    server.close()


@pytest.fixture
def redirector(api_stand_in: Recorder) -> Iterator[Recorder]:
    server = Recorder(redirect_to=f"http://127.0.0.1:{api_stand_in.port}/api/v1/products")
    yield server
    server.close()


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    found = {"tcp": Listener()}
    try:
        found["v6"] = Listener(socket.AF_INET6, "::1")
    except OSError:  # no IPv6 loopback on this machine: the check needs none to refuse
        pass
    yield found
    for listener in found.values():
        listener.close()


def _app(product: Product, tag: str, configs: dict[Environment, str]) -> None:
    component = Component.objects.create(
        product=product, kind="app", tag=tag, events={"get": {"method": "GET", "path": "/x"}}
    )
    for env, base_url in configs.items():
        ComponentConfig.objects.create(
            component=component, environment=env, config={"base_url": base_url}
        )


def _spec(apps: list[str]) -> dict[str, Any]:
    # One sequence per app, each step allowed to fail, with retries that must not be used.
    return {
        "sequences": [
            {
                "tag": f"s-{app}",
                "events": [
                    {
                        "type": "ACTION",
                        "app": app,
                        "event": "get",
                        "tag": app,
                        "retries": 3,
                        "retry_delay": "100ms",
                        "allow_fail": True,
                    }
                ],
            }
            for app in apps
        ]
    }


def _run(workflow: Any, env: Environment) -> Run:
    started = run_start(workflow=workflow, environment=env, input={})
    assert wait_for(
        lambda: (
            Run.objects.get(pk=started.pk).status
            in ("completed", "failed", "rolled_back", "cancelled")
        ),
        timeout=60,
    )
    return Run.objects.get(pk=started.pk)


def _errors(run: Run) -> dict[str, tuple[str, int, Any]]:
    return {
        s.tag: (s.status, s.attempt, s.error)
        for s in StepRun.objects.filter(run=run).order_by("tag")
    }


@pytest.fixture
def trellis(live_server: Any) -> Iterator[tuple[int, list[str]]]:
    """This very Trellis (Django's live server, in this process): its port and the paths
    of the requests it received."""
    from django.core.signals import request_started

    seen: list[str] = []

    def record(sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
        seen.append(str(environ.get("PATH_INFO")))

    request_started.connect(record, weak=False)
    yield int(live_server.url.rsplit(":", 1)[1]), seen
    request_started.disconnect(record)


def test_a_designer_cannot_make_a_worker_connect_where_no_admin_allowed(
    product: Product,
    api_stand_in: Recorder,
    redirector: Recorder,
    listeners: dict[str, Listener],
    trellis: tuple[int, list[str]],
    worker: Any,
) -> None:
    dev = product.environments.get(slug="dev")
    staging = product.environments.get(slug="staging")
    prd = product.environments.get(slug="prd")
    # dev lists only the redirector; prd (production) lists nothing; staging lists the API.
    dev.allowed_hosts = [f"127.0.0.1:{redirector.port}"]
    dev.save()
    prd.allowed_hosts = []
    prd.save()
    staging.allowed_hosts = [f"127.0.0.1:{api_stand_in.port}"]
    staging.save()
    api = f"http://127.0.0.1:{api_stand_in.port}/api/v1"
    v6_port = listeners["v6"].port if "v6" in listeners else 8799
    trellis_port, trellis_seen = trellis
    targets = {
        "trellis": f"http://127.0.0.1:{trellis_port}/api/v1/products/acme",
        "self-api": api,
        "postgres": "http://127.0.0.1:5432",
        "redis": "http://127.0.0.1:6379",
        "tcp": f"http://127.0.0.1:{listeners['tcp'].port}",
        "metadata": "http://169.254.169.254/latest/meta-data",
        "ipv6": f"http://[::1]:{v6_port}",
        "by-name": f"http://localhost:{api_stand_in.port}/api/v1",
        "redirect": f"http://127.0.0.1:{redirector.port}",
    }
    for tag, url in targets.items():
        _app(product, tag, {dev: url, prd: url, staging: url})
    # Old data: an action definition carrying its own base_url (now refused by the API).
    legacy = Component.objects.create(
        product=product,
        kind="app",
        tag="legacy",
        events={"get": {"method": "GET", "base_url": api, "path": "/products"}},
    )
    ComponentConfig.objects.create(component=legacy, environment=dev, config={})
    workflow = make_workflow(
        product, _spec([*targets, "legacy"]), tag="ssrf", envs=("dev", "prd", "staging")
    )
    worker()

    run = _run(workflow, dev)
    errors = _errors(run)
    expected = {
        "trellis": f"refused unless an admin lists '127.0.0.1' or '127.0.0.1:{trellis_port}'",
        "self-api": f"'127.0.0.1' is a loopback address: refused unless an admin lists "
        f"'127.0.0.1' or '127.0.0.1:{api_stand_in.port}'",
        "postgres": "'127.0.0.1:5432' in the allowed hosts of environment 'dev'",
        "redis": "'127.0.0.1:6379' in the allowed hosts of environment 'dev'",
        "tcp": "is a loopback address",
        "metadata": "'169.254.169.254' is a link-local",
        "ipv6": "host '::1' is a loopback address: refused unless an admin lists '[::1]'",
        "by-name": "host 'localhost' resolves to",
        "redirect": f"answered 302, a redirect to 127.0.0.1:{api_stand_in.port}/api/v1/products:"
        " redirects are not followed",
        "legacy": "app 'legacy' has no base_url configured for this environment",
    }
    for tag, text in expected.items():
        status, attempt, error = errors[tag]
        assert status == "failed_allowed", (tag, errors[tag])
        assert attempt == 1, (tag, errors[tag])  # not retried
        assert error["retryable"] is False, (tag, error)
        assert text in error["message"], (tag, error["message"])
    # Nothing was reached but the redirector an admin listed.
    assert api_stand_in.paths == []
    assert trellis_seen == []
    assert redirector.paths == ["/x"]
    assert all(listener.accepted == 0 for listener in listeners.values())

    # Production with an empty allow-list: nothing at all, not even a public name.
    _app(product, "public", {prd: "https://api.example.com/v1", staging: api})
    workflow = make_workflow(product, _spec(["public", "self-api"]), tag="prd-run", envs=("prd",))
    errors = _errors(_run(workflow, prd))
    for tag in ("public", "self-api"):
        status, attempt, error = errors[tag]
        assert status == "failed_allowed" and attempt == 1 and error["retryable"] is False
        assert "'prd' is production and its allowed hosts are empty" in error["message"]
    assert api_stand_in.paths == []

    # An admin lists 127.0.0.1:<port> in staging: the same app is reached.
    workflow = make_workflow(product, _spec(["self-api"]), tag="listed", envs=("staging",))
    run = _run(workflow, staging)
    assert _errors(run)["self-api"][0] == "completed", _errors(run)
    assert api_stand_in.paths == ["/api/v1/x"]
    assert trellis_seen == []  # and this server's API was never called
