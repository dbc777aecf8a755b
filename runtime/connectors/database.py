"""DB_ACTION: named operations on a database component, always as parameterised SQL.

The database component declares its operations (``Component.events``)::

    {"create-user":  {"op": "insert", "table": "users", "columns": ["email", "name"]},
     "find-by-customer": {"op": "query",
                          "sql": "SELECT * FROM orders WHERE customer_id = :customerId"},
     "list-orders":  {"op": "query", "table": "orders", "limit": 100, "order_by": "-id"},
     "update-status": {"op": "update", "table": "orders"},
     "remove-order": {"op": "delete", "table": "orders"},
     "aggregate-sales": {"op": "execute",
                         "sql": "SELECT sum(total) AS total FROM orders WHERE day >= :start"}}

and each environment says where (``Component.config``)::

    {"url": "sqlite:///var/app.sqlite3" | "postgresql://user@host:5432/db",
     "password_secret": "db_password", "timeout": 30000}

``event`` is the operation name or ``db_tag:operation``. Step input, as the seed's
``ctx.database.*`` shows: ``{data}`` for insert (a dict, or a list of dicts), ``{where |
filter, data}`` for update, ``{where | filter}`` for delete and table queries, ``{params}``
(or ``{input}``, or the input's own keys) for declared SQL.

Values are always bound, never spliced into SQL. Identifiers (tables, columns) come only
from the declaration or the input's keys, and are checked against a strict pattern (and
the declared ``columns`` when given) before being quoted. ``update`` and ``delete``
without a condition are refused unless the operation says ``"allow_all": true``.

Results: insert → the inserted row (a list of dicts → ``{rows, count}``); query and
execute → ``{rows, count, row}`` (``row`` = first row or null) or ``{count}`` for
statements that return nothing; update/delete → ``{count}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from runtime.component_configs import DatabaseConfig, config_of
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError, StepTimeout
from runtime.spec import duration_ms

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
OPS = {"insert", "query", "update", "delete", "execute"}
DEFAULT_TIMEOUT_S = 30.0
MAX_ROWS = 10_000
_RESERVED_INPUT = {"data", "where", "filter", "params", "input", "limit", "offset"}
_OPERATORS = {
    "eq": "=",
    "ne": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
}


def database_run(call: ConnectorCall) -> Any:
    """Run one declared database operation in the call's environment."""
    component = call.component
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    if component is None:
        raise StepError(f"DB_ACTION '{call.event}' needs a database component", retryable=False)
    operation = component.events.get(name)
    if not isinstance(operation, dict):
        raise StepError(f"database '{component.tag}' has no operation '{name}'", retryable=False)
    op = str(operation.get("op") or ("query" if operation.get("sql") else ""))
    if op not in OPS:
        raise StepError(
            f"operation '{name}' has op {op!r}; use one of {', '.join(sorted(OPS))}",
            retryable=False,
        )
    data = call.input if isinstance(call.input, dict) else {}
    statement = _build(op, operation, data, name)
    config = config_of(DatabaseConfig, component.config)
    timeout = _timeout_s(call, operation, config)
    with _connect(call, component, config, timeout) as db:
        return db.run(statement, op)


# --- Building statements ---------------------------------------------------------------


class Statement:
    """SQL with ``:name`` markers and the values to bind, independent of the driver."""

    def __init__(self, sql: str, params: dict[str, Any], *, returns_rows: bool) -> None:
        self.sql = sql
        self.params = params
        self.returns_rows = returns_rows


