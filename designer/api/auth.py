"""Tokens for scripts: trade a username and password for an API token (or revoke it)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from designer.api.base import ApiView
from designer.api.serializers import TokenIn, TokenOut


class LoginThrottle(AnonRateThrottle):
    """Slows password guessing: per client address, whether or not it is logged in."""

    scope = "login"
    rate = "30/minute"

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenApi(ApiView):
    # No session authentication here: the body carries the credentials, so there is no
    # ambient authority for CSRF to protect, and scripts need no CSRF token.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # Wrong credentials are a 401 (DRF makes it a 403 when no authenticator is set).
        return "Token"

    @extend_schema(
        operation_id="auth_token",
        request=TokenIn,
        responses={200: TokenOut},
        auth=[],
        description="Exchange a username and password for an API token; send it as "
        "`Authorization: Token <token>`.",
    )
    def post(self, request: Request) -> Response:
        data = self.body(TokenIn)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response(TokenOut({"token": token.key, "username": user.get_username()}).data)


class TokenRevokeApi(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_token_revoke", responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user_id=request.user.pk or 0).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
