"""OpenAPI schema hooks (drf-spectacular)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


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


# --- what every operation may answer ------------------------------------------------------


class IssueOut(serializers.Serializer[Any]):
    path = serializers.CharField(help_text="JSON path into the body (or the spec).")
    message = serializers.CharField()


class ErrorOut(serializers.Serializer[Any]):
    """The body of every error (designer/api/errors.py)."""

    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, refused, …")
    message = serializers.CharField()
    # A field named like Serializer.errors (the validation errors property): fine here,
    # this serializer only describes a response body in the schema.
    errors = IssueOut(many=True, required=False, help_text="One entry per problem (400).")  # type: ignore[assignment]
    field = serializers.CharField(required=False, help_text="The field at fault (runs API).")


ERROR_DESCRIPTIONS = {
    400: "The request is invalid; `errors` names each field.",
    401: "Not authenticated (send `Authorization: Token <token>` or a session cookie).",
    403: "Authenticated, but the role in this product does not allow it.",
    404: "No such object, or not visible to the caller.",
    409: "The request conflicts with the current state (in use, already exists, inactive).",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    429: "Too many attempts; retry after the Retry-After header's delay.",
    503: "The database is unavailable or its storage is full; nothing was changed.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, saying what the API does beyond the happy path:

    - request bodies of strict serializers (designer.api.serializers.Strict, which refuse
      fields they do not know) have ``additionalProperties: false``;
    - every operation lists the error statuses it can answer, with the error body.
    """

    def _postprocess_serializer_schema(
        self, schema: dict[str, Any], serializer: Any, direction: str
    ) -> dict[str, Any]:
        # why here: DRF imports this class from settings, before the models can load.
        from designer.api.serializers import Strict

        # drf-spectacular leaves this method unannotated.
        schema = super()._postprocess_serializer_schema(  # type: ignore[no-untyped-call]
            schema, serializer, direction
        )
        if direction == "request" and isinstance(serializer, Strict):
            schema["additionalProperties"] = False
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        has_body = "requestBody" in operation
        codes = [401, 403, 503]
        if has_body or operation.get("parameters"):
            codes.append(400)
        if has_body or operation.get("parameters"):
            codes.append(404)  # the object in the path, or one a filter or the body names
        if self.method != "GET":
            codes.append(409)
        if has_body:
            codes += [413, 415]
        if getattr(self.view, "throttle_classes", None):
            codes.append(429)
        error = self.resolve_serializer(ErrorOut, "response").ref
        responses = operation.setdefault("responses", {})
        for code in sorted(codes):
            responses.setdefault(
                str(code),
                {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": error}},
                },
            )
        return operation
