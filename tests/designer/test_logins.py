"""Logins: the attacks of issue 13 item 6, replayed.

- a new X-Forwarded-For on every attempt no longer escapes the per-address rate;
- brute force on /login/, /admin/login/ and the token endpoint locks the username+address
  pair out (even the right password is refused) until the cool-off or an admin's reset;
- tokens expire, and die with a password change (as do the user's other sessions).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from channels.auth import get_user
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from designer.accounts import client_ip
from designer.models import Product

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
PRODUCTS = "/api/v1/products/"


def token_post(username: str, password: str, **extra: Any) -> Any:
    return APIClient().post(
        TOKEN, {"username": username, "password": password}, format="json", **extra
    )


def form_post(url: str, username: str, password: str, **extra: Any) -> Any:
    return Client().post(url, {"username": username, "password": password}, **extra)


def age_failures(minutes: int) -> None:
    """Pretend the recorded failures happened ``minutes`` ago (the cool-off counts from the
    last failure)."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=minutes))


# --- the client's address --------------------------------------------------------------------


def test_a_new_x_forwarded_for_per_attempt_does_not_escape_the_api_throttle(
    product: Product,
) -> None:
    # The original attack: 100 attempts, each claiming a new address. Distinct usernames so
    # only the per-address rate (30/minute) can stop them, not the per-user lockout.
    codes = [
        token_post(f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(100)
    ]
    assert codes[:30] == [401] * 30
    assert codes[30:] == [429] * 70


def test_a_new_x_forwarded_for_per_attempt_does_not_escape_the_login_form_rate(
    product: Product,
) -> None:
    responses = [
        form_post("/login/", f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(40)
    ]
    assert [r.status_code for r in responses[:30]] == [200] * 30
    assert [r.status_code for r in responses[30:]] == [429] * 10
    assert b"Too many login attempts from your address" in responses[-1].content
    # /admin/login/ shares the count: same address, same budget.
    assert form_post("/admin/login/", "x", "y").status_code == 429


def test_with_one_trusted_proxy_the_address_the_proxy_saw_is_used(
    product: Product, settings: Any
) -> None:
    settings.TRELLIS_TRUSTED_PROXIES = 1
    # The proxy appends the address it saw; whatever the client wrote stays on the left.
    codes = [
        token_post(f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.7").status_code
        for n in range(31)
    ]
    assert codes[-2:] == [401, 429]
    # Another client behind the same proxy (same REMOTE_ADDR) has its own budget.
    assert token_post("user0", "guess", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 401
    # And the lockout records the address from the header, not the proxy's.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "203.0.113.7",
        "203.0.113.8",
    }


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, None, "192.0.2.1"),
        (0, "203.0.113.7", "192.0.2.1"),  # no proxy trusted: the header is ignored
        (1, None, "192.0.2.1"),
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own part is ignored
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),
        (1, "2001:db8::7", "2001:db8::7"),
    ],
)
def test_every_client_address_reader_applies_the_same_rule(
    settings: Any, proxies: int, forwarded: str | None, expected: str
) -> None:
    settings.TRELLIS_TRUSTED_PROXIES = proxies
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    extra = {"REMOTE_ADDR": "192.0.2.1"}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().post("/login/", **extra)
    assert client_ip(request) == expected
    assert BaseThrottle().get_ident(request) == expected  # DRF's NUM_PROXIES


def test_a_proxy_count_that_does_not_match_the_header_falls_back_to_the_peer(
    settings: Any,
) -> None:
    settings.TRELLIS_TRUSTED_PROXIES = 1
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="x, junk")
    assert client_ip(request) == "192.0.2.1"


def test_drf_uses_the_trusted_proxy_count_from_settings() -> None:
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.TRELLIS_TRUSTED_PROXIES == 0


# --- lockout -----------------------------------------------------------------------------


