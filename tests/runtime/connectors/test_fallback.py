"""FALLBACK: the first provider is down, the second serves."""

from __future__ import annotations

from typing import Any

import pytest

from designer.models import Component, ComponentConfig, Product
from runtime.connectors import execute
from runtime.connectors.loader import component_cache_clear, connector_call
from runtime.errors import StepError
from tests.runtime.connectors.peers import HttpPeer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear() -> None:
    component_cache_clear()


def app(product: Product, tag: str, base_url: str) -> None:
    comp = Component.objects.create(
        product=product,
        kind="app",
        tag=tag,
        events={"charge": {"method": "POST", "path": "/charges"}},
    )
    ComponentConfig.objects.create(
        component=comp,
        environment=product.environments.get(slug="dev"),
        config={"base_url": base_url},
    )


def fallback(product: Product, declared: list[dict[str, Any]], **config: Any) -> None:
    comp = Component.objects.create(
        product=product,
        kind="fallback",
        tag="payment-fallback",
        events={"pay": {"providers": declared}},
    )
    ComponentConfig.objects.create(
        component=comp, environment=product.environments.get(slug="dev"), config=config
    )


def run(product: Product, event: str, input: Any) -> Any:
    dev = product.environments.get(slug="dev")
    return execute(
        connector_call(
            type="FALLBACK",
            event=event,
            input=input,
            environment=dev,
            app="payment-fallback",
            idempotency_key="r:s:1",
        )
    )


PROVIDERS = [
    {
        "type": "ACTION",
        "app": "down-pay",
        "event": "charge",
        "input": {"body": {"amount": "$Input{amount}", "via": "down"}},
    },
    {
        "type": "ACTION",
        "app": "good-pay",
        "event": "charge",
        "input": {"body": {"amount": "$Input{amount}", "via": "good"}},
    },
]


def test_a_down_first_provider_falls_back_to_the_second(
    product: Product, http_peer: HttpPeer
) -> None:
    app(product, "down-pay", "http://127.0.0.1:1")
    app(product, "good-pay", http_peer.url)
    fallback(product, PROVIDERS)
    result = run(product, "pay", {"amount": 42})
    assert result["provider"] == 1 and result["app"] == "good-pay"
    assert result["result"]["body"] == {"amount": 42, "via": "good"}
    assert result["result"]["headers"]["idempotency-key"] == "r:s:1:p1"
    assert [e["name"] for e in result["errors"]] == ["down-pay:charge"]


def test_the_first_provider_serves_when_it_is_up(product: Product, http_peer: HttpPeer) -> None:
    app(product, "down-pay", http_peer.url)
    app(product, "good-pay", http_peer.url)
    fallback(product, PROVIDERS)
    assert run(product, "pay", {"amount": 1})["provider"] == 0
    assert len(http_peer.state.requests) == 1


def test_all_providers_failing_lists_every_failure(product: Product) -> None:
    app(product, "down-pay", "http://127.0.0.1:1")
    fallback(product, PROVIDERS)  # good-pay does not exist
    with pytest.raises(StepError, match="every provider failed") as err:
        run(product, "pay", {"amount": 1})
    assert err.value.retryable is True  # the network error may pass
    assert [e["provider"] for e in err.value.details["errors"]] == [0, 1]
    assert "no component 'good-pay'" in err.value.details["errors"][1]["error"]


def test_an_environment_can_replace_the_providers(product: Product, http_peer: HttpPeer) -> None:
    app(product, "good-pay", http_peer.url)
    fallback(product, PROVIDERS, providers={"pay": [PROVIDERS[1]]})
    assert run(product, "pay", {"amount": 5})["provider"] == 0


def test_a_fallback_cannot_nest_a_fallback(product: Product) -> None:
    fallback(product, [{"type": "FALLBACK", "app": "payment-fallback", "event": "pay"}])
    with pytest.raises(StepError, match="cannot be a fallback provider"):
        run(product, "pay", {})
