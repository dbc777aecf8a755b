"""Cypher graphs (GRAPH events): the pure rules, shared by the designer, the compiler and
the graph connector.

A graph component declares in its ``events`` the tables of its graph and its named Cypher
operations::

    {"schema": {"nodes": {"User": {"name": "STRING", "verified": "BOOLEAN"}},
                "relationships": {"FOLLOWS": {"from": "User", "to": ["User"],
                                              "properties": {"since": "STRING"}}}},
     "find-connections": {"op": "query", "cypher": "MATCH (u:User {id: $userId}) ..."},
     "compute-influence": {"op": "execute", "cypher": "MATCH ... SET ..."}}

Every node and relationship also has an ``id`` (a string; the node tables' primary key).
The five node/relationship operations (:data:`BUILTIN_OPERATIONS`) need no declaration.
Names that end up inside Cypher text (labels, relationship types, property names) must be
identifiers (:data:`IDENT_RE`); values are always passed as parameters. Designer Cypher
runs on the designer's own graph, but may not reach outside it: clauses that read or write
files, load extensions, attach other databases, change settings or manage transactions
are refused (:func:`cypher_issue`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SCHEMA_EVENT = "schema"
BUILTIN_OPERATIONS = (
    "create_node",
    "update_node",
    "delete_node",
    "create_relationship",
    "delete_relationship",
)
CYPHER_OPERATIONS = ("query", "execute")
ID_PROPERTY = "id"
MAX_CYPHER_CHARS = 20_000
_SCALAR_TYPES = frozenset(
    {
        "STRING",
        "BOOLEAN",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "INT128",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "FLOAT",
        "DOUBLE",
        "DATE",
        "TIMESTAMP",
        "INTERVAL",
        "UUID",
        "BLOB",
    }
)


class GraphSchemaError(ValueError):
    """A declaration that cannot be used; ``path`` names the field (``events.schema…``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class RelationshipType:
    """A declared relationship type: the node labels it may join and its properties."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphSchema:
    """The node labels (each with its properties and types) and relationship types."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    relationships: dict[str, RelationshipType] = field(default_factory=dict)


def is_identifier(name: Any) -> bool:
    return isinstance(name, str) and IDENT_RE.match(name) is not None


def _type(raw: Any, path: str) -> str:
    text = str(raw).strip().upper() if isinstance(raw, str) else ""
    base = text[:-2] if text.endswith("[]") else text
    if base not in _SCALAR_TYPES:
        raise GraphSchemaError(
            path, f"unknown type {raw!r}; use one of {', '.join(sorted(_SCALAR_TYPES))} (or T[])"
        )
    return text


def _properties(raw: Any, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise GraphSchemaError(path, "an object of property names to types")
    out: dict[str, str] = {}
    for name, kind in raw.items():
        if not is_identifier(name):
            raise GraphSchemaError(f"{path}.{name}", "a property name is an identifier")
        if name == ID_PROPERTY:
            raise GraphSchemaError(
                f"{path}.{name}", "'id' is every node's and relationship's own (a string)"
            )
        out[name] = _type(kind, f"{path}.{name}")
    return out


def _labels(raw: Any, nodes: Mapping[str, Any], path: str) -> tuple[str, ...]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        raise GraphSchemaError(path, "a node label or a list of them")
    for name in names:
        if name not in nodes:
            raise GraphSchemaError(path, f"{name!r} is not a declared node label")
    return tuple(names)


def graph_schema(events: Mapping[str, Any]) -> GraphSchema:
    """The schema a graph component declares (``events.schema``); raises GraphSchemaError."""
    raw = events.get(SCHEMA_EVENT) or {}
    if not isinstance(raw, Mapping):
        raise GraphSchemaError("events.schema", "an object with nodes and relationships")
    unknown = sorted(set(raw) - {"nodes", "relationships", "description"})
    if unknown:
        raise GraphSchemaError(f"events.schema.{unknown[0]}", "unknown key")
    nodes_raw = raw.get("nodes") or {}
    rels_raw = raw.get("relationships") or {}
    for key, value in (("nodes", nodes_raw), ("relationships", rels_raw)):
        if not isinstance(value, Mapping):
            raise GraphSchemaError(f"events.schema.{key}", "an object keyed by name")
    nodes: dict[str, dict[str, str]] = {}
    for label, props in nodes_raw.items():
        path = f"events.schema.nodes.{label}"
        if not is_identifier(label):
            raise GraphSchemaError(path, "a node label is an identifier")
        nodes[label] = _properties(props, path)
    rels: dict[str, RelationshipType] = {}
    for name, decl in rels_raw.items():
        path = f"events.schema.relationships.{name}"
        if not is_identifier(name):
            raise GraphSchemaError(path, "a relationship type is an identifier")
        if name in nodes:
            raise GraphSchemaError(path, "a node label has the same name")
        if not isinstance(decl, Mapping):
            raise GraphSchemaError(path, "an object with from, to and properties")
        rels[name] = RelationshipType(
            sources=_labels(decl.get("from"), nodes, f"{path}.from"),
            targets=_labels(decl.get("to"), nodes, f"{path}.to"),
            properties=_properties(decl.get("properties"), f"{path}.properties"),
        )
    return GraphSchema(nodes=nodes, relationships=rels)


def cypher_operation(events: Mapping[str, Any], name: str) -> tuple[str, str]:
    """The declared Cypher operation ``name``: (``query`` | ``execute``, its Cypher text).
    Raises GraphSchemaError naming the field."""
    path = f"events.{name}"
    decl = events.get(name)
    if name == SCHEMA_EVENT or not isinstance(decl, Mapping):
        raise GraphSchemaError(path, "no such operation")
    op = decl.get("op", "query")
    if op not in CYPHER_OPERATIONS:
        raise GraphSchemaError(f"{path}.op", "'query' (read only) or 'execute'")
    cypher = decl.get("cypher")
    if not isinstance(cypher, str) or not cypher.strip():
        raise GraphSchemaError(f"{path}.cypher", "the operation's Cypher text")
    problem = cypher_issue(cypher)
    if problem:
        raise GraphSchemaError(f"{path}.cypher", problem)
    return str(op), cypher


def graph_events_issues(events: Mapping[str, Any]) -> dict[str, str]:
    """Every problem of a graph component's declared events, by field (for a 400)."""
    issues: dict[str, str] = {}
    try:
        graph_schema(events)
    except GraphSchemaError as exc:
        issues[exc.path] = exc.message
    for name in events:
        if name == SCHEMA_EVENT:
            continue
        if name in BUILTIN_OPERATIONS:
            issues[f"events.{name}"] = "a built-in operation: it needs no declaration"
            continue
        try:
            cypher_operation(events, name)
        except GraphSchemaError as exc:
            issues[exc.path] = exc.message
    return issues


# --- What designer Cypher may do ----------------------------------------------------------

# Skipped: string literals, `quoted names`, comments. Kept: words, ';' and '.'.
_TOKENS = re.compile(
    r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`]|``)*`|//[^\n]*|/\*.*?\*/
      |(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<semi>;)|(?P<dot>\.)|(?P<open>['"`]|/\*)""",
    re.VERBOSE | re.DOTALL,
)
# Clauses that reach outside the graph (files, extensions, other databases, settings) or
# would end the connector's transaction (a read-only query's).
_REFUSED = frozenset(
    {
        "COPY",
        "LOAD",
        "ATTACH",
        "INSTALL",
        "UNINSTALL",
        "EXPORT",
        "IMPORT",
        "USE",
        "CALL",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "CHECKPOINT",
        "TRANSACTION",
    }
)


def cypher_issue(cypher: str) -> str | None:
    """Why designer Cypher cannot run, or None. One statement; none of :data:`_REFUSED`
    (outside literals, quoted names and comments; ``n.load`` is a property); ``DETACH``
    only in ``DETACH DELETE``."""
    if len(cypher) > MAX_CYPHER_CHARS:
        return f"longer than {MAX_CYPHER_CHARS} characters"
    words: list[str] = []
    after_dot = False
    ended = False
    for match in _TOKENS.finditer(cypher):
        if match.group("open"):
            return "an unterminated string, quoted name or comment"
        if ended and (match.group("word") or match.group("dot")):
            return "one statement only (no ';' between statements)"
        if match.group("semi"):
            ended = True
        elif match.group("dot"):
            after_dot = True
            continue
        elif match.group("word"):
            word = match.group("word").upper()
            if not after_dot:
                if word in _REFUSED:
                    return f"{word} is not allowed: it reaches outside the graph"
                words.append(word)
        after_dot = False
    for i, word in enumerate(words):
        if word == "DETACH" and (i + 1 >= len(words) or words[i + 1] != "DELETE"):
            return "DETACH is allowed only in DETACH DELETE"
    return None


# --- Where a database lives ---------------------------------------------------------------

_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


def graph_path_issue(path: Any) -> str | None:
    """Why ``path`` cannot name a graph database under the admin's graph root, or None:
    a relative path of plain names (no absolute path, no '..', no '~', no backslash)."""
    if path in (None, ""):
        return None
    if not isinstance(path, str):
        return "a relative path (a string)"
    if len(path) > 255:
        return "at most 255 characters"
    if path.startswith(("/", "~")) or "\\" in path or ":" in path:
        return "a path relative to the graph root (TRELLIS_GRAPH_ROOT), not an absolute one"
    parts = path.split("/")
    for part in parts:
        if part in {"", ".", ".."} or not _PATH_PART.match(part):
            return (
                f"{part!r} is not allowed in a path: plain names of letters, digits, "
                "'_', '-', '.' under the graph root"
            )
    return None
