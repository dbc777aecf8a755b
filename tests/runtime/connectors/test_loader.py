"""component_for: a component with its environment config, secrets decrypted, cached."""

from __future__ import annotations

import pytest

from designer.models import Component, ComponentConfig, Environment, Product
from designer.secrets import secrets_encrypt
from runtime.connectors import Component as Loaded
from runtime.connectors import ConnectorCall, execute
from runtime.connectors.loader import component_cache_clear, component_for, connector_call
from runtime.errors import StepError
from runtime.spec import EventType
from tests.runtime.connectors.peers import HttpPeer


@pytest.fixture(autouse=True)
def _clear() -> None:
    component_cache_clear()


def _app(product: Product) -> Component:
    comp = Component.objects.create(
        product=product, kind="app", tag="stripe", events={"get": {"method": "GET", "path": "/"}}
    )
    for env in product.environments.all():
        ComponentConfig.objects.create(
            component=comp,
            environment=env,
            config={"base_url": f"https://{env.slug}.example.com"},
            variables={"v": env.slug},
            secrets_encrypted=secrets_encrypt({"key": f"secret-{env.slug}"}),
        )
    return comp


def test_it_loads_the_environments_config_with_secrets_decrypted(product: Product) -> None:
    _app(product)
    prd = product.environments.get(slug="prd")
    loaded = component_for(product_id=product.pk, environment_id=prd.pk, tag="stripe")
    assert loaded == Loaded(
        kind="app",
        tag="stripe",
        events={"get": {"method": "GET", "path": "/"}},
        config={"base_url": "https://prd.example.com"},
        variables={"v": "prd"},
        constants={},
        secrets={"key": "secret-prd"},
    )


def test_a_config_change_is_seen_at_once(product: Product, django_assert_num_queries) -> None:
    comp = _app(product)
    dev = product.environments.get(slug="dev")
    component_for(product_id=product.pk, environment_id=dev.pk, tag="stripe")
    with django_assert_num_queries(2):  # cache hit: only the freshness check
        component_for(product_id=product.pk, environment_id=dev.pk, tag="stripe")
    cfg = ComponentConfig.objects.get(component=comp, environment=dev)
    cfg.secrets_encrypted = secrets_encrypt({"key": "rotated"})
    cfg.save()
    again = component_for(product_id=product.pk, environment_id=dev.pk, tag="stripe")
    assert again.secrets == {"key": "rotated"}


def test_an_unknown_component_is_a_clear_step_error(product: Product) -> None:
    dev = product.environments.get(slug="dev")
    with pytest.raises(StepError, match="no component 'nope'") as err:
        component_for(product_id=product.pk, environment_id=dev.pk, tag="nope")
    assert err.value.retryable is False


def test_connector_call_carries_the_environments_allow_list(product: Product) -> None:
    _app(product)
    prd: Environment = product.environments.get(slug="prd")
    prd.allowed_hosts = ["api.stripe.com"]
    prd.save()
    call = connector_call(type="ACTION", event="get", input={}, environment=prd, app="stripe")
    assert call.allowed_hosts == ("api.stripe.com",)
    assert call.environment == "prd"
    with pytest.raises(StepError, match=r"host 'prd\.example\.com' is not on the allow-list"):
        execute(call)


def test_secret_values_never_leave_a_connector(http_peer: HttpPeer) -> None:
    component = Loaded(
        kind="app",
        tag="echo",
        events={"echo": {"method": "POST", "path": "/echo"}, "no": {"path": "/missing"}},
        config={"base_url": http_peer.url, "auth": {"type": "bearer", "token_secret": "t"}},
        secrets={"t": "sk-very-secret"},
    )
    out = execute(
        ConnectorCall(
            type=EventType.ACTION,
            event="echo",
            input={},
            component=component,
            allowed_hosts=("127.0.0.1",),
        )
    )
    assert out["headers"]["authorization"] == "Bearer •••"
    assert "sk-very-secret" not in str(out)
