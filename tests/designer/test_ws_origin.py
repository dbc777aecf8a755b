"""The WebSocket origin check compares scheme, host and port with the request's own
origin (or CSRF_TRUSTED_ORIGINS), not just the host name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from designer.asgi import application
from designer.models import Product
from designer.ws_origin import origin_allowed
from tests.runtime.test_live_channel_layer import make_run


def scope(origin: str | None, host: str | None = "127.0.0.1:8000", **extra: Any) -> dict:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if host is not None:
        headers.append((b"host", host.encode()))
    # ASGI header names are lowercase.
    headers.extend((k.lower().encode(), v.encode()) for k, v in extra.pop("headers", {}).items())
    return {"type": "websocket", "scheme": "ws", "headers": headers, **extra}


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://LOCALHOST:8000", "localhost:8000", True),
        ("http://localhost", "localhost:80", True),  # default ports made explicit
        ("http://127.0.0.1:9999", "127.0.0.1:8000", False),  # another port: another origin
        ("http://127.0.0.1", "127.0.0.1:8000", False),
        ("https://127.0.0.1:8000", "127.0.0.1:8000", False),  # another scheme
        ("http://evil.example", "127.0.0.1:8000", False),
        ("http://evil.example:8000", "evil.example:8000", False),  # Host not in ALLOWED_HOSTS
        ("null", "127.0.0.1:8000", False),  # sandboxed frames, file:// pages
        (None, "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
        ("http://127.0.0.1:8000@evil.example", "127.0.0.1:8000", False),
    ],
)
def test_only_the_request_own_origin_is_allowed(
    origin: str | None, host: str | None, allowed: bool
) -> None:
    assert origin_allowed(scope(origin, host)) is allowed


def test_behind_a_tls_proxy_the_forwarded_scheme_counts(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["trellis.example.com"]
    secure = {"X-Forwarded-Proto": "https"}
    assert not origin_allowed(scope("https://trellis.example.com", "trellis.example.com"))
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(
        scope("https://trellis.example.com", "trellis.example.com", headers=secure)
    )
    assert not origin_allowed(
        scope("http://trellis.example.com", "trellis.example.com", headers=secure)
    )


def test_csrf_trusted_origins_are_matched_with_scheme_and_port(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.corp.example"]
    assert origin_allowed(scope("https://app.example.com"))
    assert origin_allowed(scope("https://app.example.com:443"))
    assert not origin_allowed(scope("https://app.example.com:8443"))
    assert not origin_allowed(scope("http://app.example.com"))
    assert origin_allowed(scope("https://ops.corp.example"))
    assert not origin_allowed(scope("https://ops.corp.example:9999"))
    assert not origin_allowed(scope("https://evilcorp.example"))


@pytest.mark.django_db(transaction=True)
def test_a_viewer_socket_from_another_port_is_refused_through_the_asgi_app(
    product: Product, viewer_user: User
) -> None:
    run = make_run(product)
    client = Client()
    client.force_login(viewer_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def connect(origin: bytes) -> bool:
        headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)]
        communicator = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected

    assert asyncio.run(connect(b"http://127.0.0.1:9999")) is False
    assert asyncio.run(connect(b"http://127.0.0.1:8000")) is True
