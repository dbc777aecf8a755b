"""`trellis test`: the seed examples' YAML cases in process, JUnit XML, and a failing case
that fails with a diff; the same harness loads a spec file or a published version."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User

from designer.management.commands.load_demo import demo_load
from tests.cli.conftest import Cli, token_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tests"


def _case_count(directory: Path) -> int:
    return sum(len(yaml.safe_load(p.read_text())["cases"]) for p in directory.glob("*.yaml"))


def test_the_seed_examples_cases_pass_and_write_junit(cli: Cli, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = cli("test", str(EXAMPLES), "--junit", str(report))
    assert result.exit_code == 0, result.output
    cases = _case_count(EXAMPLES)
    assert cases >= 15
    assert f"{cases} passed, 0 failed." in result.output
    root = ET.parse(report).getroot()
    testcases = root.findall("./testsuite/testcase")
    assert len(testcases) == cases
    assert {s.get("name") for s in root.findall("testsuite")} >= {
        "order_fulfillment.yaml",
        "signals_queries.yaml",
    }
    assert not root.findall(".//failure") and not root.findall(".//error")


def test_a_failing_case_fails_with_a_diff(cli: Cli, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "order_fulfillment.yaml", tmp_path / "order.yaml")
    path = tmp_path / "order.yaml"
    path.write_text(path.read_text().replace("chargeId: ch_2}", "chargeId: ch_3}"))
    report = tmp_path / "junit.xml"

    result = cli("test", str(tmp_path), "--junit", str(report))
    assert result.exit_code == 1
    assert "4 passed, 1 failed." in result.output
    assert "FAIL" in result.output and "a retried payment uses the next result" in result.output
    assert "-  chargeId: ch_3" in result.output
    assert "+  chargeId: ch_2" in result.output
    failures = ET.parse(report).getroot().findall(".//testcase/failure")
    assert len(failures) == 1
    assert failures[0].get("message", "").startswith("output differ")
    assert "+  chargeId: ch_2" in (failures[0].text or "")


WORKFLOW_FILE = """\
tag: greet
name: Greet
description: ''
spec:
  sequences:
    - tag: main
      events:
        - type: CODE
          event: runtime.connectors.code:echo
          tag: hello
          input:
            who: $Input{name}
        - type: CODE
          event: runtime.connectors.code:fail
          tag: maybe-fail
          condition: $Input{fail}
          input:
            retryable: false
  output:
    said: $Step{hello}{who}
"""

SPEC_CASES = """\
workflow:
  spec: ../workflows/greet.yaml
cases:
  - name: greets
    input: {name: ada, fail: false}
    expect:
      status: completed
      output: {said: ada}
      steps: {hello: completed, maybe-fail: skipped}
  - name: a real code step fails the run
    input: {name: ada, fail: true}
    expect:
      status: failed
      steps: {maybe-fail: failed}
"""


def test_cases_can_name_a_workflow_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "greet.yaml").write_text(WORKFLOW_FILE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "greet.yaml").write_text(SPEC_CASES)
    result = cli("test", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed." in result.output


@pytest.mark.django_db
def test_cases_can_name_a_published_version(cli: Cli, tmp_path: Path) -> None:
    demo_load(base_url="http://127.0.0.1:8000/demo")
    token = token_for(User.objects.get(username="demo"))
    (tmp_path / "main.yaml").write_text(
        "workflow:\n"
        "  published: {product: acme, tag: main_sequence, version: 1}\n"
        "cases:\n"
        "  - name: a valid user is welcomed\n"
        "    input: {user_id: u1, email: a@b.c}\n"
        "    fakes: {validate_user: {valid: true}, send_welcome_email: {sent: 1}}\n"
        "    expect: {status: completed, steps: {send_welcome_email: completed}}\n"
        "  - name: an invalid user fails the run\n"
        "    input: {user_id: u1, email: a@b.c}\n"
        "    fakes: {validate_user: {$fail: no such user}}\n"
        "    expect: {status: failed, steps: {send_welcome_email: not_run}}\n"
    )
    result = cli("test", str(tmp_path), token=token)
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed." in result.output


@pytest.mark.django_db
def test_the_readme_example_runs_against_an_exported_demo(cli: Cli, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# acme/tests/main_sequence.yaml\n")
    example = readme[start : readme.index("```", start)]
    demo_load(base_url="http://127.0.0.1:8000/demo")
    token = token_for(User.objects.get(username="demo"))
    assert cli("export", "acme", str(tmp_path / "acme"), token=token).exit_code == 0
    (tmp_path / "acme" / "tests").mkdir()
    (tmp_path / "acme" / "tests" / "main_sequence.yaml").write_text(example)

    result = cli("test", str(tmp_path / "acme"))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed." in result.output


def test_a_broken_test_file_is_a_failing_case_not_a_crash(cli: Cli, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "state.yaml", tmp_path / "state.yaml")
    (tmp_path / "broken.yaml").write_text("workflow:\n  module: examples.state\ncases: [\n")
    (tmp_path / "unknown.yaml").write_text("workflow:\n  module: examples.nothing\ncases: []\n")
    report = tmp_path / "junit.xml"
    result = cli("test", str(tmp_path), "--junit", str(report))
    assert result.exit_code == 1
    assert "1 passed, 2 failed." in result.output
    assert f"{tmp_path / 'broken.yaml'}:4" in result.output
    assert "No module named 'examples.nothing'" in result.output
    assert len(ET.parse(report).getroot().findall(".//testcase/error")) == 2
