"""QUOTA: N per window per key, in the database and in the machine's Redis."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.db import connection

from designer.models import Product
from runtime.connectors import Component, ConnectorCall, execute
from runtime.errors import StepError
from runtime.models import QuotaCounter
from runtime.spec import EventType

REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"trellis-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture(params=["database", "redis"])
def backend(request: pytest.FixtureRequest, redis_prefix: str) -> dict[str, Any]:
    if request.param == "redis":
        return {"backend": "redis", "url": REDIS_URL, "key_prefix": redis_prefix}
    return {"backend": "database"}


def limiter(config: dict[str, Any], **rule: Any) -> Component:
    return Component(
        kind="quota",
        tag="api-rate-limit",
        events={
            "per-user": {"limit": 3, "window": "1h", **rule},
            "strict": {"limit": 1, "window": "1h", "on_exceeded": "fail"},
        },
        config=config,
    )


def take(
    product: Product, component: Component, event: str, input: Any, env: str = "dev", **kw: Any
) -> Any:
    environment = product.environments.get(slug=env)
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.QUOTA,
            event=event,
            input=input,
            app=component.tag,
            component=component,
            environment=env,
            product_id=product.pk,
            environment_id=environment.pk,
            **kw,
        )
    )


@pytest.mark.django_db
def test_the_n_plus_first_call_is_refused(product: Product, backend: dict[str, Any]) -> None:
    component = limiter(backend)
    results = [take(product, component, "per-user", {"key": "u1"}) for _ in range(4)]
    assert [r["allowed"] for r in results] == [True, True, True, False]
    assert [r["remaining"] for r in results] == [2, 1, 0, 0]
    assert results[0]["reset"].endswith(":00:00Z") and results[0]["limit"] == 3
    # Other keys and other environments have their own counters.
    assert take(product, component, "per-user", {"key": "u2"})["allowed"] is True
    assert take(product, component, "per-user", {"key": "u1"}, env="prd")["allowed"] is True


@pytest.mark.django_db
def test_a_new_window_starts_afresh(product: Product, backend: dict[str, Any]) -> None:
    component = Component(
        kind="quota", tag="q", events={"fast": {"limit": 1, "window": "1s"}}, config=backend
    )
    assert take(product, component, "fast", {"key": "k"})["allowed"] is True
    refused = take(product, component, "fast", {"key": "k"})
    assert refused["allowed"] is False
    time.sleep(max(0.0, (int(time.time()) + 1) - time.time()) + 0.05)
    assert take(product, component, "fast", {"key": "k"})["allowed"] is True


@pytest.mark.django_db
def test_on_exceeded_fail_fails_the_step(product: Product, backend: dict[str, Any]) -> None:
    component = limiter(backend)
    take(product, component, "strict", {"key": "k"})
    with pytest.raises(StepError, match="quota 'strict' exceeded") as err:
        take(product, component, "strict", {"key": "k"})
    assert err.value.retryable is False
    assert err.value.details["allowed"] is False


@pytest.mark.django_db
def test_the_seed_form_names_only_the_component(product: Product) -> None:
    component = Component(kind="quota", tag="api-rate-limit", config={"limit": 1, "window": "1m"})
    assert take(product, component, "api-rate-limit", {"key": "u"})["allowed"] is True
    assert take(product, component, "api-rate-limit", {"key": "u"})["allowed"] is False


@pytest.mark.django_db
def test_environment_config_overrides_the_declared_limit(product: Product) -> None:
    component = limiter({"limits": {"per-user": {"limit": 1}}})
    assert take(product, component, "per-user", {"key": "u"})["allowed"] is True
    assert take(product, component, "per-user", {"key": "u"})["allowed"] is False


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_never_exceed_the_limit(
    product: Product, backend: dict[str, Any]
) -> None:
    component = Component(
        kind="quota", tag="q", events={"burst": {"limit": 5, "window": "1h"}}, config=backend
    )

    def one(_: int) -> bool:
        try:
            return bool(take(product, component, "burst", {"key": "shared"})["allowed"])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(one, range(20)))
    assert allowed.count(True) == 5
    if backend["backend"] == "database":
        assert QuotaCounter.objects.get(name="burst").count == 5


@pytest.mark.django_db
def test_a_step_re_run_or_retried_is_counted_once(
    product: Product, backend: dict[str, Any]
) -> None:
    component = limiter(backend, limit=2, window="1h")
    step = {"run_id": 41, "step": "charge"}
    first = take(
        product, component, "per-user", {"key": "k"}, idempotency_key="41:charge:1", **step
    )
    # The same step again: re-run after a crash (same attempt) or retried (next attempt).
    again = take(
        product, component, "per-user", {"key": "k"}, idempotency_key="41:charge:1", **step
    )
    retry = take(
        product, component, "per-user", {"key": "k"}, idempotency_key="41:charge:2", **step
    )
    assert first["allowed"] and first["used"] == 1
    assert again == first and retry == first
    other = take(product, component, "per-user", {"key": "k"}, run_id=42, step="charge")
    assert other["used"] == 2  # another run's step counts
    refused = take(product, component, "per-user", {"key": "k"}, run_id=43, step="charge")
    assert not refused["allowed"]
    assert take(product, component, "per-user", {"key": "k"}, run_id=43, step="charge") == refused
