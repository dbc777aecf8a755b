from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from designer import selectors, services
from designer.models import (
    Activation,
    AuditEntry,
    Component,
    Membership,
    Product,
    Role,
    VersionState,
    WorkflowVersion,
)
from runtime.errors import SpecError
from tests.designer.conftest import main_sequence, two_level_spec

pytestmark = pytest.mark.django_db


def _workflow(product: Product, user: User, **kw: object):  # type: ignore[no-untyped-def]
    return services.workflow_create(
        product=product, tag="onboarding", name="Onboarding", author=user, **kw
    )


def test_it_publishes_the_draft_as_version_one_with_plan_and_checksum(
    product: Product, designer_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, designer_user, spec=main_sequence())
    draft = selectors.draft_get(workflow=workflow)
    assert draft is not None

    version = services.workflow_publish(workflow=workflow, author=designer_user, note="first")

    assert version.pk == draft.pk  # the draft row became the version
    assert (version.state, version.number, version.note) == (VersionState.PUBLISHED, 1, "first")
    assert len(version.checksum) == 64
    assert version.plan["sequences"][0]["tag"] == "main_sequence"
    assert version.author == designer_user and version.published_at is not None
    assert selectors.draft_get(workflow=workflow) is None


def test_it_numbers_versions_one_after_another(
    product: Product, designer_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, designer_user)
    v1 = services.workflow_publish(workflow=workflow, author=designer_user, spec=main_sequence())
    v2 = services.workflow_publish(workflow=workflow, author=designer_user, spec=two_level_spec())
    assert (v1.number, v2.number) == (1, 2)
    assert [v.number for v in selectors.version_list(workflow=workflow)] == [2, 1]


def test_publishing_an_unchanged_spec_returns_the_latest_version_and_drops_the_draft(
    product: Product, designer_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, designer_user)
    v1 = services.workflow_publish(workflow=workflow, author=designer_user, spec=main_sequence())
    services.draft_save(workflow=workflow, spec=main_sequence(), author=designer_user)

    again = services.workflow_publish(workflow=workflow, author=designer_user)

    assert again.pk == v1.pk
    assert workflow.versions.count() == 1
    assert AuditEntry.objects.filter(action="workflow.publish").count() == 1


def test_a_spec_that_does_not_compile_is_not_published(
    product: Product, designer_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, designer_user)
    spec = main_sequence()
    spec["sequences"][0]["parents"] = ["nowhere"]
    with pytest.raises(SpecError) as caught:
        services.workflow_publish(workflow=workflow, author=designer_user, spec=spec)
    assert any(i.path.startswith("sequences[0].parents") for i in caught.value.issues)
    assert not workflow.versions.exists()


def test_publishing_checks_events_against_the_products_components(
    product: Product, designer_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, designer_user)
    spec = main_sequence()
    spec["sequences"][0]["events"][0]["event"] = "delete_user"
    with pytest.raises(SpecError) as caught:
        services.workflow_publish(workflow=workflow, author=designer_user, spec=spec)
    assert any(i.path.startswith("sequences[0].events[0]") for i in caught.value.issues)


def test_publishing_without_draft_or_spec_names_the_spec(
    product: Product, designer_user: User
) -> None:
    workflow = _workflow(product, designer_user)
    with pytest.raises(ValidationError) as caught:
        services.workflow_publish(workflow=workflow, author=designer_user)
    assert "spec" in caught.value.message_dict


def test_a_draft_with_a_bad_shape_is_refused_with_paths(
    product: Product, designer_user: User
) -> None:
    workflow = _workflow(product, designer_user)
    with pytest.raises(SpecError) as caught:
        services.draft_save(
            workflow=workflow,
            spec={"sequences": [{"tag": "a", "events": [{"type": "NOPE", "event": "x"}]}]},
            author=designer_user,
        )
    assert [i.path for i in caught.value.issues] == ["sequences[0].events[0].type"]


def test_saving_a_draft_twice_keeps_one_draft(product: Product, designer_user: User) -> None:
    workflow = _workflow(product, designer_user)
    services.draft_save(workflow=workflow, spec=main_sequence(), author=designer_user)
    services.draft_save(workflow=workflow, spec=two_level_spec(), author=designer_user)
    drafts = WorkflowVersion.objects.filter(workflow=workflow, state=VersionState.DRAFT)
    assert drafts.count() == 1
    assert len(drafts.get().spec["sequences"]) == 2


