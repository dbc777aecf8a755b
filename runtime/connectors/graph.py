"""GRAPH: the seed's seven ``ctx.graph`` operations on a Cypher graph.

``event`` is a built-in operation (``create_node``, ``update_node``, ``delete_node``,
``create_relationship``, ``delete_relationship``) or a Cypher operation the component
declares (``{"op": "query" | "execute", "cypher": "..."}``; see :mod:`runtime.cypher` for
the declared schema). Step input, as the seed's ``ctx.graph.*`` shows:

- ``create_node``: ``{labels: ["User"] | label, properties}`` → ``{id, labels, properties}``
- ``update_node``: ``{id, properties, labels?}`` → ``{id, labels, properties}``
- ``delete_node``: ``{id, labels?}`` → ``{id, deleted}`` (its relationships go with it)
- ``create_relationship``: ``{from, to, type, properties}`` → ``{id, type, from, to,
  properties}``
- ``delete_relationship``: ``{id, type?}`` → ``{id, deleted}``
- a query or execute operation: ``{params}`` (or ``{input}``, or the input's own keys) →
  ``{rows, count, row}``.

A node or relationship created without ``properties.id`` gets an id derived from the
step (``<run>:<step>``), and creating is a MERGE on that id: a step that runs again
(at-least-once delivery) finds what its first attempt made instead of making another.

Values only ever travel as query parameters. Labels, types and property names are
checked against the declared schema (identifiers only) before they are written into the
Cypher text. A query operation runs in a read-only transaction. Results are bounded in
rows and bytes (settings, tightened by the component's config) and in time (the step's
timeout, else the config's, else ``TRELLIS_GRAPH_TIMEOUT_S``).

The database is reached through a :class:`GraphBackend`, chosen by the config's
``backend`` in :data:`BACKENDS`; LadybugDB (``graph_ladybug``) is the only one today.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

from runtime.component_configs import GraphConfig, config_of
from runtime.connectors import graph_ladybug
from runtime.connectors.call import Component, ConnectorCall
from runtime.connectors.graph_backend import GraphBackend, Limits, Opener, Target
from runtime.cypher import (
    BUILTIN_OPERATIONS,
    ID_PROPERTY,
    GraphSchema,
    GraphSchemaError,
    cypher_operation,
    graph_schema,
    is_identifier,
)
from runtime.errors import StepError
from runtime.spec import duration_ms

_RESERVED_INPUT = {"params", "input"}


BACKENDS: dict[str, Opener] = {"ladybug": graph_ladybug.ladybug_open}


def graph_run(call: ConnectorCall) -> Any:
    """Run one graph operation on the call's component in its environment."""
    component = call.component
    if component is None:
        raise StepError(f"GRAPH '{call.event}' needs a graph component", retryable=False)
    try:
        schema = graph_schema(component.events)
    except GraphSchemaError as exc:
        raise StepError(f"graph '{component.tag}': {exc}", retryable=False) from None
    config = config_of(GraphConfig, component.config)
    opener = BACKENDS.get(config.backend or "ladybug")
    if opener is None:
        raise StepError(
            f"graph '{component.tag}': unknown backend {config.backend!r} "
            f"(one of: {', '.join(sorted(BACKENDS))})",
            retryable=False,
        )
    data = call.input if isinstance(call.input, dict) else {}
    operation = _operation(call, component, schema, data)
    target = Target(call, component, config, schema, _limits(call, config))
    with opener(target) as backend:
        return operation(backend)


Operation = Callable[[GraphBackend], dict[str, Any]]


def _operation(
    call: ConnectorCall, component: Component, schema: GraphSchema, data: dict[str, Any]
) -> Operation:
    """The checked operation the event names, ready to run on an open backend."""
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    if name == "create_node":
        label = _one_label(data, schema)
        props = _properties(data, schema.nodes[label], f"label {label!r}")
        node_id = _id(props.pop(ID_PROPERTY, None), "properties.id") or _derived_id(call, "n")
        return lambda b: b.create_node(label=label, node_id=node_id, properties=props)
    if name == "update_node":
        labels = _labels(data, schema)
        declared = {p: t for label in labels for p, t in schema.nodes[label].items()}
        props = _properties(data, declared, "the node's label")
        node_id = _required_id(data.get("id"), "id")
        return lambda b: b.update_node(node_id=node_id, labels=labels, properties=props)
    if name == "delete_node":
        labels = _labels(data, schema)
        node_id = _required_id(data.get("id"), "id")
        return lambda b: b.delete_node(node_id=node_id, labels=labels)
    if name == "create_relationship":
        rel_type = _rel_type(data.get("type"), schema, "type")
        props = _properties(data, schema.relationships[rel_type].properties, repr(rel_type))
        rel_id = _id(props.pop(ID_PROPERTY, None), "properties.id") or _derived_id(call, "r")
        from_id = _required_id(data.get("from"), "from")
        to_id = _required_id(data.get("to"), "to")
        return lambda b: b.create_relationship(
            rel_type=rel_type, rel_id=rel_id, from_id=from_id, to_id=to_id, properties=props
        )
    if name == "delete_relationship":
        given = data.get("type")
        types = (
            [_rel_type(given, schema, "type")] if given is not None else list(schema.relationships)
        )
        rel_id = _required_id(data.get("id"), "id")
        return lambda b: b.delete_relationship(rel_id=rel_id, types=types)
    return _cypher(component, name, data)


