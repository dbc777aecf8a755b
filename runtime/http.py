"""A safe outgoing HTTP client for connectors: timeouts always, a response size cap, and a
per-environment host allow-list.

Every failure becomes a :class:`runtime.errors.StepError` that says whether a retry can
help: network errors and timeouts can, a refused host or an oversized response cannot.
Messages name the host and path, never the query string or headers (they may hold keys).
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from runtime.errors import StepError, StepTimeout


class _NoQueryStrings(logging.Filter):
    """httpx logs every request's full URL at INFO; a query string may carry an API key,
    and a path the secret of the call in flight (an ACTION's params): both are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            args = tuple(
                _strip_query(a) if isinstance(a, str | httpx.URL) else a for a in record.args
            )
            from runtime.connectors import secrets_of_call

            secrets = secrets_of_call()
            if secrets:
                from designer.secrets import redact

                args = tuple(redact(a, secrets) for a in args)
            record.args = args
        return True


def _strip_query(value: str | httpx.URL) -> str:
    text = str(value)
    return text.split("?", 1)[0] + ("?•••" if "?" in text else "")


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


def host_allowed(url: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether ``url``'s host is on the allow-list. An empty list allows every host.

    Entries are host names (``api.stripe.com``), wildcards (``*.stripe.com``) or
    ``host:port``; matching is case-insensitive.
    """
    patterns = [p.strip().lower() for p in allowed_hosts if p and p.strip()]
    if not patterns:
        return True
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    for pattern in patterns:
        if pattern in {"*", host} or (port is not None and pattern == f"{host}:{port}"):
            return True
        if "*" in pattern and fnmatch.fnmatchcase(host, pattern):
            return True
    return False


def host_check(
    url: str,
    allowed_hosts: Iterable[str],
    *,
    environment: str = "",
    schemes: Iterable[str] = ("http", "https"),
) -> None:
    """Refuse (not retryable) a URL whose host is not on the environment's allow-list.

    Used for every outgoing connection (HTTP, SMTP, databases, Redis, S3), with
    ``schemes`` naming the URL schemes the caller accepts."""
    allowed = list(allowed_hosts)
    parts = urlsplit(url)
    if parts.scheme not in set(schemes) or not parts.hostname:
        raise StepError(f"not a {'/'.join(schemes)} URL: {where(url)!r}", retryable=False)
    if not host_allowed(url, allowed):
        env = f" of environment '{environment}'" if environment else ""
        raise StepError(
            f"host '{parts.hostname}' is not on the allow-list{env} ({', '.join(allowed)})",
            retryable=False,
            details={"host": parts.hostname, "allowed_hosts": allowed},
        )


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
    allowed_hosts: Iterable[str] = (),
    environment: str = "",
) -> HttpResponse:
    """Send one request and read at most ``max_bytes`` of the response.

    The timeout bounds the whole exchange (connect, send, every read), not only each
    socket operation, so a server dripping bytes cannot hold a worker. Redirects are not
    followed: a redirect could lead off the allow-list.
    """
    host_check(url, allowed_hosts, environment=environment)
    timeout = timeout_s if timeout_s and timeout_s > 0 else default_timeout_s()
    cap = max_bytes if max_bytes and max_bytes > 0 else default_max_response_bytes()
    started = time.monotonic()
    deadline = started + timeout
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client,
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
            body = b"".join(chunks)
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
