"""The canvas benchmark as a smoke test: a generated 500-sequence / 2,500-event workflow
opens, and panning and zooming keep drawing frames. The numbers go to
test-artifacts/bench-canvas.json (the full run: `make bench-canvas`)."""

from __future__ import annotations

import json

from playwright.sync_api import Browser

from tests.e2e.bench_canvas import generated_spec, measure
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.harness import Server, create_workflow


def test_a_500_sequence_workflow_opens_and_pans(chromium: Browser, bench_server: Server) -> None:
    create_workflow(bench_server.api(), "bench-500", "Benchmark 500", generated_spec(500, 5))
    result = measure(chromium, bench_server, "bench-500", seconds=1.5)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench-canvas.json").write_text(json.dumps(result, indent=2))
    assert result["sequences"] == 500
    # Fitted, the whole graph is in view: every event is drawn (as a bar, far out).
    assert result["events"] == 2500
    assert result["load_ms"] < 30_000
    for run in ("pan_fit", "pan_zoom_1", "zoom_cycle"):
        # Lenient floors (CI machines are shared): they catch a canvas that stalls, not jank.
        assert result[run]["fps"] >= 3, (run, result[run])
        assert result[run]["maxFrameMs"] < 3000, (run, result[run])
    # Windowed rendering: zoomed in, only the cards around the view are in the DOM.
    assert result["pan_zoom_1"]["renderedNodes"] < 200
