"""PUBLISH: the database broker triggering subscribed workflows, and Redis Streams."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.utils import timezone

from designer.models import Activation, Product, Workflow, WorkflowVersion
from runtime.compiler import compile_spec, spec_checksum
from runtime.connectors import Component, ConnectorCall, execute
from runtime.connectors.messaging import topic_subscribers
from runtime.errors import StepError
from runtime.models import Message, Run
from runtime.spec import EventType

REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.django_db


def publish_workflow(
    product: Product,
    tag: str,
    *,
    triggers: list[dict[str, Any]],
    envs: tuple[str, ...] = ("dev",),
    input_schema: dict[str, Any] | None = None,
) -> Workflow:
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {
                        "type": "CODE",
                        "event": "tests.runtime.steps:record",
                        "tag": "got",
                        "input": {"order": "$Input{orderId}"},
                    },
                ],
            }
        ],
        "triggers": triggers,
        **({"input": input_schema} if input_schema else {}),
    }
    workflow = Workflow.objects.create(product=product, tag=tag, name=tag)
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        state="published",
        number=1,
        spec=spec,
        plan=compile_spec(spec).model_dump(mode="json"),
        checksum=spec_checksum(spec),
        published_at=timezone.now(),
    )
    for slug in envs:
        Activation.objects.create(
            workflow=workflow,
            environment=product.environments.get(slug=slug),
            active=True,
            version=version,
        )
    return workflow


def broker(**config: Any) -> Component:
    return Component(kind="broker", tag="order-events", config=config)


def publish(
    product: Product,
    env: str,
    event: str,
    input: Any,
    component: Component | None = None,
    **kw: Any,
) -> Any:
    environment = product.environments.get(slug=env)
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.PUBLISH,
            event=event,
            input=input,
            app="order-events",
            component=component or broker(),
            environment=env,
            product_id=product.pk,
            environment_id=environment.pk,
            **kw,
        )
    )


def test_the_database_broker_stores_the_message_and_starts_subscribers(product: Product) -> None:
    subscribed = publish_workflow(
        product, "on-order", triggers=[{"type": "topic", "event": "order-events:order-created"}]
    )
    other_topic = publish_workflow(
        product, "on-refund", triggers=[{"type": "topic", "event": "order-events:refunded"}]
    )
    only_prd = publish_workflow(
        product,
        "prd-only",
        envs=("prd",),
        triggers=[{"type": "topic", "event": "order-events:order-created"}],
    )
    result = publish(
        product,
        "dev",
        "order-events:order-created",
        {"message": {"orderId": "A-1", "items": [1, 2]}},
        idempotency_key="r:pub:1",
    )
    message = Message.objects.get()
    assert (message.broker, message.topic, message.payload) == (
        "order-events",
        "order-created",
        {"orderId": "A-1", "items": [1, 2]},
    )
    run = Run.objects.get()
    assert run.workflow == subscribed
    assert run.input == {"orderId": "A-1", "items": [1, 2]}
    assert run.environment.slug == "dev"
    assert result == {
        "message_id": message.pk,
        "broker": "order-events",
        "topic": "order-created",
        "runs": [run.pk],
    }
    assert not Run.objects.filter(workflow__in=[other_topic, only_prd]).exists()


def test_a_retried_publish_stores_and_triggers_once(product: Product) -> None:
    publish_workflow(
        product, "on-order", triggers=[{"type": "topic", "event": "order-events:order-created"}]
    )
    first = publish(
        product,
        "dev",
        "order-events:order-created",
        {"message": {"orderId": "1"}},
        idempotency_key="r:pub:1",
    )
    again = publish(
        product,
        "dev",
        "order-events:order-created",
        {"message": {"orderId": "1"}},
        idempotency_key="r:pub:1",
    )
    assert first == again
    assert Message.objects.count() == 1 and Run.objects.count() == 1


def test_a_trigger_input_mapping_and_a_refused_start(product: Product) -> None:
    publish_workflow(
        product,
        "mapped",
        triggers=[
            {
                "type": "topic",
                "event": "order-events:order-created",
                "input": {"orderId": "$Input{order.id}"},
            }
        ],
    )
    publish_workflow(
        product,
        "strict",
        input_schema={"mustHave": "string"},
        triggers=[{"type": "topic", "event": "order-events:order-created"}],
    )
    result = publish(
        product, "dev", "order-events:order-created", {"message": {"order": {"id": 9}}}
    )
    (run,) = Run.objects.all()
    assert run.workflow.tag == "mapped" and run.input == {"orderId": 9}
    assert [r["workflow"] for r in result["refused"]] == ["strict"]


def test_subscribers_follow_activation(product: Product) -> None:
    wf = publish_workflow(
        product, "on-order", triggers=[{"type": "topic", "event": "order-events:order-created"}]
    )
    dev = product.environments.get(slug="dev")
    assert [
        w for w, _ in topic_subscribers(environment_id=dev.pk, event="order-events:order-created")
    ] == [wf]
    Activation.objects.filter(workflow=wf).update(active=False)
    assert topic_subscribers(environment_id=dev.pk, event="order-events:order-created") == []


def test_a_topic_must_be_declared_when_the_broker_lists_topics(product: Product) -> None:
    component = Component(kind="broker", tag="order-events", events={"order-created": {}})
    with pytest.raises(StepError, match="has no topic 'nope'") as err:
        publish(product, "dev", "order-events:nope", {"message": {}}, component)
    assert err.value.retryable is False


# --- Redis Streams -----------------------------------------------------------------------


@pytest.fixture
def stream_prefix() -> Iterator[str]:
    prefix = f"trellis-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_the_redis_broker_appends_to_a_stream(product: Product, stream_prefix: str) -> None:
    publish_workflow(
        product, "on-order", triggers=[{"type": "topic", "event": "order-events:order-created"}]
    )
    component = broker(backend="redis", url=REDIS_URL, stream_prefix=stream_prefix)
    result = publish(
        product,
        "dev",
        "order-events:order-created",
        {"message": {"orderId": "R"}},
        component,
        run_id=77,
        idempotency_key="r:p:1",
    )
    assert result["stream"] == f"{stream_prefix}:acme:dev:order-events:order-created"
    entries = redis.Redis.from_url(REDIS_URL).xrange(result["stream"])
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert entry_id.decode() == result["stream_id"]
    assert json.loads(fields[b"payload"]) == {"orderId": "R"}
    assert fields[b"key"] == b"r:p:1" and fields[b"run"] == b"77"
    # Subscribed workflows start in this mode too.
    assert len(result["runs"]) == 1


def test_a_retried_redis_publish_appends_once(product: Product, stream_prefix: str) -> None:
    component = broker(backend="redis", url=REDIS_URL, stream_prefix=stream_prefix)
    first = publish(
        product, "dev", "order-events:paid", {"message": {"orderId": "P"}}, component,
        run_id=78, step="announce", idempotency_key="78:announce:1",
    )  # fmt: skip
    # The Redis append happened, then the attempt failed: the retry must not append again.
    Message.objects.all().delete()
    retry = publish(
        product, "dev", "order-events:paid", {"message": {"orderId": "P"}}, component,
        run_id=78, step="announce", idempotency_key="78:announce:2",
    )  # fmt: skip
    assert retry["stream_id"] == first["stream_id"]
    assert len(redis.Redis.from_url(REDIS_URL).xrange(first["stream"])) == 1
    assert Message.objects.get().key == "78:announce"
    other = publish(
        product, "dev", "order-events:paid", {"message": {"orderId": "Q"}}, component,
        run_id=79, step="announce", idempotency_key="79:announce:1",
    )  # fmt: skip
    assert other["stream_id"] != first["stream_id"]
    assert len(redis.Redis.from_url(REDIS_URL).xrange(first["stream"])) == 2


def test_an_unreachable_redis_is_retryable(product: Product) -> None:
    component = broker(backend="redis", url="redis://127.0.0.1:1/0")
    with pytest.raises(StepError, match="redis") as err:
        publish(product, "dev", "order-events:x", {"message": {}}, component, timeout_s=1)
    assert err.value.retryable is True
    assert Message.objects.count() == 0


def test_a_redis_host_off_the_allow_list_is_refused(product: Product) -> None:
    component = broker(backend="redis", url=REDIS_URL)
    with pytest.raises(StepError, match="loopback address: refused unless an admin lists"):
        publish(
            product,
            "prd",
            "order-events:x",
            {"message": {}},
            component,
            allowed_hosts=("redis.internal",),
        )


def test_a_workflow_publishing_to_its_own_topic_stops_after_the_chain_limit(
    product: Product, settings: Any
) -> None:
    settings.TRELLIS_PUBLISH_CHAIN_MAX = 2
    looping = publish_workflow(
        product, "loop", triggers=[{"type": "topic", "event": "order-events:order-created"}]
    )
    event = "order-events:order-created"
    publish(product, "dev", event, {"message": {"orderId": "A"}}, idempotency_key="k0")
    first = Run.objects.get()  # started from outside: generation 0
    assert (first.origin_id, first.origin_kind) == (None, "")
    publisher = first
    for n in (1, 2):  # each run publishes the message that starts the next
        out = publish(
            product, "dev", event, {"message": {"orderId": "A"}}, idempotency_key=f"k{n}",
            run_id=publisher.pk,
        )  # fmt: skip
        run = Run.objects.get(pk=out["runs"][0])
        assert (run.workflow, run.origin_id, run.origin_kind) == (looping, publisher.pk, "message")
        publisher = run
    out = publish(
        product, "dev", event, {"message": {"orderId": "A"}}, idempotency_key="k3",
        run_id=publisher.pk,
    )  # fmt: skip
    assert out["runs"] == []
    assert out["refused"][0]["workflow"] == "loop"
    assert "generation 3" in out["refused"][0]["message"]
    assert "limit 2" in out["refused"][0]["message"]
    assert Run.objects.count() == 3
