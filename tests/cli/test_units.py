"""The CLI's pure parts: profiles, YAML files, the diff, the live view, validate."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from runtime.cli import config, yamlio
from runtime.cli.bundle import files_write
from runtime.cli.commands_runs import render
from runtime.cli.diff import file_changes, value_changes
from runtime.cli.follow import RunView, ws_url
from runtime.cli.validate import validate_directory

# --- profiles ------------------------------------------------------------------------------


def test_profiles_are_stored_0600_and_the_environment_wins(
    cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(config.NotLoggedIn):
        config.profile_get()
    path = config.profile_save("default", "https://a.example/", "tok-a")
    config.profile_save("ci", "https://b.example", "tok-b")
    assert path.parent == cli_home / "trellis"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.profile_get() == config.Profile("default", "https://a.example", "tok-a")
    assert config.profile_get("ci").token == "tok-b"
    monkeypatch.setenv("TRELLIS_TOKEN", "tok-env")
    assert config.profile_get("ci") == config.Profile("ci", "https://b.example", "tok-env")
    monkeypatch.setenv("TRELLIS_URL", "https://env.example")
    assert config.profile_get("nowhere").url == "https://env.example"
    assert config.profile_remove("ci") and not config.profile_remove("ci")


def test_a_wider_config_file_is_narrowed_on_save(cli_home: Path) -> None:
    path = config.profile_save("default", "https://a.example", "tok")
    path.chmod(0o644)
    config.profile_save("default", "https://a.example", "tok2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- YAML ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_yaml_round_trips_any_json_value_and_its_bytes(value: Any) -> None:
    text = yamlio.dumps(value)
    loaded = yaml.safe_load(text)
    assert loaded == value
    assert yamlio.dumps(loaded) == text


def test_keys_come_in_a_fixed_order_whatever_order_they_came_in() -> None:
    a = {"input": {}, "retries": 1, "event": "e", "type": "ACTION", "tag": "t", "zeta": 0}
    b = dict(reversed(list(a.items())))
    assert yamlio.dumps(a) == yamlio.dumps(b)
    assert [line.split(":")[0] for line in yamlio.dumps(a).splitlines()] == [
        "tag",
        "type",
        "event",
        "input",
        "retries",
        "zeta",
    ]


def test_multiline_text_is_a_literal_block() -> None:
    text = yamlio.dumps({"body": "Hello\nthere\n"})
    assert text == "body: |\n  Hello\n  there\n"


def test_a_json_path_finds_its_line(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text('spec:\n  sequences:\n    - tag: a\n      events:\n        - {"x-y": 1}\n')
    document = yamlio.Document(path)
    assert document.line("spec.sequences[0].tag") == 3
    assert document.line('spec.sequences[0].events[0]["x-y"]') == 5
    assert document.line("spec.sequences[0].nothing.here") == 3


def test_files_write_removes_what_the_product_no_longer_has(tmp_path: Path) -> None:
    files_write(tmp_path, {"workflows/a.yaml": {"tag": "a"}, "workflows/b.yaml": {"tag": "b"}})
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "a.yaml").write_text("cases: []\n")
    files_write(tmp_path, {"workflows/a.yaml": {"tag": "a"}})
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml")) == [
        "tests/a.yaml",
        "workflows/a.yaml",
    ]


# --- diff ----------------------------------------------------------------------------------


def test_the_diff_names_each_field_added_changed_or_removed() -> None:
    old = {"a": 1, "b": {"c": [1, 2, 3]}, "gone": True, "t": 1}
    new = {"a": 1, "b": {"c": [1, 5]}, "new": "x", "t": 1.0}
    described = [c.describe() for c in value_changes("f.yaml", old, new)]
    assert described == [
        "~ f.yaml b.c[1]: 2 → 5",
        "- f.yaml b.c[2]: 3",
        "- f.yaml gone: true",
        '+ f.yaml new: "x"',
        "~ f.yaml t: 1 → 1.0",
    ]


def test_file_level_changes() -> None:
    changes = file_changes({"a.yaml": {}, "b.yaml": {"x": 1}}, {"b.yaml": {"x": 1}, "c.yaml": {}})
    assert [(c.kind, c.file, c.path) for c in changes] == [
        ("removed", "a.yaml", ""),
        ("added", "c.yaml", ""),
    ]


# --- live view -----------------------------------------------------------------------------


def test_the_run_view_follows_entries_and_shows_progress() -> None:
    seen: list[tuple[str, str, str]] = []
    view = RunView(
        run_id=7,
        sequences={"one": ["a", "b"], "two": ["c"]},
        on_step=lambda *change: seen.append(change),
    )
    for seq, (kind, step, data) in enumerate(
        [
            ("run_started", "", {}),
            ("step_started", "a", {}),
            ("step_completed", "a", {}),
            ("step_started", "b", {}),
            ("step_failed", "b", {"allowed": True}),
            ("sequence_skipped", "two", {}),
            ("run_completed", "", {"output": {"ok": 1}}),
        ],
        start=1,
    ):
        view.apply({"seq": seq, "kind": kind, "step": step, "data": data})
    assert view.finished and view.status == "completed" and view.output == {"ok": 1}
    assert view.progress("one") == (2, 2) and view.progress("two") == (1, 1)
    assert seen == [
        ("one", "a", "running"),
        ("one", "a", "completed"),
        ("one", "b", "running"),
        ("one", "b", "failed_allowed"),
        ("two", "c", "skipped"),
    ]
    console = Console(record=True, width=100)
    console.print(render(view))
    text = console.export_text()
    assert "one" in text and "2/2" in text and "failed_allowed" in text
    assert "run 7: completed" in text


def test_the_socket_url_follows_the_server_scheme() -> None:
    assert ws_url("https://t.example/base/", 5, 9) == "wss://t.example/base/ws/runs/5/?after=9"
    assert ws_url("http://127.0.0.1:8000", 5, 0) == "ws://127.0.0.1:8000/ws/runs/5/?after=0"


# --- validate ------------------------------------------------------------------------------


def test_validate_points_at_the_line_of_a_yaml_error(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "w.yaml").write_text("tag: w\nspec:\n  name: ok\n  oops: a: b\n")
    checked, problems = validate_directory(tmp_path)
    assert checked == 1
    assert len(problems) == 1
    assert problems[0].file == tmp_path / "workflows" / "w.yaml" and problems[0].line == 4
    assert "mapping values are not allowed" in problems[0].message


def test_validate_reports_every_compile_problem_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "w.yaml").write_text(
        "tag: w\n"
        "spec:\n"
        "  sequences:\n"
        "    - tag: a\n"
        "      parents: [nowhere]\n"
        "      events:\n"
        "        - type: CODE\n"
        "          event: runtime.connectors.code:echo\n"
        "          input:\n"
        "            x: $Step{missing}{y}\n"
    )
    checked, problems = validate_directory(tmp_path)
    assert checked == 1
    by_path = {p.path: p for p in problems}
    assert by_path["spec.sequences[0].parents[0]"].line == 5
    assert any(p.line == 10 and "missing" in p.message for p in problems), problems


def test_a_step_inserted_in_the_middle_is_one_addition() -> None:
    old = {"events": [{"tag": "a"}, {"tag": "b", "retries": 1}, {"tag": "c"}]}
    new = {"events": [{"tag": "a"}, {"tag": "x"}, {"tag": "b", "retries": 1}, {"tag": "c"}]}
    assert [c.describe() for c in value_changes("w.yaml", old, new)] == [
        '+ w.yaml events[1]: {"tag": "x"}'
    ]
    new = {"events": [{"tag": "a"}, {"tag": "b", "retries": 2}, {"tag": "c"}]}
    assert [c.describe() for c in value_changes("w.yaml", old, new)] == [
        "~ w.yaml events[1].retries: 1 → 2"
    ]
    new = {"events": [{"tag": "a"}, {"tag": "c"}]}
    assert [c.describe() for c in value_changes("w.yaml", old, new)] == [
        '- w.yaml events[1]: {"retries": 1, "tag": "b"}'
    ]


def test_the_global_profile_option_names_the_login_profile(
    cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from typer.testing import CliRunner

    from runtime.cli import client as cli_client
    from runtime.cli.main import app

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/auth/token"
        return httpx.Response(200, json={"token": "t-1", "username": "ada", "expires": None})

    monkeypatch.setattr(cli_client, "TRANSPORT", httpx.MockTransport(answer))
    args = ["--profile", "staging", "login", "https://s.example", "--username", "ada"]
    result = CliRunner().invoke(app, args, input="pw\n")
    assert result.exit_code == 0, result.output
    assert config.profile_get("staging") == config.Profile("staging", "https://s.example", "t-1")
    assert CliRunner().invoke(app, ["--profile", "staging", "logout"]).exit_code == 0
    with pytest.raises(config.NotLoggedIn):
        config.profile_get("staging")
