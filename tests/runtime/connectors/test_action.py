"""ACTION against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.connectors import Component, ConnectorCall, execute
from runtime.connectors.action import oauth2_cache_clear
from runtime.errors import StepError, StepTimeout
from runtime.spec import EventType
from tests.runtime.connectors.peers import HttpPeer

ACTIONS: dict[str, Any] = {
    "echo": {
        "method": "POST",
        "path": "/charges/{id}",
        "headers": {"X-Declared": "1"},
        "query": {"v": "2"},
        "body": {"currency": "usd"},
    },
    "get-echo": {"method": "GET", "path": "/things"},
    "bearer": {"method": "GET", "path": "/bearer"},
    "basic": {"method": "GET", "path": "/basic"},
    "apikey": {"method": "GET", "path": "/apikey"},
    "oauth": {"method": "GET", "path": "/oauth/resource"},
    "flaky": {"method": "GET", "path": "/flaky"},
    "conflict": {"method": "POST", "path": "/conflict"},
    "conflict-retry": {"method": "POST", "path": "/conflict", "retry_on": [409]},
    "missing": {"method": "GET", "path": "/missing"},
    "boom": {"method": "GET", "path": "/boom"},
    "slow": {"method": "GET", "path": "/slow"},
    "big": {"method": "GET", "path": "/big"},
    "big-chunked": {"method": "GET", "path": "/big-chunked"},
    "text": {"method": "GET", "path": "/text"},
    "empty": {"method": "DELETE", "path": "/empty"},
    "list": {"method": "GET", "path": "/list"},
}


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    oauth2_cache_clear()
    yield
    oauth2_cache_clear()


def app(base_url: str, auth: dict[str, Any] | None = None, **config: Any) -> Component:
    return Component(
        kind="app",
        tag="stripe",
        events=ACTIONS,
        config={"base_url": base_url, **({"auth": auth} if auth else {}), **config},
        secrets={"stripe_key": "sk-test-123", "pw": "pa55", "api": "k-42", "cs": "client-pw"},
    )


def call(component: Component, event: str, input: Any = None, **kw: Any) -> Any:
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.ACTION,
            event=event,
            input=input or {},
            app=component.tag,
            component=component,
            **kw,
        )
    )


def test_it_builds_the_request_from_the_action_and_the_input(http_peer: HttpPeer) -> None:
    result = call(
        app(http_peer.url + "/v1"),
        "echo",
        {
            "params": {"id": "ch 1/x"},
            "query": {"expand": "all"},
            "body": {"amount": 500},
            "headers": {"X-Request-ID": "r-1"},
        },
        idempotency_key="run1:pay:1",
    )
    assert result["method"] == "POST"
    assert result["path"] == "/v1/charges/ch%201%2Fx"
    assert result["query"] == {"v": "2", "expand": "all"}
    assert result["body"] == {"currency": "usd", "amount": 500}
    # Headers as the peer got them: the echoed copy masks fragments of the component's
    # secrets ("est-" of "sk-test-123" in "x-request-id").
    headers = http_peer.state.requests[-1]["headers"]
    assert headers["x-declared"] == "1"
    assert headers["x-request-id"] == "r-1"
    assert headers["idempotency-key"] == "run1:pay:1"


def test_a_json_body_is_the_step_result_as_is(http_peer: HttpPeer) -> None:
    assert call(app(http_peer.url), "list") == [1, 2, 3]
    assert call(app(http_peer.url), "get-echo")["server"] == "one"


def test_non_json_and_empty_responses_say_their_status(http_peer: HttpPeer) -> None:
    assert call(app(http_peer.url), "text") == {
        "status": 200,
        "content_type": "text/plain",
        "text": "hello, world",
    }
    assert call(app(http_peer.url), "empty") == {"status": 204}


def test_a_missing_path_parameter_is_a_clear_error(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="path parameter 'id'") as err:
        call(app(http_peer.url), "echo", {})
    assert err.value.retryable is False


def test_bearer_auth_uses_the_secret(http_peer: HttpPeer) -> None:
    ok = call(app(http_peer.url, {"type": "bearer", "token_secret": "stripe_key"}), "bearer")
    assert ok == {"ok": True}
    with pytest.raises(StepError) as err:
        call(app(http_peer.url), "bearer")
    assert err.value.retryable is False
    assert err.value.details["status"] == 401


def test_basic_and_api_key_auth(http_peer: HttpPeer) -> None:
    basic = {"type": "basic", "username": "joe", "password_secret": "pw"}
    assert call(app(http_peer.url, basic), "basic") == {"ok": True}
    header = {"type": "api_key", "key_secret": "api"}
    assert call(app(http_peer.url, header), "apikey") == {"ok": True}
    query = {"type": "api_key", "key_secret": "api", "in": "query", "name": "key"}
    assert call(app(http_peer.url, query), "apikey") == {"ok": True}


def test_a_missing_secret_is_named_and_not_retried(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="secret 'nope' of app 'stripe' is not set") as err:
        call(
            app(http_peer.url, {"type": "bearer", "token_secret": "nope"}),
            "bearer",
            environment="prd",
        )
    assert err.value.retryable is False


def test_oauth2_client_credentials_token_is_cached(http_peer: HttpPeer) -> None:
    auth = {
        "type": "oauth2",
        "token_url": http_peer.url + "/oauth/token",
        "client_id": "client-1",
        "client_secret_secret": "cs",
    }
    component = app(http_peer.url, auth)
    first = call(component, "oauth", product_id=1, environment="dev")
    second = call(component, "oauth", product_id=1, environment="dev")
    assert first == second == {"ok": True, "token": "tok-1"}
    assert http_peer.state.token_requests == 1
    # Another environment has its own token.
    assert call(component, "oauth", product_id=1, environment="prd")["token"] == "tok-2"


def test_oauth2_refreshes_a_revoked_token_once(http_peer: HttpPeer) -> None:
    auth = {
        "type": "oauth2",
        "token_url": http_peer.url + "/oauth/token",
        "client_id": "client-1",
        "client_secret_secret": "cs",
    }
    component = app(http_peer.url, auth)
    assert call(component, "oauth")["token"] == "tok-1"
    http_peer.state.revoked.add("tok-1")
    assert call(component, "oauth")["token"] == "tok-2"


def test_oauth2_bad_client_secret_fails_without_retry(http_peer: HttpPeer) -> None:
    auth = {
        "type": "oauth2",
        "token_url": http_peer.url + "/oauth/token",
        "client_id": "client-1",
        "client_secret_secret": "stripe_key",
    }
    with pytest.raises(StepError, match="oauth2 token request") as err:
        call(app(http_peer.url, auth), "oauth")
    assert err.value.retryable is False


def test_503_is_retryable_and_a_later_attempt_succeeds(http_peer: HttpPeer) -> None:
    component = app(http_peer.url)
    for _ in range(2):
        with pytest.raises(StepError) as err:
            call(component, "flaky")
        assert err.value.retryable is True
        assert err.value.details["status"] == 503
    assert call(component, "flaky") == {"ok": True, "attempt": 3}


def test_4xx_is_not_retried_unless_declared(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="answered 404") as err:
        call(app(http_peer.url), "missing")
    assert err.value.retryable is False
    assert err.value.details["body"] == {"error": "not found"}
    with pytest.raises(StepError) as err:
        call(app(http_peer.url), "conflict")
    assert err.value.retryable is False
    with pytest.raises(StepError) as err:
        call(app(http_peer.url), "conflict-retry")
    assert err.value.retryable is True
    with pytest.raises(StepError) as err:
        call(app(http_peer.url), "boom")
    assert err.value.retryable is True


def test_a_slow_endpoint_times_out_retryably(http_peer: HttpPeer) -> None:
    started = time.monotonic()
    with pytest.raises(StepTimeout) as err:
        call(app(http_peer.url), "slow", timeout_s=0.5)
    assert time.monotonic() - started < 2
    assert err.value.retryable is True
    assert "timed out after 0.5s" in str(err.value)


def test_the_configured_timeout_applies_when_the_step_has_none(http_peer: HttpPeer) -> None:
    with pytest.raises(StepTimeout):
        call(app(http_peer.url, timeout="300ms"), "slow")


def test_a_network_error_is_retryable() -> None:
    with pytest.raises(StepError) as err:
        call(app("http://127.0.0.1:1"), "get-echo")
    assert err.value.retryable is True


def test_a_50mb_response_is_refused_cleanly(http_peer: HttpPeer) -> None:
    started = time.monotonic()
    for event in ("big", "big-chunked"):
        with pytest.raises(StepError, match="larger than the 10485760-byte limit") as err:
            call(app(http_peer.url), event)
        assert err.value.retryable is False
    assert time.monotonic() - started < 10


def test_the_size_cap_is_configurable(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="larger than the 100-byte limit"):
        call(app(http_peer.url, max_response_bytes=100), "get-echo")


def test_a_host_not_on_the_allow_list_is_refused(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError) as err:
        call(
            app(http_peer.url),
            "get-echo",
            environment="prd",
            allowed_hosts=("api.stripe.com", "*.example.com"),
        )
    assert err.value.retryable is False
    assert (
        "host '127.0.0.1' is a loopback address: refused unless an admin lists '127.0.0.1'"
        in str(err.value)
    )
    assert http_peer.state.hits["/things"] == 0
    # Listed: allowed.
    assert call(app(http_peer.url), "get-echo", allowed_hosts=("127.0.0.1",))["server"] == "one"


def test_the_oauth2_token_url_is_also_held_to_the_allow_list(http_peer: HttpPeer) -> None:
    auth = {
        "type": "oauth2",
        "token_url": "http://auth.evil.example/token",  # ".test" holds "test" of a secret
        "client_id": "client-1",
        "client_secret_secret": "cs",
    }
    with pytest.raises(StepError, match=r"host 'auth\.evil\.example' is not on the allow-list"):
        call(app(http_peer.url, auth), "oauth", allowed_hosts=("127.0.0.1",))


def test_the_same_action_reaches_each_environments_base_url(
    http_peer: HttpPeer, http_peer2: HttpPeer
) -> None:
    dev = call(app(http_peer.url), "get-echo", environment="dev")
    prd = call(app(http_peer2.url), "get-echo", environment="prd")
    assert (dev["server"], prd["server"]) == ("one", "two")


def test_an_unknown_action_is_a_clear_error(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="app 'stripe' has no action 'nope'"):
        call(app(http_peer.url), "nope")


def test_the_seeds_shorthand_input_is_the_body_or_the_query(http_peer: HttpPeer) -> None:
    posted = call(app(http_peer.url), "echo", {"id": "u1", "userId": 7})
    assert posted["path"] == "/charges/u1"
    assert posted["body"] == {"currency": "usd", "id": "u1", "userId": 7}
    got = call(app(http_peer.url), "get-echo", {"userId": 7})
    assert got["query"] == {"userId": "7"} and got["body"] is None
