"""Connectors: one module per kind of event, registered in one table.

The engine calls :func:`execute` with a fully resolved :class:`ConnectorCall`; a connector
returns a JSON-able result or raises :class:`runtime.errors.StepError` saying whether a
retry can help. Connectors never see Django request objects and never log secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import StepError
from runtime.netguard import HostPolicy
from runtime.spec import EventType


@dataclass(frozen=True)
class Component:
    """A product component as configured for the run's environment (secrets decrypted)."""

    kind: str
    tag: str
    events: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorCall:
    type: EventType
    event: str
    input: Any
    app: str | None = None
    component: Component | None = None
    environment: str = ""
    allowed_hosts: tuple[str, ...] = ()
    production: bool = False
    idempotency_key: str = ""
    timeout_s: float | None = None
    run_id: int | None = None
    step: str = ""
    product_id: int | None = None
    environment_id: int | None = None

    @property
    def policy(self) -> HostPolicy:
        """Where this call may connect: the environment's admin-held allow-list."""
        return HostPolicy(
            allowed_hosts=tuple(self.allowed_hosts),
            production=self.production,
            environment=self.environment,
        )

    @property
    def once_key(self) -> str:
        """This step of this run, whatever the attempt (``<run>:<step>``): for effects
        that must happen once per step even when an attempt fails after them (a message,
        a quota unit). ``idempotency_key`` when the call is not a run's step."""
        if self.run_id is not None and self.step:
            return f"{self.run_id}:{self.step}"
        return self.idempotency_key


Executor = Callable[[ConnectorCall], Any]
CONNECTORS: dict[EventType, Executor] = {}


def register(event_type: EventType) -> Callable[[Executor], Executor]:
    def wrap(fn: Executor) -> Executor:
        CONNECTORS[event_type] = fn
        return fn

    return wrap


def execute(call: ConnectorCall) -> Any:
    """Run ``call`` with the connector registered for its type.

    The component's secret values, and their transforms (other case, fragments), are
    redacted to '•••' in the result, in any error and in the log lines of the call, so
    neither the journal nor a log line can carry them (a server echoing an Authorization
    header back, a driver quoting a connection string, a URL path holding a secret).
    A call of a component without secrets pays nothing.
    """
    _load_all()
    executor = CONNECTORS.get(call.type)
    if executor is None:
        raise StepError(f"no connector runs {call.type} events", retryable=False)
    secrets = list(call.component.secrets.values()) if call.component else []
    if not secrets:
        return executor(call)
    from designer.secrets import redact

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


_flight = threading.local()


@contextmanager
def secrets_in_flight(secrets: list[str]) -> Iterator[None]:
    """Mark the secrets of the call this thread is making, for log filters
    (:func:`secrets_of_call`): a library logging a request URL must not log a secret."""
    previous = getattr(_flight, "secrets", None)
    _flight.secrets = secrets
    try:
        yield
    finally:
        _flight.secrets = previous


def secrets_of_call() -> list[str]:
    """The secrets of the connector call this thread is making (empty when none)."""
    return getattr(_flight, "secrets", None) or []


_loaded = False


def _load_all() -> None:
    """Import every connector module once so they register themselves."""
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True
