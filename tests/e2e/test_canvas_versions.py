"""Versions side by side, code-defined workflows read-only, browsing with filters, and
layout edits that undo."""

from __future__ import annotations

import copy
import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import expect_steps, login, open_canvas, shot
from tests.e2e.harness import Server, create_workflow, fixture_spec


def publish(server: Server, tag: str, spec: dict, note: str) -> int:
    response = server.api().post(
        f"/products/acme/workflows/{tag}/publish", json={"spec": spec, "note": note}
    )
    assert response.status_code == 201, response.text
    number: int = response.json()["number"]
    return number


def test_two_versions_compare_side_by_side_with_changes_marked(page: Page, server: Server) -> None:
    v1 = fixture_spec("order_fulfillment")
    create_workflow(server.api(), "orders-diff", "Orders (diff)", v1)
    publish(server, "orders-diff", v1, "first")
    v2 = copy.deepcopy(v1)
    v2["sequences"] = [s for s in v2["sequences"] if s["tag"] != "send-confirmation"]
    v2["sequences"][1]["events"][0]["retries"] = 5  # payment
    v2["sequences"].append(
        {
            "tag": "audit",
            "parents": ["create-order"],
            "events": [{"type": "CHECKPOINT", "event": "audited", "input": {}}],
        }
    )
    publish(server, "orders-diff", v2, "second")

    login(page)
    open_canvas(page, "orders-diff")
    page.get_by_test_id("versions-button").click()
    expect(page.get_by_test_id("version-2")).to_contain_text("second")
    page.get_by_test_id("pick-1").check()
    page.get_by_test_id("pick-2").check()
    page.get_by_test_id("compare").click()
    diff = page.get_by_test_id("diff-view")
    expect(diff).to_be_visible()
    expect(page.get_by_test_id("diff-summary")).to_contain_text("1 added")
    expect(page.get_by_test_id("diff-summary")).to_contain_text("1 removed")
    expect(page.get_by_test_id("diff-summary")).to_contain_text("1 changed")
    left = page.get_by_test_id("diff-left")
    right = page.get_by_test_id("diff-right")
    expect(left.get_by_test_id("seq-send-confirmation")).to_have_class(re.compile(r"diff-removed"))
    expect(right.get_by_test_id("seq-send-confirmation")).to_have_count(0)
    expect(right.get_by_test_id("seq-audit")).to_have_class(re.compile(r"diff-added"))
    expect(left.get_by_test_id("seq-payment")).to_have_class(re.compile(r"diff-changed"))
    expect(right.get_by_test_id("event-payment")).to_have_class(re.compile(r"diff-changed"))
    expect(right.get_by_test_id("seq-validate")).to_have_class(re.compile(r"diff-same"))
    expect(left.get_by_test_id("rf__edge-create-order->send-confirmation")).to_have_class(
        re.compile(r"diff-removed")
    )
    expect(right.get_by_test_id("rf__edge-create-order->audit")).to_have_class(
        re.compile(r"diff-added")
    )
    shot(page, "versions-diff")
    page.keyboard.press("Escape")
    expect(diff).to_have_count(0)


def test_a_code_defined_workflow_opens_read_only_with_recording_badges(
    page: Page, server: Server
) -> None:
    spec = fixture_spec("order_fulfillment")
    spec["recording"] = {"branchOverrides": {"validate": {"available": True}}, "recordInput": None}
    create_workflow(server.api(), "orders-code", "Orders (code)", spec, source="code")
    login(page)
    open_canvas(page, "orders-code")
    expect(page.get_by_test_id("readonly-badge")).to_be_visible()
    expect(page.get_by_test_id("recording-branchOverrides")).to_be_visible()
    expect(page.get_by_test_id("recording-recordInput")).to_have_count(0)
    expect(page.get_by_test_id("palette")).to_have_count(0)
    expect(page.get_by_test_id("publish")).to_have_count(0)
    expect(page.get_by_test_id("save-state")).to_have_count(0)
    page.get_by_test_id("event-payment").click()
    expect(page.get_by_test_id("field-input")).to_be_disabled()
    page.keyboard.press("Delete")
    expect(page.get_by_test_id("seq-payment").locator(".event-row")).to_have_count(2)
    shot(page, "code-read-only")


