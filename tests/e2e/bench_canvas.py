"""Canvas benchmark: open a generated 500-sequence / 2,500-event workflow and report the
load time and the frame rate while panning and zooming.

    .venv/bin/python -m tests.e2e.bench_canvas [--sequences 500] [--events 5] [--seconds 4]

It starts its own server (tests/e2e/harness.py) on the bench build of the frontend
(frontend/dist-bench, `make frontend-bench`: the production bundle has no benchmark hook)
and the machine's headless Chromium, and prints one JSON object.
tests/e2e/test_canvas_bench.py runs it as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from tests.e2e.harness import BENCH_DIST, CHROMIUM, CHROMIUM_ARGS, Server, create_workflow

# What the generated steps call (components seeded by the harness).
KINDS = [
    ("ACTION", "inventory-api", "check-availability"),
    ("DB_ACTION", "orders-db", "create"),
    ("NOTIFICATION", "transactional", "order-confirmed"),
    ("PUBLISH", "warehouse", "new-order"),
    ("ACTION", "stripe", "create-charge"),
]


def generated_spec(sequences: int = 500, events: int = 5, width: int = 20) -> dict[str, Any]:
    """A layered DAG: `width` sequences per level, each fed by one or two sequences of the
    level before; every step reads the output of the step before it."""
    seqs = []
    for i in range(sequences):
        level, pos = divmod(i, width)
        parents = []
        if level:
            parents = [f"s{(level - 1) * width + pos}"]
            if pos % 2 and pos + 1 < width:
                parents.append(f"s{(level - 1) * width + pos + 1}")
        steps = []
        for j in range(events):
            kind, app, event = KINDS[(i + j) % len(KINDS)]
            previous = f"s{i}-e{j - 1}" if j else (f"{parents[0]}-e{events - 1}" if parents else "")
            steps.append(
                {
                    "type": kind,
                    "app": app,
                    "event": event,
                    "tag": f"s{i}-e{j}",
                    "input": {"previous": f"$Step{{{previous}}}{{id}}"} if previous else {},
                    "retries": j % 3,
                }
            )
        seqs.append({"tag": f"s{i}", "parents": parents, "events": steps})
    return {"sequences": seqs, "layout": {"positions": {}, "direction": "LR"}}


def measure(browser: Browser, server: Server, tag: str, seconds: float) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=server.url)
    page = context.new_page()
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    started = time.monotonic()
    page.goto(f"/p/acme/w/{tag}/")
    page.wait_for_selector("body[data-canvas-ready]", timeout=60_000)
    wall = time.monotonic() - started
    ready_ms = page.evaluate("window.__trellisReady")
    nodes = page.evaluate("window.__trellisBench.nodeCount()")
    ms = int(seconds * 1000)
    results = {
        "sequences": nodes,
        "events": page.locator(".event-row").count(),
        "load_ms": round(ready_ms),
        "load_wall_ms": round(wall * 1000),
        "pan_fit": page.evaluate(f"window.__trellisBench.pan({{ms: {ms}}})"),
        "pan_zoom_1": page.evaluate(f"window.__trellisBench.pan({{ms: {ms}, zoom: 1}})"),
        "zoom_cycle": page.evaluate(f"window.__trellisBench.zoom({{ms: {ms}, from: 0.08, to: 1}})"),
    }
    context.close()
    return results


def run(sequences: int = 500, events: int = 5, seconds: float = 4.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp:
        server = Server(Path(tmp), dist=BENCH_DIST).start()
        try:
            tag = f"bench-{sequences}"
            spec = generated_spec(sequences, events)
            create_workflow(server.api(), tag, f"Benchmark {sequences}", spec)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    return measure(browser, server, tag, seconds)
                finally:
                    browser.close()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=500)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    print(json.dumps(run(args.sequences, args.events, args.seconds), indent=2))


if __name__ == "__main__":
    main()
