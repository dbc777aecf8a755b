"""OpenTelemetry traces of runs: one span per run, one child span per step attempt.

Off by default and free when off: :func:`new_trace_id` returns "" and :func:`observe`
returns at its first test. On when ``TRELLIS_OTLP_ENDPOINT`` is set (spans exported over
OTLP/HTTP in batches; needs ``opentelemetry-exporter-otlp-proto-http``) or when a test
installs a provider (:func:`install`, with the SDK's in-memory exporter).

A run outlives the process that starts it (its steps run on any worker), so no span object
is kept open: the run's trace id is chosen when it is created and kept on the run
(``Run.trace_id``, shown in the monitor); each step attempt's span is emitted when the
attempt ends, with the attempt's start as its start time and the run's span as its parent;
the run's span is emitted when the run ends, with the run's creation as its start time and
a span id derived from the trace id, so the step spans emitted earlier point at it.

Spans are emitted from the journal entries a process has just committed (one hook, where
the journal hands them to the live view), so the engine itself has no tracing code.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings

logger = logging.getLogger("trellis.tracing")

RUN_ENDS = {"run_completed", "run_failed", "run_rolled_back", "run_cancelled"}
ATTEMPT_ENDS = {"step_completed": "ok", "step_failed": "error", "step_retrying": "error"}

_tracer: Any = None
_provider: Any = None
_lock = threading.Lock()
# (trace id, span id) the next span gets: the run span's, chosen rather than random.
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "trellis_span_ids", default=None
)
_run_attributes: dict[int, dict[str, Any]] = {}


def active() -> bool:
    return _tracer is not None


def new_trace_id() -> str:
    """A new run's trace id (32 hex digits), or "" when tracing is off."""
    return secrets.token_hex(16) if _tracer is not None else ""


def run_span_id(trace_id: str) -> int:
    """The run span's id: derived from the trace id, so any process can name it."""
    return int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:8], "big") or 1


def install(provider: Any) -> None:
    """Trace with ``provider`` (an SDK TracerProvider); None turns tracing off."""
    global _tracer, _provider
    with _lock:
        _run_attributes.clear()
        _provider = provider
        _tracer = None if provider is None else provider.get_tracer("trellis")


def flush(timeout_ms: int = 5000) -> bool:
    """Export the spans still batched (tests; a stopping process)."""
    return bool(_provider.force_flush(timeout_ms)) if _provider is not None else True


def id_generator() -> Any:
    """The SDK's random ids, except the run span's, which is chosen (see module doc)."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunSpanIds(RandomIdGenerator):
        def generate_span_id(self) -> int:
            forced = _forced_ids.get()
            return forced[1] if forced is not None else int(super().generate_span_id())

        def generate_trace_id(self) -> int:
            forced = _forced_ids.get()
            return forced[0] if forced is not None else int(super().generate_trace_id())

    return RunSpanIds()


def configure() -> None:
    """At startup: trace to the OTLP endpoint when one is configured."""
    endpoint: str = getattr(settings, "TRELLIS_OTLP_ENDPOINT", "")
    if not endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.error(
            "TRELLIS_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is not "
            "installed: no traces are exported"
        )
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": "trellis"}), id_generator=id_generator()
    )
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)


def observe(entries: Iterable[dict[str, Any]]) -> None:
    """Committed journal entries (as published to the live view): emit the spans that end."""
    if _tracer is None:
        return
    try:
        for entry in entries:
            kind = entry.get("kind")
            if kind in ATTEMPT_ENDS:
                _step_span(entry)
            elif kind in RUN_ENDS:
                _run_span(entry)
    except Exception:  # tracing must never break a run
        logger.exception("tracing: could not emit a span")


def _ns(value: Any) -> int:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return int(at.timestamp() * 1_000_000_000)


def _attributes(run_id: int) -> dict[str, Any]:
    """The run's trace id, start and labels (cached: a run's steps end in the same worker)."""
    found = _run_attributes.get(run_id)
    if found is not None:
        return found
    from runtime.models import Run

    row = (
        Run.objects.filter(pk=run_id)
        .values(
            "trace_id",
            "created_at",
            "workflow__product__slug",
            "workflow__tag",
            "version__number",
            "environment__slug",
        )
        .first()
    )
    if row is None or not row["trace_id"]:
        return {}
    found = {
        "trace_id": row["trace_id"],
        "created_at": row["created_at"],
        "attributes": {
            "trellis.run": run_id,
            "trellis.workflow": f"{row['workflow__product__slug']}/{row['workflow__tag']}",
            "trellis.version": row["version__number"],
            "trellis.environment": row["environment__slug"],
        },
    }
    if len(_run_attributes) > 1000:
        _run_attributes.clear()
    _run_attributes[run_id] = found
    return found


def _parent(trace_id: str) -> Any:
    from opentelemetry import trace

    context = trace.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=run_span_id(trace_id),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(context))


def _attempt_times(run_id: int, step: str, attempt: int, at: Any) -> tuple[Any, Any]:
    """When the attempt started and ended, as the step's row recorded them."""
    from runtime.models import StepRun

    attempts = (
        StepRun.objects.filter(run_id=run_id, tag=step).values_list("attempts", flat=True).first()
    )
    for item in attempts or []:
        if isinstance(item, dict) and item.get("n") == attempt and item.get("started_at"):
            return item["started_at"], item.get("finished_at") or at
    return at, at


def _step_span(entry: dict[str, Any]) -> None:
    from opentelemetry.trace import Status, StatusCode

    run = _attributes(int(entry["run"]))
    if not run:
        return
    data = entry.get("data") or {}
    attributes = {
        **run["attributes"],
        "trellis.step": entry["step"],
        "trellis.attempt": int(data.get("attempt") or 0),
        "trellis.outcome": entry["kind"].removeprefix("step_"),
    }
    start, end = _attempt_times(
        int(entry["run"]), entry["step"], attributes["trellis.attempt"], entry["at"]
    )
    span = _tracer.start_span(
        f"step {entry['step']}",
        context=_parent(run["trace_id"]),
        attributes=attributes,
        start_time=_ns(start),
    )
    if ATTEMPT_ENDS[entry["kind"]] == "error":
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        span.set_status(Status(StatusCode.ERROR, str(message or entry["kind"])))
    span.end(end_time=max(_ns(end), _ns(start)))


def _run_span(entry: dict[str, Any]) -> None:
    from opentelemetry.context import Context
    from opentelemetry.trace import Status, StatusCode

    run = _attributes(int(entry["run"]))
    if not run:
        return
    trace_id = run["trace_id"]
    # A root span (empty context) whose ids are the run's (see id_generator).
    token = _forced_ids.set((int(trace_id, 16), run_span_id(trace_id)))
    try:
        span = _tracer.start_span(
            "run",
            context=Context(),
            attributes={**run["attributes"], "trellis.status": entry["kind"][4:]},
            start_time=_ns(run["created_at"]),
        )
    finally:
        _forced_ids.reset(token)
    if entry["kind"] != "run_completed":
        span.set_status(Status(StatusCode.ERROR, entry["kind"]))
    span.end(end_time=_ns(entry["at"]))
    _run_attributes.pop(int(entry["run"]), None)
