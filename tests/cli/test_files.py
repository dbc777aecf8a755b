"""export → import into an empty install → export gives the same bytes; push reports
exactly the fields that differ; validate names file, line and JSON path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User

from designer.management.commands.load_demo import demo_load
from designer.models import Component, Environment, Product, Workflow, WorkflowVersion
from tests.cli.conftest import Cli, token_for

pytestmark = pytest.mark.django_db


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _demo_token() -> str:
    demo_load(base_url="http://127.0.0.1:8000/demo")
    return token_for(User.objects.get(username="demo"))


def test_the_demo_round_trips_byte_for_byte(cli: Cli, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    result = cli("export", "acme", str(first), token=_demo_token())
    assert result.exit_code == 0, result.output
    files = _tree(first)
    assert set(files) == {
        "product.yaml",
        "environments.yaml",
        "activations.yaml",
        "components/accounts.yaml",
        "components/mailer.yaml",
        "workflows/main_sequence.yaml",
    }
    workflow = yaml.safe_load(files["workflows/main_sequence.yaml"])
    assert workflow["spec"]["sequences"][0]["events"][0]["event"] == "validate_user"

    # An empty install: no product, component, workflow or version left; another user.
    Product.objects.all().delete()
    assert not (
        Environment.objects.exists()
        or Component.objects.exists()
        or Workflow.objects.exists()
        or WorkflowVersion.objects.exists()
    )
    ci = User.objects.create_user(username="ci", password="pw-ci", is_staff=True)
    result = cli("push", str(first), "--yes", "--publish", "--activate", token=token_for(ci))
    assert result.exit_code == 0, result.output
    assert "created product acme" in result.output
    assert "published workflow main_sequence version 1" in result.output

    result = cli("export", "acme", str(second), token=token_for(ci))
    assert result.exit_code == 0, result.output
    assert _tree(second) == files

    # And nothing is left to push.
    result = cli("push", str(first), "--yes", token=token_for(ci))
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output


def test_push_reports_exactly_the_changed_field(cli: Cli, tmp_path: Path) -> None:
    token = _demo_token()
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "workflows" / "main_sequence.yaml"
    text = path.read_text()
    assert text.count("retries: 2") == 1
    path.write_text(text.replace("retries: 2", "retries: 4"))

    result = cli("push", str(tmp_path), "--dry-run", token=token)
    assert result.exit_code == 0, result.output
    changes = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert changes == ["~ workflows/main_sequence.yaml spec.sequences[0].events[0].retries: 2 → 4"]
    assert Workflow.objects.get(tag="main_sequence").versions.filter(state="draft").count() == 0

    # Applied: the draft holds the change; nothing is published without --publish.
    result = cli("push", str(tmp_path), "--yes", token=token)
    assert result.exit_code == 0, result.output
    workflow = Workflow.objects.get(tag="main_sequence")
    draft = workflow.versions.get(state="draft")
    assert draft.spec["sequences"][0]["events"][0]["retries"] == 4
    assert workflow.versions.filter(state="published").count() == 1


def test_push_asks_before_applying_and_activations_need_activate(cli: Cli, tmp_path: Path) -> None:
    token = _demo_token()
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "activations.yaml"
    data = yaml.safe_load(path.read_text())
    data["activations"]["main_sequence"]["staging"] = {"active": True}
    path.write_text(yaml.safe_dump(data))

    declined = cli("push", str(tmp_path), token=token, input="n\n")
    assert declined.exit_code == 1
    assert "Nothing applied" in declined.output
    assert "activations.main_sequence.staging.active: false → true" in declined.output

    result = cli("push", str(tmp_path), "--yes", token=token)
    assert result.exit_code == 0
    workflow = Workflow.objects.get(tag="main_sequence")
    assert not workflow.activations.filter(environment__slug="staging", active=True).exists()

    result = cli("push", str(tmp_path), "--yes", "--activate", token=token)
    assert result.exit_code == 0, result.output
    assert workflow.activations.filter(environment__slug="staging", active=True).exists()


def test_export_lists_secret_names_never_values(cli: Cli, tmp_path: Path) -> None:
    from designer.api.component_config import component_config_write

    token = _demo_token()
    component = Component.objects.get(tag="accounts")
    dev = Environment.objects.get(slug="dev")
    component_config_write(
        component=component, environment=dev, actor=None, secrets={"API_KEY": "s3cr3t-value"}
    )
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    text = (tmp_path / "components" / "accounts.yaml").read_text()
    assert "s3cr3t-value" not in text
    data = yaml.safe_load(text)
    assert data["environments"]["dev"]["secrets"] == ["API_KEY"]
    assert data["environments"]["staging"]["secrets"] == []


def test_a_viewer_cannot_push(cli: Cli, tmp_path: Path) -> None:
    from designer.models import Membership, Role

    token = _demo_token()
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "workflows" / "main_sequence.yaml"
    path.write_text(path.read_text().replace("retries: 2", "retries: 3"))
    vera = User.objects.create_user(username="vera", password="pw-vera")
    Membership.objects.create(product=Product.objects.get(slug="acme"), user=vera, role=Role.VIEWER)
    result = cli("push", str(tmp_path), "--yes", token=token_for(vera))
    assert result.exit_code == 2
    assert "403" in result.output
    draft = Workflow.objects.get(tag="main_sequence").versions.filter(state="draft")
    assert not draft.exists()


def test_validate_names_file_line_and_path(cli: Cli, tmp_path: Path) -> None:
    token = _demo_token()
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    assert cli("validate", str(tmp_path)).exit_code == 0
    path = tmp_path / "workflows" / "main_sequence.yaml"
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "event: send_welcome_email" in line)
    lines[index] = lines[index].replace("send_welcome_email", "send_goodbye_email")
    path.write_text("\n".join(lines) + "\n")

    result = cli("validate", str(tmp_path))
    assert result.exit_code == 1
    expected = f"{path}:{index + 1}: spec.sequences[0].events[1]"
    assert expected in result.output, result.output
    assert "send_goodbye_email" in result.output


def test_push_updates_configs_removes_secrets_and_never_sends_values(
    cli: Cli, tmp_path: Path
) -> None:
    from designer.api.component_config import component_config_read, component_config_write

    token = _demo_token()
    component = Component.objects.get(tag="accounts")
    dev = Environment.objects.get(slug="dev")
    component_config_write(
        component=component, environment=dev, actor=None, secrets={"OLD": "v1", "KEEP": "v2"}
    )
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "components" / "accounts.yaml"
    data = yaml.safe_load(path.read_text())
    data["environments"]["dev"]["config"]["timeout"] = 9000
    data["environments"]["dev"]["secrets"] = ["KEEP", "NEW"]
    path.write_text(yaml.safe_dump(data))

    result = cli("push", str(tmp_path), "--yes", token=token)
    assert result.exit_code == 0, result.output
    changes = [line.strip() for line in result.output.splitlines() if line.startswith("  ~ ")]
    assert changes == [
        "~ components/accounts.yaml environments.dev.config.timeout: 5000 → 9000",
        '~ components/accounts.yaml environments.dev.secrets[1]: "OLD" → "NEW"',
    ]
    assert "secret NEW has no value on the server" in result.output
    now = component_config_read(component=component, environment=dev)
    assert now["config"]["timeout"] == 9000
    assert sorted(now["secrets"]) == ["KEEP"]


def test_a_bad_token_or_an_unreachable_server_ends_with_a_message(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cli import client as cli_client

    result = cli("export", "acme", str(tmp_path), token="not-a-token")
    assert result.exit_code == 2
    assert "401" in result.output and "trellis login" in result.output

    monkeypatch.setattr(cli_client, "TRANSPORT", None)
    result = cli.runner.invoke(
        __import__("runtime.cli.main", fromlist=["app"]).app,
        ["runs"],
        env={"TRELLIS_URL": "http://127.0.0.1:9", "TRELLIS_TOKEN": "x"},
    )
    assert result.exit_code == 2
    assert "cannot reach the server" in result.output


def test_not_logged_in_says_how(cli: Cli) -> None:
    result = cli("runs")
    assert result.exit_code == 2
    assert "trellis login" in result.output


def test_publish_goes_ahead_when_the_drafts_already_match(cli: Cli, tmp_path: Path) -> None:
    token = _demo_token()
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "workflows" / "main_sequence.yaml"
    path.write_text(path.read_text().replace("retries: 2", "retries: 5"))
    assert cli("push", str(tmp_path), "--yes", token=token).exit_code == 0  # the draft only

    result = cli("push", str(tmp_path), "--yes", "--publish", token=token)
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output
    assert "published workflow main_sequence version 2" in result.output
    workflow = Workflow.objects.get(tag="main_sequence")
    assert workflow.versions.get(number=2).spec["sequences"][0]["events"][0]["retries"] == 5
    assert not workflow.versions.filter(state="draft").exists()


def test_code_first_workflows_are_exported_but_not_pushed(cli: Cli, tmp_path: Path) -> None:
    from designer import services

    token = _demo_token()
    product = Product.objects.get(slug="acme")
    spec = {
        "sequences": [
            {"tag": "s", "events": [{"type": "SLEEP", "event": "nap", "input": {"duration": "1s"}}]}
        ]
    }
    workflow = services.workflow_create(product=product, tag="coded", name="Coded", source="code")
    services.workflow_publish(workflow=workflow, author=None, spec=spec)
    assert cli("export", "acme", str(tmp_path), token=token).exit_code == 0
    path = tmp_path / "workflows" / "coded.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["source"] == "code" and data["spec"] == spec
    path.write_text(path.read_text().replace("duration: 1s", "duration: 2s"))

    result = cli("push", str(tmp_path), "--yes", token=token)
    assert result.exit_code == 0, result.output
    assert "~ workflows/coded.yaml spec.sequences[0].events[0].input.duration" in result.output
    assert "workflow coded is defined in code" in result.output
    assert not workflow.versions.filter(state="draft").exists()
