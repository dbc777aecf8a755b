"""Browser tests: a real server (daphne in a subprocess) and the machine's Chromium.

Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
while one runs — so these tests talk to the server over HTTP only, and the browser is
module-scoped (stopped before other test modules touch the database).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.e2e.harness import BENCH_DIST, CHROMIUM, CHROMIUM_ARGS, ROOT, Server

ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    live = Server(tmp_path_factory.mktemp("e2e")).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the bench build (frontend/dist-bench): the canvas benchmark's hook."""
    live = Server(tmp_path_factory.mktemp("e2e-bench"), dist=BENCH_DIST).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def chromium(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


class BrowserErrors(list[str]):
    """Uncaught page errors seen during a test (a test fails on any)."""


@pytest.fixture
def page(chromium: Browser, server: Server) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1600, "height": 1000}, base_url=server.url)
    page = context.new_page()
    errors = BrowserErrors()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def login(page: Page, username: str = "alice") -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def open_canvas(page: Page, tag: str) -> None:
    page.goto(f"/p/acme/w/{tag}/")
    page.wait_for_selector("body[data-canvas-ready]", timeout=20_000)


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def steps(page: Page, seq: str) -> list[str]:
    """The step tags of a sequence card, in order (full tags: the card may cut them)."""
    found: list[str] = (
        page.get_by_test_id(f"seq-{seq}")
        .locator(".event-row[data-step]")
        .evaluate_all("els => els.map(e => e.dataset.step)")
    )
    return found


def expect_steps(page: Page, seq: str, expected: list[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = steps(page, seq)
        if got == expected or time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    assert got == expected, f"{seq}: {got} != {expected}"
