"""Shared fixtures: named users with different rights (healthchecks' hc/test.py style)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from designer.models import Environment, Membership, Product, Role


@pytest.fixture(autouse=True)
def _fresh_login_guards() -> None:
    """No test inherits another's login counts. The per-address login rate counts in the
    cache: cleared here. django-axes' failures are database rows, which every test's
    rollback (or a transactional test's flush) already removes."""
    cache.clear()


@pytest.fixture
def product(db: None) -> Product:
    product = Product.objects.create(slug="acme", name="Acme")
    for order, slug in enumerate(["dev", "staging", "prd"]):
        Environment.objects.create(
            product=product, slug=slug, name=slug, order=order, is_production=slug == "prd"
        )
    return product


def _member(product: Product, username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    Membership.objects.create(product=product, user=user, role=role)
    return user


@pytest.fixture
def admin_user(product: Product) -> User:
    return _member(product, "alice", Role.ADMIN)


@pytest.fixture
def designer_user(product: Product) -> User:
    return _member(product, "dana", Role.DESIGNER)


@pytest.fixture
def operator_user(product: Product) -> User:
    return _member(product, "otto", Role.OPERATOR)


@pytest.fixture
def viewer_user(product: Product) -> User:
    return _member(product, "vera", Role.VIEWER)


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user(username="mallory", password="pw-mallory")


@pytest.fixture
def api(admin_user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
