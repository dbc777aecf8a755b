"""ACTION: call an HTTP API declared on an app component.

The app declares its actions (``Component.events``)::

    {"create-charge": {"method": "POST", "path": "/charges/{id}",
                       "headers": {...}, "query": {...}, "body": {...},
                       "retry_on": [409], "timeout": 10000}}

and each environment configures where and how (``Component.config``)::

    {"base_url": "https://api.stripe.com/v1",
     "auth": {"type": "bearer", "token_secret": "stripe_key"},
     "headers": {...}, "timeout": 30000, "max_response_bytes": 10485760,
     "retry_on": [409], "idempotency_header": "Idempotency-Key"}

Auth shapes (values named ``*_secret`` are names of the component's secrets):
``{"type": "bearer", "token_secret"}``, ``{"type": "basic", "username" | "username_secret",
"password_secret"}``, ``{"type": "api_key", "key_secret", "header": "X-API-Key"}`` or
``{"type": "api_key", "key_secret", "in": "query", "name": "api_key"}``,
``{"type": "oauth2", "token_url", "client_id" | "client_id_secret", "client_secret_secret",
"scope"?, "audience"?}`` (client credentials; the token is cached until it expires).

The step input is ``{params, query, body, headers}``; an input with none of these keys (the
seed's ``{userId: ...}``) is the body (the query string for GET/HEAD/DELETE) and also fills
path parameters. The result is the parsed JSON body
as is (so ``$Step{pay}{id}`` reads the API's own field); an empty body gives
``{"status": 204}``, a non-JSON body ``{"status", "content_type", "text"}`` (or
``content_base64`` for binary content).

4xx responses fail without retry (except 408, 429 and the declared ``retry_on``), 5xx,
timeouts and network errors fail with retry.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from runtime.component_configs import AppConfig, AuthConfig, config_of
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError
from runtime.http import HttpResponse, http_request, where
from runtime.spec import duration_ms

RETRYABLE_4XX = frozenset({408, 429})
_INPUT_KEYS = frozenset({"params", "query", "body", "headers"})
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "application/x-www-form")
_ERROR_BODY_CHARS = 2000


def action_run(call: ConnectorCall) -> Any:
    """Run one declared action of an app in the call's environment."""
    component = _component(call)
    action = _action(component, call.event)
    config = config_of(AppConfig, component.config)
    data = call.input if isinstance(call.input, dict) else {}
    method = str(action.get("method", "GET")).upper()
    if data and not set(data) & _INPUT_KEYS:
        # The seed's shorthand ``input: {userId: ...}``: the fields are the body (the query
        # for methods without one) and fill path parameters.
        where_to = "query" if method in {"GET", "HEAD", "DELETE", "OPTIONS"} else "body"
        data = {"params": data, where_to: data}

    url = _url(component, config.base_url, action, data.get("params"), call.event)
    headers = _headers(config.headers, action.get("headers"), data.get("headers"))
    query = {**config.query, **_dict(action.get("query")), **_dict(data.get("query"))}
    body = _body(action.get("body"), data.get("body"))

    idem_header = config.idempotency_header
    if call.idempotency_key and idem_header and not _has(headers, idem_header):
        headers[idem_header] = call.idempotency_key

    timeout_s = _timeout_s(call, action, config)
    max_bytes = config.max_response_bytes
    auth = config.auth

    def send(fresh_token: bool = False) -> HttpResponse:
        h, q = dict(headers), dict(query)
        apply_auth(call, component, auth, h, q, timeout_s, fresh=fresh_token)
        return http_request(
            method,
            url,
            headers=h,
            params=q,
            json=body if body is not None and method not in {"GET", "HEAD"} else None,
            timeout_s=timeout_s,
            max_bytes=int(max_bytes) if max_bytes else None,
            policy=call.policy,
        )

    response = send()
    if response.status == 401 and auth.type == "oauth2":
        # A cached token may have been revoked early: fetch a new one once.
        response = send(fresh_token=True)

    if response.status >= 400:
        retry_on = {int(s) for s in [*config.retry_on, *action.get("retry_on", [])]}
        status = response.status
        retryable = status >= 500 or status in RETRYABLE_4XX or status in retry_on
        raise StepError(
            f"{method} {where(url)} answered {response.status}",
            retryable=retryable,
            details={"status": response.status, "body": _error_body(response)},
        )
    return _result(response)


