"""Every model is in the admin; runtime models and published versions are read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from designer import services
from designer.models import AuditEntry, Component, Product, WorkflowVersion
from runtime.models import JournalEntry, Run, StepRun
from tests.designer.conftest import main_sequence

pytestmark = pytest.mark.django_db

DESIGNER_MODELS = [
    "product",
    "environment",
    "membership",
    "component",
    "workflow",
    "workflowversion",
    "activation",
    "auditentry",
]
RUNTIME_MODELS = ["run", "sequencerun", "steprun", "journalentry", "signal"]


@pytest.fixture
def root(product: Product, components: list[Component], admin_user: User) -> Client:
    user = User.objects.create_superuser("root", password="pw")
    workflow = services.workflow_create(product=product, tag="onboarding", name="Onboarding")
    version = services.workflow_publish(workflow=workflow, author=user, spec=main_sequence())
    services.activation_set(
        workflow=workflow, environment=product.environments.get(slug="dev"), active=True
    )
    run = Run.objects.create(
        workflow=workflow, version=version, environment=product.environments.first()
    )
    StepRun.objects.create(run=run, tag="validate_user", sequence="main_sequence")
    JournalEntry.objects.create(run=run, seq=1, kind="run_started", at=timezone.now())
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", DESIGNER_MODELS)
def test_designer_models_have_list_and_detail_pages(root: Client, model: str) -> None:
    assert root.get(reverse(f"admin:designer_{model}_changelist")).status_code == 200
    from django.apps import apps

    obj = apps.get_model("designer", model).objects.first()
    assert obj is not None
    assert root.get(reverse(f"admin:designer_{model}_change", args=[obj.pk])).status_code == 200


@pytest.mark.parametrize("model", RUNTIME_MODELS)
def test_runtime_models_are_read_only(root: Client, model: str) -> None:
    assert root.get(reverse(f"admin:runtime_{model}_changelist")).status_code == 200
    assert root.get(reverse(f"admin:runtime_{model}_add")).status_code == 403


def test_a_run_page_shows_its_steps_and_journal(root: Client) -> None:
    run = Run.objects.get()
    page = root.get(reverse("admin:runtime_run_change", args=[run.pk]))
    assert page.status_code == 200
    assert b"validate_user" in page.content and b"run_started" in page.content
    assert root.post(reverse("admin:runtime_run_change", args=[run.pk]), {}).status_code == 403


def test_a_published_version_cannot_be_changed(root: Client) -> None:
    version = WorkflowVersion.objects.get()
    response = root.post(
        reverse("admin:designer_workflowversion_change", args=[version.pk]), {"note": "x"}
    )
    assert response.status_code == 403


def test_an_activation_made_in_the_admin_is_audited(root: Client, product: Product) -> None:
    run = Run.objects.get()
    response = root.post(
        reverse("admin:designer_activation_add"),
        {
            "workflow": run.workflow_id,
            "environment": product.environments.get(slug="staging").pk,
            "active": "on",
            "version": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    entry = AuditEntry.objects.filter(action="activation.set").latest("id")
    assert (entry.actor.username, entry.target) == ("root", "onboarding@staging")