def test_brute_force_on_the_login_page_locks_the_username_from_that_address(
    admin_user: User,
) -> None:
    wrong = [form_post("/login/", "alice", f"guess{n}") for n in range(4)]
    assert [r.status_code for r in wrong] == [200] * 4
    fifth = form_post("/login/", "alice", "guess4")
    assert fifth.status_code == 429
    assert b"Too many failed logins for this username" in fifth.content
    assert b'id="id_password"' in fifth.content  # the form is still there
    # axes keeps the attempts for admins to see, never the guessed passwords.
    kept = "".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "guess" not in kept

    # The right password is refused during the lockout…
    right = form_post("/login/", "alice", "pw-alice")
    assert right.status_code == 429
    assert right["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in right.wsgi_request.session
    # …but only for this address: the attacker cannot lock alice out from everywhere.
    elsewhere = form_post("/login/", "alice", "pw-alice", REMOTE_ADDR="192.0.2.50")
    assert elsewhere.status_code == 302

    # Once the cool-off has passed, the right password works again.
    age_failures(16)
    after = form_post("/login/", "alice", "pw-alice")
    assert after.status_code == 302 and after["Location"] == "/"


def test_brute_force_on_the_admin_login_locks_out_until_an_admin_resets_it(
    product: Product,
) -> None:
    User.objects.create_superuser("root", password="pw-root")
    for n in range(5):
        response = form_post("/admin/login/", "root", f"guess{n}")
    assert response.status_code == 429
    assert b"Too many failed logins for this username" in response.content
    assert form_post("/admin/login/", "root", "pw-root").status_code == 429

    reset(username="root")  # what `manage.py axes_reset_username root` does
    ok = Client().post(
        "/admin/login/", {"username": "root", "password": "pw-root", "next": "/admin/"}
    )
    assert ok.status_code == 302 and ok["Location"] == "/admin/"


def test_brute_force_on_the_token_endpoint_is_locked_out_with_a_json_429(
    product: Product, viewer_user: User
) -> None:
    codes = [token_post("vera", f"guess{n}").status_code for n in range(4)]
    assert codes == [401] * 4
    locked = token_post("vera", "guess4")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out"
    assert "Too many failed logins" in locked.json()["message"]
    assert locked["Retry-After"] == str(15 * 60)

    right = token_post("vera", "pw-vera")
    assert right.status_code == 429
    assert right.json() == locked.json()
    assert not Token.objects.filter(user=viewer_user).exists()

    age_failures(16)
    assert token_post("vera", "pw-vera").status_code == 200


def test_the_api_and_the_forms_count_failures_together(admin_user: User) -> None:
    for n in range(3):
        token_post("alice", f"guess{n}")
    form_post("/login/", "alice", "guess3")
    assert token_post("alice", "guess4").status_code == 429
    assert form_post("/login/", "alice", "pw-alice").status_code == 429


def test_a_successful_login_clears_the_failures(admin_user: User) -> None:
    for n in range(4):
        form_post("/login/", "alice", f"guess{n}")
    assert token_post("alice", "pw-alice").status_code == 200
    for n in range(4):
        assert form_post("/login/", "alice", f"again{n}").status_code == 200


# --- tokens --------------------------------------------------------------------------------


def test_the_token_endpoint_says_when_the_token_expires(viewer_user: User) -> None:
    body = token_post("vera", "pw-vera").json()
    expires = timezone.datetime.fromisoformat(body["expires"].replace("Z", "+00:00"))
    assert abs(expires - (timezone.now() + timedelta(hours=720))) < timedelta(minutes=1)


def test_an_expired_token_is_refused_and_a_new_one_issued(
    product: Product, viewer_user: User
) -> None:
    old = token_post("vera", "pw-vera").json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(hours=721))

    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    refused = script.get(PRODUCTS)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_expired"
    assert "expired" in refused.json()["message"]
    assert not Token.objects.filter(key=old).exists()

    new = token_post("vera", "pw-vera").json()["token"]
    assert new != old
    script.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert script.get(PRODUCTS).status_code == 200


def test_the_token_endpoint_replaces_an_expired_token_it_still_holds(
    viewer_user: User,
) -> None:
    old = token_post("vera", "pw-vera").json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(hours=721))
    assert token_post("vera", "pw-vera").json()["token"] != old


def test_a_ttl_of_zero_means_tokens_never_expire(
    product: Product, viewer_user: User, settings: Any
) -> None:
    settings.TRELLIS_TOKEN_TTL_HOURS = 0
    body = token_post("vera", "pw-vera").json()
    assert body["expires"] is None
    Token.objects.filter(key=body["token"]).update(created=timezone.now() - timedelta(days=999))
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert script.get(PRODUCTS).status_code == 200


# --- a new password -------------------------------------------------------------------------


def _script_for(username: str) -> APIClient:
    script = APIClient()
    token = token_post(username, f"pw-{username}").json()["token"]
    script.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return script


def test_set_password_and_save_revokes_tokens_and_other_sessions(
    product: Product, viewer_user: User
) -> None:
    script = _script_for("vera")
    browser = Client()
    browser.force_login(viewer_user)
    assert script.get(PRODUCTS).status_code == 200
    assert browser.get("/").status_code == 200

    user = User.objects.get(username="vera")
    user.set_password("a-new-password")
    user.save()

    refused = script.get(PRODUCTS)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    # Django's session auth hash: the old session no longer authenticates.
    assert browser.get("/")["Location"].startswith("/login/")