def _cypher(component: Component, name: str, data: dict[str, Any]) -> Operation:
    try:
        op, cypher = cypher_operation(component.events, name)
    except GraphSchemaError as exc:
        if exc.path == f"events.{name}":
            builtin = ", ".join(BUILTIN_OPERATIONS)
            raise StepError(
                f"graph '{component.tag}' has no operation '{name}' (built-in: {builtin})",
                retryable=False,
            ) from None
        raise StepError(f"graph '{component.tag}': {exc}", retryable=False) from None
    params = _params(data)
    if op == "query":
        return lambda b: b.query(cypher=cypher, params=params)
    return lambda b: b.execute(cypher=cypher, params=params)


def _params(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("params", "input"):
        if isinstance(data.get(key), dict):
            found = dict(data[key])
            break
    else:
        found = {k: v for k, v in data.items() if k not in _RESERVED_INPUT}
    for key in found:
        if not is_identifier(key):
            raise StepError(f"input.params: {key!r} is not a parameter name", retryable=False)
    return found


def _one_label(data: dict[str, Any], schema: GraphSchema) -> str:
    labels = _label_list(data)
    if labels is None or len(labels) != 1:
        raise StepError(
            "input.labels: create_node needs exactly one label (a LadybugDB node has one)",
            retryable=False,
        )
    return _node_label(labels[0], schema, "input.labels[0]")


def _labels(data: dict[str, Any], schema: GraphSchema) -> list[str]:
    """The labels the node may have: those given, else every declared one."""
    given = _label_list(data)
    if not given:
        if not schema.nodes:
            raise StepError(
                "the graph declares no node labels (events.schema.nodes)", retryable=False
            )
        return list(schema.nodes)
    return [_node_label(name, schema, f"input.labels[{i}]") for i, name in enumerate(given)]


def _label_list(data: dict[str, Any]) -> list[Any] | None:
    raw = data.get("labels", data.get("label"))
    if raw is None:
        return None
    return raw if isinstance(raw, list) else [raw]


def _node_label(name: Any, schema: GraphSchema, where: str) -> str:
    if not is_identifier(name):
        raise StepError(f"{where}: {name!r} is not a valid label", retryable=False)
    if name not in schema.nodes:
        declared = ", ".join(sorted(schema.nodes)) or "none"
        raise StepError(
            f"{where}: label {name!r} is not declared in events.schema.nodes "
            f"(declared: {declared})",
            retryable=False,
        )
    return str(name)


def _rel_type(name: Any, schema: GraphSchema, where: str) -> str:
    if not is_identifier(name):
        raise StepError(
            f"input.{where}: {name!r} is not a valid relationship type", retryable=False
        )
    if name not in schema.relationships:
        declared = ", ".join(sorted(schema.relationships)) or "none"
        raise StepError(
            f"input.{where}: relationship type {name!r} is not declared in "
            f"events.schema.relationships (declared: {declared})",
            retryable=False,
        )
    return str(name)


def _properties(data: dict[str, Any], declared: Mapping[str, str], owner: str) -> dict[str, Any]:
    raw = data.get("properties") or {}
    if not isinstance(raw, dict):
        raise StepError("input.properties must be an object", retryable=False)
    for key in raw:
        if not is_identifier(key):
            raise StepError(
                f"input.properties: {key!r} is not a valid property name", retryable=False
            )
        if key != ID_PROPERTY and key not in declared:
            raise StepError(
                f"input.properties.{key}: not declared for {owner} in events.schema",
                retryable=False,
            )
    return dict(raw)


def _id(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise StepError(f"input.{where}: an id is a string or an integer", retryable=False)
    return str(value)


def _required_id(value: Any, where: str) -> str:
    found = _id(value, where)
    if found is None:
        raise StepError(f"input.{where}: the id of a node or relationship", retryable=False)
    return found


def _derived_id(call: ConnectorCall, kind: str) -> str:
    """The same id for every attempt of one step (``<run>:<step>``): a retried create finds
    what the first attempt made. A code step's ``ctx`` may make several calls in one step:
    their keys carry the call's number after the attempt (``<run>:<step>:<attempt>:<n>``),
    kept so that each call makes its own node."""
    key = call.once_key
    if not key:
        return str(uuid.uuid4())
    if call.idempotency_key.startswith(f"{key}:"):
        after_attempt = call.idempotency_key[len(key) + 1 :].split(":", 1)
        if len(after_attempt) == 2:
            key = f"{key}:{after_attempt[1]}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"trellis-graph:{kind}:{key}"))


def _limits(call: ConnectorCall, config: GraphConfig) -> Limits:
    timeout = call.timeout_s or _config_seconds(config.timeout) or settings.TRELLIS_GRAPH_TIMEOUT_S
    return Limits(
        timeout_s=float(timeout),
        max_rows=_tightened(config.max_rows, settings.TRELLIS_GRAPH_MAX_ROWS, "max_rows"),
        max_bytes=_tightened(
            config.max_result_bytes, settings.TRELLIS_GRAPH_MAX_RESULT_BYTES, "max_result_bytes"
        ),
    )


def _config_seconds(raw: Any) -> float | None:
    if raw is None:
        return None
    try:
        ms = duration_ms(raw)
    except (TypeError, ValueError) as exc:
        raise StepError(f"graph config timeout {raw!r}: {exc}", retryable=False) from None
    return ms / 1000 if ms else None


def _tightened(raw: Any, server: int, name: str) -> int:
    """The config's bound, never above the server's."""
    if raw is None:
        return server
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise StepError(f"graph config {name} must be a positive integer", retryable=False)
    return min(raw, server)
