"""A safe outgoing HTTP client for connectors: timeouts always, a response size cap, and
every connection held to the environment's :class:`runtime.netguard.HostPolicy`.

Every failure becomes a :class:`runtime.errors.StepError` that says whether a retry can
help: network errors and timeouts can, a refused host or an oversized response cannot.
Messages name the host and path, never the query string or headers (they may hold keys).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from designer.secrets import redact
from runtime.errors import StepError, StepTimeout
from runtime.netguard import HostPolicy


class _NoQueryStrings(logging.Filter):
    """httpx logs every request's full URL at INFO; a query string may carry an API key,
    and a path the secret of the call in flight (an ACTION's params): both are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            args = tuple(
                _strip_query(a) if isinstance(a, str | httpx.URL) else a for a in record.args
            )
            secrets = _secrets_of_call()
            if secrets:
                args = tuple(redact(a, secrets) for a in args)
            record.args = args
        return True


def _strip_query(value: str | httpx.URL) -> str:
    text = str(value)
    return text.split("?", 1)[0] + ("?•••" if "?" in text else "")


def _no_secrets() -> list[str]:
    return []


# The secrets of the connector call this thread is making. The connectors sit above this
# module (they call it), so the Django side installs their source (runtime/apps.py).
_secrets_of_call: Callable[[], list[str]] = _no_secrets


def call_secrets_source(source: Callable[[], list[str]]) -> None:
    """Install where the httpx log filter learns the secrets of the call in flight
    (:func:`runtime.connectors.secrets_of_call`), which it masks in logged URLs."""
    global _secrets_of_call
    _secrets_of_call = source


logging.getLogger("httpx").addFilter(_NoQueryStrings())

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


def default_timeout_s() -> float:
    return float(_setting("TRELLIS_HTTP_TIMEOUT_S", DEFAULT_TIMEOUT_S))


