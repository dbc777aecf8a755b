"""YAML that diffs well and round-trips byte for byte, and errors that name their line.

Dumping: block style, mappings in a fixed order (the fields a reader looks for first —
``tag``, ``type``, ``event``… — then the rest alphabetically), so the same data always
gives the same bytes whatever order the server's JSON had (PostgreSQL's jsonb does not keep
it). Text with newlines is a literal block. Loading: PyYAML's safe loader (no Python tags),
with the node tree kept so a JSON path (``spec.sequences[0].events[1].input``) can be
turned back into a line number.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

FIRST_KEYS = [
    "slug",
    "tag",
    "kind",
    "type",
    "event",
    "app",
    "name",
    "description",
    "source",
    "order",
    "is_production",
    "workflow",
    "parents",
    "level",
    "condition",
    "skip_if",
    "input",
]
_RANK = {key: i for i, key in enumerate(FIRST_KEYS)}
_BREAKS = "\r\x85\u2028\u2029"


def _ordered(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    return sorted(mapping.items(), key=lambda kv: (_RANK.get(kv[0], len(_RANK)), str(kv[0])))


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Lists indented under their key: what most YAML in repositories looks like.
        super().increase_indent(flow, False)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", _ordered(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # A literal block keeps text readable; the emitter falls back to quoting when a block
    # could not round-trip (trailing spaces, tabs…). Characters a YAML reader takes for
    # line breaks (with allow_unicode they would be written raw) are escaped in double quotes.
    if any(c in data for c in _BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(str, _represent_str)


def dumps(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        allow_unicode=True,
        sort_keys=False,
        width=4096,  # no folding: a long line stays one line in a diff
    )


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")


class YamlFileError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}")


class Document:
    """A loaded YAML file: its data and its node tree (for line numbers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text(encoding="utf-8")
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise YamlFileError(path, line, str(exc.problem or exc)) from None

    def line(self, json_path: str) -> int:
        """The 1-based line of the deepest node on ``json_path`` that exists."""
        node = self.node
        if node is None:
            return 1
        best = node.start_mark.line + 1
        for part in path_parts(json_path):
            child = _child(node, part)
            if child is None:
                break
            node = child
            best = node.start_mark.line + 1
        return best


_PART = re.compile(r'([^.\[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def path_parts(json_path: str) -> list[str | int]:
    """``a.b[2]["x-y"].c`` → ``['a', 'b', 2, 'x-y', 'c']`` (the compiler's issue paths)."""
    parts: list[str | int] = []
    for key, index, quoted in _PART.findall(json_path):
        parts.append(int(index) if index else json.loads(quoted) if quoted else key)
    return parts


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
