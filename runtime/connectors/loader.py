"""Load a product component as configured for one environment, secrets decrypted.

Decrypting on every step would be wasteful, so results are cached in-process and reused
while neither the component nor its environment config has changed (``updated_at``).
Checking that costs one small query per call, which keeps every worker consistent with
the database without any invalidation messages.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from designer.models import Component as ComponentRow
from designer.models import ComponentConfig, Environment
from designer.secrets import SecretsUnreadable, secrets_decrypt
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError
from runtime.spec import EventType

_Stamp = tuple[datetime | None, datetime | None]
_cache: dict[tuple[int, int, str], tuple[_Stamp, Component]] = {}
_lock = threading.Lock()


def component_for(*, product_id: int, environment_id: int, tag: str) -> Component:
    """The component ``tag`` of a product with its config for an environment.

    Raises a non-retryable StepError when the product has no such component or its
    secrets cannot be decrypted. A component without config for the environment gets an
    empty config (the connector then says what is missing).
    """
    stamps = (
        ComponentRow.objects.filter(product_id=product_id, tag=tag)
        .values_list("pk", "updated_at")
        .first()
    )
    if stamps is None:
        raise StepError(f"the product has no component '{tag}'", retryable=False)
    component_pk, component_updated = stamps
    config_updated = (
        ComponentConfig.objects.filter(component_id=component_pk, environment_id=environment_id)
        .values_list("updated_at", flat=True)
        .first()
    )
    key = (product_id, environment_id, tag)
    stamp: _Stamp = (component_updated, config_updated)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    loaded = _load(component_pk, environment_id)
    with _lock:
        _cache[key] = (stamp, loaded)
    return loaded


def _load(component_pk: int, environment_id: int) -> Component:
    row = ComponentRow.objects.get(pk=component_pk)
    cfg = ComponentConfig.objects.filter(component=row, environment_id=environment_id).first()
    secrets: dict[str, str] = {}
    if cfg is not None:
        try:
            secrets = secrets_decrypt(cfg.secrets_encrypted)
        except SecretsUnreadable as exc:
            raise StepError(f"component '{row.tag}': {exc}", retryable=False) from exc
    return Component(
        kind=row.kind,
        tag=row.tag,
        events=dict(row.events or {}),
        config=dict(cfg.config or {}) if cfg else {},
        variables=dict(cfg.variables or {}) if cfg else {},
        constants=dict(cfg.constants or {}) if cfg else {},
        secrets=secrets,
    )


def component_cache_clear() -> None:
    """Forget every cached component (tests)."""
    with _lock:
        _cache.clear()


def connector_call(
    *,
    type: EventType | str,
    event: str,
    input: Any,
    environment: Environment,
    app: str | None = None,
    idempotency_key: str = "",
    timeout_s: float | None = None,
    run_id: int | None = None,
    step: str = "",
) -> ConnectorCall:
    """Build the :class:`ConnectorCall` for a step in an environment: loads the step's
    component (if any) and the environment's host allow-list.

    Without ``app``, an event ``'tag:name'`` of a component kind (``'orders-db:create'``,
    ``'order-events:created'``) names its component; a QUOTA or FALLBACK event without a
    colon is the component's own tag (the seed's ``ctx.quota.execute({quota: ...})``)."""
    kind = EventType(type)
    app = app or _app_from_event(kind, event)
    component = (
        component_for(product_id=environment.product_id, environment_id=environment.pk, tag=app)
        if app
        else None
    )
    return ConnectorCall(
        type=kind,
        event=event,
        input=input,
        app=app,
        component=component,
        environment=environment.slug,
        allowed_hosts=tuple(str(h) for h in environment.allowed_hosts or ()),
        production=environment.is_production,
        idempotency_key=idempotency_key,
        timeout_s=timeout_s,
        run_id=run_id,
        step=step,
        product_id=environment.product_id,
        environment_id=environment.pk,
    )


_PREFIXED = {
    EventType.DB_ACTION,
    EventType.PUBLISH,
    EventType.NOTIFICATION,
    EventType.STORAGE,
    EventType.QUOTA,
    EventType.FALLBACK,
    EventType.ACTION,
}


def _app_from_event(kind: EventType, event: str) -> str | None:
    if kind not in _PREFIXED:
        return None
    if ":" in event:
        return event.split(":", 1)[0] or None
    if kind in {EventType.QUOTA, EventType.FALLBACK}:
        return event or None
    return None
