"""PUBLISH: put a message on a broker topic; ``event`` is ``broker:topic``.

A broker component may list its topics (``Component.events``, optional)::

    {"order-created": {"description": "..."}}

and each environment picks where messages go (``Component.config``)::

    {"backend": "database"}                              # default: the built-in broker
    {"backend": "redis", "url": "redis://127.0.0.1:6379/0", "maxlen": 100000,
     "stream_prefix": "trellis"}

The built-in broker stores each message (``runtime.models.Message``). Either way, publishing
starts every workflow whose live version in the environment has a trigger
``{"type": "topic", "event": "<broker>:<topic>"}`` (the canvas' topic trigger), with the
message as ``$Input`` (or the trigger's ``input`` mapping over it). The Redis backend also
appends the message to the stream ``<prefix>:<product>:<env>:<broker>:<topic>`` (XADD) for
consumers outside Trellis.

Input: ``{message: {...}, key?}`` as the seed's ``ctx.messaging.produce`` (any other input
is the message itself). The step's idempotency key makes a retried publish store and
trigger once. Result: ``{message_id, broker, topic, runs: [run ids], refused?: [...]}``
(+ ``stream`` for Redis).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from designer.models import Activation, Environment
from runtime.component_configs import BrokerConfig, config_of
from runtime.connectors.call import Component, ConnectorCall
from runtime.connectors.storage import product_slug
from runtime.connectors.upcalls import upcalls
from runtime.errors import StepError, TrellisError
from runtime.expressions import DictScope, resolve
from runtime.http import host_check
from runtime.models import Message, Run

log = logging.getLogger("trellis.connectors.messaging")


def publish_run(call: ConnectorCall) -> Any:
    """Publish one message and start the workflows subscribed to its topic."""
    component = call.component
    broker, topic = _split(call, component)
    if component is not None and component.events and topic not in component.events:
        raise StepError(f"broker '{broker}' has no topic '{topic}'", retryable=False)
    if call.environment_id is None or call.product_id is None:
        raise StepError("PUBLISH needs the run's product and environment", retryable=False)
    data = call.input if isinstance(call.input, dict) else {}
    message = data["message"] if "message" in data else call.input
    # One message per step of a run, however many attempts it took to publish it.
    key = str(data.get("key") or call.once_key or "")
    config = config_of(BrokerConfig, component.config if component else {})
    backend = config.backend or "database"
    if backend not in {"database", "redis"}:
        raise StepError(f"broker '{broker}': unknown backend {backend!r}", retryable=False)
    try:
        json.dumps(message)
    except (TypeError, ValueError) as exc:
        raise StepError("the message must be JSON", retryable=False) from exc

    extra: dict[str, Any] = {}
    if backend == "redis":
        extra = _redis_add(call, config, broker, topic, message, key)
    stored, created = _store(
        call, call.product_id, call.environment_id, broker, topic, message, key
    )
    if created:
        started, refused = topic_trigger(
            product_id=call.product_id,
            environment_id=call.environment_id,
            event=f"{broker}:{topic}",
            message=message,
            message_id=stored.pk,
            publisher_run_id=call.run_id,
        )
        stored.runs = started
        stored.save(update_fields=["runs"])
    else:
        refused = []
    out: dict[str, Any] = {
        "message_id": stored.pk,
        "broker": broker,
        "topic": topic,
        "runs": list(stored.runs),
        **extra,
    }
    if refused:
        out["refused"] = refused
    return out


def _split(call: ConnectorCall, component: Component | None) -> tuple[str, str]:
    if ":" in call.event:
        broker, topic = call.event.split(":", 1)
    else:
        broker, topic = (component.tag if component else call.app or ""), call.event
    if component is not None and broker != component.tag:
        raise StepError(
            f"event '{call.event}' names broker '{broker}' but the step uses '{component.tag}'",
            retryable=False,
        )
    if not broker or not topic:
        raise StepError(
            f"PUBLISH event must be 'broker:topic', got {call.event!r}", retryable=False
        )
    return broker, topic


def _store(
    call: ConnectorCall,
    product_id: int,
    environment_id: int,
    broker: str,
    topic: str,
    message: Any,
    key: str,
) -> tuple[Any, bool]:
    if key:
        found = Message.objects.filter(
            environment_id=environment_id, broker=broker, topic=topic, key=key
        ).first()
        if found is not None:
            return found, False
    try:
        with transaction.atomic():
            return (
                Message.objects.create(
                    product_id=product_id,
                    environment_id=environment_id,
                    broker=broker,
                    topic=topic,
                    payload=message,
                    key=key,
                    run_id=call.run_id,
                ),
                True,
            )
    except IntegrityError:
        # A concurrent retry with the same key stored it first.
        return (
            Message.objects.get(environment_id=environment_id, broker=broker, topic=topic, key=key),
            False,
        )


def topic_subscribers(*, environment_id: int, event: str) -> list[tuple[Any, dict[str, Any]]]:
    """``(workflow, trigger)`` for each workflow active in the environment whose live
    version has a topic trigger on ``event`` ('broker:topic')."""
    out: list[tuple[Any, dict[str, Any]]] = []
    activations = Activation.objects.filter(environment_id=environment_id, active=True)
    for activation in activations.select_related("workflow", "version"):
        version = activation.live_version()
        if version is None:
            continue
        for trigger in (version.spec or {}).get("triggers") or []:
            if (
                isinstance(trigger, dict)
                and trigger.get("type", "topic") == "topic"
                and trigger.get("event") == event
            ):
                out.append((activation.workflow, trigger))
                break
    return out


def message_generation(run: Any) -> int:
    """How many messages led to ``run``: 0 for a run not started by a message from another
    run, else one more than the run that published it."""
    generation = 0
    seen: set[int] = set()
    origin_id, kind = run.origin_id, run.origin_kind
    while kind == "message" and origin_id is not None and origin_id not in seen:
        seen.add(origin_id)
        generation += 1
        row = Run.objects.filter(pk=origin_id).values_list("origin_id", "origin_kind").first()
        origin_id, kind = row if row is not None else (None, "")
    return generation


def topic_trigger(
    *,
    product_id: int,
    environment_id: int,
    event: str,
    message: Any,
    message_id: int,
    publisher_run_id: int | None = None,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Start every workflow subscribed to ``event`` with the message as input.

    Returns the started run ids and, for each refused start (inactive, input not matching
    the schema…), ``{workflow, message}``; one refusal does not stop the others. Each
    start is keyed by the message, so triggering twice starts each workflow once.

    A started run records the run that published the message as its origin (kind
    "message"). A chain of runs starting runs through messages — a workflow publishing to
    a topic it subscribes to, or two workflows feeding each other — stops after
    ``TRELLIS_PUBLISH_CHAIN_MAX`` generations: the next starts are refused, named.
    """
    run_start = upcalls().run_start
    environment = Environment.objects.get(pk=environment_id, product_id=product_id)
    started: list[int] = []
    refused: list[dict[str, Any]] = []
    subscribers = topic_subscribers(environment_id=environment_id, event=event)
    publisher = Run.objects.filter(pk=publisher_run_id).first() if publisher_run_id else None
    if subscribers and publisher is not None:
        limit = int(getattr(settings, "TRELLIS_PUBLISH_CHAIN_MAX", 10))
        generation = message_generation(publisher) + 1
        if generation > limit:
            why = (
                f"not started: it would be generation {generation} of a chain of runs "
                f"started by messages from run {publisher.pk}'s ancestors (limit {limit}, "
                "TRELLIS_PUBLISH_CHAIN_MAX): a workflow publishing to a topic it subscribes "
                "to loops"
            )
            log.warning("topic %s: %s", event, why)
            return [], [{"workflow": workflow.tag, "message": why} for workflow, _ in subscribers]
    for workflow, trigger in subscribers:
        mapping = trigger.get("input")
        try:
            run_input = message if mapping is None else resolve(mapping, DictScope(input=message))
            if not isinstance(run_input, dict):
                run_input = {"message": run_input}
            run = run_start(
                workflow=workflow,
                environment=environment,
                input=run_input,
                idempotency_key=f"message:{message_id}",
                origin=publisher,
                origin_kind="message" if publisher is not None else "",
            )
        except TrellisError as exc:
            log.info("topic %s did not start %s: %s", event, workflow.tag, exc)
            refused.append({"workflow": workflow.tag, "message": str(exc)})
            continue
        started.append(run.pk)
    return started, refused