def _build(op: str, operation: dict[str, Any], data: dict[str, Any], name: str) -> Statement:
    if operation.get("sql"):
        sql = str(operation["sql"])
        params = _sql_params(data)
        returns = op in {"query", "insert"} or _looks_like_query(sql)
        return Statement(sql, params, returns_rows=returns)
    table = _table(operation, name)
    allowed = _columns(operation)
    binder = _Binder()
    if op == "insert":
        rows = data.get("data")
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise StepError(f"'{name}' needs input.data: an object or a list", retryable=False)
        cols = sorted({c for r in rows for c in r})
        for col in cols:
            _column(col, allowed, name)
        values = ", ".join(
            "(" + ", ".join(binder.bind(_value(r.get(c))) for c in cols) + ")" for r in rows
        )
        quoted = ", ".join(_quote(c) for c in cols)
        sql = f"INSERT INTO {table} ({quoted}) VALUES {values} RETURNING *"  # noqa: S608
        return Statement(sql, binder.params, returns_rows=True)
    where = _where(data, allowed, binder, name)
    if op in {"update", "delete"} and not where and not operation.get("allow_all"):
        raise StepError(
            f"'{name}' would {op} every row of {table}: give input.where "
            "(or declare allow_all: true)",
            retryable=False,
        )
    clause = f" WHERE {where}" if where else ""
    if op == "update":
        changes = data.get("data")
        if not isinstance(changes, dict) or not changes:
            raise StepError(f"'{name}' needs input.data: the columns to set", retryable=False)
        sets = ", ".join(
            f"{_quote(_column(c, allowed, name))} = {binder.bind(_value(v))}"
            for c, v in sorted(changes.items())
        )
        sql = f"UPDATE {table} SET {sets}{clause}"  # noqa: S608
        return Statement(sql, binder.params, returns_rows=False)
    if op == "delete":
        sql = f"DELETE FROM {table}{clause}"  # noqa: S608
        return Statement(sql, binder.params, returns_rows=False)
    if op == "query":
        order = _order_by(operation.get("order_by"), allowed, name)
        limit = _int(data.get("limit", operation.get("limit", MAX_ROWS)), "limit")
        offset = _int(data.get("offset", 0), "offset")
        limit = min(limit, int(operation.get("limit", MAX_ROWS)), MAX_ROWS)
        sql = (
            f"SELECT * FROM {table}{clause}{order} "  # noqa: S608
            f"LIMIT {binder.bind(limit)} OFFSET {binder.bind(offset)}"
        )
        return Statement(sql, binder.params, returns_rows=True)
    raise StepError(f"'{name}': op 'execute' needs declared sql", retryable=False)


class _Binder:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        key = f"p{len(self.params)}"
        self.params[key] = value
        return f":{key}"