def test_a_viewer_sees_a_canvas_workflow_read_only(page: Page, server: Server) -> None:
    create_workflow(server.api(), "orders-viewer", "Orders (viewer)", fixture_spec("main_sequence"))
    login(page, "vera")
    open_canvas(page, "orders-viewer")
    expect(page.get_by_test_id("readonly-badge")).to_be_visible()
    expect(page.get_by_test_id("palette")).to_have_count(0)
    expect(page.get_by_test_id("validation-state")).to_have_attribute("data-state", "ok")


def test_workflows_are_browsed_with_search_and_filters(page: Page, server: Server) -> None:
    api = server.api()
    spec = fixture_spec("main_sequence")
    create_workflow(api, "browse-live", "Browse live", spec)
    publish(server, "browse-live", spec, "v1")
    response = api.put(
        "/products/acme/workflows/browse-live/activations/staging", json={"active": True}
    )
    assert response.status_code == 200, response.text
    create_workflow(api, "browse-code", "Browse code", spec, source="code")
    create_workflow(api, "browse-sketch", "Browse sketch")

    login(page)
    page.goto("/p/acme/")
    rows = page.get_by_test_id("workflow-table").locator("tbody tr")
    page.get_by_test_id("workflow-search").fill("browse")
    expect(rows).to_have_count(3)
    page.get_by_test_id("source-code").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("workflow-browse-code")).to_be_visible()
    page.get_by_test_id("source-all").click()
    page.get_by_test_id("activation-filter").select_option("env:staging")
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("workflow-browse-live")).to_contain_text("v1")
    page.get_by_test_id("activation-filter").select_option("inactive")
    expect(rows).to_have_count(2)
    # The filter is in the address: a reload keeps it.
    page.reload()
    expect(page.get_by_test_id("workflow-search")).to_have_value("browse")
    expect(rows).to_have_count(2)
    page.get_by_test_id("activation-filter").select_option("all")
    page.get_by_test_id("workflow-browse-live").get_by_role("link").first.click()
    page.wait_for_selector("body[data-canvas-ready]")
    expect(page.get_by_test_id("seq-main_sequence")).to_be_visible()


