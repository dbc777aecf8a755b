"""Who is knocking, and how hard: client addresses, login lockout and rate, token lifetime.

- ``client_ip``: the one rule for a client's address (``TRELLIS_TRUSTED_PROXIES``), used by
  the DRF throttles and by django-axes' lockout.
- ``login_locked_out``: axes' lockout answer — a 429 page on /login/ and /admin/login/, a
  JSON 429 (``code``, ``message``) on the API.
- ``LoginRateThrottle`` / ``login_rate_limited``: attempts per minute per client address on
  every login endpoint, whatever the username.
- ``token_issue`` / ``token_expires_at``: API tokens that expire (``TRELLIS_TOKEN_TTL_HOURS``).
- ``tokens_revoke_on_password_change``: a new password deletes the user's tokens (its other
  sessions end by themselves: Django checks each session's password hash).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core import checks
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

# --- the client's address -------------------------------------------------------------


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the socket peer, or with N trusted proxies in front, the N-th
    address from the right of X-Forwarded-For (the one the outermost proxy saw).

    Every proxy appends the address it received the request from, so only the right-most N
    entries were written by machines an admin trusts; anything to their left came from the
    client. Same choice as DRF's NUM_PROXIES (set from the same setting); a value that is
    not an address (a misconfigured chain) falls back to the socket peer.
    """
    remote: str | None = request.META.get("REMOTE_ADDR") or None
    proxies: int = settings.TRELLIS_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies == 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",")]
    candidate = hops[-min(proxies, len(hops))]
    return candidate if _is_ip(candidate) else remote


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """Behind a proxy with TRELLIS_TRUSTED_PROXIES=0 every client has the proxy's address:
    the per-address rate is shared by all, and a username+address lockout becomes a lockout
    of that username for everyone — the denial of service the pair was chosen to avoid."""
    if settings.SECURE_PROXY_SSL_HEADER and settings.TRELLIS_TRUSTED_PROXIES == 0:
        return [
            checks.Warning(
                "TRUST_X_FORWARDED_PROTO is on (a proxy is in front) but "
                "TRELLIS_TRUSTED_PROXIES is 0: every client looks like the proxy, so one "
                "client's wrong passwords lock a username out for everyone.",
                hint="Set TRELLIS_TRUSTED_PROXIES to the number of proxies that append to "
                "X-Forwarded-For (1 for the README's nginx).",
                id="trellis.W910",
            )
        ]
    return []


# --- lockout (django-axes) --------------------------------------------------------------


def _cooloff_minutes() -> int:
    return int(settings.TRELLIS_LOGIN_COOLOFF_MINUTES)


def lockout_cooloff_seconds() -> int:
    return _cooloff_minutes() * 60


def lockout_message() -> str:
    minutes = _cooloff_minutes()
    return (
        "Too many failed logins for this username from your address. Try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it."
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _login_page(request: HttpRequest, *, message: str, status: int) -> HttpResponse:
    """The login form again, with ``message`` instead of the wrong-password notice."""
    username = request.POST.get("username", "") if request.method == "POST" else ""
    default_next = "/admin/" if request.path.startswith("/admin/") else ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username[:150]}),
        "refused": message,
        "next": request.POST.get("next") or request.GET.get("next") or default_next,
    }
    return render(request, "login.html", context, status=status)


def login_locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponseBase:
    """axes' AXES_LOCKOUT_CALLABLE: what a locked-out username+address pair is told."""
    if isinstance(original_response, HttpResponseBase) and original_response.status_code == 429:
        return original_response  # the token endpoint already answered in the API's shape
    retry_after = str(lockout_cooloff_seconds())
    if _is_api(request):
        return JsonResponse(
            {"code": "locked_out", "message": lockout_message()},
            status=429,
            headers={"Retry-After": retry_after},
        )
    response = _login_page(request, message=lockout_message(), status=429)
    response["Retry-After"] = retry_after
    return response


# --- attempts per address ----------------------------------------------------------------


class LoginRateThrottle(SimpleRateThrottle):
    """Login attempts per client address (every login endpoint shares the count): slows
    guessing across many usernames, which the username+address lockout does not see."""

    scope = "login"

    def get_rate(self) -> str:
        return str(settings.TRELLIS_LOGIN_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


def login_rate_limited(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wrap a form login view: a POST over TRELLIS_LOGIN_RATE is a 429 page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            throttle = LoginRateThrottle()
            # A DRF throttle reads only request.META, which a Django request has too.
            drf_request: Any = request
            if not throttle.allow_request(drf_request, None):  # type: ignore[arg-type]
                wait = max(1, int(throttle.wait() or 1))
                response = _login_page(
                    request,
                    message=f"Too many login attempts from your address. Try again in {wait} s.",
                    status=429,
                )
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapped


# --- API tokens ----------------------------------------------------------------------------


def token_expires_at(token: Token) -> datetime | None:
    """When ``token`` stops working (None: TRELLIS_TOKEN_TTL_HOURS=0, never)."""
    hours: int = settings.TRELLIS_TOKEN_TTL_HOURS
    return token.created + timedelta(hours=hours) if hours else None


def token_is_expired(token: Token) -> bool:
    expires = token_expires_at(token)
    return expires is not None and expires <= timezone.now()


def token_issue(*, user: Any) -> Token:
    """The user's token: the current one while it is valid, else a new one."""
    token = Token.objects.filter(user=user).first()
    if token is not None and token_is_expired(token):
        token.delete()
        token = None
    if token is None:
        token = Token.objects.create(user=user)
    return token


# --- revocation on a new password ------------------------------------------------------------


_LOADED = "_trellis_password_at_load"


def password_remember(sender: Any, instance: Any, **kwargs: Any) -> None:
    """post_init: the hash as loaded (read from __dict__: a deferred field stays deferred)."""
    instance.__dict__[_LOADED] = instance.__dict__.get("password")


def tokens_revoke_on_password_change(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """post_save: a user whose password changed loses every API token.

    Changed means set_password() was called before this save (admin, the password change
    views, ``changepassword``, scripts) or the stored hash was replaced directly — except
    Django's own re-hash on login (check_password upgrading the hasher saves only the
    password field after clearing ``_password``): same password, so tokens stay.
    """
    loaded = instance.__dict__.get(_LOADED)
    current = instance.__dict__.get("password")
    instance.__dict__[_LOADED] = current
    if created:
        return
    set_password_called = getattr(instance, "_password", None) is not None
    rehash = update_fields is not None and set(update_fields) == {"password"}
    replaced = loaded is not None and current is not None and current != loaded and not rehash
    if set_password_called or replaced:
        Token.objects.filter(user=instance).delete()
