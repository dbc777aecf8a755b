"""Build a workflow from nothing in the browser: drag and drop three sequences (one with two
parents), give events inputs that reference earlier steps, see the compiler's error on the
canvas, fix it, publish, reload and find it unchanged, then undo/redo edits."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import expect_steps, login, shot
from tests.e2e.harness import Server

MOD = "Control"


def center(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(page: Page, parent: str, child: str) -> None:
    """Drag from the parent's output handle to the child's input handle."""
    sx, sy = center(page.get_by_test_id(f"seq-{parent}").locator(".react-flow__handle.source"))
    tx, ty = center(page.get_by_test_id(f"seq-{child}").locator(".react-flow__handle.target"))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=8)
    page.mouse.move(tx, ty, steps=8)
    page.mouse.up()
    expect(page.get_by_test_id(f"rf__edge-{parent}->{child}")).to_have_count(1)


def set_input(page: Page, text: str) -> None:
    field = page.get_by_test_id("field-input")
    field.fill(text)
    expect(page.locator(".json-error")).to_have_count(0)


def wait_saved(page: Page) -> None:
    expect(page.get_by_test_id("save-state")).to_have_attribute(
        "data-state", "saved", timeout=10_000
    )


def wait_valid(page: Page, state: str = "ok") -> None:
    expect(page.get_by_test_id("validation-state")).to_have_attribute(
        "data-state", state, timeout=10_000
    )


def structure(
    spec: dict[str, Any],
) -> list[tuple[str, list[str], list[tuple[str, dict[str, Any]]]]]:
    return [
        (
            s["tag"],
            s.get("parents", []),
            [(e.get("tag") or e["event"], e.get("input", {})) for e in s["events"]],
        )
        for s in spec["sequences"]
    ]


def test_a_workflow_is_built_by_drag_and_drop_validated_published_and_reloaded(
    page: Page, server: Server
) -> None:
    api = server.api()
    login(page)

    # Browse: products → workflows → a new workflow → its (empty) canvas.
    page.get_by_test_id("product-acme").click()
    page.get_by_test_id("new-workflow").click()
    page.get_by_test_id("new-workflow-name").fill("Checkout flow")
    expect(page.get_by_test_id("new-workflow-tag")).to_have_value("checkout-flow")
    page.get_by_test_id("new-workflow-create").click()
    page.wait_for_url("**/p/acme/w/checkout-flow/")
    page.wait_for_selector("body[data-canvas-ready]")
    expect(page.locator(".seq-card")).to_have_count(0)
    canvas = page.get_by_test_id("canvas")

    # Three sequences, each started by dropping a component event on the empty canvas.
    page.get_by_test_id("palette-inventory-api-check-availability").drag_to(
        canvas, target_position={"x": 160, "y": 160}
    )
    page.get_by_test_id("palette-stripe-create-charge").drag_to(
        canvas, target_position={"x": 160, "y": 420}
    )
    page.get_by_test_id("palette-orders-db-create").drag_to(
        canvas, target_position={"x": 620, "y": 290}
    )
    expect(page.locator(".seq-card")).to_have_count(3)
    for tag in ["sequence_1", "sequence_2", "sequence_3"]:
        expect(page.get_by_test_id(f"seq-{tag}")).to_be_visible()

    # sequence_3 gets two parents.
    connect(page, "sequence_1", "sequence_3")
    connect(page, "sequence_2", "sequence_3")
    expect(page.get_by_test_id("seq-sequence_3")).to_have_attribute("data-level", "1")
    expect(page.get_by_test_id("seq-sequence_3")).to_have_attribute(
        "data-parents", "sequence_1,sequence_2"
    )

    # A second event dropped onto sequence_3, below its first.
    page.get_by_test_id("palette-transactional-order-confirmed").drag_to(
        page.get_by_test_id("seq-sequence_3"), target_position={"x": 130, "y": 68}
    )
    expect_steps(page, "sequence_3", ["create", "order-confirmed"])

    # Inputs that reference earlier steps; the first through the autocomplete.
    page.get_by_test_id("event-create").click()
    expect(page.get_by_test_id("event-inspector")).to_be_visible()
    field = page.get_by_test_id("field-input")
    field.fill("")
    field.type('{"data": {"payment_id": "$Step{cre')
    completions = page.get_by_test_id("completions")
    expect(completions).to_contain_text("create-charge")
    # Only steps that ran before this one are offered (not its own sequence's later step).
    expect(completions).not_to_contain_text("order-confirmed")
    page.keyboard.press("Enter")
    field.type('id}", "items": "$Step{check-availability}{items}"}}')
    expect(field).to_have_value(
        '{"data": {"payment_id": "$Step{create-charge}{id}", '
        '"items": "$Step{check-availability}{items}"}}'
    )
    expect(page.locator(".json-error")).to_have_count(0)

    # A reference to a step that does not exist: the compiler's error shows on the canvas.
    page.get_by_test_id("event-order-confirmed").click()
    set_input(page, '{"template": {"orderId": "$Step{refund}{id}"}}')
    wait_valid(page, "invalid")
    expect(page.get_by_test_id("issues-sequence_3")).to_be_visible()
    expect(page.get_by_test_id("event-order-confirmed")).to_have_class(re_has_issues())
    expect(page.get_by_test_id("event-inspector").get_by_test_id("field-issues")).to_contain_text(
        "refund"
    )
    expect(page.get_by_test_id("issues-panel")).to_contain_text("sequences[2].events[1].input")
    expect(page.get_by_test_id("publish")).to_be_disabled()
    shot(page, "build-validation-error")

    # Fixed: the error goes away and publishing is allowed.
    set_input(page, '{"template": {"orderId": "$Step{create}{id}"}}')
    wait_valid(page, "ok")
    expect(page.get_by_test_id("issues-sequence_3")).to_have_count(0)
    expect(page.get_by_test_id("publish")).to_be_enabled()
    wait_saved(page)
    shot(page, "build-fixed")
    draft = api.get("/products/acme/workflows/checkout-flow/draft").json()["spec"]

    page.get_by_test_id("publish").click()
    page.get_by_test_id("publish-note").fill("first version")
    page.get_by_test_id("publish-confirm").click()
    expect(page.get_by_test_id("toast")).to_contain_text("Published v1")

    version = api.get("/products/acme/workflows/checkout-flow/versions/1/").json()
    assert version["note"] == "first version"
    assert version["spec"] == draft
    assert structure(draft) == [
        ("sequence_1", [], [("check-availability", {})]),
        ("sequence_2", [], [("create-charge", {})]),
        (
            "sequence_3",
            ["sequence_1", "sequence_2"],
            [
                (
                    "create",
                    {
                        "data": {
                            "payment_id": "$Step{create-charge}{id}",
                            "items": "$Step{check-availability}{items}",
                        }
                    },
                ),
                ("order-confirmed", {"template": {"orderId": "$Step{create}{id}"}}),
            ],
        ),
    ]
    positions = draft["layout"]["positions"]
    assert set(positions) == {"sequence_1", "sequence_2", "sequence_3"}

    # Reload: the same graph, the same inputs, nothing to save.
    page.reload()
    page.wait_for_selector("body[data-canvas-ready]")
    expect(page.locator(".seq-card")).to_have_count(3)
    expect(page.get_by_test_id("seq-sequence_3")).to_have_attribute(
        "data-parents", "sequence_1,sequence_2"
    )
    expect(page.get_by_test_id("seq-sequence_1")).to_have_attribute("data-level", "0")
    expect(page.get_by_test_id("seq-sequence_2")).to_have_attribute("data-level", "0")
    expect(page.get_by_test_id("seq-sequence_3")).to_have_attribute("data-level", "1")
    expect_steps(page, "sequence_3", ["create", "order-confirmed"])
    page.get_by_test_id("event-create").click()
    expect(page.get_by_test_id("field-input")).to_have_value(
        '{\n  "data": {\n    "payment_id": "$Step{create-charge}{id}",\n'
        '    "items": "$Step{check-availability}{items}"\n  }\n}'
    )
    wait_valid(page, "ok")
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-state", "saved")
    # Opening it saved nothing: the draft became v1 and there is no new one.
    assert api.get("/products/acme/workflows/checkout-flow/draft").json()["spec"] is None
    shot(page, "build-reloaded")

    # Undo/redo: delete an event with Del, undo, redo, undo again (keyboard and toolbar).
    page.get_by_test_id("event-order-confirmed").click()
    page.keyboard.press("Delete")
    expect_steps(page, "sequence_3", ["create"])
    page.keyboard.press(f"{MOD}+z")
    expect_steps(page, "sequence_3", ["create", "order-confirmed"])
    page.keyboard.press(f"{MOD}+Shift+z")
    expect_steps(page, "sequence_3", ["create"])
    page.get_by_test_id("undo").click()
    expect_steps(page, "sequence_3", ["create", "order-confirmed"])

    # Copy/paste a sequence, then undo the paste.
    page.get_by_test_id("seq-sequence_1").locator(".seq-header").click()
    page.keyboard.press(f"{MOD}+c")
    page.keyboard.press(f"{MOD}+v")
    expect(page.locator(".seq-card")).to_have_count(4)
    expect_steps(page, "sequence_1-2", ["check-availability-2"])
    page.keyboard.press(f"{MOD}+z")
    expect(page.locator(".seq-card")).to_have_count(3)
    page.get_by_test_id("redo").click()
    expect(page.locator(".seq-card")).to_have_count(4)
    page.keyboard.press(f"{MOD}+y")  # nothing left to redo: no change
    page.keyboard.press(f"{MOD}+z")
    expect(page.locator(".seq-card")).to_have_count(3)

    # Autosave wrote the edits as a new draft; after the undos it equals what was published.
    wait_saved(page)
    final = api.get("/products/acme/workflows/checkout-flow/draft").json()["spec"]
    assert final == version["spec"]
    shot(page, "build-after-undo")


def re_has_issues() -> Any:
    import re

    return re.compile(r"\bhas-issues\b")