def test_component_infos_give_kind_and_declared_events(
    product: Product, components: list[Component]
) -> None:
    infos = services.component_infos(product)
    assert infos["accounts"].kind == "app"
    assert infos["accounts"].events == frozenset({"validate_user"})
    assert infos["mailer"].events == frozenset({"send_welcome_email"})


def test_activation_follows_the_latest_version_unless_pinned(
    product: Product, admin_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, admin_user)
    v1 = services.workflow_publish(workflow=workflow, author=admin_user, spec=main_sequence())
    services.workflow_publish(workflow=workflow, author=admin_user, spec=two_level_spec())
    dev = product.environments.get(slug="dev")
    staging = product.environments.get(slug="staging")

    services.activation_set(workflow=workflow, environment=dev, active=True, actor=admin_user)
    services.activation_set(
        workflow=workflow, environment=staging, active=True, version=v1, actor=admin_user
    )

    rows = {r.environment.slug: r for r in selectors.activation_rows(workflow=workflow)}
    assert (rows["dev"].active, rows["dev"].version, rows["dev"].pinned) == (True, 2, False)
    assert (rows["staging"].active, rows["staging"].version, rows["staging"].pinned) == (
        True,
        1,
        True,
    )
    assert (rows["prd"].active, rows["prd"].managed_by) == (False, "")
    audit = AuditEntry.objects.filter(action="activation.set").order_by("id")
    assert [a.target for a in audit] == ["onboarding@dev", "onboarding@staging"]
    assert audit[0].actor == admin_user and audit[0].after["active"] is True


def test_activating_before_any_publish_is_refused(product: Product, admin_user: User) -> None:
    workflow = _workflow(product, admin_user)
    with pytest.raises(ValidationError) as caught:
        services.activation_set(
            workflow=workflow, environment=product.environments.first(), active=True
        )
    assert "active" in caught.value.message_dict


def test_code_first_envs_never_override_a_hand_made_decision(
    product: Product, admin_user: User, components: list[Component]
) -> None:
    workflow = _workflow(product, admin_user, source="code")
    services.workflow_publish(workflow=workflow, author=None, spec=main_sequence())
    dev = product.environments.get(slug="dev")
    prd = product.environments.get(slug="prd")

    services.activation_set(workflow=workflow, environment=dev, active=False, actor=admin_user)
    services.activation_set(workflow=workflow, environment=dev, active=True, managed_by="code")
    services.activation_set(workflow=workflow, environment=prd, active=True, managed_by="code")

    assert Activation.objects.get(workflow=workflow, environment=dev).active is False
    code_made = Activation.objects.get(workflow=workflow, environment=prd)
    assert (code_made.active, code_made.managed_by) == (True, "code")


def test_a_version_of_another_workflow_cannot_be_pinned(
    product: Product, admin_user: User, components: list[Component]
) -> None:
    one = _workflow(product, admin_user)
    other = services.workflow_create(product=product, tag="other", name="Other")
    foreign = services.workflow_publish(workflow=other, author=None, spec=main_sequence())
    with pytest.raises(ValidationError):
        services.activation_set(
            workflow=one, environment=product.environments.first(), active=True, version=foreign
        )


def test_the_last_admin_cannot_be_removed_or_demoted(product: Product, admin_user: User) -> None:
    membership = Membership.objects.get(user=admin_user, product=product)
    with pytest.raises(ValidationError):
        services.member_remove(membership=membership, actor=admin_user)
    with pytest.raises(ValidationError):
        services.member_set(product=product, user=admin_user, role=Role.VIEWER, actor=admin_user)


def test_membership_changes_are_audited(
    product: Product, admin_user: User, viewer_user: User
) -> None:
    services.member_set(product=product, user=viewer_user, role=Role.DESIGNER, actor=admin_user)
    entry = AuditEntry.objects.get(action="member.set")
    assert (entry.actor, entry.target, entry.before, entry.after) == (
        admin_user,
        "vera",
        {"role": "viewer"},
        {"role": "designer"},
    )


def test_audit_masks_secrets(product: Product, admin_user: User) -> None:
    entry = services.audit_record(
        product=product,
        actor=admin_user,
        action="config.set",
        target="accounts@dev",
        after={"base_url": "http://x", "secrets": {"api_key": "hunter2"}},
    )
    assert entry.after == {"base_url": "http://x", "secrets": "•••"}


def test_a_production_environment_is_protected_from_deletion(
    product: Product, admin_user: User
) -> None:
    with pytest.raises(ValidationError):
        services.environment_delete(
            environment=product.environments.get(slug="prd"), actor=admin_user
        )
