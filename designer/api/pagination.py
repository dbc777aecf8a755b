"""``?limit=&offset=`` paging that refuses what its schema forbids.

DRF's LimitOffsetPagination quietly falls back to its defaults on ``limit=abc`` or
``offset=true``: a client with a typo gets the first page and believes it got the page it
asked for. Here a bad value is a 400 naming the parameter, and the schema documents the
bounds (drf-spectacular does not list pagination parameters for plain APIViews).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


def _whole(request: Request, name: str, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < minimum:
        raise exceptions.ValidationError({name: [f"A whole number of at least {minimum}."]})
    return int(raw)


class StrictPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        limit = _whole(request, self.limit_query_param, 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _whole(request, self.offset_query_param, 0) or 0

    @classmethod
    def parameters(cls) -> list[Any]:
        return [
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1},
                description=f"Page size (default {cls.default_limit}, at most {cls.max_limit}).",
            ),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}),
        ]