def _sql_params(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("params", "input"):
        if isinstance(data.get(key), dict):
            return {k: _value(v) for k, v in data[key].items()}
    return {k: _value(v) for k, v in data.items() if k not in _RESERVED_INPUT}


def _looks_like_query(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "PRAGMA"} or (
        " RETURNING " in f" {sql.upper()} "
    )


def _table(operation: dict[str, Any], name: str) -> str:
    raw = str(operation.get("table") or "")
    parts = raw.split(".")
    if not raw or len(parts) > 2 or not all(IDENT_RE.match(p) for p in parts):
        raise StepError(f"operation '{name}' has an invalid table {raw!r}", retryable=False)
    return ".".join(_quote(p) for p in parts)


def _columns(operation: dict[str, Any]) -> set[str] | None:
    cols = operation.get("columns")
    return {str(c) for c in cols} if isinstance(cols, list) else None


def _column(col: str, allowed: set[str] | None, name: str) -> str:
    if not isinstance(col, str) or not IDENT_RE.match(col):
        raise StepError(f"'{name}': invalid column name {col!r}", retryable=False)
    if allowed is not None and col not in allowed:
        raise StepError(f"'{name}': column {col!r} is not declared", retryable=False)
    return col


def _quote(ident: str) -> str:
    # Only called on names that matched IDENT_RE, so there is no quote to escape.
    return f'"{ident}"'


def _where(data: dict[str, Any], allowed: set[str] | None, binder: _Binder, name: str) -> str:
    raw = data.get("where", data.get("filter"))
    if raw is None:
        return ""
    if not isinstance(raw, dict):
        raise StepError(f"'{name}': input.where must be an object", retryable=False)
    parts: list[str] = []
    for col, cond in sorted(raw.items()):
        column = _quote(_column(col, allowed, name))
        if isinstance(cond, dict):
            for op, value in sorted(cond.items()):
                parts.append(_condition(column, op, value, binder, name))
        else:
            parts.append(_condition(column, "eq", cond, binder, name))
    return " AND ".join(parts)


def _condition(column: str, op: str, value: Any, binder: _Binder, name: str) -> str:
    if op == "in" or (op == "eq" and isinstance(value, list)):
        if not isinstance(value, list):
            raise StepError(f"'{name}': 'in' needs a list", retryable=False)
        if not value:
            return "1 = 0"
        return f"{column} IN ({', '.join(binder.bind(_value(v)) for v in value)})"
    if op == "is_null":
        return f"{column} IS {'' if value else 'NOT '}NULL"
    if value is None and op in {"eq", "ne"}:
        return f"{column} IS {'NOT ' if op == 'ne' else ''}NULL"
    if op not in _OPERATORS:
        raise StepError(
            f"'{name}': unknown operator {op!r}; use {', '.join([*_OPERATORS, 'in', 'is_null'])}",
            retryable=False,
        )
    return f"{column} {_OPERATORS[op]} {binder.bind(_value(value))}"


def _order_by(raw: Any, allowed: set[str] | None, name: str) -> str:
    if not raw:
        return ""
    items = raw if isinstance(raw, list) else [raw]
    parts = []
    for item in items:
        text = str(item)
        desc = text.startswith("-")
        parts.append(f"{_quote(_column(text.lstrip('-'), allowed, name))}{' DESC' if desc else ''}")
    return " ORDER BY " + ", ".join(parts)


def _int(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise StepError(f"input.{what} must be an integer", retryable=False) from exc
    if number < 0:
        raise StepError(f"input.{what} must not be negative", retryable=False)
    return number


def _value(value: Any) -> Any:
    """Objects and lists are stored as JSON text (``items: [...]`` in the seed)."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


# --- ':name' markers → driver placeholders ---------------------------------------------

_MARKER_RE = re.compile(
    r"""('(?:[^']|'')*')            # string literal
      | ("(?:[^"]|"")*")            # quoted identifier
      | (--[^\n]*)                  # line comment
      | (/\*.*?\*/)                 # block comment
      | (::)                        # PostgreSQL cast
      | (?<![:\w]):([A-Za-z_]\w*)   # :name
      | (%)                         # a literal percent (escaped for psycopg)
    """,
    re.VERBOSE | re.DOTALL,
)


def to_positional(sql: str, params: dict[str, Any], *, marker: str) -> tuple[str, list[Any]]:
    """Replace ``:name`` markers (outside literals and comments) by ``marker`` and list the
    values in order; a name without a value is an error naming it."""
    values: list[Any] = []
    missing: list[str] = []

    def swap(m: re.Match[str]) -> str:
        if m.group(6):
            key = m.group(6)
            if key not in params:
                missing.append(key)
                return m.group(0)
            values.append(params[key])
            return marker
        # psycopg reads '%' as a placeholder everywhere, even inside literals and comments.
        return m.group(0).replace("%", "%%") if marker == "%s" else m.group(0)

    out = _MARKER_RE.sub(swap, sql)
    if missing:
        raise StepError(
            f"missing SQL parameter(s): {', '.join(sorted(set(missing)))} (input.params)",
            retryable=False,
        )
    return out, values


# --- Connections -----------------------------------------------------------------------


class _Db:
    def __init__(self, conn: Any, marker: str, row: Callable[[Any, Any], dict[str, Any]]) -> None:
        self.conn = conn
        self.marker = marker
        self.row = row

    def run(self, statement: Statement, op: str) -> Any:
        sql, values = to_positional(statement.sql, statement.params, marker=self.marker)
        cur = self.conn.cursor()
        cur.execute(sql, values)
        if cur.description is not None:
            rows = [self.row(cur, r) for r in cur.fetchmany(MAX_ROWS + 1)]
            if len(rows) > MAX_ROWS:
                raise StepError(
                    f"the query returned more than {MAX_ROWS} rows; add a limit",
                    retryable=False,
                )
            count = len(rows)
        else:
            rows, count = [], max(cur.rowcount, 0)
        self.conn.commit()
        if (
            op == "insert"
            and cur.description is not None
            and not statement.sql.lstrip().upper().startswith(("SELECT", "WITH"))
        ):
            return rows[0] if len(rows) == 1 else {"rows": rows, "count": count}
        if cur.description is not None:
            return {"rows": rows, "count": count, "row": rows[0] if rows else None}
        return {"count": count}


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _row(cur: Any, raw: Any) -> dict[str, Any]:
    return {d[0]: _json_value(v) for d, v in zip(cur.description, raw, strict=False)}


@contextmanager
def _connect(
    call: ConnectorCall, component: Component, config: DatabaseConfig, timeout: float
) -> Iterator[_Db]:
    url = config.url
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        with _sqlite(url, component, timeout) as db:
            yield db
    elif scheme in {"postgresql", "postgres"}:
        hostaddr = _pg_pinned(call, url, component)
        with _postgres(url, component, config.password_secret, timeout, hostaddr) as db:
            yield db
    elif not url:
        raise StepError(
            f"database '{component.tag}' has no url configured for this environment",
            retryable=False,
        )
    else:
        raise StepError(
            f"database '{component.tag}': unsupported url scheme {scheme!r} "
            "(sqlite:/// or postgresql://)",
            retryable=False,
        )


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path`` (relative to the working dir) or ``sqlite:////abs/path``."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise StepError(
            "a sqlite url is sqlite:///relative or sqlite:////absolute", retryable=False
        )
    return Path(unquote(rest[3:]))


@contextmanager
def _sqlite(url: str, component: Component, timeout: float) -> Iterator[_Db]:
    path = sqlite_path(url)
    _refuse_own_database(path, component)
    deadline = time.monotonic() + timeout
    try:
        conn = sqlite3.connect(str(path), timeout=min(timeout, 20.0))
    except sqlite3.Error as exc:
        raise StepError(f"database '{component.tag}': {exc}", retryable=True) from exc
    # Abort a statement that runs past the step's timeout.
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield _Db(conn, "?", _row)
    except sqlite3.OperationalError as exc:
        conn.rollback()
        text = str(exc)
        if "interrupted" in text:
            raise StepTimeout(f"database '{component.tag}': timed out after {timeout:g}s") from exc
        raise StepError(
            f"database '{component.tag}': {text}", retryable="locked" in text or "busy" in text
        ) from exc
    except sqlite3.Error as exc:
        conn.rollback()
        raise StepError(f"database '{component.tag}': {exc}", retryable=False) from exc
    finally:
        conn.close()


def _refuse_own_database(path: Path, component: Component) -> None:
    # A component must not be pointed at Trellis's own database (users, sessions, secrets).
    own = settings.DATABASES.get("default", {})
    names = {str(own.get("NAME", "")), str(own.get("TEST", {}).get("NAME", ""))}
    try:
        resolved = path.resolve()
        if any(n and Path(n).resolve() == resolved for n in names):
            raise StepError(
                f"database '{component.tag}' points at Trellis's own database", retryable=False
            )
    except OSError:
        return


@contextmanager
def _postgres(
    url: str, component: Component, secret: Any, timeout: float, hostaddr: str
) -> Iterator[_Db]:
    """A connection to the PostgreSQL database at ``url`` (its password is the component's
    secret named ``secret``, if any) pinned to ``hostaddr``."""
    import psycopg

    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, int(min(timeout, 30))),
        "options": f"-c statement_timeout={int(timeout * 1000)}",
    }
    if secret:
        password = component.secrets.get(str(secret))
        if not password:
            raise StepError(
                f"secret '{secret}' of database '{component.tag}' is not set", retryable=False
            )
        kwargs["password"] = password
    kwargs["hostaddr"] = hostaddr
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conn = psycopg.connect(conninfo, **kwargs)
    except psycopg.Error as exc:
        raise StepError(
            f"database '{component.tag}': cannot connect: {_pg_message(exc)}", retryable=True
        ) from exc
    try:
        yield _Db(conn, "%s", _row)
    except psycopg.errors.QueryCanceled as exc:
        conn.rollback()
        raise StepTimeout(f"database '{component.tag}': timed out after {timeout:g}s") from exc
    except psycopg.OperationalError as exc:
        raise StepError(f"database '{component.tag}': {_pg_message(exc)}", retryable=True) from exc
    except psycopg.Error as exc:
        conn.rollback()
        raise StepError(f"database '{component.tag}': {_pg_message(exc)}", retryable=False) from exc
    finally:
        conn.close()


def _pg_pinned(call: ConnectorCall, url: str, component: Component) -> str:
    """Check every host of a PostgreSQL URL against the environment's rule and return the
    checked addresses as libpq's ``hostaddr``: libpq connects to them (no second DNS
    lookup) and still uses the names for TLS. Query parameters (``?host=``, ``?hostaddr=``)
    are read too, so none of them can move the connection past the check."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://", 1))
    except Exception as exc:  # psycopg.ProgrammingError: a malformed URL
        raise StepError(f"database '{component.tag}': bad url: {exc}", retryable=False) from exc
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if params.get("hostaddr") or any(not h or h.startswith("/") for h in hosts):
        raise StepError(
            f"database '{component.tag}': the url must name its server by host name or IP "
            "(no Unix socket, no hostaddr)",
            retryable=False,
        )
    pinned = []
    for index, host in enumerate(hosts):
        port_text = ports[index] if index < len(ports) else ports[-1]
        port = int(port_text) if port_text.isdigit() else 5432
        pinned.append(call.policy.check(host, port)[0])
    return ",".join(pinned)


def _pg_message(exc: Exception) -> str:
    # The first line is the server's message; later lines may echo the statement.
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__


def _timeout_s(call: ConnectorCall, operation: dict[str, Any], config: DatabaseConfig) -> float:
    if call.timeout_s:
        return call.timeout_s
    for raw in (operation.get("timeout"), config.timeout):
        if raw is not None:
            try:
                ms = duration_ms(raw)
            except ValueError as exc:
                raise StepError(f"bad timeout {raw!r}: {exc}", retryable=False) from exc
            if ms:
                return ms / 1000
    return DEFAULT_TIMEOUT_S
