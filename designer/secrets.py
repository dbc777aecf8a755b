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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2
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
    fragments = _fragments(
        tuple(sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_REDACT_LENGTH}))
    )
    if fragments is None or not _may_hold(value, fragments):
        return value
    return _redact(value, fragments)


def _may_hold(value: Any, fragments: _Fragments) -> bool:
    """False when no string in ``value`` can hold a fragment: one linear scan of its JSON
    text (the common case, a result that does not echo a secret, costs about what
    serialising it does), instead of a walk calling the matcher on each string."""
    if isinstance(value, str) or not isinstance(value, dict | list | tuple):
        return True
    if not fragments.json_safe:
        return True
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return True
    return fragments.pattern.search(text) is not None


def redact_text(text: str, secrets: Iterable[str]) -> str:
    out = redact(text, secrets)
    return out if isinstance(out, str) else text


@dataclass(frozen=True)
class _Fragments:
    """Every MIN_REDACT_LENGTH-long fragment of some secrets, lower-cased, and a pattern
    matching any of them in any case."""

    grams: frozenset[str]
    pattern: Any  # re2._Regexp
    # No fragment holds a character JSON escapes: the JSON text of a value holds a
    # fragment wherever one of its strings does.
    json_safe: bool


@lru_cache(maxsize=256)
def _fragments(secrets: tuple[str, ...]) -> _Fragments | None:
    # RE2 runs the alternation of every fragment as one automaton: a step's output is read
    # once, in linear time, whatever the number and length of the secrets (Python's re
    # tries each alternative at each position: seconds for a megabyte and ten secrets).
    size = MIN_REDACT_LENGTH
    grams = frozenset(s[i : i + size].lower() for s in secrets for i in range(len(s) - size + 1))
    if not grams:
        return None
    alternatives = "|".join(re2.escape(g) for g in sorted(grams))
    json_safe = not any(c in '"\\' or c < " " for s in secrets for c in s)
    return _Fragments(grams, re2.compile(f"(?i)(?:{alternatives})"), json_safe)


_SHORT = 64


def _mask_text(text: str, fragments: _Fragments) -> str:
    """``text`` with every run covered by (overlapping or adjacent) fragments as '•••'."""
    if len(text) < MIN_REDACT_LENGTH:
        return text
    size, grams = MIN_REDACT_LENGTH, fragments.grams
    if len(text) <= _SHORT:
        # Most strings of a result are short: a few set lookups beat a call into RE2.
        low = text.lower()
        if len(low) == len(text) and not any(
            low[i : i + size] in grams for i in range(len(low) - size + 1)
        ):
            return text

    def extend(end: int) -> int:
        # Matches do not overlap: a fragment starting inside the last one (or right after
        # it) continues the run.
        moved = True
        while moved:
            moved = False
            for at in range(end - size + 1, end + 1):
                if text[at : at + size].lower() in grams:
                    end, moved = at + size, True
                    break
        return end

    out: list[str] = []
    kept = 0  # text[kept:start] is shown
    start = end = -1  # the run being masked
    for match in fragments.pattern.finditer(text):
        at = match.start()
        if at > end >= 0:
            end = extend(end)
        if at <= end:
            end = max(end, match.end())
            continue
        if start >= 0:
            out += (text[kept:start], REDACTED)
            kept = end
        start, end = at, match.end()
    if start < 0:
        return text
    end = extend(end)
    out += (text[kept:start], REDACTED, text[end:])
    return "".join(out)


def _redact(value: Any, fragments: _Fragments) -> Any:
    if isinstance(value, str):
        return _mask_text(value, fragments)
    if isinstance(value, dict):
        return {_redact(k, fragments): _redact(v, fragments) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, fragments) for v in value]
    return value