def default_max_response_bytes() -> int:
    return int(_setting("TRELLIS_HTTP_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))


def _setting(name: str, default: Any) -> Any:
    # Settings are optional here so the module also works outside a Django project.
    try:
        from django.conf import settings

        return getattr(settings, name, default) if settings.configured else default
    except ImportError:  # pragma: no cover - Django is always installed in Trellis
        return default


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    content: bytes
    url: str = ""
    elapsed_ms: int = 0
    _json: Any = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        ct = self.content_type
        return ct == "application/json" or ct.endswith("+json")

    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type", "")), errors="replace")


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"') or "utf-8"
    return "utf-8"


def where(url: str) -> str:
    """``host/path`` of a URL for messages: no scheme credentials, no query string."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{(':' + str(parts.port)) if parts.port else ''}{parts.path}"


def host_check(
    url: str,
    policy: HostPolicy,
    *,
    schemes: Iterable[str] = ("http", "https"),
    default_port: int | None = None,
) -> list[str]:
    """Refuse (not retryable) a URL the environment may not reach; return the checked
    addresses of its host, for a caller that can connect to one of them directly.

    Used for every outgoing connection that is not HTTP (SMTP, PostgreSQL, Redis, S3), with
    ``schemes`` naming the URL schemes the caller accepts (see :mod:`runtime.netguard`)."""
    parts = urlsplit(url)
    if parts.scheme not in set(schemes) or not parts.hostname:
        raise StepError(f"not a {'/'.join(schemes)} URL: {where(url)!r}", retryable=False)
    try:
        port = parts.port or default_port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError as exc:
        raise StepError(f"bad port in {where(url)!r}", retryable=False) from exc
    return policy.check(parts.hostname, port)


_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "smtp": 25,
    "redis": 6379,
    "rediss": 6379,
    "postgresql": 5432,
    "postgres": 5432,
}


class _GuardedBackend(httpcore.SyncBackend):
    """Checks every TCP connection httpcore opens against the policy and connects to a
    checked address; the URL keeps its host name, so the Host header, TLS SNI and the
    certificate check still use the name."""

    def __init__(self, policy: HostPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self._policy.check(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None  # check() returns at least one address or raises
        raise error


def _guarded_transport(policy: HostPolicy) -> httpx.HTTPTransport:
    # trust_env=False: an HTTP(S)_PROXY from the environment would make the proxy, not
    # this process, connect to the target, past the address check.
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx offers no way to hand its pool a network backend: build the same pool it
    # would, with ours (pinned by tests/runtime/test_http_guard.py).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_GuardedBackend(policy),
    )
    return transport


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    data: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    max_bytes: int | None = None,
    policy: HostPolicy | None = None,
) -> HttpResponse:
    """Send one request and read at most ``max_bytes`` of the response.

    The timeout bounds the whole exchange (connect, send, every read), not only each
    socket operation, so a server dripping bytes cannot hold a worker.

    Every connection goes through ``policy`` (default: public addresses only), checked
    when it is opened, to the address that was checked. A redirect is not followed: it is
    a non-retryable error naming where it pointed (a redirect could lead off the
    allow-list, and custom headers carrying keys would follow it).
    """
    policy = policy or HostPolicy()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise StepError(f"not a http/https URL: {where(url)!r}", retryable=False)
    timeout = timeout_s if timeout_s and timeout_s > 0 else default_timeout_s()
    cap = max_bytes if max_bytes and max_bytes > 0 else default_max_response_bytes()
    started = time.monotonic()
    deadline = started + timeout
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                trust_env=False,
                transport=_guarded_transport(policy),
            ) as client,
            client.stream(
                method.upper(),
                url,
                headers=dict(headers or {}),
                params=_clean_params(params),
                json=json,
                content=content,
                data=dict(data) if data is not None else None,
            ) as response,
        ):
            if response.status_code in _REDIRECTS:
                raise _redirect_refused(method, url, response)
            body = _read_capped(response, method, url, cap=cap, deadline=deadline, timeout=timeout)
            return HttpResponse(
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                content=body,
                url=url,
                elapsed_ms=int((time.monotonic() - started) * 1000),
            )
    except httpx.TimeoutException as exc:
        raise StepTimeout(f"{method.upper()} {where(url)} timed out after {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise StepError(
            f"{method.upper()} {where(url)} failed: {type(exc).__name__}: {_safe(exc)}",
            retryable=True,
        ) from exc


def _redirect_refused(method: str, url: str, response: httpx.Response) -> StepError:
    location = response.headers.get("location", "")
    target = where(str(response.url.join(location))) if location else "nowhere"
    return StepError(
        f"{method.upper()} {where(url)} answered {response.status_code}, a redirect "
        f"to {target}: redirects are not followed (configure the final URL)",
        retryable=False,
        details={"status": response.status_code, "location": target},
    )


def _read_capped(
    response: httpx.Response, method: str, url: str, *, cap: int, deadline: float, timeout: float
) -> bytes:
    """The response body, refused past ``cap`` bytes or past ``deadline``."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _too_large(url, cap, int(declared))
    chunks: list[bytes] = []
    size = 0
    # iter_bytes yields decoded bytes, so a small gzip that inflates hugely is
    # caught by the same cap.
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise _too_large(url, cap, None)
        if time.monotonic() > deadline:
            raise StepTimeout(f"{method.upper()} {where(url)} timed out after {timeout:g}s")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(url: str, cap: int, declared: int | None) -> StepError:
    size = f" ({declared} bytes declared)" if declared is not None else ""
    return StepError(
        f"response from {where(url)} is larger than the {cap}-byte limit{size}",
        retryable=False,
        details={"max_response_bytes": cap},
    )


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[str(key)] = [str(v) for v in value]
        else:
            out[str(key)] = str(value)
    return out


def _safe(exc: Exception) -> str:
    # httpx messages can include the full URL (with a query-string key): keep it short and
    # strip anything after '?'.
    text = str(exc).split("?")[0]
    return text[:300]
