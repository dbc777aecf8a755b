"""Turn every error into a JSON body that names what was wrong — never a traceback."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from runtime.errors import Issue, RunRefused, SpecError, TrellisError


def pydantic_issues(exc: PydanticValidationError, prefix: str = "") -> list[Issue]:
    """pydantic's error locations as JSON paths: ('sequences', 2, 'events', 0) → sequences[2].events[0]."""
    issues = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        issues.append(Issue(path=path or "$", message=err["msg"]))
    return issues


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PydanticValidationError):
        exc = SpecError(pydantic_issues(exc))
    if isinstance(exc, SpecError):
        return Response(exc.as_json(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RunRefused):
        return Response(exc.as_json(), status=exc.status)
    if isinstance(exc, TrellisError):
        return Response(exc.as_json(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)
