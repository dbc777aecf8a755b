"""Secrets at rest: Fernet-encrypted JSON, and redaction to '•••' wherever they'd show.

The key is ``settings.TRELLIS_SECRETS_KEY`` (a Fernet key; a comma-separated list rotates:
the first encrypts, all decrypt) or, when unset, a key derived from ``SECRET_KEY`` so the
embedded mode works out of the box. Changing ``SECRET_KEY`` without setting
``TRELLIS_SECRETS_KEY`` to the old derived key makes stored secrets unreadable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

REDACTED = "•••"
# Shorter values are not redacted inside free text: replacing every "ab" would garble
# messages and hide nothing worth hiding.
MIN_REDACT_LENGTH = 4


class SecretsUnreadable(Exception):
    """Stored secrets cannot be decrypted with the configured key."""


def derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"trellis-secrets-v1:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(configured: str, secret_key: str) -> MultiFernet:
    keys: list[bytes] = [k.strip().encode() for k in configured.split(",") if k.strip()]
    if not keys:
        keys = [derived_key(secret_key)]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "TRELLIS_SECRETS_KEY must be a Fernet key (urlsafe base64 of 32 bytes); "
            "make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(getattr(settings, "TRELLIS_SECRETS_KEY", "") or "", settings.SECRET_KEY)


def secrets_encrypt(values: Mapping[str, str]) -> str:
    """Encrypt a ``{name: value}`` dict; an empty dict is stored as ''."""
    clean = {str(k): str(v) for k, v in values.items()}
    if not clean:
        return ""
    return fernet().encrypt(json.dumps(clean, sort_keys=True).encode()).decode()


def secrets_decrypt(token: str) -> dict[str, str]:
    """Decrypt what :func:`secrets_encrypt` made. Raises SecretsUnreadable on a wrong key."""
    if not token:
        return {}
    try:
        raw = fernet().decrypt(token.encode())
    except InvalidToken as exc:
        raise SecretsUnreadable(
            "stored secrets cannot be decrypted: TRELLIS_SECRETS_KEY (or SECRET_KEY) changed"
        ) from exc
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()}


def secret_names_masked(values: Mapping[str, Any]) -> dict[str, str]:
    """``{name: '•••'}``: what an API may show about secrets."""
    return {name: REDACTED for name in sorted(values)}


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-like value where every secret value, and every transform of one
    that keeps runs of its characters, reads '•••' in strings (dict keys included).

    What is masked: any run of text covered by fragments of a secret at least
    MIN_REDACT_LENGTH characters long, in any letter case. That hides the value itself, its
    lower- and upper-case forms, its substrings and the parts it splits into (when they are
    that long), wherever they sit in a message or a response that echoes them."""
    pattern = _fragments(
        tuple(sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_REDACT_LENGTH}))
    )
    if pattern is None:
        return value
    return _redact(value, pattern)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    out = redact(text, secrets)
    return out if isinstance(out, str) else text


@lru_cache(maxsize=256)
def _fragments(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern matching (zero-width, so matches overlap) where any MIN_REDACT_LENGTH-long
    fragment of a secret starts, ignoring case. The regex engine scans the text in C: a
    step's output is read once whatever the number of fragments."""
    size = MIN_REDACT_LENGTH
    grams = {s[i : i + size].lower() for s in secrets for i in range(len(s) - size + 1)}
    if not grams:
        return None
    alternatives = "|".join(re.escape(g) for g in sorted(grams))
    return re.compile(f"(?=(?:{alternatives}))", re.IGNORECASE)


def _mask_text(text: str, pattern: re.Pattern[str]) -> str:
    if len(text) < MIN_REDACT_LENGTH:
        return text
    size = MIN_REDACT_LENGTH
    out: list[str] = []
    kept = 0  # text[kept:start] is shown
    start = end = -1  # the run of fragments being masked
    for match in pattern.finditer(text):
        at = match.start()
        if at <= end:  # overlaps or touches the current run: extend it
            end = at + size
            continue
        if start >= 0:
            out += (text[kept:start], REDACTED)
            kept = end
        start, end = at, at + size
    if start < 0:
        return text
    out += (text[kept:start], REDACTED, text[end:])
    return "".join(out)


def _redact(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return _mask_text(value, pattern)
    if isinstance(value, dict):
        return {_redact(k, pattern): _redact(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, pattern) for v in value]
    return value
