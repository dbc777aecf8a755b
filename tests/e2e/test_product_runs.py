"""The product runs page in Chromium, with a real qcluster worker: 20 runs fail at one step,
a fixed version is published, the page filters "failed at that step", selects every run
matching and retries them in bulk (preview, typed confirmation, progress); all 20 retries
complete on the fixed version, each with its audit entry. Screenshots of the page (charts
and grid) go to test-artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, shot
from tests.e2e.harness import Server
from tests.e2e.test_run_monitor import Cluster

pytestmark = pytest.mark.worker

TAG = "batch"
RUNS = 20


def spec(charge: str) -> dict[str, Any]:
    def step(fn: str, tag: str) -> dict[str, Any]:
        return {"type": "CODE", "event": f"tests.runtime.steps:{fn}", "tag": tag,
                "input": {"a": 1, "b": 2}}  # fmt: skip

    return {"sequences": [{"tag": "main", "events": [
        step("add", "prepare"), step(charge, "charge"), step("add", "ship"),
    ]}]}  # fmt: skip


def publish(api: httpx.Client, body: dict[str, Any]) -> int:
    response = api.post(f"/products/acme/workflows/{TAG}/publish", json={"spec": body})
    assert response.status_code in (200, 201), response.text
    number: int = response.json()["number"]
    return number


def runs(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = api.get("/products/acme/runs", params={"workflow": TAG, "limit": "200", **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def wait_until(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture(scope="module")
def failed_runs(server: Server) -> Iterator[dict[str, Any]]:
    api = server.api("alice")
    response = api.post("/products/acme/workflows/", json={"tag": TAG, "name": "Batch"})
    assert response.status_code == 201, response.text
    assert publish(api, spec("boom")) == 1
    response = api.put(f"/products/acme/workflows/{TAG}/activations/dev", json={"active": True})
    assert response.status_code == 200, response.text
    started = []
    for i in range(RUNS):
        body = {"workflow": f"acme/{TAG}", "env": "dev", "input": {"customer": {"id": i}}}
        response = api.post("/runs", json=body)
        assert response.status_code == 202, response.text
        started.append(response.json()["id"])
    cluster = Cluster(server)
    cluster.start()
    try:
        failed = wait_until(lambda: len(runs(api, failed_step="charge")) == RUNS)
        assert failed, f"not all {RUNS} runs failed at 'charge': {runs(api)[:3]}"
        yield {"api": api, "ids": started}
    finally:
        cluster.stop()


def test_failed_runs_are_retried_in_bulk_onto_the_fixed_version(
    page: Page, failed_runs: dict[str, Any]
) -> None:
    api: httpx.Client = failed_runs["api"]
    ids: list[int] = failed_runs["ids"]
    assert publish(api, spec("add")) == 2  # the fix; dev follows the latest version

    login(page)
    page.goto(f"/p/acme/runs/?workflow={TAG}")
    page.wait_for_selector("body[data-runs-ready]")
    page.get_by_test_id("filter-failed-step").fill("charge")
    page.get_by_test_id("filter-apply").click()
    expect(page.locator("[data-testid^=run-row-]")).to_have_count(RUNS)
    expect(page.get_by_test_id("runs-grid")).to_be_visible()
    expect(page.get_by_test_id(f"grid-cell-{ids[0]}-charge")).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.get_by_test_id("chart-counts").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id(f"group-{TAG}-dev")).to_contain_text(str(RUNS))
    shot(page, "product-runs-failed")

    page.get_by_test_id("select-all-matching").click()
    page.get_by_test_id("bulk-preview").click()
    expect(page.get_by_test_id("bulk-count")).to_contain_text(f"{RUNS} runs will be retried")
    expect(page.get_by_test_id("bulk-versions")).to_contain_text(f"{TAG}@dev → v2")
    expect(page.get_by_test_id("bulk-rerun")).to_contain_text("charge (20)")
    expect(page.get_by_test_id("bulk-go")).to_be_disabled()  # above the threshold: type it
    page.get_by_test_id("bulk-confirm").fill(f"retry {RUNS} runs")
    page.get_by_test_id("bulk-go").click()
    expect(page.get_by_test_id("bulk-progress")).to_have_attribute("data-done", "true")
    expect(page.get_by_test_id("bulk-progress")).to_contain_text(f"{RUNS} done · 0 refused")

    def retried_and_done() -> list[dict[str, Any]]:
        done = [r for r in runs(api, status="completed") if r["origin_kind"] == "retry"]
        return done if len(done) == RUNS else []

    retries = wait_until(retried_and_done)
    assert retries, f"not all retries completed: {runs(api)[:5]}"
    assert sorted(r["origin"] for r in retries) == sorted(ids)
    assert {r["version"] for r in retries} == {2}
    audit = api.get("/products/acme/audit/", params={"action": "run.retry", "limit": "100"})
    assert audit.status_code == 200, audit.text
    body = audit.json()
    entries = body["results"] if isinstance(body, dict) else body
    assert sorted(e["after"]["from_run"] for e in entries) == sorted(ids)
    assert all(e["actor"] == "alice" for e in entries)

    # The page shows them live (no reload): the new runs, completed, in the grid.
    page.get_by_test_id("filter-clear").click()
    page.get_by_test_id("filter-workflow").select_option(TAG)
    newest = max(r["id"] for r in retries)
    expect(page.get_by_test_id(f"grid-cell-{newest}-charge")).to_have_attribute(
        "data-status", "completed"
    )
    shot(page, "product-runs-after-retry")

    # Live: a run started elsewhere appears and finishes on the open page, no reload.
    body = {"workflow": f"acme/{TAG}", "env": "dev", "input": {"customer": {"id": 99}}}
    response = api.post("/runs", json=body)
    assert response.status_code == 202, response.text
    fresh = response.json()["id"]
    expect(page.get_by_test_id(f"run-row-{fresh}")).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    expect(page.get_by_test_id(f"grid-cell-{fresh}-ship")).to_have_attribute(
        "data-status", "completed"
    )
    page.get_by_test_id(f"grid-cell-{ids[0]}-charge").click()
    page.wait_for_url(re.compile(rf"/p/acme/runs/{ids[0]}/\?step=charge$"))
    # The monitor opens at that step: its inspector shows it.
    expect(page.get_by_test_id("step-inspector").locator("h3")).to_contain_text("charge")
