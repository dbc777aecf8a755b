"""Django admin for the authoring models. Changes that the audit log covers (activation,
membership, components, environments) are recorded from here too; published versions and
the audit log itself are read-only; secrets are never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from designer import services
from designer.models import (
    Activation,
    AuditEntry,
    Component,
    ComponentConfig,
    Environment,
    Membership,
    Product,
    VersionState,
    Workflow,
    WorkflowVersion,
)

# Django's admin classes are generic only in django-stubs: subscripted at run time they
# would need django_stubs_ext.monkeypatch(), a runtime dependency. Parameters for mypy only.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
    StackedInline = admin.StackedInline[Any, Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin = admin.ModelAdmin
    StackedInline = admin.StackedInline
    TabularInline = admin.TabularInline


class AuditedAdmin(ModelAdmin):
    """Records an audit entry for each save and delete made in the admin."""

    audit_action = ""

    def audit_target(self, obj: Any) -> str:
        return str(obj)

    def audit_product(self, obj: Any) -> Product | None:
        return getattr(obj, "product", None)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.audit_record(
            product=self.audit_product(obj),
            actor=request.user,
            action=f"{self.audit_action}.{'update' if change else 'create'}",
            target=self.audit_target(obj),
            after={name: str(form.cleaned_data.get(name)) for name in form.changed_data},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.audit_record(
            product=self.audit_product(obj),
            actor=request.user,
            action=f"{self.audit_action}.delete",
            target=self.audit_target(obj),
        )
        super().delete_model(request, obj)


class EnvironmentInline(TabularInline):
    model = Environment
    extra = 0
    fields = ["slug", "name", "order", "is_production"]


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Product)
class ProductAdmin(ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [EnvironmentInline, MembershipInline]


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    audit_action = "environment"
    list_display = ["__str__", "name", "order", "is_production"]
    list_filter = ["product", "is_production"]
    ordering = ["product", "order"]


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    audit_action = "member"
    list_display = ["user", "product", "role", "created_at"]
    list_filter = ["product", "role"]
    search_fields = ["user__username", "product__slug"]
    autocomplete_fields = ["user"]

    def audit_target(self, obj: Any) -> str:
        return str(obj.user)


class ComponentConfigInline(StackedInline):
    model = ComponentConfig
    extra = 0
    # Secrets are encrypted at rest and never shown; they are set through the API.
    exclude = ["secrets_encrypted"]


@admin.register(Component)
class ComponentAdmin(AuditedAdmin):
    audit_action = "component"
    list_display = ["tag", "kind", "product", "updated_at"]
    list_filter = ["product", "kind"]
    search_fields = ["tag", "name"]
    inlines = [ComponentConfigInline]

    def audit_target(self, obj: Any) -> str:
        return str(obj.tag)


class VersionInline(TabularInline):
    model = WorkflowVersion
    extra = 0
    fields = readonly_fields = ("number", "state", "checksum", "author", "note", "published_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ActivationInline(TabularInline):
    model = Activation
    extra = 0
    fields = ["environment", "active", "version", "managed_by", "updated_by", "updated_at"]
    readonly_fields = ["managed_by", "updated_by", "updated_at"]


@admin.register(Workflow)
class WorkflowAdmin(ModelAdmin):
    list_display = ["tag", "name", "product", "source", "updated_at"]
    list_filter = ["product", "source"]
    search_fields = ["tag", "name"]
    inlines = [VersionInline, ActivationInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, Activation):
                # Through the service: checks the version and writes the audit entry.
                services.activation_set(
                    workflow=instance.workflow,
                    environment=instance.environment,
                    active=instance.active,
                    version=instance.version,
                    actor=request.user,
                )
            else:
                instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ModelAdmin):
    list_display = ["__str__", "state", "checksum", "author", "published_at"]
    list_filter = ["state", "workflow__product"]
    search_fields = ["workflow__tag", "checksum"]
    readonly_fields = ["workflow", "state", "number", "plan", "checksum", "published_at"]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Published versions are immutable; only a draft's spec and note can change here.
        if isinstance(obj, WorkflowVersion) and obj.state == VersionState.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from draft_save and workflow_publish


@admin.register(Activation)
class ActivationAdmin(ModelAdmin):
    list_display = ["workflow", "environment", "active", "version", "managed_by", "updated_at"]
    list_filter = ["active", "managed_by", "environment__product"]
    readonly_fields = ["managed_by", "updated_by", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.activation_set(
            workflow=obj.workflow,
            environment=obj.environment,
            active=obj.active,
            version=obj.version,
            actor=request.user,
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(ModelAdmin):
    list_display = ["at", "product", "actor", "action", "target"]
    list_filter = ["product", "action"]
    search_fields = ["action", "target", "actor__username"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
