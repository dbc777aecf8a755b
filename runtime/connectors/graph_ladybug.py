"""The LadybugDB backend of GRAPH steps: an embedded Cypher database (Kùzu's successor),
one file per graph component and environment under ``TRELLIS_GRAPH_ROOT``.

Where: the component's per-environment config ``path`` (relative, checked by
:func:`runtime.cypher.graph_path_issue`, and resolved inside the root so a symlink cannot
lead out), else ``<product>/<environment>/<tag>.lbug``.

Several processes: a LadybugDB file is open read-write in one process at a time (a second
one gets "Could not set lock on file"). So each step opens the database, runs its
operation and closes it, holding an exclusive ``flock`` on ``<file>.lock`` meanwhile;
other workers wait for the lock until the step's deadline, then fail the attempt as
retryable ("busy").

Schema: on every open, the declared node and relationship tables are created if missing
and missing properties (and relationship endpoints) are added (``IF NOT EXISTS``, about a
millisecond each). A property's type is never changed and nothing is dropped.

Bounds: the query timeout is set on the connection (LadybugDB checks it between units of
work, so a long statement stops some time after it, not at once; the step's own timeout
in the engine still bounds the step). The buffer pool (``TRELLIS_GRAPH_BUFFER_POOL_MB``)
bounds the memory of a statement: LadybugDB materialises a result before it is read, so a
result too large fails there; then rows and bytes are counted while converting.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from runtime.connectors.graph_backend import GraphBackend, Limits, Target
from runtime.connectors.storage import product_slug
from runtime.cypher import ID_PROPERTY, GraphSchema, graph_path_issue
from runtime.errors import StepError, StepTimeout

_LOCK_POLL_S = 0.05


@contextmanager
def ladybug_open(target: Target) -> Iterator[GraphBackend]:
    """The component's LadybugDB database, open for one step (locked, schema ensured)."""
    import ladybug

    tag = target.component.tag
    path = _database_path(target)
    deadline = time.monotonic() + target.limits.timeout_s
    with _exclusive(path.with_name(path.name + ".lock"), deadline, tag):
        try:
            db = ladybug.Database(
                str(path),
                buffer_pool_size=settings.TRELLIS_GRAPH_BUFFER_POOL_MB * 1024 * 1024,
                max_num_threads=1,
            )
            conn = ladybug.Connection(db)
        except RuntimeError as exc:
            # Another program holding the file: Trellis's own workers wait on the lock.
            raise StepError(f"graph '{tag}': cannot open: {_first_line(exc)}") from None
        try:
            remaining = max(0.001, deadline - time.monotonic())
            conn.set_query_timeout(int(remaining * 1000))
            backend = _Ladybug(conn, tag, target.schema, target.limits)
            backend.ensure_schema()
            yield backend
        finally:
            conn.close()
            db.close()


