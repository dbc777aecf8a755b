"""JUnit XML for CI: one ``testsuite`` per test file, one ``testcase`` per case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class Case(Protocol):
    file: Path
    name: str
    seconds: float
    failure: str
    diff: str
    error: bool


def junit_xml(results: Sequence[Case], root: Path) -> bytes:
    suites = ET.Element("testsuites", name="trellis test")
    by_file: dict[Path, list[Case]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    for file, cases in by_file.items():
        try:
            name = file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = file.as_posix()
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(cases)),
            failures=str(sum(1 for c in cases if c.failure and not c.error)),
            errors=str(sum(1 for c in cases if c.error)),
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        for case in cases:
            element = ET.SubElement(
                suite, "testcase", classname=name, name=case.name, time=f"{case.seconds:.3f}"
            )
            if case.failure:
                tag = "error" if case.error else "failure"
                ET.SubElement(element, tag, message=case.failure).text = case.diff or case.failure
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))
