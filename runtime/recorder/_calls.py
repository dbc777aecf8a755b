"""Connector calls (``ctx.action.run(...)``…): how each maps onto an event, and the step
options they take. Shared by the recording ctx and the live one (runtime.context)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from runtime.recorder._sites import RecordingError, Site
from runtime.recorder._values import Recorded
from runtime.spec import EventType, duration_ms

OwnerT = TypeVar("OwnerT")  # the ctx a namespace belongs to (its recording, or a live ctx)


STEP_OPTION_KEYS = ("allow_fail", "retries", "retry_delay", "timeout", "critical", "backoff")
CAMEL = {
    "allowFail": "allow_fail",
    "retryDelay": "retry_delay",
    "parentClosePolicy": "parent_close_policy",
    "rollbackStrategy": "rollback_strategy",
    "maxConcurrency": "max_concurrency",
}


SAME_AS_COMPONENT = "<component>"


@dataclass(frozen=True)
class CallShape:
    """How a ctx connector method maps onto an event: its type, which argument names the
    component (``app`` of the event) and where the event name comes from."""

    type: EventType
    component: str
    event_key: str | None = "event"
    fixed_event: str | None = None


CALL_SHAPES: dict[str, CallShape] = {
    "action.run": CallShape(EventType.ACTION, "app"),
    **{
        f"database.{m}": CallShape(EventType.DB_ACTION, "database")
        for m in ("insert", "query", "execute", "update", "delete")
    },
    **{
        f"graph.{m}": CallShape(EventType.GRAPH, "graph", None, m)
        for m in (
            "create_node",
            "update_node",
            "delete_node",
            "create_relationship",
            "delete_relationship",
        )
    },
    "graph.query": CallShape(EventType.GRAPH, "graph", "action"),
    "graph.execute": CallShape(EventType.GRAPH, "graph", "action"),
    **{
        f"notification.{m}": CallShape(EventType.NOTIFICATION, "notification")
        for m in ("email", "sms", "push", "send")
    },
    **{
        f"storage.{m}": CallShape(EventType.STORAGE, "storage")
        for m in ("upload", "download", "delete")
    },
    "messaging.produce": CallShape(EventType.PUBLISH, "broker"),
    # The seed names only the component: the event is the component itself (its quota /
    # its chain of providers).
    "quota.execute": CallShape(EventType.QUOTA, "quota", None, SAME_AS_COMPONENT),
    "fallback.execute": CallShape(EventType.FALLBACK, "fallback", None, SAME_AS_COMPONENT),
}
CONNECTOR_NAMESPACES = frozenset(label.split(".")[0] for label in CALL_SHAPES)
CALL_OPTION_KEYS = ("retries", "retry_delay", "timeout", "backoff")


@dataclass
class SplitCall:
    """A connector call taken apart: routing (component, event, tag, options) and input."""

    shape: CallShape
    app: Any
    event: Any
    tag: Any
    options: dict[str, Any]
    payload: dict[str, Any]


def split_call(label: str, spec: Any, kwargs: Mapping[str, Any]) -> SplitCall:
    """Separate a connector call's routing (component, event, tag, retries, timeout) from
    its input. Raises ValueError with a message for the user."""
    shape = CALL_SHAPES[label]
    if spec is not None and not isinstance(spec, Mapping):
        raise ValueError(
            f"ctx.{label} takes a dict or keyword arguments, not {type(spec).__name__}"
        )
    args = {CAMEL.get(k, k): v for k, v in {**(spec or {}), **kwargs}.items()}
    if label == "messaging.produce" and "broker" not in args:
        event = args.get("event")
        if not isinstance(event, str) or ":" not in event:
            raise ValueError(
                "ctx.messaging.produce needs event='broker:topic' "
                "(e.g. 'order-events:order-created')"
            )
        args["broker"] = event.split(":", 1)[0]
    needed = [shape.component] + ([shape.event_key] if shape.event_key else [])
    for key in needed:
        if key not in args:
            raise ValueError(f"ctx.{label} needs {key!r}")
    app = args.pop(shape.component)
    event = args.pop(shape.event_key) if shape.event_key else shape.fixed_event
    if event == SAME_AS_COMPONENT:
        event = app
    tag = args.pop("tag", None)
    options = {key: args.pop(key) for key in CALL_OPTION_KEYS if key in args}
    data = args.pop("input", None)
    payload: dict[str, Any] = {}
    if data is not None:
        if not isinstance(data, Mapping):
            raise ValueError(f"ctx.{label}: input must be a dict")
        payload.update(data)
    payload.update(args)
    return SplitCall(shape, app, event, tag, options, payload)


class CallNamespace(Generic[OwnerT]):
    """``ctx.action``, ``ctx.database``…: one method per ``CALL_SHAPES`` entry (camelCase
    aliases included), for recording and for live code steps alike; a subclass says what
    a call does (``_make``)."""

    def __init__(self, owner: OwnerT, name: str) -> None:
        self._owner = owner
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        label = f"{self._name}.{_SNAKE.get(method, method)}"
        if label not in CALL_SHAPES:
            raise AttributeError(f"ctx.{self._name} has no method {method!r}")

        def call(spec: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
            return self._make(label, spec, kwargs)

        call.__name__ = method
        return call

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> Any:
        raise NotImplementedError


# The seed's camelCase method names (graph), for pasted code.
_SNAKE = {
    "createNode": "create_node",
    "updateNode": "update_node",
    "deleteNode": "delete_node",
    "createRelationship": "create_relationship",
    "deleteRelationship": "delete_relationship",
}


def check_option(key: str, value: Any, site: Site | None, label: str) -> Any:
    """A step or call option checked at define time (a fixed value of the right kind)."""
    if isinstance(value, Recorded):
        raise RecordingError(f"{label}: {key} must be a fixed value, not {value}", site=site)
    if key in {"retries"}:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RecordingError(f"{label}: retries must be a whole number ≥ 0", site=site)
        return value
    if key in {"retry_delay", "timeout"}:
        if value is None:
            return None
        try:
            duration_ms(value)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"{label}: {key}: {exc}", site=site) from None
        return value
    if key in {"allow_fail", "critical"}:
        if not isinstance(value, bool):
            raise RecordingError(f"{label}: {key} must be True or False", site=site)
        return value
    if key == "backoff":
        if value not in {"fixed", "exponential"}:
            raise RecordingError(f"{label}: backoff must be 'fixed' or 'exponential'", site=site)
        return value
    return value