def _database_path(target: Target) -> Path:
    component, call = target.component, target.call
    root = Path(settings.TRELLIS_GRAPH_ROOT).resolve()
    configured = target.config.path
    where = "config.path"
    if configured in (None, ""):
        configured = (
            f"{product_slug(call.product_id)}/{call.environment or '_'}/{component.tag}.lbug"
        )
        where = "its default path"
    problem = graph_path_issue(configured)
    if problem:
        raise StepError(f"graph '{component.tag}': {where}: {problem}", retryable=False)
    path = (root / str(configured)).resolve()
    if not path.is_relative_to(root) or path == root:
        raise StepError(
            f"graph '{component.tag}': {where} leads outside the graph root", retryable=False
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _exclusive(lock_path: Path, deadline: float, tag: str) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StepError(
                        f"graph '{tag}' is busy: another step held it until the deadline",
                        retryable=True,
                    ) from None
                time.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _q(name: str) -> str:
    # Only called on names that matched runtime.cypher.IDENT_RE: no backtick to escape.
    return f"`{name}`"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


class _Ladybug:
    """:class:`GraphBackend` on one open LadybugDB connection."""

    def __init__(self, conn: Any, tag: str, schema: GraphSchema, limits: Limits) -> None:
        self.conn = conn
        self.tag = tag
        self.schema = schema
        self.limits = limits

    # --- plumbing

    def run(self, cypher: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.conn.execute(cypher, dict(params or {}))
        except RuntimeError as exc:
            text = _first_line(exc)
            if text.startswith("Interrupted"):
                raise StepTimeout(f"graph '{self.tag}': the statement timed out") from None
            if "Buffer manager exception" in text:
                raise StepError(
                    f"graph '{self.tag}': the statement needs more memory than the graph "
                    "buffer pool (TRELLIS_GRAPH_BUFFER_POOL_MB): add a LIMIT",
                    retryable=False,
                ) from None
            raise StepError(f"graph '{self.tag}': {text}", retryable=False) from None

    def ensure_schema(self) -> None:
        for label, props in self.schema.nodes.items():
            columns = "".join(f", {_q(p)} {t}" for p, t in props.items())
            self.run(
                f"CREATE NODE TABLE IF NOT EXISTS {_q(label)}"
                f"({ID_PROPERTY} STRING PRIMARY KEY{columns})"
            )
            for prop, kind in props.items():
                self.run(f"ALTER TABLE {_q(label)} ADD IF NOT EXISTS {_q(prop)} {kind}")
        for name, rel in self.schema.relationships.items():
            pairs = [(a, b) for a in rel.sources for b in rel.targets]
            ends = ", ".join(f"FROM {_q(a)} TO {_q(b)}" for a, b in pairs)
            columns = "".join(f", {_q(p)} {t}" for p, t in rel.properties.items())
            self.run(
                f"CREATE REL TABLE IF NOT EXISTS {_q(name)}({ends}, {ID_PROPERTY} STRING{columns})"
            )
            for a, b in pairs:
                self.run(f"ALTER TABLE {_q(name)} ADD IF NOT EXISTS FROM {_q(a)} TO {_q(b)}")
            for prop, kind in rel.properties.items():
                self.run(f"ALTER TABLE {_q(name)} ADD IF NOT EXISTS {_q(prop)} {kind}")

    def label_of(self, node_id: str, labels: Sequence[str]) -> str | None:
        pattern = "".join(f":{_q(label)}" for label in labels)
        result = self.run(
            f"MATCH (n{pattern}) WHERE n.{ID_PROPERTY} = $id RETURN label(n) LIMIT 1",
            {"id": node_id},
        )
        return str(result.get_next()[0]) if result.has_next() else None

    def one(self, cypher: str, params: Mapping[str, Any]) -> dict[str, Any]:
        result = self.run(cypher, params)
        if not result.has_next():
            raise StepError(f"graph '{self.tag}': the statement returned nothing", retryable=False)
        return dict(to_json(result.get_next()[0]))

    def _checked(self, label: str, props: Mapping[str, Any]) -> None:
        declared = self.schema.nodes[label]
        for key in props:
            if key not in declared:
                raise StepError(
                    f"input.properties.{key}: not declared for label {label!r} in "
                    "events.schema.nodes",
                    retryable=False,
                )

    # --- the seven operations

    def create_node(
        self, *, label: str, node_id: str, properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        sets, params = _sets("n", properties, self.schema.nodes[label])
        return self.one(
            f"MERGE (n:{_q(label)} {{{ID_PROPERTY}: $id}}){sets} RETURN n",
            {**params, "id": node_id},
        )

    def update_node(
        self, *, node_id: str, labels: Sequence[str], properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        label = self.label_of(node_id, labels)
        if label is None:
            raise StepError(
                f"input.id: no node {node_id!r} ({' or '.join(labels)})", retryable=False
            )
        self._checked(label, properties)
        sets, params = _sets("n", properties, self.schema.nodes[label])
        return self.one(
            f"MATCH (n:{_q(label)}) WHERE n.{ID_PROPERTY} = $id{sets} RETURN n",
            {**params, "id": node_id},
        )

    def delete_node(self, *, node_id: str, labels: Sequence[str]) -> dict[str, Any]:
        label = self.label_of(node_id, labels)
        if label is not None:
            self.run(
                f"MATCH (n:{_q(label)}) WHERE n.{ID_PROPERTY} = $id DETACH DELETE n",
                {"id": node_id},
            )
        return {"id": node_id, "deleted": label is not None}

    def create_relationship(
        self,
        *,
        rel_type: str,
        rel_id: str,
        from_id: str,
        to_id: str,
        properties: Mapping[str, Any],
    ) -> dict[str, Any]:
        rel = self.schema.relationships[rel_type]
        source = self.label_of(from_id, rel.sources)
        target = self.label_of(to_id, rel.targets)
        for where, found, node, labels in (
            ("from", source, from_id, rel.sources),
            ("to", target, to_id, rel.targets),
        ):
            if found is None:
                raise StepError(
                    f"input.{where}: no node {node!r} labelled {' or '.join(labels)} "
                    f"for a {rel_type} relationship",
                    retryable=False,
                )
        sets, params = _sets("r", properties, rel.properties)
        out = self.one(
            f"MATCH (a:{_q(str(source))}), (b:{_q(str(target))}) "
            f"WHERE a.{ID_PROPERTY} = $from AND b.{ID_PROPERTY} = $to "
            f"MERGE (a)-[r:{_q(rel_type)} {{{ID_PROPERTY}: $id}}]->(b){sets} RETURN r",
            {**params, "id": rel_id, "from": from_id, "to": to_id},
        )
        return {**out, "from": from_id, "to": to_id}

    def delete_relationship(self, *, rel_id: str, types: Sequence[str]) -> dict[str, Any]:
        if not types:
            return {"id": rel_id, "deleted": False}
        pattern = "|".join(_q(t) for t in types)
        match = f"MATCH ()-[r:{pattern}]->() WHERE r.{ID_PROPERTY} = $id"
        found = self.run(f"{match} RETURN count(r)", {"id": rel_id}).get_next()[0]
        if found:
            self.run(f"{match} DELETE r", {"id": rel_id})
        return {"id": rel_id, "deleted": bool(found)}

    def query(self, *, cypher: str, params: Mapping[str, Any]) -> dict[str, Any]:
        # A query operation cannot write: LadybugDB refuses writes in this transaction.
        self.run("BEGIN TRANSACTION READ ONLY")
        try:
            return self.rows(self.run(cypher, params))
        except StepError as exc:
            if "read-only transaction" in exc.message:
                exc.message += " (declare the operation with op: execute to write)"
                exc.args = (exc.message,)
            raise
        finally:
            # A failed statement (timeout, a write refused) has already ended it.
            with contextlib.suppress(RuntimeError):
                self.conn.execute("ROLLBACK")

    def execute(self, *, cypher: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.rows(self.run(cypher, params))

    def rows(self, result: Any) -> dict[str, Any]:
        """The result as ``{rows, count, row}``, within the row and byte bounds."""
        limits = self.limits
        total = result.get_num_tuples()
        if total > limits.max_rows:
            raise StepError(
                f"graph '{self.tag}': the statement returned {total} rows, more than "
                f"{limits.max_rows}: add a LIMIT",
                retryable=False,
            )
        names = result.get_column_names()
        rows: list[dict[str, Any]] = []
        size = 0
        while result.has_next():
            row = {n: to_json(v) for n, v in zip(names, result.get_next(), strict=False)}
            size += len(json.dumps(row, default=str))
            if size > limits.max_bytes:
                raise StepError(
                    f"graph '{self.tag}': the result is larger than {limits.max_bytes} bytes: "
                    "return fewer rows or properties",
                    retryable=False,
                )
            rows.append(row)
        return {"rows": rows, "count": len(rows), "row": rows[0] if rows else None}


def _sets(
    var: str, properties: Mapping[str, Any], types: Mapping[str, str]
) -> tuple[str, dict[str, Any]]:
    """`` SET n.`a` = $p0, …`` and its parameters (names are checked identifiers)."""
    params = {
        f"p{i}": _value(k, v, types.get(k, "STRING")) for i, (k, v) in enumerate(properties.items())
    }
    if not params:
        return "", {}
    parts = ", ".join(f"{var}.{_q(k)} = $p{i}" for i, k in enumerate(properties))
    return f" SET {parts}", params


def _value(key: str, value: Any, kind: str) -> Any:
    """A JSON value as the declared type wants it: ISO text for DATE and TIMESTAMP, text
    for UUID; an object is stored as JSON text."""
    if isinstance(value, dict):
        return json.dumps(value)
    if not isinstance(value, str) or kind not in {"DATE", "TIMESTAMP", "UUID"}:
        return value
    try:
        if kind == "DATE":
            return dt.date.fromisoformat(value)
        if kind == "UUID":
            return uuid.UUID(value)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise StepError(
            f"input.properties.{key}: {value[:40]!r} is not a {kind}", retryable=False
        ) from None
    if moment.tzinfo is not None:  # TIMESTAMP holds UTC without a zone
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _props(raw: Mapping[str, Any]) -> dict[str, Any]:
    # LadybugDB lists every column of the tables a pattern spans; an unset one is null.
    return {k: to_json(v) for k, v in raw.items() if not k.startswith("_") and v is not None}


def to_json(value: Any) -> Any:
    """A LadybugDB value as JSON: nodes ``{id, labels, properties}``, relationships
    ``{id, type, properties}``, paths ``{nodes, relationships}``."""
    if isinstance(value, dict):
        if "_NODES" in value and "_RELS" in value:
            return {
                "nodes": [to_json(n) for n in value["_NODES"]],
                "relationships": [to_json(r) for r in value["_RELS"]],
            }
        if "_LABEL" in value and "_SRC" in value:
            return {
                "id": value.get(ID_PROPERTY),
                "type": value["_LABEL"],
                "properties": _props(value),
            }
        if "_LABEL" in value and "_ID" in value:
            return {
                "id": value.get(ID_PROPERTY),
                "labels": [value["_LABEL"]],
                "properties": _props(value),
            }
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value
