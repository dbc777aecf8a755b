"""The run monitor in Chromium: start the seed's order fulfillment from the UI and watch
every step change state on the canvas while a real qcluster process (not the web server)
executes it; then start a workflow that waits for a signal, send the signal from the UI
and see the run finish."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, shot
from tests.e2e.harness import PYTHON, ROOT, Server
from tests.examples.conftest import Inbox
from tests.examples.shop import Shop

pytestmark = pytest.mark.worker

ORDER_STEPS = [
    "validate",
    "payment",
    "payment-complete",
    "reserve-inventory",
    "create-order",
    "send-confirmation",
    "queue-fulfillment",
]

# Collects every state each step shows, as the page changes it (installed once per page).
WATCH = """() => {
  window.__seen = window.__seen || {};
  const note = (el) => {
    const tag = el.dataset.testid.replace('mon-step-', '');
    (window.__seen[tag] = window.__seen[tag] || []);
    const seen = window.__seen[tag];
    if (seen[seen.length - 1] !== el.dataset.status) seen.push(el.dataset.status);
  };
  document.querySelectorAll('[data-testid^="mon-step-"]').forEach(note);
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if (el.dataset && el.dataset.testid && el.dataset.testid.startsWith('mon-step-')) note(el);
      if (r.type === 'childList') {
        document.querySelectorAll('[data-testid^="mon-step-"]').forEach(note);
      }
    }
  }).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'],
  });
}"""


class Cluster:
    """``manage.py qcluster`` on the e2e server's database, in its own process group."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = self.server.env | {"TRELLIS_WORKERS": "1", "TRELLIS_QUEUE_POLL": "0.05"}
        log = open(self.server.base / "qcluster-monitor.log", "ab")
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def peers(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    shop = Shop()
    inbox = Inbox()
    controller = None
    for port in range(8699, 8600, -1):
        candidate = Controller(inbox, hostname="127.0.0.1", port=port)
        try:
            candidate.start()
        except Exception:
            continue
        controller = candidate
        break
    assert controller is not None, "no free SMTP port in 8600-8699"
    db_path = Path(tmp_path_factory.mktemp("monitor")) / "orders.sqlite3"
    done = subprocess.run(
        [PYTHON, "-m", "tests.e2e.live_setup", shop.url, str(db_path), str(controller.port)],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cluster = Cluster(server)
    try:
        yield {"shop": shop, "inbox": inbox, "cluster": cluster}
    finally:
        cluster.stop()
        controller.stop()
        shop.close()


def seen_states(page: Page) -> dict[str, list[str]]:
    result: dict[str, list[str]] = page.evaluate("() => window.__seen || {}")
    return result


def start_from_runs_page(page: Page, workflow: str, fill: dict[str, str]) -> int:
    page.goto(f"/p/acme/w/{workflow}/runs/")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    page.get_by_test_id("start-run").click()
    page.get_by_test_id("start-env").select_option("dev")
    form = page.get_by_test_id("start-form")
    for name, value in fill.items():
        form.locator(f'[name="{name}"]').fill(value)
    form.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r".*/p/acme/runs/\d+/$"), timeout=15_000)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_an_order_runs_live_on_the_canvas_while_a_worker_executes_it(
    page: Page, peers: dict[str, Any]
) -> None:
    login(page, "alice")
    run_id = start_from_runs_page(
        page,
        "order-fulfillment",
        {
            "orderId": "o-77",
            "items": '[{"sku": "tea", "qty": 2}]',
            "amount": "42",
            "customerId": "c-9",
            "email": "ada@example.com",
        },
    )
    # No worker runs yet: the page shows the whole order pending, live.
    for tag in ORDER_STEPS:
        expect(page.get_by_test_id(f"mon-step-{tag}")).to_have_attribute("data-status", "pending")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    page.evaluate(WATCH)

    peers["cluster"].start()  # a separate process executes the run now
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=60_000)
    for tag in ORDER_STEPS:
        expect(page.get_by_test_id(f"mon-step-{tag}")).to_have_attribute("data-status", "completed")
    seen = seen_states(page)
    for tag in ORDER_STEPS:
        # Each step changed in front of us: from pending to completed, live.
        assert seen[tag][0] == "pending" and seen[tag][-1] == "completed", (tag, seen[tag])
    assert "/stripe/charges" in peers["shop"].paths()

    # The inspector shows what the step got and returned; the timeline has every step.
    page.get_by_test_id("mon-step-payment").click()
    expect(page.get_by_test_id("step-output")).to_contain_text('"id": "ch_')
    expect(page.get_by_test_id("step-input")).to_contain_text('"customer": "c-9"')
    page.get_by_test_id("tab-timeline").click()
    for tag in ["validate", "payment", "create-order"]:
        expect(page.get_by_test_id(f"gantt-{tag}")).to_be_visible()
    page.get_by_test_id("tab-state").click()
    expect(page.get_by_test_id("state-view")).to_contain_text("payment-complete")
    shot(page, "run-monitor-order")

    # The runs list knows the run finished (live, from the workflow socket).
    page.goto("/p/acme/w/order-fulfillment/runs/?env=dev")
    expect(page.get_by_test_id(f"run-row-{run_id}")).to_have_attribute(
        "data-status", "completed", timeout=15_000
    )
    shot(page, "runs-list")


def test_a_signal_sent_from_the_ui_finishes_a_waiting_run(
    page: Page, peers: dict[str, Any]
) -> None:
    if peers["cluster"].process is None:
        peers["cluster"].start()
    login(page, "alice")
    run_id = start_from_runs_page(page, "approval", {})
    expect(page.get_by_test_id("mon-step-wait")).to_have_attribute(
        "data-status", "waiting", timeout=60_000
    )
    expect(page.get_by_test_id("run-status")).to_have_text("waiting")
    expect(page.get_by_test_id("mon-step-finish")).to_have_attribute("data-status", "pending")
    page.evaluate(WATCH)

    page.get_by_test_id("action-signal").click()
    form = page.get_by_test_id("signal-form")
    form.locator('[name="by"]').fill("alice")
    form.get_by_role("button", name="Send approve").click()

    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=60_000)
    expect(page.get_by_test_id("mon-step-finish")).to_have_attribute("data-status", "completed")
    seen = seen_states(page)
    assert seen["wait"][0] == "waiting" and seen["wait"][-1] == "completed", seen["wait"]
    page.get_by_test_id("tab-state").click()
    expect(page.get_by_test_id("state-view")).to_contain_text("approve")
    shot(page, f"run-monitor-signal-{run_id}")


def test_a_viewer_watches_a_live_runs_list_but_cannot_act(
    page: Page, server: Server, peers: dict[str, Any]
) -> None:
    if peers["cluster"].process is None:
        peers["cluster"].start()
    login(page, "vera")
    page.goto("/p/acme/w/approval/runs/")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    # A run started elsewhere appears in the open list, and moves on, without a reload.
    api = server.api("alice")
    started = api.post("/runs", json={"workflow": "acme/approval", "env": "dev", "input": {}})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    expect(page.get_by_test_id(f"run-row-{run_id}")).to_have_attribute(
        "data-status", "waiting", timeout=60_000
    )
    expect(page.get_by_test_id("start-run")).to_have_count(0)
    page.goto(f"/p/acme/runs/{run_id}/")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    expect(page.get_by_test_id("run-actions")).to_contain_text("Viewers can watch")
    expect(page.get_by_test_id("action-cancel")).to_have_count(0)
    expect(page.get_by_test_id("mon-step-prepare")).to_be_visible()