def _component(call: ConnectorCall) -> Component:
    if call.component is None:
        raise StepError(f"ACTION '{call.event}' needs an app component", retryable=False)
    return call.component


def _action(component: Component, event: str) -> dict[str, Any]:
    action = component.events.get(event)
    if action is None and event.startswith(f"{component.tag}:"):
        action = component.events.get(event.split(":", 1)[1])
    if not isinstance(action, dict):
        raise StepError(f"app '{component.tag}' has no action '{event}'", retryable=False)
    return action


def _url(component: Component, base: str, action: dict[str, Any], params: Any, event: str) -> str:
    # Only the admin-held per-environment config (``base``) says where an app lives: a
    # ``base_url`` in the (designer-editable) action definition is ignored, old data included.
    if not base:
        raise StepError(
            f"app '{component.tag}' has no base_url configured for this environment",
            retryable=False,
        )
    path = str(action.get("path", ""))
    values = _dict(params)
    out = []
    i = 0
    # Substitute {name} segments by hand: str.format would allow attribute lookups.
    while i < len(path):
        ch = path[i]
        if ch == "{":
            end = path.find("}", i)
            if end == -1:
                raise StepError(f"action '{event}' has a bad path {path!r}", retryable=False)
            name = path[i + 1 : end]
            if values.get(name) is None:
                raise StepError(
                    f"action '{event}' needs path parameter '{name}' (input.params.{name})",
                    retryable=False,
                )
            out.append(quote(_str(values[name]), safe=""))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    rendered = "".join(out)
    url = base.rstrip("/") + "/" + rendered.lstrip("/") if rendered else base
    if _origin(url) != _origin(base):
        # The path is the designer's: it may add to the admin's URL, never move its host.
        raise StepError(
            f"action '{event}': its path {path!r} leads off the app's base_url", retryable=False
        )
    return url


def _origin(url: str) -> tuple[str, str | None, str]:
    parts = urlsplit(url)
    try:
        port = str(parts.port)
    except ValueError:
        port = "bad"
    return parts.scheme, parts.hostname, port


