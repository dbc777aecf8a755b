"""DRF authentication classes (imported by settings: nothing here may import DRF views)."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from designer import accounts


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token auth, refusing tokens older than TRELLIS_TOKEN_TTL_HOURS (and deleting
    them, so a leaked old token is gone for good)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        expires = accounts.token_expires_at(token)
        if expires is not None and accounts.token_is_expired(token):
            token.delete()
            raise AuthenticationFailed(
                f"This token expired at {expires:%Y-%m-%dT%H:%M:%SZ}; get a new one from "
                "POST /api/v1/auth/token.",
                code="token_expired",
            )
        return user, token
