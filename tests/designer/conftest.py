"""Fixtures for the authoring side: the seed's main_sequence and the components it names."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.cache import cache

from designer.models import Component, ComponentKind, Product

# The seed's "Sequencing Events" example (000_*.txt) as JSON, exactly: no `app`, the
# compiler finds the one component that declares each event.
MAIN_SEQUENCE: dict[str, Any] = {
    "sequences": [
        {
            "tag": "main_sequence",
            "events": [
                {
                    "type": "ACTION",
                    "event": "validate_user",
                    "input": {"userId": "$Input{user_id}"},
                    "retries": 2,
                    "allow_fail": False,
                },
                {
                    "type": "NOTIFICATION",
                    "event": "send_welcome_email",
                    "input": {"email": "$Input{email}"},
                    "retries": 1,
                    "allow_fail": True,
                },
            ],
        }
    ]
}


def main_sequence() -> dict[str, Any]:
    return copy.deepcopy(MAIN_SEQUENCE)


def two_level_spec() -> dict[str, Any]:
    """main_sequence plus a child sequence that reads validate_user's output."""
    spec = main_sequence()
    spec["sequences"].append(
        {
            "tag": "follow_up",
            "parents": ["main_sequence"],
            "events": [
                {
                    "type": "ACTION",
                    "event": "validate_user",
                    "tag": "revalidate",
                    "app": "accounts",
                    "input": {"userId": "$Step{validate_user}{id}"},
                }
            ],
        }
    )
    return spec


@pytest.fixture
def components(product: Product) -> list[Component]:
    return [
        Component.objects.create(
            product=product,
            kind=ComponentKind.APP,
            tag="accounts",
            events={"validate_user": {"method": "POST", "path": "/users/validate"}},
        ),
        Component.objects.create(
            product=product,
            kind=ComponentKind.NOTIFICATION,
            tag="mailer",
            events={"send_welcome_email": {"subject": "Welcome", "body": "Hello!"}},
        ),
    ]


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    # The login throttle counts in the cache; tests must not inherit each other's counts.
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The default PBKDF2 costs ~0.3 s per user created: most of a test's time here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
