"""``trellis test``: run a directory's YAML test cases in process with
:mod:`runtime.testing` (the real compiler, expressions and engine rules; connectors faked),
no server needed. A test file::

    workflow:
      spec: ../workflows/signup.yaml   # a workflow file (or a bare spec), relative to this file
      # module: examples.order_fulfillment   (a code-first workflow; `module:attr`, default
      #                                       attribute `workflow`)
      # published: {product: acme, tag: signup, version: 3}   (from the server; no version:
      #                                                         the latest)
    fakes: {validate: {available: true}}     # for every case
    cases:
      - name: the happy path
        input: {orderId: o-1}
        fakes:                                # per step tag: the result, or…
          payment: {$fail: card declined}     # …a failure ($retryable: true to retry it),
          reserve: [{$fail: busy, $retryable: true}, {ok: true}]   # …one item per attempt
        signals: [{name: approve, data: {by: ada}}]
        expect:
          status: completed
          output: {success: true}
          steps: {payment: completed, refund: skipped}
          completed: [validate, payment]      # the completed steps, in order

A list fake means one item per attempt: a step whose result is a list is written ``[[…]]``.
"""

from __future__ import annotations

import difflib
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cli import yamlio
from runtime.testing import Fail, TestRun, WorkflowTestEnvironment

ExpectKeys = ("status", "output", "steps", "completed", "state", "waiting_for")


class CaseFileError(Exception):
    pass


@dataclass
class CaseResult:
    file: Path
    name: str
    seconds: float
    failure: str = ""  # "" when it passed
    diff: str = ""
    error: bool = False  # the case could not run (bad file, unknown workflow)

    @property
    def ok(self) -> bool:
        return not self.failure


def test_files(directory: Path) -> list[Path]:
    """YAML files under ``directory`` whose top level has ``cases``."""
    found = []
    candidates = [directory] if directory.is_file() else sorted(directory.rglob("*.y*ml"))
    for path in candidates:
        try:
            data = yamlio.Document(path).data
        except yamlio.YamlFileError:
            found.append(path)  # unreadable: run_file reports it as a failing case
            continue
        if isinstance(data, dict) and "cases" in data:
            found.append(path)
    return found


def fake_value(value: Any) -> Any:
    """YAML fake → what runtime.testing takes: ``{$fail: …}`` becomes a :class:`Fail`."""
    if isinstance(value, dict) and "$fail" in value:
        return Fail(str(value["$fail"]), retryable=bool(value.get("$retryable", False)))
    if isinstance(value, list):
        return [fake_value(item) for item in value]
    return value


def load_workflow(
    source: Any, here: Path, published: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> Any:
    """The spec (or code-first definition) a test file names."""
    if not isinstance(source, dict) or len(source) != 1:
        raise CaseFileError("workflow: give exactly one of spec, module, published")
    ((kind, value),) = source.items()
    if kind == "spec":
        data = yamlio.Document((here.parent / str(value)).resolve()).data
        spec = data.get("spec") if isinstance(data, dict) and "spec" in data else data
        if not isinstance(spec, dict):
            raise CaseFileError(f"{value}: not a workflow spec")
        return spec
    if kind == "module":
        module_name, _, attr = str(value).partition(":")
        return getattr(importlib.import_module(module_name), attr or "workflow")
    if kind == "published":
        if published is None or not isinstance(value, dict):
            raise CaseFileError("workflow.published needs {product, tag} and a server login")
        return published(value)
    raise CaseFileError(f"workflow: unknown source {kind!r} (spec, module or published)")


def _diff(field: str, expected: Any, actual: Any) -> str:
    lines = difflib.unified_diff(
        yamlio.dumps({field: expected}).splitlines(),
        yamlio.dumps({field: actual}).splitlines(),
        fromfile="expected",
        tofile="actual",
        lineterm="",
    )
    return "\n".join(lines)


def actual_of(run: TestRun, key: str, expected: Any) -> Any:
    if key == "steps":
        wanted = expected if isinstance(expected, dict) else {}
        return {tag: run.steps[tag].status if tag in run.steps else None for tag in wanted}
    if key == "completed":
        return run.completed
    return getattr(run, key)


def check(run: TestRun, expect: dict[str, Any]) -> tuple[str, str]:
    """(failure message, diff) of the first expectations that do not hold; ("", "") if all do."""
    failures, diffs = [], []
    for key in ExpectKeys:
        if key not in expect:
            continue
        actual = actual_of(run, key, expect[key])
        if actual != expect[key]:
            failures.append(key)
            diffs.append(_diff(key, expect[key], actual))
    if not failures:
        return "", ""
    message = f"{', '.join(failures)} differ (run {run.status}"
    if run.error:
        message += f": {run.error.get('message', run.error)}"
    return message + ")", "\n".join(diffs)


def run_file(
    path: Path, published: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> list[CaseResult]:
    try:
        data = yamlio.Document(path).data
        workflow = load_workflow(data.get("workflow"), path, published)
    except Exception as exc:  # a bad file fails its cases, it does not stop the others
        return [CaseResult(path, "(load)", 0.0, f"{type(exc).__name__}: {exc}", error=True)]
    shared = {tag: fake_value(v) for tag, v in (data.get("fakes") or {}).items()}
    results = []
    for index, case in enumerate(data.get("cases") or []):
        name = str(case.get("name") or f"case {index + 1}")
        started = time.monotonic()
        try:
            run = WorkflowTestEnvironment(fakes=shared).run(
                workflow,
                case.get("input") or {},
                fakes={tag: fake_value(v) for tag, v in (case.get("fakes") or {}).items()},
                signals=[(s["name"], s.get("data")) for s in case.get("signals") or []],
                state=case.get("state"),
            )
        except Exception as exc:
            elapsed = time.monotonic() - started
            results.append(
                CaseResult(path, name, elapsed, f"{type(exc).__name__}: {exc}", error=True)
            )
            continue
        failure, diff = check(run, case.get("expect") or {})
        results.append(CaseResult(path, name, time.monotonic() - started, failure, diff))
    return results