def _headers(*layers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for layer in layers:
        for key, value in _dict(layer).items():
            # Later layers replace earlier ones case-insensitively.
            for existing in [k for k in out if k.lower() == str(key).lower()]:
                del out[existing]
            if value is not None:
                out[str(key)] = _str(value)
    return out


def _has(headers: dict[str, str], name: str) -> bool:
    return any(k.lower() == name.lower() for k in headers)


def _body(declared: Any, given: Any) -> Any:
    if isinstance(declared, dict) and isinstance(given, dict):
        return {**declared, **given}
    return given if given is not None else declared


def _timeout_s(call: ConnectorCall, action: dict[str, Any], config: AppConfig) -> float | None:
    if call.timeout_s:
        return call.timeout_s
    for raw in (action.get("timeout"), config.timeout):
        if raw is not None:
            try:
                ms = duration_ms(raw)
            except ValueError as exc:
                raise StepError(f"bad timeout {raw!r}: {exc}", retryable=False) from exc
            if ms:
                return ms / 1000
    return None


def _secret(call: ConnectorCall, component: Component, name: Any) -> str:
    value = component.secrets.get(str(name)) if name else None
    if not value:
        env = f" in environment '{call.environment}'" if call.environment else ""
        raise StepError(
            f"secret '{name}' of app '{component.tag}' is not set{env}", retryable=False
        )
    return value


def apply_auth(
    call: ConnectorCall,
    component: Component,
    auth: AuthConfig,
    headers: dict[str, str],
    query: dict[str, Any],
    timeout_s: float | None,
    *,
    fresh: bool = False,
) -> None:
    """Add the credentials ``auth`` describes to ``headers``/``query`` (in place); shared
    by every connector that calls a provider's HTTP API."""
    kind = auth.type
    if not kind or kind == "none":
        return
    if kind == "bearer":
        headers["Authorization"] = "Bearer " + _secret(call, component, auth.token_secret)
    elif kind == "basic":
        user = (
            _secret(call, component, auth.username_secret)
            if auth.username_secret
            else str(auth.username)
        )
        password = _secret(call, component, auth.password_secret)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = "Basic " + token
    elif kind == "api_key":
        key = _secret(call, component, auth.key_secret)
        if auth.in_ == "query":
            query[str(auth.name or "api_key")] = key
        else:
            headers[str(auth.header or "X-API-Key")] = str(auth.prefix) + key
    elif kind == "oauth2":
        headers["Authorization"] = "Bearer " + _oauth2_token(
            call, component, auth, timeout_s, fresh=fresh
        )
    else:
        raise StepError(f"app '{component.tag}': unknown auth type {kind!r}", retryable=False)


# --- OAuth2 client credentials ---------------------------------------------------------

_tokens: dict[tuple[Any, ...], tuple[str, float]] = {}
_tokens_lock = threading.Lock()
_EXPIRY_MARGIN_S = 30.0


def _oauth2_token(
    call: ConnectorCall,
    component: Component,
    auth: AuthConfig,
    timeout_s: float | None,
    *,
    fresh: bool,
) -> str:
    token_url = auth.token_url
    if not token_url:
        raise StepError(f"app '{component.tag}': oauth2 auth needs token_url", retryable=False)
    client_id = (
        _secret(call, component, auth.client_id_secret)
        if auth.client_id_secret
        else str(auth.client_id)
    )
    client_secret = _secret(call, component, auth.client_secret_secret)
    key = (
        call.product_id,
        component.tag,
        call.environment_id or call.environment,
        token_url,
        client_id,
        auth.scope,
        auth.audience,
    )
    now = time.monotonic()
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached and not fresh and cached[1] > now:
            return cached[0]
        form = {"grant_type": "client_credentials"}
        for extra, value in (("scope", auth.scope), ("audience", auth.audience)):
            if value:
                form[extra] = str(value)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        response = http_request(
            "POST",
            token_url,
            headers={"Authorization": "Basic " + basic, "Accept": "application/json"},
            data=form,
            timeout_s=timeout_s,
            policy=call.policy,
        )
        if response.status >= 400:
            raise StepError(
                f"oauth2 token request to {where(token_url)} answered {response.status}",
                retryable=response.status >= 500 or response.status in RETRYABLE_4XX,
            )
        try:
            payload = _json(response)
            token = str(payload["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StepError(
                f"oauth2 token response from {where(token_url)} has no access_token",
                retryable=False,
            ) from exc
        expires_in = payload.get("expires_in")
        try:
            lifetime = float(expires_in) if expires_in is not None else 3600.0
        except (TypeError, ValueError):
            lifetime = 3600.0
        _tokens[key] = (token, now + max(lifetime - _EXPIRY_MARGIN_S, 1.0))
        return token


def oauth2_cache_clear() -> None:
    """Forget every cached OAuth2 token (tests; after rotating a client secret)."""
    with _tokens_lock:
        _tokens.clear()


# --- Responses -------------------------------------------------------------------------


def _json(response: HttpResponse) -> Any:
    return json.loads(response.content.decode("utf-8-sig"))


def _result(response: HttpResponse) -> Any:
    if not response.content.strip():
        return {"status": response.status}
    if response.is_json:
        try:
            return _json(response)
        except ValueError:
            pass  # declared JSON but is not: hand back the text below
    ct = response.content_type
    if not ct or ct.startswith(_TEXT_TYPES) or response.is_json:
        return {"status": response.status, "content_type": ct, "text": response.text()}
    return {
        "status": response.status,
        "content_type": ct,
        "content_base64": base64.b64encode(response.content).decode(),
    }


def _error_body(response: HttpResponse) -> Any:
    if response.is_json:
        try:
            parsed = _json(response)
            if len(response.content) <= _ERROR_BODY_CHARS:
                return parsed
        except ValueError:
            pass
    return response.text()[:_ERROR_BODY_CHARS]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
