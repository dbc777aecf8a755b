"""Governance in Chromium: promote a version from dev to prd on the activation matrix
(preview first: spec and configuration differences), see the matrix update, start runs in
prd and see them use the promoted version; an inactive environment refuses runs with a
clear message; the audit log page shows who promoted; the environments page edits a
component's configuration with a write-only secret and compares two environments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import harness
from tests.e2e.conftest import login, shot
from tests.e2e.harness import Server, create_workflow

# This module's own server, on the governance engineer's ports.
PORTS = range(8700, 8800)


@pytest.fixture(scope="module")
def gov_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    saved = harness.PORTS
    harness.PORTS = PORTS
    try:
        live = Server(tmp_path_factory.mktemp("e2e-gov")).start()
    finally:
        harness.PORTS = saved
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(chromium: Browser, gov_server: Server) -> Iterator[Page]:
    context = chromium.new_context(
        viewport={"width": 1600, "height": 1000}, base_url=gov_server.url
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def spec(pause: str) -> dict[str, Any]:
    return {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {"type": "SLEEP", "event": pause, "tag": "pause"},
                    {"type": "ACTION", "event": "validate_user", "input": {"id": "$Input{id}"}},
                ],
            }
        ]
    }


def publish(api: httpx.Client, tag: str, body: dict[str, Any]) -> int:
    response = api.post(f"/products/acme/workflows/{tag}/publish", json={"spec": body})
    assert response.status_code == 201, response.text
    return int(response.json()["number"])


def start_run(api: httpx.Client, env: str) -> httpx.Response:
    return api.post("/runs", json={"workflow": "acme/promo", "env": env, "input": {"id": "u1"}})


def cell(page: Page, env: str) -> Any:
    return page.get_by_test_id(f"cell-promo-{env}")


def promote_from_dev(page: Page, to: str) -> None:
    page.get_by_test_id("cell-promo-dev-promote").click()
    dialog = page.get_by_test_id("promote-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("promote-to").select_option(to)
    expect(page.get_by_test_id(f"preview-{to}")).to_be_visible()


def test_promote_dev_to_prd_and_run_the_promoted_version(page: Page, gov_server: Server) -> None:
    api = gov_server.api("alice")
    create_workflow(api, "promo", "Promo")
    assert publish(api, "promo", spec("1s")) == 1
    response = api.put("/products/acme/workflows/promo/activations/dev", json={"active": True})
    assert response.status_code == 200, response.text
    # Component configuration differs between dev and prd; prd has a secret dev lacks.
    api.put(
        "/products/acme/components/users-api/config/dev",
        json={"config": {"base_url": "http://users.dev.local"}},
    )
    api.put(
        "/products/acme/components/users-api/config/prd",
        json={
            "config": {"base_url": "https://users.example"},
            "secrets": {"api_key": "prd-secret-value-1"},
        },
    )

    login(page, "alice")
    page.goto("/p/acme/activation/")
    expect(page.get_by_test_id("deactivate-note")).to_contain_text("Deactivating stops new runs")
    expect(page.get_by_test_id("cell-promo-dev-state")).to_have_text("active")
    expect(page.get_by_test_id("cell-promo-prd-state")).to_have_text("inactive")

    # First promotion: nothing is live in prd, so the whole spec is new there.
    promote_from_dev(page, "prd")
    preview = page.get_by_test_id("preview-prd")
    expect(preview).to_contain_text("now: inactive")
    expect(page.get_by_test_id("spec-diff-prd")).to_contain_text("sequences")
    expect(page.get_by_test_id("config-diff-users-api")).to_contain_text("base_url")
    expect(page.get_by_test_id("config-diff-users-api")).to_contain_text(
        "secret api_key: only in prd"
    )
    expect(page.get_by_test_id("promote-dialog")).not_to_contain_text("prd-secret-value-1")
    shot(page, "governance-promote-preview")
    page.get_by_test_id("promote-confirm").click()
    expect(page.get_by_test_id("promote-dialog")).to_be_hidden()
    expect(page.get_by_test_id("cell-promo-prd-state")).to_have_text("active")
    expect(page.get_by_test_id("cell-promo-prd-version")).to_have_text("v1")
    expect(cell(page, "prd")).to_contain_text("pinned")

    # v2 is published: dev follows the latest, prd keeps the promoted v1.
    assert publish(api, "promo", spec("2s")) == 2
    page.reload()
    expect(page.get_by_test_id("cell-promo-dev-version")).to_have_text("v2")
    expect(page.get_by_test_id("cell-promo-prd-version")).to_have_text("v1")
    run = start_run(api, "prd")
    assert run.status_code == 202, run.text
    assert run.json()["version"] == 1
    assert start_run(api, "dev").json()["version"] == 2

    # Second promotion: the preview shows what changes from v1 to v2.
    promote_from_dev(page, "prd")
    spec_diff = page.get_by_test_id("spec-diff-prd")
    expect(spec_diff).to_contain_text("sequences[main].events[pause].event")
    expect(spec_diff).to_contain_text("1s")
    expect(spec_diff).to_contain_text("2s")
    page.get_by_test_id("promote-confirm").click()
    expect(page.get_by_test_id("cell-promo-prd-version")).to_have_text("v2")
    shot(page, "governance-matrix-after-promote")

    run = start_run(api, "prd")
    assert run.status_code == 202, run.text
    assert run.json()["version"] == 2
    assert run.json()["environment"] == "prd"

    # Staging was skipped: a run there is refused, saying why.
    refused = start_run(api, "staging")
    assert refused.status_code == 409
    assert refused.json()["message"] == "workflow 'promo' is not active in environment 'staging'"

    # The audit log names alice for both promotions.
    page.goto("/p/acme/audit/?action=workflow.promote")
    rows = page.locator('[data-testid="audit-row"][data-action="workflow.promote"]')
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("alice")
    expect(rows.first).to_contain_text("promo@prd")
    shot(page, "governance-audit")


def test_deactivating_from_the_matrix_stops_new_runs(page: Page, gov_server: Server) -> None:
    api = gov_server.api("alice")
    create_workflow(api, "stoppable", "Stoppable")
    publish(api, "stoppable", spec("1s"))
    api.put("/products/acme/workflows/stoppable/activations/dev", json={"active": True})
    body = {"workflow": "acme/stoppable", "env": "dev", "input": {"id": "u1"}}
    assert api.post("/runs", json=body).status_code == 202

    login(page, "alice")
    page.goto("/p/acme/activation/")
    toggle = page.get_by_test_id("cell-stoppable-dev-toggle")
    expect(toggle).to_be_checked()
    toggle.click()  # controlled: it flips once the server has answered
    expect(page.get_by_test_id("cell-stoppable-dev-state")).to_have_text("inactive")
    refused = api.post("/runs", json=body)
    assert refused.status_code == 409
    assert "not active in environment 'dev'" in refused.json()["message"]


def test_environment_config_with_a_write_only_secret_and_a_diff(
    page: Page, gov_server: Server
) -> None:
    login(page, "alice")
    page.goto("/p/acme/environments/")
    expect(page.get_by_test_id("env-prd")).to_contain_text("production")
    expect(page.get_by_test_id("env-prd-delete")).to_be_disabled()

    page.get_by_test_id("config-component").select_option("stripe")
    page.get_by_test_id("config-env").select_option("staging")
    page.get_by_test_id("config-config").fill('{"base_url": "https://stripe.staging"}')
    page.get_by_test_id("secret-add").click()
    page.locator('[data-testid="config-secrets"] input[aria-label="Secret name"]').last.fill(
        "STRIPE_KEY"
    )
    page.locator('[data-testid="config-secrets"] input[type="password"]').last.fill(
        "sk_live_never_shown"
    )
    page.get_by_test_id("config-save").click()
    expect(page.get_by_test_id("config-editor")).to_contain_text("Saved stripe in staging")
    # The secret's name is listed, its value is not in the page.
    expect(page.get_by_test_id("secret-value-STRIPE_KEY")).to_have_value("")
    assert "sk_live_never_shown" not in page.content()

    page.get_by_test_id("diff-a").select_option("staging")
    page.get_by_test_id("diff-b").select_option("prd")
    page.get_by_test_id("diff-compare").click()
    stripe = page.get_by_test_id("config-diff-stripe")
    expect(stripe).to_contain_text("not configured in prd")
    expect(stripe).to_contain_text("secret STRIPE_KEY: only in staging")
    shot(page, "governance-environments")
    assert "sk_live_never_shown" not in page.content()

    # Reorder: move staging up, it stays there after a reload.
    page.get_by_test_id("env-staging-up").click()
    page.reload()
    rows = page.locator('[data-testid="env-table"] tbody tr')
    expect(rows.first).to_have_attribute("data-testid", "env-staging")


def test_members_change_role_and_the_audit_log_shows_who(page: Page) -> None:
    login(page, "alice")
    page.goto("/p/acme/members/")
    expect(page.get_by_test_id("member-vera-role")).to_have_value("viewer")
    page.get_by_test_id("member-vera-role").select_option("operator")
    expect(page.get_by_test_id("member-vera-role")).to_have_value("operator")
    page.reload()
    expect(page.get_by_test_id("member-vera-role")).to_have_value("operator")
    # The last admin cannot be demoted: the refusal is shown, nothing changes.
    page.get_by_test_id("member-alice-role").select_option("viewer")
    expect(page.get_by_test_id("members-error")).to_contain_text("at least one admin")

    page.goto("/p/acme/audit/")
    page.get_by_test_id("audit-actor").fill("alice")
    page.get_by_test_id("audit-action").fill("member")
    page.get_by_test_id("audit-apply").click()
    rows = page.locator('[data-testid="audit-row"]')
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("vera")
    expect(rows.first).to_contain_text("viewer")
    expect(rows.first).to_contain_text("operator")
    page.get_by_test_id("audit-actor").fill("dana")
    page.get_by_test_id("audit-apply").click()
    expect(rows).to_have_count(0)


def test_a_viewer_sees_the_matrix_but_cannot_change_it(page: Page, gov_server: Server) -> None:
    api = gov_server.api("alice")
    create_workflow(api, "readonly", "Read only")
    publish(api, "readonly", spec("1s"))
    response = api.post("/products/acme/members/", json={"username": "vera", "role": "viewer"})
    assert response.status_code == 200, response.text
    login(page, "vera")
    page.goto("/p/acme/activation/")
    expect(page.get_by_test_id("cell-readonly-dev-state")).to_have_text("inactive")
    expect(page.get_by_test_id("cell-readonly-dev-toggle")).to_have_count(0)
    expect(page.get_by_test_id("nav-audit")).to_have_count(0)
    response = page.goto("/p/acme/audit/")
    assert response is not None and response.status == 403
