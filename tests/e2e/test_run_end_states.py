"""The monitor never lies, in Chromium, with a real qcluster executing the runs.

A run whose flaky step keeps retrying is killed twice: once by a ROLLBACK and a RETURN (a
signal sent from the UI) and once by a cancel (confirmed, with a reason). Afterwards no step shows
running, retrying, waiting or pending, no timer ticks — before and after a reload — and
the run's journal alone (GET /runs/<id>/journal) gives the same picture. Then: switching
the monitor's tabs while a run logs raises no page error; the compare tab picks the other
run from a list; a replay (confirmed, with a reason) links both ways; and a designer
looking at a production run is offered no action, and told why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, shot
from tests.e2e.harness import Server, create_workflow
from tests.e2e.test_run_monitor import Cluster

pytestmark = pytest.mark.worker

UNDO = {
    "type": "CODE",
    "event": "tests.runtime.steps:record",
    "input": {"refund": "$Step{charge}{input}"},
}
FLAKY = {
    "sequences": [
        {
            "tag": "main",
            "events": [
                {
                    "type": "CODE",
                    "event": "tests.runtime.steps:record",
                    "tag": "charge",
                    "input": {"amount": "$Input{amount}"},
                    "rollback": UNDO,
                },
                {
                    "type": "CODE",
                    "event": "tests.runtime.steps:flaky",
                    "tag": "flaky",
                    "input": {"failures": 1000},
                    "retries": 50,
                    "retry_delay": "2s",
                },
                {"type": "CODE", "event": "tests.runtime.steps:add", "tag": "finish"},
            ],
        },
        {
            "tag": "guard",
            "events": [
                {"type": "WAIT_SIGNAL", "event": "abort", "tag": "abort-wait"},
                {"type": "ROLLBACK", "event": "abort", "tag": "undo"},
                # trigger_rollback hands back and the handler goes on: here it returns,
                # which stops the main sequence at its next step boundary.
                {
                    "type": "RETURN",
                    "event": "return",
                    "tag": "stop",
                    "input": {"output": {"aborted": True}},
                },
            ],
        },
    ],
    "input": {"amount": "integer"},
    "signals": {"abort": {}},
}
CHATTY = {
    "sequences": [
        {
            "tag": "main",
            "events": [
                event
                for n in range(8)
                for event in (
                    {"type": "CODE", "event": "tests.runtime.steps:logs", "tag": f"say-{n}"},
                    {
                        "type": "SLEEP",
                        "event": "nap",
                        "tag": f"nap-{n}",
                        "input": {"duration": 400},
                    },
                )
            ],
        }
    ]
}
OPEN = {"pending", "running", "retrying", "waiting"}
STEPS = ["charge", "flaky", "finish", "abort-wait", "undo", "stop"]


class EffectsCluster(Cluster):
    """The qcluster with a directory where the test step functions count attempts."""

    def __init__(self, server: Server, effects: Path) -> None:
        super().__init__(server)
        self.server = server
        self.effects = effects

    def start(self) -> None:
        self.server.env["TRELLIS_TEST_EFFECTS"] = str(self.effects)
        try:
            super().start()
        finally:
            del self.server.env["TRELLIS_TEST_EFFECTS"]


@pytest.fixture(scope="module")
def cluster(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    api = server.api("alice")
    for tag, spec, envs in [("flaky-end", FLAKY, ["dev", "prd"]), ("chatty", CHATTY, ["dev"])]:
        create_workflow(api, tag, tag)
        published = api.post(f"/products/acme/workflows/{tag}/publish", json={"spec": spec})
        assert published.status_code == 201, published.text
        for env in envs:
            active = api.put(
                f"/products/acme/workflows/{tag}/activations/{env}", json={"active": True}
            )
            assert active.status_code in (200, 201), active.text
    worker = EffectsCluster(server, tmp_path_factory.mktemp("effects"))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def start(api: httpx.Client, tag: str, env: str = "dev", **input: Any) -> int:
    response = api.post("/runs", json={"workflow": f"acme/{tag}", "env": env, "input": input})
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def shown(page: Page) -> dict[str, str]:
    """Each step's state as the canvas shows it."""
    found: dict[str, str] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-testid^="mon-step-"]')]
            .map((el) => [el.dataset.testid.replace('mon-step-', ''), el.dataset.status]))"""
    )
    return found


def from_journal(api: httpx.Client, run_id: int) -> dict[str, Any]:
    """The picture from the journal alone: each step's and sequence's last state."""
    body = api.get(f"/runs/{run_id}/journal", params={"limit": 1000}).json()
    steps: dict[str, str] = {}
    sequences: dict[str, str] = {}
    run = ""
    for e in body["entries"]:
        kind, tag = e["kind"], e["step"]
        if kind.startswith("step_"):
            steps[tag] = kind.removeprefix("step_")
        elif kind.startswith("sequence_"):
            sequences[tag] = kind.removeprefix("sequence_")
        elif kind in {"run_completed", "run_failed", "run_rolled_back", "run_cancelled"}:
            run = kind.removeprefix("run_")
    return {"run": run, "steps": steps, "sequences": sequences}


def expect_nothing_open(page: Page, status: str) -> None:
    expect(page.get_by_test_id("run-status")).to_have_text(status, timeout=60_000)
    expect(page.get_by_test_id("mon-step-finish")).to_have_attribute("data-status", "not_run")
    states = shown(page)
    assert set(states) == set(STEPS), states
    assert not OPEN & set(states.values()), states
    for seq in ("main", "guard"):
        assert page.get_by_test_id(f"mon-seq-{seq}").get_attribute("data-status") not in OPEN
    text = page.get_by_test_id("mon-seq-main").inner_text() + page.inner_text("aside")
    assert "waiting:" not in text and "running" not in text
    # No timer ticks: the run's duration and every step's stay put.
    before = page.get_by_test_id("run-duration").inner_text(), page.inner_text(".mon-stage")
    page.wait_for_timeout(1200)
    after = page.get_by_test_id("run-duration").inner_text(), page.inner_text(".mon-stage")
    assert before == after


def check_ended(page: Page, api: httpx.Client, run_id: int, status: str) -> dict[str, str]:
    expect_nothing_open(page, status)
    states = shown(page)
    page.reload()
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    expect_nothing_open(page, status)
    assert shown(page) == states
    journal = from_journal(api, run_id)
    assert journal["run"] == status
    assert {t: s for t, s in journal["steps"].items() if t in states} == states
    assert set(journal["steps"]) == set(STEPS)
    assert not OPEN & set(journal["sequences"].values()), journal
    assert set(journal["sequences"]) == {"main", "guard"}
    return states


def wait_retrying(page: Page, run_id: int) -> None:
    page.goto(f"/p/acme/runs/{run_id}/")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    expect(page.get_by_test_id("mon-step-abort-wait")).to_have_attribute(
        "data-status", "waiting", timeout=60_000
    )
    expect(page.get_by_test_id("mon-step-flaky")).to_have_attribute(
        "data-status", re.compile("retrying|running"), timeout=60_000
    )


def test_a_rollback_and_a_cancel_leave_nothing_running_or_waiting(
    page: Page, server: Server, cluster: Cluster
) -> None:
    api = server.api("alice")
    login(page, "alice")

    # Killed by a ROLLBACK: the abort signal, sent from the UI.
    rolled = start(api, "flaky-end", amount=10)
    wait_retrying(page, rolled)
    page.get_by_test_id("action-signal").click()
    page.get_by_test_id("signal-form").get_by_role("button", name="Send abort").click()
    states = check_ended(page, api, rolled, "rolled_back")
    assert states == {
        "charge": "rolled_back",
        "flaky": "cancelled",
        "finish": "not_run",
        "abort-wait": "completed",
        "undo": "completed",
        "stop": "completed",
    }
    # The compensation shows the rollback call's own input and output.
    page.get_by_test_id("mon-step-charge").click()
    compensation = page.get_by_test_id("step-compensation")
    expect(compensation).to_contain_text("rolled back")
    expect(page.get_by_test_id("rollback-input")).to_contain_text('"amount": 10')
    expect(page.get_by_test_id("rollback-output")).to_contain_text('"refund"')
    page.get_by_test_id("mon-step-flaky").click()
    expect(page.get_by_test_id("step-why")).to_contain_text("the run ended rolled_back")
    shot(page, "run-end-rolled-back")

    # Killed by a cancel, confirmed, with a reason.
    cancelled = start(api, "flaky-end", amount=20)
    wait_retrying(page, cancelled)
    page.get_by_test_id("action-cancel").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("compensated")
    page.get_by_test_id("confirm-back").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("run-status")).not_to_have_text("cancelled")
    page.get_by_test_id("action-cancel").click()
    page.get_by_test_id("confirm-reason").fill("customer called to cancel")
    page.get_by_test_id("confirm-ok").click()
    states = check_ended(page, api, cancelled, "cancelled")
    assert states == {
        "charge": "rolled_back",
        "flaky": "cancelled",
        "finish": "not_run",
        "abort-wait": "cancelled",
        "undo": "not_run",
        "stop": "not_run",
    }
    page.get_by_test_id("mon-step-abort-wait").click()
    expect(page.get_by_test_id("step-why")).to_contain_text("customer called to cancel")
    shot(page, "run-end-cancelled")
    audit = api.get("/products/acme/audit/", params={"action": "run.cancel"}).json()["results"]
    assert audit[0]["after"]["reason"] == "customer called to cancel"
    assert audit[0]["after"]["run"] == cancelled

    # Compare picks the other run from a list and shows the differences.
    page.get_by_test_id("tab-compare").click()
    page.get_by_test_id("compare-pick").select_option(str(rolled))
    page.get_by_test_id("compare-go").click()
    expect(page.get_by_test_id("compare-input")).to_contain_text("amount")
    expect(page.get_by_test_id("compare-input")).to_contain_text("20")
    expect(page.get_by_test_id("compare-diff-charge")).to_contain_text("input.amount: 20 → 10")
    expect(page.get_by_test_id("compare-step-abort-wait")).to_contain_text("completed")

    # A replay, confirmed with a reason, links both ways.
    page.get_by_test_id("action-replay").click()
    page.get_by_test_id("confirm-reason").fill("try again after the fix")
    page.get_by_test_id("confirm-ok").click()
    page.wait_for_url(lambda url: not url.endswith(f"/runs/{cancelled}/"), timeout=15_000)
    replay = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.get_by_test_id("lineage-origin")).to_have_text(f"#{cancelled}")
    expect(page.get_by_test_id("lineage")).to_contain_text("replay of")
    page.get_by_test_id("tab-log").click()
    expect(page.get_by_test_id("log-view")).to_contain_text("try again after the fix")
    page.get_by_test_id("lineage-origin").click()
    page.wait_for_url(f"**/runs/{cancelled}/")
    expect(page.get_by_test_id(f"lineage-derived-{replay}")).to_be_visible()
    page.goto("/p/acme/w/flaky-end/runs/?env=dev")
    expect(page.get_by_test_id(f"run-origin-{replay}")).to_have_text(f"#{cancelled}")
    expect(page.get_by_test_id(f"run-derived-{cancelled}-{replay}")).to_be_visible()
    audit = api.get("/products/acme/audit/", params={"action": "run.replay"}).json()["results"]
    assert audit[0]["after"]["reason"] == "try again after the fix"
    api.post(f"/runs/{replay}/cancel", json={})


def test_switching_tabs_while_a_run_logs_raises_no_page_error(
    page: Page, server: Server, cluster: Cluster
) -> None:
    login(page, "alice")
    run_id = start(server.api("alice"), "chatty")
    page.goto(f"/p/acme/runs/{run_id}/")
    expect(page.get_by_test_id("live-state")).to_have_text("● live", timeout=15_000)
    page.get_by_test_id("tab-log").click()
    expect(page.get_by_test_id("log-view")).to_contain_text("hello from a step", timeout=60_000)
    for _ in range(3):
        for tab in ["step", "log", "state", "log", "timeline", "log", "compare", "log"]:
            page.get_by_test_id(f"tab-{tab}").click()
            page.wait_for_timeout(100)
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=60_000)
    page.get_by_test_id("tab-log").click()
    expect(page.get_by_test_id("log-view").locator(".mon-log-line")).to_have_count(8)
    page.get_by_test_id("tab-step").click()
    expect(page.get_by_test_id("run-input")).to_be_visible()
    expect(page.get_by_test_id("part-error")).to_have_count(0)
    # The page fixture fails the test on any uncaught page error ("l is not a function").


def test_a_designer_sees_no_action_on_a_production_run_and_is_told_why(
    page: Page, server: Server, cluster: Cluster
) -> None:
    api = server.api("alice")
    prd_run = start(api, "flaky-end", "prd", amount=1)
    dev_run = start(api, "flaky-end", "dev", amount=1)
    login(page, "dana")
    page.goto(f"/p/acme/runs/{prd_run}/")
    expect(page.get_by_test_id("actions-why")).to_contain_text("production environment")
    for action in ["cancel", "replay", "restart", "signal", "resume"]:
        expect(page.get_by_test_id(f"action-{action}")).to_have_count(0)
    page.goto(f"/p/acme/runs/{dev_run}/")
    expect(page.get_by_test_id("action-cancel")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("action-replay")).to_be_visible()
    # Nor is she offered to start a run in production: the form says why instead.
    page.goto("/p/acme/w/flaky-end/runs/")
    page.get_by_test_id("start-run").click()
    page.get_by_test_id("start-env").select_option("prd")
    expect(page.get_by_test_id("start-why")).to_contain_text("production environment")
    expect(page.get_by_test_id("start-form")).to_have_count(0)
    page.get_by_test_id("start-env").select_option("dev")
    expect(page.get_by_test_id("start-form")).to_be_visible()
    # A page the role forbids says why, instead of a bare "403".
    response = page.goto("/p/acme/audit/")
    assert response is not None and response.status == 403
    expect(page.get_by_test_id("forbidden-why")).to_contain_text("needs the admin role")
    for run_id in (prd_run, dev_run):
        api.post(f"/runs/{run_id}/cancel", json={})