# --- Redis Streams ---------------------------------------------------------------------

_clients: dict[str, Any] = {}
_scripts: dict[int, Any] = {}  # id(client) -> registered script (clients live forever)
_clients_lock = threading.Lock()


def _redis(url: str, timeout: float) -> Any:
    import redis

    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            _clients[url] = client
        return client


# KEYS[1] the stream, KEYS[2] the entry id already appended for this message key.
_XADD_ONCE = """
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'PX', ARGV[2])
return id
"""
KEY_TTL_MS = 24 * 3600 * 1000  # how long a message key is remembered in Redis


def _xadd_once(client: Any) -> Any:
    """The registered ``_XADD_ONCE`` script of a client (sent once, then by its hash)."""
    with _clients_lock:
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_XADD_ONCE)
        return script


def stream_name(prefix: str, product: str, environment: str, broker: str, topic: str) -> str:
    return ":".join([prefix or "trellis", product, environment or "_", broker, topic])


def _redis_add(
    call: ConnectorCall, config: BrokerConfig, broker: str, topic: str, message: Any, key: str
) -> dict[str, Any]:
    import redis

    url = config.url
    if not url:
        raise StepError(f"broker '{broker}' has no redis url configured", retryable=False)
    # Admin-held config names the server; it is still held to the environment's rule
    # (empty list: public addresses only; production: nothing unless listed).
    host_check(url, call.policy, schemes=("redis", "rediss"))
    stream = stream_name(
        config.stream_prefix or "trellis",
        product_slug(call.product_id),
        call.environment,
        broker,
        topic,
    )
    fields = {
        "payload": json.dumps(message),
        "key": key,
        "run": str(call.run_id or ""),
        "step": call.step,
    }
    try:
        client = _redis(url, call.timeout_s or 10.0)
        if key:  # appended once per key: a retried or re-run step gets the same entry
            seen = f"{stream}:key:{key}"
            args: list[Any] = [int(config.maxlen), KEY_TTL_MS]
            for name, value in fields.items():
                args += [name, value]
            entry = _xadd_once(client)(keys=[stream, seen], args=args)
        else:
            entry = client.xadd(stream, fields, maxlen=int(config.maxlen), approximate=True)
    except redis.RedisError as exc:
        raise StepError(f"broker '{broker}': redis: {exc}", retryable=True) from exc
    entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
    return {"stream": stream, "stream_id": entry_id}
