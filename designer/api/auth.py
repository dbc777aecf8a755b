"""Tokens for scripts: trade a username and password for an API token (or revoke it).

Guessing is slowed three ways: a rate per client address (LoginRateThrottle, shared with
the login pages), a lockout per username + address after repeated failures (django-axes,
which sees this endpoint's failures because ``authenticate`` gets the request), and tokens
that expire (ExpiringTokenAuthentication) and die with a password change.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from designer import accounts
from designer.api.base import ApiView
from designer.api.serializers import TokenIn, TokenOut


class LockedOut(Throttled):
    """429 ``locked_out``, with Retry-After: the cool-off (it restarts with each attempt)."""

    default_code = "locked_out"

    def __init__(self, *, wait: int, detail: str) -> None:
        # Not Throttled's own __init__: the message already says when to come back.
        APIException.__init__(self, detail)
        self.wait = wait


class TokenApi(ApiView):
    # No session authentication here: the body carries the credentials, so there is no
    # ambient authority for CSRF to protect, and scripts need no CSRF token.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # The per-address rate shared with /login/ and /admin/login/ (TRELLIS_LOGIN_RATE).
    throttle_classes = [accounts.LoginRateThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # Wrong credentials are a 401 (DRF makes it a 403 when no authenticator is set).
        return "Token"

    @extend_schema(
        operation_id="auth_token",
        request=TokenIn,
        responses={
            200: TokenOut,
            401: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(
                description="Too many attempts from this address (`throttled`), or this "
                "username is locked out from this address (`locked_out`)."
            ),
        },
        auth=[],
        description="Exchange a username and password for an API token; send it as "
        "`Authorization: Token <token>`. The token stops working at `expires` (null: "
        "never) or when the user's password changes. Repeated wrong passwords for one "
        "username from one address lock that pair out for a while (429, `locked_out`).",
    )
    def post(self, request: Request) -> Response:
        data = self.body(TokenIn)
        # The Django request, so django-axes counts this failure and refuses a locked pair.
        django_request = request._request
        user = authenticate(
            request=django_request, username=data["username"], password=data["password"]
        )
        if getattr(django_request, "axes_locked_out", False):
            raise LockedOut(
                wait=accounts.lockout_cooloff_seconds(), detail=accounts.lockout_message()
            )
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong username or password.")
        # What login() announces: axes clears this pair's failures, last_login is updated.
        user_logged_in.send(sender=type(user), request=django_request, user=user)
        token = accounts.token_issue(user=user)
        body = {
            "token": token.key,
            "username": user.get_username(),
            "expires": accounts.token_expires_at(token),
        }
        return Response(TokenOut(body).data)


class TokenRevokeApi(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_token_revoke", responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user_id=request.user.pk or 0).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
