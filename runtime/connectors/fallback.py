"""FALLBACK: try providers in order until one succeeds.

A fallback component lists its providers, each an event of another kind
(``Component.events``)::

    {"payment-fallback": {"providers": [
        {"type": "ACTION", "app": "stripe", "event": "create-charge",
         "input": {"body": {"amount": "$Input{amount}"}}},
        {"type": "ACTION", "app": "paypal", "event": "create-payment"}]}}

An environment may replace the list (``Component.config``: ``{"providers": {"payment-fallback":
[...]}}`` or, for the seed's form where ``event`` names the component,
``{"providers": [...]}``). A provider's ``input`` is resolved with the fallback step's input
as ``$Input`` (no ``input``: the step input is passed as it is).

Every error moves on to the next provider. Result ``{provider: <index>, app, event,
result, errors: [...]}`` naming the provider that served and what failed before it; when
all fail, a StepError lists each failure (retryable if any failure was).
"""

from __future__ import annotations

import time
from typing import Any

from designer.models import Environment
from runtime.component_configs import FallbackConfig, config_of
from runtime.connectors.call import Component, ConnectorCall, Executor
from runtime.connectors.loader import connector_call
from runtime.errors import StepError, TrellisError
from runtime.expressions import DictScope, resolve
from runtime.spec import EventType

_NOT_PROVIDERS = {EventType.FALLBACK, EventType.JOB}


def fallback_run(call: ConnectorCall, execute: Executor) -> Any:
    """Run the first provider that succeeds; ``execute`` runs a provider's event (the
    connector table's own :func:`runtime.connectors.execute`)."""
    component = call.component
    if component is None:
        raise StepError(f"FALLBACK '{call.event}' needs a fallback component", retryable=False)
    if call.environment_id is None:
        raise StepError("FALLBACK needs the run's environment", retryable=False)
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    providers = _providers(component, name)
    environment = Environment.objects.get(pk=call.environment_id)
    deadline = time.monotonic() + call.timeout_s if call.timeout_s else None
    errors: list[dict[str, Any]] = []
    retryable = False
    for index, provider in enumerate(providers):
        label = f"{provider.get('app') or ''}:{provider.get('event')}".lstrip(":")
        try:
            kind = EventType(str(provider.get("type", "")).upper())
            if kind in _NOT_PROVIDERS:
                raise StepError(f"a {kind} cannot be a fallback provider", retryable=False)
            raw_input = provider.get("input")
            provider_input = (
                call.input if raw_input is None else resolve(raw_input, DictScope(input=call.input))
            )
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepError("the fallback step ran out of time", retryable=True)
            sub = connector_call(
                type=kind,
                event=str(provider.get("event", "")),
                app=provider.get("app"),
                input=provider_input,
                environment=environment,
                idempotency_key=f"{call.idempotency_key}:p{index}" if call.idempotency_key else "",
                timeout_s=left,
                run_id=call.run_id,
                step=call.step,
            )
            result = execute(sub)
        except (StepError, TrellisError, ValueError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            retryable = retryable or bool(getattr(exc, "retryable", False))
            errors.append({"provider": index, "name": label, "error": message})
            continue
        return {
            "provider": index,
            "app": provider.get("app"),
            "event": provider.get("event"),
            "result": result,
            "errors": errors,
        }
    raise StepError(
        "every provider failed: " + "; ".join(f"{e['name']}: {e['error']}" for e in errors),
        retryable=retryable,
        details={"errors": errors},
    )


def _providers(component: Component, name: str) -> list[dict[str, Any]]:
    configured = config_of(FallbackConfig, component.config).providers
    declared = component.events.get(name)
    found: Any = None
    if isinstance(configured, dict):
        found = configured.get(name)
    elif isinstance(configured, list):
        found = configured
    if found is None and isinstance(declared, dict):
        found = declared.get("providers")
    if found is None and name == component.tag and len(component.events) == 1:
        only = next(iter(component.events.values()))
        found = only.get("providers") if isinstance(only, dict) else None
    if not isinstance(found, list) or not found:
        raise StepError(
            f"fallback '{component.tag}' has no providers for '{name}'", retryable=False
        )
    return [p for p in found if isinstance(p, dict)]