def test_an_admin_setting_a_users_password_revokes_the_users_tokens(
    product: Product, viewer_user: User
) -> None:
    script = _script_for("vera")
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="pw-root"))
    response = root.post(
        f"/admin/auth/user/{viewer_user.pk}/password/",
        {"password1": "a-new-password-1", "password2": "a-new-password-1"},
    )
    assert response.status_code == 302
    assert script.get(PRODUCTS).status_code == 401


def test_the_password_change_view_keeps_this_session_and_ends_the_others(
    product: Product,
) -> None:
    staff = User.objects.create_user("sam", password="pw-sam", is_staff=True)
    script = _script_for("sam")
    here, elsewhere = Client(), Client()
    here.force_login(staff)
    elsewhere.force_login(staff)

    response = here.post(
        "/admin/password_change/",
        {
            "old_password": "pw-sam",
            "new_password1": "a-new-password-2",
            "new_password2": "a-new-password-2",
        },
    )
    assert response.status_code == 302
    assert here.get("/admin/").status_code == 200
    assert elsewhere.get("/admin/").status_code == 302  # to the admin's login
    assert script.get(PRODUCTS).status_code == 401


def test_assigning_a_new_hash_directly_revokes_tokens(product: Product, viewer_user: User) -> None:
    script = _script_for("vera")
    user = User.objects.get(username="vera")
    user.password = "md5$x$" + "0" * 32  # e.g. a script copying a hash from elsewhere
    user.save()
    assert script.get(PRODUCTS).status_code == 401


def test_saving_a_user_without_a_new_password_keeps_tokens(
    product: Product, viewer_user: User
) -> None:
    script = _script_for("vera")
    user = User.objects.get(username="vera")
    user.first_name = "Vera"
    user.save()
    User.objects.only("username").get(username="vera").save(update_fields=["username"])
    assert script.get(PRODUCTS).status_code == 200


def test_djangos_rehash_on_login_keeps_tokens(
    product: Product, viewer_user: User, settings: Any
) -> None:
    script = _script_for("vera")
    # A stronger hasher becomes the default: the next login re-hashes the same password.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    before = User.objects.get(username="vera").password
    assert Client().post("/login/", {"username": "vera", "password": "pw-vera"}).status_code == 302
    assert User.objects.get(username="vera").password != before  # re-hashed
    assert script.get(PRODUCTS).status_code == 200


@pytest.mark.django_db(transaction=True)  # channels reads the session in another thread
def test_a_live_socket_session_ends_with_a_password_change(viewer_user: User) -> None:
    browser = Client()
    browser.force_login(viewer_user)
    session = SessionStore(browser.session.session_key)

    def socket_user() -> Any:
        # What channels' AuthMiddleware does when a WebSocket connects.
        return asyncio.run(get_user({"session": session}))

    assert socket_user().username == "vera"
    viewer_user.set_password("a-new-password")
    viewer_user.save()
    assert not socket_user().is_authenticated


@pytest.mark.django_db(transaction=True)  # the ASGI handler runs views in another thread
def test_under_asgi_the_lockout_answers_the_same(admin_user: User) -> None:
    # daphne serves through Django's ASGI handler, where axes' middleware runs async.
    from django.test import AsyncClient

    async def attempts() -> list[Any]:
        client = AsyncClient()
        out = []
        for n in range(5):
            out.append(await client.post("/login/", {"username": "alice", "password": f"g{n}"}))
        out.append(await client.post("/login/", {"username": "alice", "password": "pw-alice"}))
        api = [
            await client.post(
                TOKEN,
                {"username": "alice", "password": "pw-alice"},
                content_type="application/json",
            )
        ]
        return out + api

    *forms, api = asyncio.run(attempts())
    assert [r.status_code for r in forms] == [200] * 4 + [429, 429]
    assert b"Too many failed logins for this username" in forms[-1].content
    assert api.status_code == 429
    assert api.json()["code"] == "locked_out"


def test_check_deploy_warns_when_a_proxy_is_in_front_but_none_is_trusted(settings: Any) -> None:
    from designer.accounts import trusted_proxies_check

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRELLIS_TRUSTED_PROXIES = 0
    assert [m.id for m in trusted_proxies_check()] == ["trellis.W910"]
    settings.TRELLIS_TRUSTED_PROXIES = 1
    assert trusted_proxies_check() == []
