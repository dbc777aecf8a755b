"""Authoring writes for components (a product's apps, brokers, databases, ...): the
events they declare checked, every change audited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from designer.audit import Actor, audit_record, update_audited
from designer.models import Component, ComponentKind, Product
from runtime.compiler import ComponentInfo
from runtime.cypher import graph_events_issues


def _component_fields(component: Component) -> dict[str, Any]:
    return {
        "kind": component.kind,
        "tag": component.tag,
        "name": component.name,
        "description": component.description,
        "events": component.events,
    }


# Where a component connects is the admin's decision, held in its per-environment config
# (``PUT …/config/<env>``, admin only). Its events are edited by designers, so an event may
# not name a connection target: these keys are refused in an event definition and in the
# channel objects of a notification event (``email``/``sms``/``push``), and connectors
# ignore them in old data.
CONNECTION_TARGET_KEYS = frozenset(
    {
        "base_url",
        "url",
        "host",
        "hostname",
        "port",
        "endpoint",
        "endpoint_url",
        "dsn",
        "token_url",
        "hostaddr",
        "proxy",
    }
)
_CHANNEL_KEYS = ("email", "sms", "push")


def component_events_check(*, events: dict[str, Any], kind: str = "") -> None:
    """Refuse (400 naming the field) an event definition that names a connection target,
    and a graph component's schema or Cypher operation that cannot run."""
    problems: dict[str, str] = graph_events_issues(events) if kind == ComponentKind.GRAPH else {}
    for tag, definition in events.items():
        if not isinstance(definition, dict):
            continue
        places = [(f"events.{tag}", definition)]
        places += [
            (f"events.{tag}.{channel}", definition[channel])
            for channel in _CHANNEL_KEYS
            if isinstance(definition.get(channel), dict)
        ]
        for path, place in places:
            for key in sorted(CONNECTION_TARGET_KEYS & set(place)):
                problems[f"{path}.{key}"] = (
                    f"'{key}' is a connection target: an admin sets it in the component's "
                    "per-environment config, not in an event"
                )
    if problems:
        raise ValidationError(problems)


def component_create(
    *,
    product: Product,
    kind: str,
    tag: str,
    actor: Actor,
    name: str = "",
    description: str = "",
    events: dict[str, Any] | None = None,
) -> Component:
    """Create a component in ``product`` (its declared events checked), audited."""
    if product.components.filter(tag=tag).exists():
        raise ValidationError({"tag": f"a component {tag!r} already exists"})
    component_events_check(events=events or {}, kind=kind)
    with transaction.atomic():
        component = Component.objects.create(
            product=product,
            kind=ComponentKind(kind),
            tag=tag,
            name=name,
            description=description,
            events=events or {},
        )
        audit_record(
            product=product,
            actor=actor,
            action="component.create",
            target=tag,
            after=_component_fields(component),
        )
    return component


def component_update(*, component: Component, actor: Actor, **fields: Any) -> Component:
    """Change a component's fields (its tag stays unique in the product), audited."""
    if fields.get("events") is not None:
        component_events_check(events=fields["events"], kind=component.kind)
    update_audited(
        component,
        actor=actor,
        fields=fields,
        key="tag",
        siblings=component.product.components,
        noun="a component",
        snapshot=_component_fields,
        action="component.update",
    )
    return component


def component_delete(*, component: Component, actor: Actor) -> None:
    """Delete a component, audited."""
    with transaction.atomic():
        audit_record(
            product=component.product,
            actor=actor,
            action="component.delete",
            target=component.tag,
            before=_component_fields(component),
        )
        component.delete()


def component_infos(product: Product) -> dict[str, ComponentInfo]:
    """What the compiler needs to know about the product's components: kind and events."""
    infos = {}
    for tag, kind, events in product.components.values_list("tag", "kind", "events"):
        names = events.keys() if isinstance(events, dict) else events or []
        infos[tag] = ComponentInfo(kind=kind, events=frozenset(str(n) for n in names))
    return infos
