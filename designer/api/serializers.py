"""Shapes of the authoring API's requests and responses. They only shape HTTP: checking
a spec is the spec's and compiler's job, writing is the services' job.

Input serializers are strict: an unknown field, a number where text belongs or a string
where a boolean belongs is a 400 naming the field, not a silent coercion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from designer.models import (
    ComponentKind,
    Role,
    Source,
    retention_effective,
    retention_problems,
)
from designer.selectors import ActivationRow, activation_rows, draft_get
from runtime.netguard import entry_parse
from runtime.spec import TAG_RE

# --- strict fields ------------------------------------------------------------------------


class Text(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        # The documented maxLength is of the text sent: DRF would measure it after
        # trimming surrounding whitespace and accept a longer text than the schema allows.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))


class Slug(serializers.SlugField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Not a valid string.")
        return str(super().to_internal_value(data))


class Flag(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data


class Number(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("A whole number is required.")
        return int(super().to_internal_value(data))


class Choice(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            # The message quotes the input: keep a megabyte out of it.
            self.fail("invalid_choice", input=str(data)[:50])
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObject(serializers.JSONField):
    """A JSON object (not a list, string or number)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError("Must be a JSON object.")
        return dict(data)


class Strict(serializers.Serializer[Any]):
    """Refuses fields it does not know, naming each one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = [key for key in data if key not in writable]
            if unknown:
                raise serializers.ValidationError(
                    {str(key)[:100]: ["Unknown field."] for key in unknown}
                )
        return super().to_internal_value(data)


# --- products, environments, members ------------------------------------------------------


class ProductIn(Strict):
    slug = Slug(max_length=50)
    name = Text(max_length=200)
    description = Text(max_length=5000, required=False, allow_blank=True)


class ProductUpdate(Strict):
    name = Text(max_length=200, required=False)
    description = Text(max_length=5000, required=False, allow_blank=True)


class ProductOut(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class EnvironmentIn(Strict):
    slug = Slug(max_length=50)
    name = Text(max_length=100)
    order = Number(min_value=0, max_value=1_000_000, required=False)
    is_production = Flag(required=False)
    allowed_hosts = serializers.ListField(
        child=Text(max_length=253),
        max_length=200,
        required=False,
        help_text="Where steps in this environment may connect: host names, *.domain, IP "
        "addresses, networks (10.0.0.0/8), any of them :port. Private, loopback and "
        "link-local addresses need an entry naming the address. Empty: public addresses "
        "only, and nothing at all in a production environment.",
    )
    retention = serializers.DictField(
        required=False,
        help_text="How long finished runs are kept: completed_days, failed_days (0 = forever), "
        "keep_last (the newest runs of each workflow always kept), audit_days. A missing or "
        "null key takes the product default.",
    )

    def validate_retention(self, value: dict[str, Any]) -> dict[str, Any]:
        problems = retention_problems(value)
        if problems:
            raise serializers.ValidationError(
                {path.removeprefix("retention."): [message] for path, message in problems}
            )
        return {key: item for key, item in value.items() if item is not None}

    def validate_allowed_hosts(self, value: list[str]) -> list[str]:
        # Keyed by index, like DRF's ListField errors: the API shows allowed_hosts[2].
        problems: dict[Any, list[str]] = {}
        for index, entry in enumerate(value):
            try:
                entry_parse(entry)
            except ValueError as exc:
                problems[index] = [str(exc)]
        if problems:
            raise serializers.ValidationError(problems)
        return value


class EnvironmentUpdate(EnvironmentIn):
    slug = Slug(max_length=50, required=False)
    name = Text(max_length=100, required=False)


class EnvironmentOut(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    order = serializers.IntegerField()
    is_production = serializers.BooleanField()
    allowed_hosts = serializers.ListField(child=serializers.CharField())
    retention = serializers.DictField(child=serializers.IntegerField())
    retention_effective = serializers.SerializerMethodField()

    def get_retention_effective(self, environment: Any) -> dict[str, int]:
        return retention_effective(environment)


class MemberIn(Strict):
    username = Text(max_length=150)
    role = Choice(choices=Role.choices)


class MemberUpdate(Strict):
    role = Choice(choices=Role.choices)


class MemberOut(serializers.Serializer[Any]):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- components ---------------------------------------------------------------------------


def _check_events(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 1000:
        raise serializers.ValidationError("At most 1000 events.")
    problems = {}
    for name, definition in value.items():
        if not TAG_RE.match(name):
            problems[name[:100]] = ["An event tag is letters, digits, _ - . (at most 100)."]
        elif not isinstance(definition, Mapping):
            problems[name] = ["An event's definition is a JSON object."]
    if problems:
        raise serializers.ValidationError(problems)
    return value


class ComponentIn(Strict):
    kind = Choice(choices=ComponentKind.choices)
    tag = Slug(max_length=100)
    name = Text(max_length=200, required=False, allow_blank=True)
    description = Text(max_length=5000, required=False, allow_blank=True)
    events = JSONObject(
        required=False,
        help_text="What can be done with the component, keyed by event tag: "
        "{event_tag: {definition}}; the definition's shape depends on the kind.",
    )

    def validate_events(self, value: dict[str, Any]) -> dict[str, Any]:
        return _check_events(value)


class ComponentUpdate(ComponentIn):
    kind = Choice(choices=ComponentKind.choices, required=False)
    tag = Slug(max_length=100, required=False)


class ComponentOut(serializers.Serializer[Any]):
    kind = serializers.CharField()
    tag = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    events = JSONObject()
    updated_at = serializers.DateTimeField()


# --- workflows ----------------------------------------------------------------------------


class WorkflowIn(Strict):
    tag = Slug(max_length=100)
    name = Text(max_length=200)
    description = Text(max_length=5000, required=False, allow_blank=True)
    source = Choice(choices=Source.choices, required=False)  # type: ignore[assignment]
    spec = JSONObject(required=False, help_text="An initial draft (see /api/v1/spec-schema).")


class WorkflowUpdate(Strict):
    name = Text(max_length=200, required=False)
    description = Text(max_length=5000, required=False, allow_blank=True)


class ActivationOut(serializers.Serializer[Any]):
    env = serializers.CharField(source="environment.slug")
    active = serializers.BooleanField()
    version = serializers.IntegerField(
        allow_null=True, help_text="The live version (pinned, or else the latest)."
    )
    pinned = serializers.BooleanField()
    managed_by = serializers.CharField(help_text="'user', 'code', or '' when never set.")


class WorkflowOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    tag = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    product = serializers.CharField(source="product.slug")
    draft = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    activations = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field({"type": "object", "nullable": True})
    def get_draft(self, workflow: Any) -> dict[str, Any] | None:
        draft = draft_get(workflow=workflow)
        return draft.spec if draft is not None else None

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_latest_version(self, workflow: Any) -> int | None:
        return getattr(workflow, "latest_number", None)

    @extend_schema_field(ActivationOut(many=True))
    def get_activations(self, workflow: Any) -> list[dict[str, Any]]:
        rows: list[ActivationRow] = activation_rows(workflow=workflow)
        return list(ActivationOut(rows, many=True).data)


class SpecIn(Strict):
    spec = JSONObject(help_text="A workflow spec (see /api/v1/spec-schema).")


class DraftOut(serializers.Serializer[Any]):
    spec = JSONObject(allow_null=True)
    author = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ValidateOut(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    levels = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Sequence tags by level: levels[0] are the roots.",
    )
    sequences = serializers.IntegerField()
    steps = serializers.IntegerField()


class PublishIn(Strict):
    spec = JSONObject(required=False, help_text="Publish this spec; default: the draft.")
    note = Text(max_length=500, required=False, allow_blank=True)


class VersionOut(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    checksum = serializers.CharField()
    author = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    published_at = serializers.DateTimeField()


class VersionDetailOut(VersionOut):
    spec = JSONObject()
    plan = JSONObject()


class PublishOut(VersionDetailOut):
    unchanged = serializers.BooleanField(
        help_text="True when the spec equals the latest version's: nothing new was published."
    )


class ActivationIn(Strict):
    active = Flag()
    version = Number(
        min_value=1,
        max_value=2_000_000_000,
        required=False,
        allow_null=True,
        help_text="Pin this version number; null or absent: follow the latest version.",
    )


class AuditOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    action = serializers.CharField()
    target = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class AuditPage(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditOut(many=True)


# --- auth ---------------------------------------------------------------------------------


class TokenIn(Strict):
    username = Text(max_length=150)
    password = Text(max_length=1000, trim_whitespace=False)


class TokenOut(serializers.Serializer[Any]):
    token = serializers.CharField()
    username = serializers.CharField()
    # When the token stops working (TRELLIS_TOKEN_TTL_HOURS); null: never.
    expires = serializers.DateTimeField(allow_null=True)
