"""Secrets at rest: encrypted, rotatable, redacted."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from designer import secrets as s


def test_secrets_round_trip_and_are_not_stored_in_clear() -> None:
    token = s.secrets_encrypt({"stripe_key": "sk-live-abcdef"})
    assert "sk-live-abcdef" not in token
    assert "stripe_key" not in token
    assert s.secrets_decrypt(token) == {"stripe_key": "sk-live-abcdef"}
    assert s.secrets_encrypt({}) == ""
    assert s.secrets_decrypt("") == {}


def test_a_configured_key_is_used_and_old_keys_still_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(TRELLIS_SECRETS_KEY=old):
        token = s.secrets_encrypt({"k": "value-1"})
    with override_settings(TRELLIS_SECRETS_KEY=new), pytest.raises(s.SecretsUnreadable):
        s.secrets_decrypt(token)
    with override_settings(TRELLIS_SECRETS_KEY=f"{new},{old}"):
        assert s.secrets_decrypt(token) == {"k": "value-1"}


def test_a_bad_configured_key_is_a_loud_configuration_error() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(TRELLIS_SECRETS_KEY="not-a-key"), pytest.raises(ImproperlyConfigured):
        s.secrets_encrypt({"k": "v"})


def test_redact_hides_secret_values_everywhere_in_a_json_value() -> None:
    value = {
        "headers": {"authorization": "Bearer sk-live-abcdef"},
        "list": ["x sk-live-abcdef y", 3, None],
        "sk-live-abcdef": True,
    }
    out = s.redact(value, ["sk-live-abcdef", "ab"])
    assert "sk-live-abcdef" not in str(out)
    assert out["headers"]["authorization"] == "Bearer •••"
    assert out["list"] == ["x ••• y", 3, None]
    # Too-short values are left alone inside text.
    assert s.redact_text("about", ["ab"]) == "about"


def test_secret_names_are_masked_for_display() -> None:
    assert s.secret_names_masked({"b": "1", "a": "2"}) == {"a": "•••", "b": "•••"}


def test_redact_hides_the_transforms_of_a_secret_too() -> None:
    secret = "Zq8wK3yP9_mX7vB2nT4"
    value = {
        "lower": secret.lower(),
        "upper": f"token={secret.upper()};",
        "piece": f"got {secret[3:9]} back",
        "parts": secret.split("_"),
        "error": f"404 for /charges/{secret[:12].lower()}/x",
    }
    out = s.redact(value, [secret])
    assert out == {
        "lower": "•••",
        "upper": "token=•••;",
        "piece": "got ••• back",
        "parts": ["•••", "•••"],
        "error": "404 for /charges/•••/x",
    }
    # Text made of no 4-character fragment of the secret is left as it is.
    assert s.redact("hello wor K3y", [secret]) == "hello wor K3y"


@pytest.mark.parametrize("length", range(4, 20))
def test_a_fragment_of_any_length_is_masked_whole(length: int) -> None:
    secret = "Zq8wK3yP9_mX7vB2nT4"
    for start in range(len(secret) - length + 1):
        piece = secret[start : start + length]
        assert s.redact({"v": [f"<{piece}>"]}, [secret]) == {"v": ["<•••>"]}, piece


def test_a_secret_with_characters_json_escapes_is_still_masked_in_a_value() -> None:
    secret = 'pa"ss\\w0rd\n42'
    out = s.redact({"a": {"b": [f"x {secret} y", secret.upper()]}}, [secret])
    assert out == {"a": {"b": ["x ••• y", "•••"]}}
