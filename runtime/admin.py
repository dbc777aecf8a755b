"""Runs in the Django admin: for looking, not touching. A run changes only through the
engine (which journals every transition), so every runtime model is read-only here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from runtime.models import JournalEntry, Run, SequenceRun, Signal, StepRun

# Django's admin classes are generic only in django-stubs: subscripted at run time they
# would need django_stubs_ext.monkeypatch(), a runtime dependency. Parameters for mypy only.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline


class ReadOnlyAdmin(ModelAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in self.model._meta.get_fields() if field.concrete]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class StepRunInline(ReadOnlyInline):
    model = StepRun
    fk_name = "run"  # not child_run
    fields = ["tag", "sequence", "status", "attempt", "started_at", "finished_at"]


class JournalInline(ReadOnlyInline):
    model = JournalEntry
    fields = ["seq", "kind", "step", "at"]
    ordering = ["seq"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "workflow", "environment", "status", "created_at", "finished_at"]
    list_filter = ["status", "environment__product", "environment__slug"]
    search_fields = ["id", "workflow__tag", "idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["workflow__product", "environment__product"]
    inlines = [StepRunInline, JournalInline]


@admin.register(SequenceRun)
class SequenceRunAdmin(ReadOnlyAdmin):
    list_display = ["run", "tag", "status", "started_at", "finished_at"]
    list_filter = ["status"]


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdmin):
    list_display = ["run", "tag", "sequence", "status", "attempt", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["tag"]


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["run", "seq", "kind", "step", "at"]
    list_filter = ["kind"]
    search_fields = ["step", "kind"]


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ["run", "name", "received_at", "consumed_by", "consumed_at"]
    search_fields = ["name"]
