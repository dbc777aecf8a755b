"""Connectors: one module per kind of event, all named in one table (:data:`CONNECTORS`).

The engine calls :func:`execute` with a fully resolved :class:`ConnectorCall`; a connector
returns a JSON-able result or raises :class:`runtime.errors.StepError` saying whether a
retry can help. Connectors never see Django request objects and never log secrets. What a
connector reads of its component's config is typed in :mod:`runtime.component_configs`.
"""

from __future__ import annotations

from typing import Any

from designer.secrets import redact
from runtime.connectors import (
    action,
    code,
    database,
    fallback,
    graph,
    job,
    messaging,
    notification,
    quota,
    storage,
)
from runtime.connectors.call import Component, ConnectorCall, Executor
from runtime.errors import StepError
from runtime.http import secrets_in_flight, secrets_of_call
from runtime.spec import EventType

__all__ = [
    "CONNECTORS",
    "Component",
    "ConnectorCall",
    "Executor",
    "execute",
    "secrets_in_flight",
    "secrets_of_call",
]


def _fallback(call: ConnectorCall) -> Any:
    # A fallback's providers are events of other kinds: they run through this table.
    return fallback.fallback_run(call, execute)


CONNECTORS: dict[EventType, Executor] = {
    EventType.ACTION: action.action_run,
    EventType.CODE: code.code_run,
    EventType.DB_ACTION: database.database_run,
    EventType.FALLBACK: _fallback,
    EventType.GRAPH: graph.graph_run,
    EventType.JOB: job.job_run,
    EventType.NOTIFICATION: notification.notification_run,
    EventType.PUBLISH: messaging.publish_run,
    EventType.QUOTA: quota.quota_run,
    EventType.STORAGE: storage.storage_run,
}


def execute(call: ConnectorCall) -> Any:
    """Run ``call`` with the connector :data:`CONNECTORS` names for its type.

    The component's secret values, and their transforms (other case, fragments), are
    redacted to '•••' in the result, in any error and in the log lines of the call, so
    neither the journal nor a log line can carry them (a server echoing an Authorization
    header back, a driver quoting a connection string, a URL path holding a secret).
    A call of a component without secrets pays nothing.
    """
    executor = CONNECTORS.get(call.type)
    if executor is None:
        raise StepError(f"no connector runs {call.type} events", retryable=False)
    secrets = list(call.component.secrets.values()) if call.component else []
    if not secrets:
        return executor(call)
    try:
        with secrets_in_flight(secrets):
            result = executor(call)
    except StepError as exc:
        exc.message = redact(exc.message, secrets)
        exc.args = (exc.message,)
        exc.details = redact(exc.details, secrets)
        raise
    except Exception as exc:
        # Stored as "<type>: <message>": a library's message may quote what it was given.
        text = f"{type(exc).__name__}: {exc}"
        masked = redact(text, secrets)
        if masked == text:
            raise
        raise StepError(masked) from None  # `from None`: no traceback shows the original
    return redact(result, secrets)
