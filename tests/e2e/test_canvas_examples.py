"""The seed's examples on the canvas: main_sequence and order fulfillment render with the
levels and parent edges the compiler gives them; a handler's returns and raises are steps
of their own."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from examples import components, order_fulfillment
from tests.e2e.conftest import expect_steps, login, open_canvas, shot
from tests.e2e.harness import Server, create_workflow, fixture_spec


def levels_on_canvas(page: Page) -> dict[str, int]:
    cards = page.locator(".seq-card")
    return {
        cards.nth(i).get_attribute("data-tag") or "": int(
            cards.nth(i).get_attribute("data-level") or -1
        )
        for i in range(cards.count())
    }


def edges_on_canvas(page: Page) -> set[str]:
    ids = page.locator(".react-flow__edge").evaluate_all(
        "els => els.map(e => e.getAttribute('data-testid'))"
    )
    return {i.removeprefix("rf__edge-") for i in ids}


def test_main_sequence_is_one_root_with_its_two_events_in_order(page: Page, server: Server) -> None:
    create_workflow(server.api(), "main-sequence", "Main sequence", fixture_spec("main_sequence"))
    login(page)
    open_canvas(page, "main-sequence")
    expect(page.locator(".seq-card")).to_have_count(1)
    assert levels_on_canvas(page) == {"main_sequence": 0}
    expect_steps(page, "main_sequence", ["validate_user", "send_welcome_email"])
    assert edges_on_canvas(page) == set()
    # The compiler (through the validate endpoint) agrees: no problems.
    expect(page.get_by_test_id("validation-state")).to_have_attribute("data-state", "ok")
    shot(page, "example-main-sequence")


def test_order_fulfillment_has_five_levels_and_the_parent_edges(page: Page, server: Server) -> None:
    api = server.api()
    create_workflow(
        api, "example-order-fulfillment", "Order fulfillment", fixture_spec("order_fulfillment")
    )
    summary = api.post(
        "/products/acme/workflows/example-order-fulfillment/validate",
        json={"spec": fixture_spec("order_fulfillment")},
    )
    assert summary.status_code == 200, summary.text
    login(page)
    open_canvas(page, "example-order-fulfillment")
    expect(page.locator(".seq-card")).to_have_count(6)
    levels = levels_on_canvas(page)
    assert levels == {
        "validate": 0,
        "payment": 1,
        "reserve-inventory": 2,
        "create-order": 3,
        "send-confirmation": 4,
        "queue-fulfillment": 4,
    }
    # The same levels as the server's compiler.
    for level, tags in enumerate(summary.json()["levels"]):
        assert {t: level for t in tags}.items() <= levels.items()
    assert edges_on_canvas(page) == {
        "validate->payment",
        "payment->reserve-inventory",
        "reserve-inventory->create-order",
        "create-order->send-confirmation",
        "create-order->queue-fulfillment",
    }
    # Levels are columns, left to right; the two leaves share the last column.
    x = {
        tag: page.get_by_test_id(f"seq-{tag}").bounding_box()["x"]  # type: ignore[index]
        for tag in levels
    }
    order = ["validate", "payment", "reserve-inventory", "create-order", "send-confirmation"]
    assert [x[t] for t in order] == sorted(x[t] for t in order)
    assert abs(x["send-confirmation"] - x["queue-fulfillment"]) < 1
    expect_steps(page, "payment", ["payment", "payment-complete"])
    expect(page.get_by_test_id("validation-state")).to_have_attribute("data-state", "ok")
    shot(page, "example-order-fulfillment")


def test_returns_and_raises_are_step_kinds_of_their_own(page: Page, server: Server) -> None:
    """The code-first examples' early return and raise, recorded as RETURN and FAIL steps:
    the card says what they end the run with, the inspector edits just that."""
    api = server.api()
    create_workflow(api, "ending-order", "Order", order_fulfillment.workflow.spec_json())
    create_workflow(api, "ending-quota", "Quota", components.quota_workflow.spec_json())
    login(page)
    open_canvas(page, "ending-order")
    row = page.get_by_test_id("event-return")
    expect(row).to_have_attribute("title", "returns {success, reason}")
    expect(row.locator(".mini-badge")).to_have_text(["if", "ends run"])
    row.click()
    inspector = page.get_by_test_id("event-inspector")
    expect(inspector).to_contain_text("Return in main")
    expect(inspector.get_by_test_id("field-return-output")).to_have_value(
        re.compile(r'"reason": "items_unavailable"')
    )
    expect(inspector.get_by_test_id("field-retries")).to_have_count(0)  # a RETURN ends the run

    open_canvas(page, "ending-quota")
    row = page.get_by_test_id("event-raise")
    expect(row).to_have_attribute("title", 'raises "Rate limit exceeded"')
    row.click()
    expect(page.get_by_test_id("field-fail-message")).to_have_value("Rate limit exceeded")
