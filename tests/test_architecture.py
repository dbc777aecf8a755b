"""The shape of the code (issue 14): short modules, short functions, every runtime module
in a layer. The import contracts themselves are checked by ``lint-imports`` (make lint).

Each test lists every offender, so one run shows all that is left to do.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("designer", "runtime")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# Known offenders: none left. The lists only shrink: an entry that no longer offends fails
# the test until it is removed here.
KNOWN_LONG_MODULES: set[str] = set()
KNOWN_LONG_FUNCTIONS: set[str] = set()


def _modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _long_modules() -> dict[str, int]:
    lengths = {_name(p): len(p.read_text().splitlines()) for p in _modules()}
    return {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}


def _long_functions() -> dict[str, int]:
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str, module: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found[f"{module}:{qualname}"] = length
                visit(child, f"{qualname}.", module)
            else:
                visit(child, prefix, module)

    for path in _modules():
        visit(ast.parse(path.read_text()), "", _name(path))
    return found


def test_modules_are_at_most_600_lines() -> None:
    long = _long_modules()
    offenders = {name: n for name, n in long.items() if name not in KNOWN_LONG_MODULES}
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines: {offenders}"
    shrunk = sorted(KNOWN_LONG_MODULES - set(long))
    assert not shrunk, f"no longer over {MAX_MODULE_LINES} lines, remove from the list: {shrunk}"


def test_functions_are_at_most_80_lines() -> None:
    long = _long_functions()
    offenders = {name: n for name, n in long.items() if name not in KNOWN_LONG_FUNCTIONS}
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines: {offenders}"
    shrunk = sorted(KNOWN_LONG_FUNCTIONS - set(long))
    assert not shrunk, f"no longer over {MAX_FUNCTION_LINES} lines, remove from the list: {shrunk}"


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_every_runtime_module_is_in_a_layer() -> None:
    """A new module under runtime/ must be named in the core contract, as a core module or
    as one of runtime's Django side (pyproject.toml, [tool.importlinter])."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    core = next(c for c in config["contracts"] if c["id"] == "core-pure")
    named = set(core["source_modules"]) | set(core["forbidden_modules"])
    runtime = ROOT / "runtime"
    modules = {
        f"runtime.{p.stem}"
        for p in runtime.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    # A package split across layers (runtime.engine: pure decisions, Django-side rest) is
    # placed by naming its modules.
    placed = {".".join(m.split(".")[:2]) for m in named}
    unplaced = sorted(modules - placed)
    assert not unplaced, f"runtime modules in no layer of pyproject.toml: {unplaced}"
    gone = sorted(m for m in named if m.startswith("runtime.") and not _exists(m))
    assert not gone, f"layers name modules that no longer exist: {gone}"
