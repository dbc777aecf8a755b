"""``trellis validate``: compile every workflow file of a directory with the server's own
compiler, against the components declared next to it, and name each problem's file, line
and JSON path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cli import yamlio
from runtime.compiler import ComponentInfo, compile_spec
from runtime.errors import SpecError


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    path: str
    message: str

    def describe(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{where} {self.message}"


def components_of(files: dict[str, Any]) -> dict[str, ComponentInfo] | None:
    """What the compiler knows of components: those in the directory (None: no components
    folder, so component checks are skipped rather than failing every step)."""
    infos = {}
    found = False
    for name, data in files.items():
        if not name.startswith("components/") or not isinstance(data, dict):
            continue
        found = True
        events = data.get("events") or {}
        infos[str(data.get("tag") or Path(name).stem)] = ComponentInfo(
            kind=str(data.get("kind", "")), events=frozenset(str(e) for e in events)
        )
    return infos if found else None


def validate_directory(directory: Path) -> tuple[int, list[Problem]]:
    """(workflows checked, problems)."""
    problems: list[Problem] = []
    documents: dict[str, yamlio.Document] = {}
    for folder in ("components", "workflows"):
        for file in sorted((directory / folder).glob("*.yaml")):
            try:
                documents[f"{folder}/{file.name}"] = yamlio.Document(file)
            except yamlio.YamlFileError as exc:
                problems.append(Problem(exc.path, exc.line, "", exc.message))
    components = components_of({name: doc.data for name, doc in documents.items()})
    checked = sum(1 for p in problems if p.file.parent.name == "workflows")
    for name, document in sorted(documents.items()):
        if not name.startswith("workflows/"):
            continue
        checked += 1
        data = document.data
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
            problems.append(Problem(document.path, 1, "spec", "a workflow file needs a `spec`"))
            continue
        try:
            compile_spec(data["spec"], components=components)
        except SpecError as exc:
            for issue in exc.issues:
                where = f"spec.{issue.path}" if issue.path else "spec"
                problems.append(Problem(document.path, document.line(where), where, issue.message))
    return checked, problems
