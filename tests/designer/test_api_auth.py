"""Session auth (CSRF enforced) for the browser, token auth for scripts, nothing for
anonymous callers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer.models import Product

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
P = "/api/v1/products/acme/"


def test_anonymous_requests_are_refused_with_401(product: Product) -> None:
    response = APIClient().get("/api/v1/products/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert response.json()["code"] == "not_authenticated"


def test_a_script_trades_its_password_for_a_token_and_uses_it(
    product: Product, viewer_user: User
) -> None:
    response = APIClient().post(TOKEN, {"username": "vera", "password": "pw-vera"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert response.json()["username"] == "vera"

    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert [p["slug"] for p in script.get("/api/v1/products/").json()] == ["acme"]
    # The same token is handed out again until it is revoked.
    again = APIClient().post(TOKEN, {"username": "vera", "password": "pw-vera"}, format="json")
    assert again.json()["token"] == token

    assert script.delete(TOKEN + "/revoke").status_code == 204
    assert script.get("/api/v1/products/").status_code == 401


def test_a_wrong_password_or_inactive_user_gets_no_token(
    product: Product, viewer_user: User
) -> None:
    wrong = APIClient().post(TOKEN, {"username": "vera", "password": "nope"}, format="json")
    assert wrong.status_code == 401
    assert "token" not in wrong.json()
    viewer_user.is_active = False
    viewer_user.save()
    inactive = APIClient().post(TOKEN, {"username": "vera", "password": "pw-vera"}, format="json")
    assert inactive.status_code == 401


def test_password_guessing_is_throttled(product: Product) -> None:
    # A new username each time: the per-address rate, not the per-user lockout, stops it.
    client = APIClient()
    codes = [
        client.post(TOKEN, {"username": f"x{n}", "password": "guess"}, format="json").status_code
        for n in range(35)
    ]
    assert codes[0] == 401 and codes[-1] == 429


def test_a_bad_token_is_401(product: Product) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/v1/products/").status_code == 401


def test_session_writes_need_the_csrf_token(product: Product, admin_user: User) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.get(P).status_code == 200  # reads need no token

    refused = browser.patch(P, {"name": "Renamed"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]

    browser.get("/admin/login/")  # any page that sets the csrftoken cookie
    csrf = browser.cookies["csrftoken"].value
    allowed = browser.patch(P, {"name": "Renamed"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert allowed.status_code == 200


def test_token_requests_need_no_csrf_token(product: Product, admin_user: User) -> None:
    token = APIClient().post(TOKEN, {"username": "alice", "password": "pw-alice"}, format="json")
    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert script.patch(P, {"name": "Renamed"}, format="json").status_code == 200
