"""The WebSocket origin check: a socket is accepted only from this site's own pages.

Browsers send cookies with a WebSocket handshake from any page, so the Origin header is
the only thing standing between a logged-in user's session and a hostile page (another
site, or another service on the same host: ``http://127.0.0.1:9999`` is a different origin
from ``http://127.0.0.1:8000``). channels' ``AllowedHostsOriginValidator`` compares only the
host name with ALLOWED_HOSTS and ignores scheme and port; this one applies the rule
Django's CSRF check applies to unsafe requests:

- the Origin equals scheme://host:port of the request itself (the Host header, which must
  be in ALLOWED_HOSTS; the scheme from the connection, or X-Forwarded-Proto when
  SECURE_PROXY_SSL_HEADER trusts it), default ports made explicit; or
- the Origin is one of CSRF_TRUSTED_ORIGINS (``https://*.example.com`` covers subdomains).

No Origin header at all is refused (every browser sends one).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, or None when it is not an http(s) origin."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def _request_scheme(scope: dict[str, Any]) -> str:
    secure = scope.get("scheme") in ("wss", "https")
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name, expected = proxy
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        forwarded = _header(scope, header)
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip() == expected
    return "https" if secure else "http"


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _origin(_header(scope, b"origin") or "")
    if origin is None:
        return False
    host = _header(scope, b"host") or ""
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # Django's own DEBUG default
    if domain and validate_host(domain, allowed_hosts):
        own = _origin(f"{_request_scheme(scope)}://{host}")
        if own is not None and own == origin:
            return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in trusted:
            pattern = _origin(trusted.replace("*", "wildcard", 1))
            if pattern is None:
                continue
            suffix = pattern[1].removeprefix("wildcard")  # ".example.com"
            if (origin[0], origin[2]) == (pattern[0], pattern[2]) and is_same_domain(
                origin[1], suffix
            ):
                return True
        elif _origin(trusted) == origin:
            return True
    return False


class SameOriginValidator:
    """ASGI middleware for the "websocket" protocol: refuse (403) a foreign Origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator guards WebSocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
