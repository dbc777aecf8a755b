"""Turn every error into a JSON body that names what was wrong — never a traceback.

Every error body has a ``code`` and a ``message``; a 400 about the request's content also
has ``errors: [{path, message}]``, one per problem, where ``path`` is a JSON path into the
body (``name``, ``allowed_hosts[2]``) or, for ``invalid_spec``, into the spec
(``sequences[2].events[0].input.body.id``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from runtime.errors import Issue, RunRefused, SpecError, TrellisError

logger = logging.getLogger("trellis.api")


class StorageUnavailable(exceptions.APIException):
    """The database could not take the write (disk full, locked too long, gone): nothing
    of the request was kept (its transaction rolled back); trying again later may work."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; nothing was changed. Try again later."
    default_code = "unavailable"


class ServerError(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "An unexpected error occurred; nothing was changed. It has been logged."
    default_code = "server_error"


def _storage_error(exc: DatabaseError) -> StorageUnavailable:
    text = str(exc).lower()
    if "full" in text or "no space" in text:  # SQLITE_FULL; PostgreSQL's disk_full (53100)
        return StorageUnavailable(
            "The server's storage is full; nothing was changed. Try again later.",
            code="storage_full",
        )
    return StorageUnavailable()


def pydantic_issues(exc: PydanticValidationError, prefix: str = "") -> list[Issue]:
    """pydantic's error locations as JSON paths.

    ('sequences', 2, 'events', 0) → sequences[2].events[0]
    """
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


def detail_issues(detail: Any, prefix: str = "") -> list[Issue]:
    """DRF's nested error detail ({"a": {"b": [{"c": ["msg"]}]}}) as flat JSON paths."""
    if isinstance(detail, dict):
        issues = []
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            issues.extend(detail_issues(value, path))
        return issues
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [Issue(path=prefix or "$", message=str(item)) for item in detail]
        issues = []
        for index, item in enumerate(detail):
            if isinstance(item, str):
                issues.append(Issue(path=prefix or "$", message=str(item)))
            elif item:  # a ListSerializer gives {} for the items that were fine
                issues.extend(detail_issues(item, f"{prefix}[{index}]"))
        return issues
    return [Issue(path=prefix or "$", message=str(detail))]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _invalid(issues: list[Issue], code: str = "invalid") -> dict[str, Any]:
    # Messages may quote the input; a megabyte of it helps nobody.
    issues = [Issue(_short(i.path), _short(i.message)) for i in issues[:100]]
    first = issues[0] if issues else Issue("$", "invalid request")
    return {
        "code": code,
        "message": f"{first.path}: {first.message}",
        "errors": [issue.as_json() for issue in issues],
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PydanticValidationError):
        exc = SpecError(pydantic_issues(exc))
    if isinstance(exc, TrellisError):
        set_rollback()
        status_code = exc.status if isinstance(exc, RunRefused) else status.HTTP_400_BAD_REQUEST
        body = exc.as_json()
        body.setdefault("message", str(exc))
        return Response(body, status=status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ProtectedError | RestrictedError):
        exc = exceptions.APIException("Other records still refer to this one.", code="in_use")
        exc.status_code = status.HTTP_409_CONFLICT
    elif isinstance(exc, IntegrityError):
        # A race past the services' own uniqueness checks: report it, don't crash.
        exc = exceptions.APIException("This conflicts with an existing record.", code="conflict")
        exc.status_code = status.HTTP_409_CONFLICT
    elif isinstance(exc, RecursionError):
        exc = exceptions.ValidationError({"$": ["the request is nested too deeply"]})
    elif isinstance(exc, DataError):
        # A value the database cannot hold (out of range, too long): the request's fault.
        exc = exceptions.ValidationError({"$": ["a value is out of range for the database"]})
    elif isinstance(exc, DatabaseError) and not isinstance(
        exc, ProgrammingError | NotSupportedError
    ):
        # Disk full, a lock held too long, a lost connection: the views' transactions roll
        # back as the error leaves them, so a 503 means nothing of the request was kept.
        logger.warning("API request refused, database error: %s", exc)
        exc = _storage_error(exc)
    elif not isinstance(exc, exceptions.APIException):
        # A bug: log the traceback for the admin, answer JSON without it.
        logger.error("Unexpected error in %s", _view_name(context), exc_info=exc)
        exc = ServerError()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = _invalid(detail_issues(exc.detail))
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        detail = exc.detail
        message = str(detail) if isinstance(detail, str) else str(exc)
        response.data = {"code": str(code), "message": message}
    return response


def _view_name(context: dict[str, Any]) -> str:
    view = context.get("view")
    return type(view).__name__ if view is not None else "an API view"


# Django's own error pages for requests no API view handled (a URL matching no route, a
# crash outside DRF): JSON under /api/, like every other API answer; HTML elsewhere.


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "No such API endpoint."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {"code": "server_error", "message": ServerError.default_detail}
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
