"""OpenAPI schema hooks (drf-spectacular)."""

from __future__ import annotations

from typing import Any


def drop_slash_aliases(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """Keep one of each route that also answers with/without its trailing slash: the
    first one declared, which is the documented spelling."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for endpoint in endpoints:
        route, _regex, method, _view = endpoint
        key = (route.rstrip("/"), method)
        if key in seen:
            continue
        seen.add(key)
        kept.append(endpoint)
    return kept
