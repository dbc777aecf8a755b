"""OpenTelemetry: a run is one trace — a run span and a span per step attempt, with the
workflow, version, environment, step and attempt — and nothing is traced when it is off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from rest_framework.test import APIClient

from designer.models import Environment, Product
from runtime import tracing
from runtime.services import run_start
from tests.runtime.conftest import code, make_workflow, run_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(id_generator=tracing.id_generator())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.install(provider)
    yield memory
    tracing.install(None)


def test_a_run_is_a_trace_of_its_steps(
    product: Product,
    env_dev: Environment,
    side_effects: Any,
    exporter: InMemorySpanExporter,
    django_capture_on_commit_callbacks: Any,
    api: APIClient,
) -> None:
    body = {
        "sequences": [
            {
                "tag": "m",
                "events": [
                    code("add", tag="first", input={"a": 1, "b": 2}),
                    code("flaky", tag="second", input={"failures": 1}, retries=1),
                ],
            }
        ]
    }
    wf = make_workflow(product, body, tag="traced")
    with django_capture_on_commit_callbacks(execute=True):
        run = run_start(workflow=wf, environment=env_dev, input={})
    with django_capture_on_commit_callbacks(execute=True):
        run = run_until_done(run)
    assert run.status == "completed", run.error
    assert len(run.trace_id) == 32
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == ["run", "step first", "step second"]
    (root,) = by_name["run"]
    assert root.parent is None
    assert f"{root.context.trace_id:032x}" == run.trace_id
    assert root.attributes["trellis.workflow"] == "acme/traced"
    assert root.attributes["trellis.version"] == 1
    assert root.attributes["trellis.environment"] == "dev"
    assert root.attributes["trellis.status"] == "completed"
    assert root.status.status_code is StatusCode.UNSET
    (first,) = by_name["step first"]
    failed, retried = sorted(by_name["step second"], key=lambda s: s.attributes["trellis.attempt"])
    for span in (first, failed, retried):
        assert span.context.trace_id == root.context.trace_id
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.attributes["trellis.workflow"] == "acme/traced"
        assert span.attributes["trellis.environment"] == "dev"
        assert span.attributes["trellis.version"] == 1
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    assert first.attributes["trellis.step"] == "first"
    assert first.attributes["trellis.attempt"] == 1
    assert (failed.attributes["trellis.attempt"], retried.attributes["trellis.attempt"]) == (1, 2)
    assert failed.status.status_code is StatusCode.ERROR
    assert "flaky failure 1" in (failed.status.description or "")
    assert retried.status.status_code is StatusCode.UNSET
    # The monitor shows it: the run's API answer carries it.
    assert api.get(f"/api/v1/runs/{run.pk}").json()["trace_id"] == run.trace_id


def test_nothing_is_traced_when_tracing_is_off(
    product: Product, env_dev: Environment, django_capture_on_commit_callbacks: Any
) -> None:
    assert not tracing.active()
    wf = make_workflow(
        product, {"sequences": [{"tag": "m", "events": [code("add", tag="a")]}]}, tag="quiet"
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = run_until_done(run_start(workflow=wf, environment=env_dev, input={}))
    assert run.status == "completed"
    assert run.trace_id == ""


def test_spans_go_to_the_configured_otlp_endpoint(
    product: Product,
    env_dev: Environment,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import http.server
    import threading

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append((self.path, self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TRELLIS_OTLP_ENDPOINT = f"http://127.0.0.1:{server.server_port}"
    try:
        tracing.configure()
        assert tracing.active()
        wf = make_workflow(
            product, {"sequences": [{"tag": "m", "events": [code("add", tag="a")]}]}, tag="otlp"
        )
        with django_capture_on_commit_callbacks(execute=True):
            run = run_start(workflow=wf, environment=env_dev, input={})
        with django_capture_on_commit_callbacks(execute=True):
            run = run_until_done(run)
        assert tracing.flush()
    finally:
        tracing.install(None)
        server.shutdown()
    assert run.status == "completed"
    assert received, "no export reached the collector"
    assert all(path == "/v1/traces" for path, _ in received)
    payload = b"".join(body for _, body in received)
    assert bytes.fromhex(run.trace_id) in payload  # the run's trace, protobuf-encoded
    assert b"acme/otlp" in payload
