"""CODE steps call only registered step functions (issue 13, item 1).

Replays the attacks of a designer account: naming ``runtime.workflows:discover`` (which
imported every module named in the step's input), importing a Python file an earlier
STORAGE step uploaded, killing the worker with ``{"venv.__main__": 1}``, and calling test
helpers (``tests.runtime.steps:hang``) on a production install. Each is refused.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer import services
from designer.models import Environment, Product
from runtime import step_functions
from runtime.code_checks import importable_as, media_root_check
from runtime.compiler import compile_spec
from runtime.connectors.code import code_function
from runtime.context import run_code_step
from runtime.errors import SpecError, StepError
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import ROOT, make_workflow, run_until_done, wait_for

BASE = "/api/v1/products/acme/workflows/"
DISCOVER = "runtime.workflows:discover"


def code_spec(*events: dict[str, Any]) -> dict[str, Any]:
    return {"sequences": [{"tag": "m", "events": list(events)}]}


def evil_module(directory: Path, name: str, marker: Path) -> Path:
    """A module that leaves ``marker`` behind when it is imported (what an attacker runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    return path


# --- the registry ---------------------------------------------------------------------------


def test_the_registry_holds_the_built_ins_and_the_recorders_targets_only() -> None:
    names = step_functions.step_function_names()
    for name in (
        "runtime.connectors.code:noop",
        "runtime.connectors.code:echo",
        "runtime.connectors.code:fail",
        "runtime.workflows:run_code_step",
        "runtime.workflows:log_step",
        "runtime.workflows:transform_step",
    ):
        assert name in names
    # No worker internal of runtime.workflows (discover, find, define…) is a step function.
    runtime_names = {n for n in names if n.startswith("runtime.")}
    assert runtime_names == {
        "runtime.connectors.code:noop",
        "runtime.connectors.code:echo",
        "runtime.connectors.code:fail",
        "runtime.workflows:run_code_step",
        "runtime.workflows:log_step",
        "runtime.workflows:transform_step",
    }


def test_a_lookup_never_imports_the_module_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    name = f"evil_{uuid.uuid4().hex[:8]}"
    evil_module(tmp_path / "pkg", name, marker)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    for path in (f"{name}:run", f"{name}.run", "os:system", "os.system", DISCOVER):
        with pytest.raises(StepError, match="is not a registered step function") as err:
            code_function(path)
        assert err.value.retryable is False
    assert name not in sys.modules
    assert not marker.exists()


def score(input: Any, ctx: Any) -> Any:
    return {"score": 1}


def test_the_decorator_registers_under_module_and_name_and_refuses_a_takeover() -> None:
    with step_functions.registry.extra({}):
        step_functions.step_function(score)
        entry = step_functions.step_function_get(f"{__name__}:score")
        assert entry.fn is score and entry.wants_ctx
        assert f"{__name__}.score" in step_functions.registry  # both spellings

        @step_functions.step_function(name="acme.scoring:v2")
        def other(input: Any) -> Any:
            return input

        assert step_functions.step_function_get("acme.scoring:v2").fn is other
        with pytest.raises(ValueError, match="already registered"):
            step_functions.register_step_function("runtime.connectors.code:noop", other)
        with pytest.raises(ValueError, match="not a step function name"):
            step_functions.register_step_function("not a name", other)

        def nested(input: Any) -> Any:  # no importable name: register it with name=
            return input

        with pytest.raises(ValueError, match="not a step function name"):
            step_functions.step_function(nested)
    assert "acme.scoring:v2" not in step_functions.registry
    assert f"{__name__}:score" not in step_functions.registry


def test_a_recorded_steps_module_hint_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # runtime.workflows:run_code_step is registered; its input names a module. That name
    # used to be imported to find the workflow: now only loaded workflows are found.
    marker = tmp_path / "imported"
    name = f"evil_{uuid.uuid4().hex[:8]}"
    evil_module(tmp_path / "pkg", name, marker)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    with pytest.raises(StepError, match="is not defined in this process") as err:
        run_code_step({"workflow": "acme/nope", "module": name, "step": "x"}, None)
    assert err.value.retryable is False
    assert name not in sys.modules and not marker.exists()


def test_the_in_process_test_harness_follows_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.testing import WorkflowTestEnvironment

    marker = tmp_path / "imported"
    name = f"evil_{uuid.uuid4().hex[:8]}"
    evil_module(tmp_path / "pkg", name, marker)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    spec = code_spec(
        {"type": "CODE", "event": "runtime.connectors.code:echo", "tag": "e", "input": {"a": 1}},
        {"type": "CODE", "event": f"{name}:run", "tag": "x"},
    )
    run = WorkflowTestEnvironment().run(spec)
    assert run.status == "failed"
    assert run.steps["e"].status == "completed"
    assert "is not a registered step function" in str(run.error)
    assert name not in sys.modules and not marker.exists()


# --- the compiler, validate and publish ------------------------------------------------------


def test_the_compiler_refuses_unregistered_functions_with_their_path() -> None:
    spec = code_spec(
        {"type": "CODE", "event": "runtime.connectors.code:noop", "tag": "ok"},
        {"type": "CODE", "event": "os:system", "tag": "bad"},
        {
            "type": "CODE",
            "event": "runtime.connectors.code.echo",  # the dotted spelling is the same name
            "tag": "undo",
            "rollback": {"type": "CODE", "event": DISCOVER},
        },
    )
    with pytest.raises(SpecError) as err:
        compile_spec(spec, step_functions=step_functions.step_function_names())
    assert [(i.path, i.message) for i in err.value.issues] == [
        ("sequences[0].events[1].event", "'os:system' is not a registered step function"),
        (
            "sequences[0].events[2].rollback.event",
            f"'{DISCOVER}' is not a registered step function",
        ),
    ]


@pytest.fixture
def designer_api(designer_user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(designer_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "event", [DISCOVER, "os:system", "tests.designer.test_load_demo:call_command"]
)
def test_validate_and_publish_refuse_an_unregistered_function_naming_the_field(
    designer_api: APIClient, product: Product, designer_user: User, event: str
) -> None:
    services.workflow_create(product=product, tag="pwn", name="Pwn", author=designer_user)
    spec = code_spec(
        {"type": "CODE", "event": "runtime.connectors.code:noop", "tag": "first"},
        {"type": "CODE", "event": event, "tag": "x", "input": {"venv.__main__": 1}},
    )
    for action in ("validate", "publish"):
        response = designer_api.post(f"{BASE}pwn/{action}", {"spec": spec}, format="json")
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid_spec"
        assert body["errors"] == [
            {
                "path": "sequences[0].events[1].event",
                "message": f"'{event}' is not a registered step function",
            }
        ]
    assert not product.workflows.get(tag="pwn").versions.filter(state="published").exists()


@pytest.mark.django_db
def test_registered_functions_still_validate(
    designer_api: APIClient, product: Product, designer_user: User
) -> None:
    services.workflow_create(product=product, tag="ok", name="Ok", author=designer_user)
    spec = code_spec({"type": "CODE", "event": "runtime.connectors.code:echo", "tag": "e"})
    response = designer_api.post(f"{BASE}ok/validate", {"spec": spec}, format="json")
    assert response.status_code == 200, response.content


# --- production settings know no test helper; the old setting is refused --------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    base["TRELLIS_VAR_DIR"] = str(settings.VAR_DIR)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_test_helpers_are_not_callable_under_the_production_settings() -> None:
    probe = (
        "from runtime.step_functions import step_function_names; "
        "from runtime.connectors.code import code_function; "
        "from runtime.errors import StepError\n"
        "names = step_function_names()\n"
        "print('tests-names', sorted(n for n in names if n.startswith('tests.')))\n"
        "for path in ('tests.runtime.steps:hang', 'tests.designer.test_load_demo:call_command',"
        " 'runtime.workflows:discover'):\n"
        "    try:\n"
        "        code_function(path)\n"
        "        print('CALLABLE', path)\n"
        "    except StepError as exc:\n"
        "        print('refused', path, exc.retryable)\n"
        "import sys; print('imported', sorted(m for m in sys.modules if m.startswith('tests')))\n"
    )
    done = manage("shell", "-c", probe, DJANGO_SETTINGS_MODULE="designer.settings")
    assert done.returncode == 0, done.stderr
    assert "tests-names []" in done.stdout
    assert "CALLABLE" not in done.stdout
    assert done.stdout.count("refused") == 3
    assert "imported []" in done.stdout
    # The test settings do register them (the suite runs on tests.settings).
    assert "tests.runtime.steps:hang" in step_functions.step_function_names()


def test_the_old_package_setting_refuses_to_start() -> None:
    done = manage(
        "check", DJANGO_SETTINGS_MODULE="designer.settings", TRELLIS_CODE_PACKAGES="tests"
    )
    assert done.returncode != 0
    assert "TRELLIS_CODE_PACKAGES is no longer supported" in done.stderr
    assert "TRELLIS_STEP_FUNCTIONS" in done.stderr


def test_trellis_step_functions_registers_named_functions_and_refuses_a_bad_one() -> None:
    probe = (
        "from runtime.step_functions import step_function_names; "
        "print(sorted(n for n in step_function_names() if n.startswith('tests.')))"
    )
    done = manage(
        "shell",
        "-c",
        probe,
        DJANGO_SETTINGS_MODULE="designer.settings",
        TRELLIS_STEP_FUNCTIONS="tests.runtime.steps:add",
    )
    assert done.returncode == 0, done.stderr
    assert "['tests.runtime.steps:add']" in done.stdout
    bad = manage(
        "check", DJANGO_SETTINGS_MODULE="designer.settings", TRELLIS_STEP_FUNCTIONS="os.nope:x"
    )
    assert bad.returncode != 0
    assert "TRELLIS_STEP_FUNCTIONS" in bad.stderr and "os.nope" in bad.stderr


def test_decorated_functions_of_workflow_modules_are_registered_at_startup(
    tmp_path: Path,
) -> None:
    package = tmp_path / "acme_flows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "workflows.py").write_text(
        "from runtime import workflows\n\n"
        "@workflows.step_function\n"
        "def score(input, ctx):\n"
        "    return {'score': 1}\n"
    )
    probe = (
        "from runtime.step_functions import step_function_names; "
        "print(sorted(n for n in step_function_names() if n.startswith('acme_')))"
    )
    done = manage(
        "shell",
        "-c",
        probe,
        DJANGO_SETTINGS_MODULE="designer.settings",
        TRELLIS_WORKFLOW_MODULES="acme_flows.workflows",
        PYTHONPATH=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "['acme_flows.workflows:score']" in done.stdout


# --- uploaded files live outside every import path -------------------------------------------


def test_the_default_media_root_is_not_reachable_by_any_module_name() -> None:
    assert Path(settings.MEDIA_ROOT).is_relative_to(ROOT)  # under the project root…
    assert importable_as(settings.MEDIA_ROOT) is None  # …yet no dotted name reaches it
    assert media_root_check() == []


def test_an_importable_media_root_is_an_error_and_refuses_to_start(
    settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = ROOT / "var" / "media"
    (error,) = media_root_check()
    assert error.id == "trellis.E010"
    assert importable_as(tmp_path / "pkg" / "media", [str(tmp_path)]) == str(tmp_path)
    assert importable_as(tmp_path / "media.files", [str(tmp_path)]) is None
    assert importable_as(tmp_path, [str(tmp_path / "inside")]) is not None  # entry inside it
    done = manage(
        "check", DJANGO_SETTINGS_MODULE="designer.settings", MEDIA_ROOT=str(ROOT / "var/media")
    )
    assert done.returncode != 0
    assert "reachable as a Python module path" in done.stderr


@pytest.fixture
def storage_product(product: Product) -> Iterator[Product]:
    services.component_create(product=product, kind="storage", tag="files", actor=None)
    yield product


@pytest.fixture
def uploaded() -> Iterator[tuple[str, Path]]:
    """A file name for the attacker's upload (removed afterwards) and its import marker."""
    name = f"evil_{uuid.uuid4().hex[:8]}"
    marker = Path(settings.VAR_DIR) / f"{name}.imported"
    yield name, marker
    target = Path(settings.MEDIA_ROOT) / "acme" / "dev" / "files" / f"{name}.py"
    target.unlink(missing_ok=True)
    marker.unlink(missing_ok=True)


def candidate_names(path: Path) -> list[str]:
    """Every dotted name that could mean ``path`` from some sys.path entry."""
    names = []
    for entry in sys.path:
        base = Path(entry or ".").resolve()
        if base in path.parents:
            names.append(".".join(path.relative_to(base).with_suffix("").parts))
    return names


def test_a_python_file_uploaded_by_a_storage_step_cannot_be_imported(
    storage_product: Product, env_dev: Environment, uploaded: tuple[str, Path]
) -> None:
    name, marker = uploaded
    wf = make_workflow(
        storage_product,
        code_spec(
            {
                "type": "STORAGE",
                "event": "upload",
                "app": "files",
                "tag": "up",
                "input": {
                    "text": f"open({str(marker)!r}, 'w').write('pwned')\n",
                    "fileName": f"{name}.py",
                },
            }
        ),
    )
    run = run_until_done(run_start(workflow=wf, environment=env_dev, input={}))
    assert run.status == "completed", run.error
    path = (Path(settings.MEDIA_ROOT) / "acme" / "dev" / "files" / f"{name}.py").resolve()
    assert path.exists()
    names = candidate_names(path)
    assert names  # the project root is on sys.path: the names exist…
    for dotted in names:  # …and none of them imports the file
        with pytest.raises(ImportError):
            importlib.import_module(dotted)
    assert not marker.exists()


# --- the worker refuses a forced-in spec (a real qcluster) -----------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_forced_discover_step_fails_once_on_the_worker_and_imports_nothing(
    storage_product: Product, env_dev: Environment, uploaded: tuple[str, Path], worker: Any
) -> None:
    name, marker = uploaded
    # Past validation (straight into the database), the original attack: upload a .py,
    # then ask runtime.workflows:discover to import it, and to import venv.__main__.
    forced = make_workflow(
        storage_product,
        code_spec(
            {
                "type": "STORAGE",
                "event": "upload",
                "app": "files",
                "tag": "up",
                "input": {
                    "text": f"open({str(marker)!r}, 'w').write('pwned')\n",
                    "fileName": f"{name}.py",
                },
            },
            {
                "type": "CODE",
                "event": DISCOVER,
                "tag": "pwn",
                "retries": 3,
                "input": {
                    f"var.media.acme.dev.files.{name}": 1,
                    f"var.media.files.acme.dev.files.{name}": 1,
                    "venv.__main__": 1,
                },
            },
        ),
        tag="forced",
    )
    fine = make_workflow(
        storage_product,
        code_spec({"type": "CODE", "event": "runtime.connectors.code:echo", "input": {"a": 1}}),
        tag="fine",
    )
    worker()
    run = run_start(workflow=forced, environment=env_dev, input={})
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=30), (
        Run.objects.get(pk=run.pk).status
    )
    run.refresh_from_db()
    assert run.status == "failed"
    assert f"'{DISCOVER}' is not a registered step function" in run.error["message"]
    step = StepRun.objects.get(run=run, tag="pwn")
    assert step.status == "failed" and step.attempt == 1  # not retried: a retry cannot help
    assert StepRun.objects.get(run=run, tag="up").status == "completed"
    assert not marker.exists()
    # The worker is alive and serves the next run.
    after = run_start(workflow=fine, environment=env_dev, input={})
    assert wait_for(lambda: Run.objects.get(pk=after.pk).status in RUN_FINISHED, timeout=30)
    after.refresh_from_db()
    assert after.status == "completed", after.error