def test_auto_layout_select_all_and_delete_are_undoable(page: Page, server: Server) -> None:
    create_workflow(
        server.api(), "orders-layout", "Orders (layout)", fixture_spec("order_fulfillment")
    )
    login(page)
    open_canvas(page, "orders-layout")

    def left_of(tag: str) -> float:
        """The card's left edge in flow coordinates (independent of the view's fit)."""
        transform = page.get_by_test_id(f"rf__node-{tag}").evaluate("el => el.style.transform")
        match = re.match(r"translate\(([-\d.]+)px", transform)
        assert match, transform
        return float(match.group(1))

    def wait_left_of(
        tag: str, moved_from: float | None = None, back_to: float | None = None
    ) -> None:
        for _ in range(50):
            x = left_of(tag)
            if (moved_from is not None and abs(x - moved_from) > 1) or (
                back_to is not None and abs(x - back_to) < 1
            ):
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"{tag} did not move as expected")

    # Levels as rows (TB): payment moves under validate; undo puts it back.
    lr = left_of("payment")
    assert lr > left_of("validate")
    page.get_by_test_id("layout-direction").click()
    wait_left_of("payment", moved_from=lr)
    assert abs(left_of("payment") - left_of("validate")) < 1
    page.keyboard.press("Control+z")
    wait_left_of("payment", back_to=lr)
    # ELK on demand: positions are written into the layout (and undoable).
    page.get_by_test_id("layout-elk").click()
    wait_left_of("payment", moved_from=lr)
    assert left_of("validate") < left_of("payment") < left_of("create-order")
    # Reorder by dragging a row above another; undo puts it back. The HTML5 drag events are
    # dispatched with one DataTransfer (a mouse drag right after the ELK view animation is
    # at the mercy of where the card is at that instant).
    row = page.get_by_test_id("event-payment").bounding_box()
    assert row is not None
    transfer = page.evaluate_handle("() => new DataTransfer()")
    page.get_by_test_id("event-payment-complete").dispatch_event(
        "dragstart", {"dataTransfer": transfer}
    )
    at = {"dataTransfer": transfer, "clientX": row["x"] + 60, "clientY": row["y"] + 1}
    card = page.get_by_test_id("seq-payment")
    card.dispatch_event("dragover", at)
    card.dispatch_event("drop", at)
    expect_steps(page, "payment", ["payment-complete", "payment"])
    page.keyboard.press("Control+z")
    expect_steps(page, "payment", ["payment", "payment-complete"])

    # Disconnect: select an edge, press its remove button; undo reconnects.
    a = page.get_by_test_id("seq-validate").locator(".react-flow__handle.source").bounding_box()
    b = page.get_by_test_id("seq-payment").locator(".react-flow__handle.target").bounding_box()
    assert a and b
    page.mouse.click((a["x"] + b["x"] + b["width"]) / 2, (a["y"] + b["y"] + b["height"]) / 2)
    page.get_by_test_id("disconnect-validate-payment").click()
    expect(page.locator(".react-flow__edge")).to_have_count(4)
    expect(page.get_by_test_id("seq-payment")).to_have_attribute("data-level", "0")
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__edge")).to_have_count(5)

    page.get_by_test_id("seq-validate").locator(".seq-header").click()
    page.keyboard.press("Control+a")
    expect(page.locator(".seq-card.selected")).to_have_count(6)
    page.keyboard.press("Delete")
    expect(page.locator(".seq-card")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator(".seq-card")).to_have_count(6)
    expect(page.locator(".react-flow__edge")).to_have_count(5)


def test_renaming_a_step_follows_it_in_every_reference_and_undoes_in_one_step(
    page: Page, server: Server
) -> None:
    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    {"type": "CODE", "event": "runtime.connectors.code:echo", "tag": "fetch"},
                    {
                        "type": "CODE",
                        "event": "runtime.connectors.code:echo",
                        "tag": "use",
                        "input": {"id": "$Step{fetch}{id}"},
                        "condition": "$Step{fetch}{ok} == true",
                    },
                ],
            }
        ],
        "output": {"id": "$Step{fetch}{id}"},
    }
    api = server.api()
    create_workflow(api, "orders-rename", "Orders (rename)", spec)
    login(page)
    open_canvas(page, "orders-rename")
    page.get_by_test_id("event-fetch").click()
    tag = page.get_by_test_id("field-tag")
    tag.fill("load")
    tag.press("Enter")
    expect_steps(page, "main", ["load", "use"])

    def draft() -> dict:
        expect(page.get_by_test_id("save-state")).to_have_attribute(
            "data-state", "saved", timeout=10_000
        )
        spec: dict = api.get("/products/acme/workflows/orders-rename/draft").json()["spec"]
        return spec

    use = draft()["sequences"][0]["events"][1]
    assert use["input"] == {"id": "$Step{load}{id}"}
    assert use["condition"] == "$Step{load}{ok} == true"
    assert draft()["output"] == {"id": "$Step{load}{id}"}
    expect(page.get_by_test_id("validation-state")).to_have_attribute("data-state", "ok")

    page.locator(".react-flow__pane").click()
    page.keyboard.press("Control+z")  # the tag and its references come back together
    expect_steps(page, "main", ["fetch", "use"])
    assert draft()["sequences"][0]["events"][1]["input"] == {"id": "$Step{fetch}{id}"}
