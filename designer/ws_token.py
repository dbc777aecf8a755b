"""API tokens on WebSockets, for scripts and the ``trellis`` command line.

A socket whose handshake carries ``Authorization: Token <key>`` is the token's user (the
same check as the REST API: ExpiringTokenAuthentication, so an expired, revoked or
password-changed token is refused); a bad token leaves it anonymous (closed 4401), never
falling back to a session cookie sent alongside. Browsers cannot set that header on a
WebSocket, so this adds no way for another site's page to borrow a user's authority; the
origin check (designer/ws_origin.py) still applies to every socket.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed

from designer.api.authentication import ExpiringTokenAuthentication


def _token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, key = bytes(value).decode("latin1").partition(" ")
            if scheme.lower() == "token":
                return key.strip()
            return ""  # another scheme: not ours, and not a session either
    return None


def _user_for(key: str) -> Any:
    if not key or len(key) > 100:
        return AnonymousUser()
    try:
        user, _ = ExpiringTokenAuthentication().authenticate_credentials(key)
    except AuthenticationFailed:
        return AnonymousUser()
    return user


class TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]  # channels: untyped
    """Inside AuthMiddlewareStack: an Authorization header replaces the session's user."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = _token(scope)
        if key is not None:
            scope = dict(scope, user=await database_sync_to_async(_user_for)(key))
        return await super().__call__(scope, receive, send)
