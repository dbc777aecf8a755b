"""DB_ACTION against a real SQLite file and the machine's PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runtime.connectors import Component, ConnectorCall, execute
from runtime.connectors.database import to_positional
from runtime.errors import StepError, StepTimeout
from runtime.spec import EventType

PG_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
INJECTION = "x'); DROP TABLE {t}; --"


def _ops(t: str) -> dict[str, Any]:
    return {
        "create-user": {"op": "insert", "table": t},
        "create-user-strict": {"op": "insert", "table": t, "columns": ["email", "name"]},
        "find-by-email": {
            "op": "query",
            "sql": f"SELECT id, email, name FROM {t} WHERE email = :email",
        },
        "list-users": {"op": "query", "table": t, "order_by": "-id", "limit": 50},
        "rename": {"op": "update", "table": t},
        "remove": {"op": "delete", "table": t},
        "count": {"op": "execute", "sql": f"SELECT count(*) AS n FROM {t}"},
        "wipe": {"op": "execute", "sql": f"DELETE FROM {t} WHERE name LIKE '%' || :suffix"},
        "bad-table": {"op": "insert", "table": 'users"; DROP TABLE x; --'},
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Component, Any]]:
    table = f"users_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        path = tmp_path / "app.sqlite3"
        url = f"sqlite:///{path}"
        import sqlite3

        conn: Any = sqlite3.connect(path)
        conn.execute(
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT, name TEXT,"
            " meta TEXT)"
        )
        conn.commit()
    else:
        url = PG_URL
        conn = psycopg.connect(PG_URL, autocommit=True)
        conn.execute(
            f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, email TEXT, name TEXT, meta TEXT)"
        )
    component = Component(kind="database", tag="users-db", events=_ops(table), config={"url": url})

    def count() -> int:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    yield component, count
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    if request.param == "sqlite":
        conn.commit()
    conn.close()


def run(component: Component, event: str, input: Any, **kw: Any) -> Any:
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.DB_ACTION,
            event=event,
            input=input,
            app=component.tag,
            component=component,
            **kw,
        )
    )


def test_insert_returns_the_row_with_its_id(db: tuple[Component, Any]) -> None:
    component, count = db
    row = run(component, "users-db:create-user", {"data": {"email": "a@x.io", "name": "Ann"}})
    assert row["email"] == "a@x.io" and isinstance(row["id"], int)
    many = run(component, "create-user", {"data": [{"email": "b@x.io"}, {"email": "c@x.io"}]})
    assert many["count"] == 2
    assert count() == 3


def test_objects_are_stored_as_json_text(db: tuple[Component, Any]) -> None:
    component, _ = db
    row = run(component, "create-user", {"data": {"email": "a@x.io", "meta": {"items": [1, 2]}}})
    assert row["meta"] == '{"items": [1, 2]}'


def test_query_with_declared_sql_binds_params(db: tuple[Component, Any]) -> None:
    component, _ = db
    run(component, "create-user", {"data": {"email": "a@x.io", "name": "Ann"}})
    found = run(component, "find-by-email", {"params": {"email": "a@x.io"}})
    assert found["count"] == 1 and found["row"]["name"] == "Ann"
    assert run(component, "find-by-email", {"email": "nobody"})["rows"] == []


def test_table_query_update_and_delete_use_where(db: tuple[Component, Any]) -> None:
    component, count = db
    for email in ("a@x.io", "b@x.io", "c@x.io"):
        run(component, "create-user", {"data": {"email": email, "name": "n"}})
    listed = run(component, "list-users", {"where": {"email": {"in": ["a@x.io", "b@x.io"]}}})
    assert [r["email"] for r in listed["rows"]] == ["b@x.io", "a@x.io"]
    updated = run(component, "rename", {"where": {"email": "a@x.io"}, "data": {"name": "Ann"}})
    assert updated == {"count": 1}
    assert run(component, "find-by-email", {"params": {"email": "a@x.io"}})["row"]["name"] == "Ann"
    assert run(component, "remove", {"filter": {"name": {"ne": "Ann"}}}) == {"count": 2}
    assert count() == 1
    assert run(component, "count", {})["row"]["n"] == 1


def test_update_or_delete_without_a_condition_is_refused(db: tuple[Component, Any]) -> None:
    component, count = db
    run(component, "create-user", {"data": {"email": "a@x.io"}})
    with pytest.raises(StepError, match="would delete every row") as err:
        run(component, "remove", {})
    assert err.value.retryable is False
    assert count() == 1


def test_sql_injection_through_values_does_nothing(db: tuple[Component, Any]) -> None:
    component, count = db
    table = component.events["create-user"]["table"]
    evil = INJECTION.format(t=table)
    row = run(component, "create-user", {"data": {"email": evil, "name": "' OR '1'='1"}})
    assert row["email"] == evil
    assert run(component, "find-by-email", {"params": {"email": "' OR '1'='1"}})["rows"] == []
    assert run(component, "find-by-email", {"params": {"email": evil}})["count"] == 1
    assert run(component, "remove", {"where": {"email": "x' OR 1=1 --"}}) == {"count": 0}
    assert run(component, "list-users", {"where": {"name": {"like": "%' OR 1=1 --"}}})["rows"] == []
    assert run(component, "wipe", {"params": {"suffix": "'; DROP TABLE x; --"}}) == {"count": 0}
    assert count() == 1


def test_sql_injection_through_identifiers_is_refused(db: tuple[Component, Any]) -> None:
    component, count = db
    with pytest.raises(StepError, match="invalid column name") as err:
        run(component, "create-user", {"data": {'email") VALUES (1); DROP TABLE t; --': "x"}})
    assert err.value.retryable is False
    with pytest.raises(StepError, match="invalid column name"):
        run(component, "remove", {"where": {"1=1 OR email": "x"}})
    with pytest.raises(StepError, match="invalid table"):
        run(component, "bad-table", {"data": {"email": "x"}})
    with pytest.raises(StepError, match="column 'meta' is not declared"):
        run(component, "create-user-strict", {"data": {"email": "x", "meta": "y"}})
    with pytest.raises(StepError, match="unknown operator"):
        run(component, "list-users", {"where": {"email": {"; DROP": 1}}})
    assert count() == 0


def test_a_missing_sql_parameter_is_named(db: tuple[Component, Any]) -> None:
    component, _ = db
    with pytest.raises(StepError, match=r"missing SQL parameter.*email"):
        run(component, "find-by-email", {"params": {"mail": "a"}})


def test_a_long_statement_times_out(tmp_path: Path) -> None:
    component = Component(
        kind="database",
        tag="slow",
        config={"url": f"sqlite:///{tmp_path / 's.db'}"},
        events={
            "spin": {
                "op": "execute",
                "sql": (
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                    "SELECT count(*) FROM c"
                ),
            }
        },
    )
    with pytest.raises(StepTimeout):
        run(component, "spin", {}, timeout_s=0.3)


def test_postgres_statement_timeout() -> None:
    component = Component(
        kind="database",
        tag="pg",
        config={"url": PG_URL},
        events={"sleep": {"op": "execute", "sql": "SELECT pg_sleep(:s)"}},
    )
    with pytest.raises(StepTimeout):
        run(component, "sleep", {"params": {"s": 3}}, timeout_s=0.3)


def test_an_unreachable_database_is_retryable() -> None:
    component = Component(
        kind="database",
        tag="pg",
        config={"url": "postgresql://postgres@127.0.0.1:1/none"},
        events={"q": {"op": "execute", "sql": "SELECT 1"}},
    )
    with pytest.raises(StepError, match="cannot connect") as err:
        run(component, "q", {})
    assert err.value.retryable is True


def test_trellis_own_database_cannot_be_targeted() -> None:
    from django.conf import settings

    own = settings.DATABASES["default"]["NAME"]
    component = Component(
        kind="database",
        tag="own",
        config={"url": f"sqlite:///{own}"},
        events={"q": {"op": "execute", "sql": "SELECT * FROM auth_user"}},
    )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        with pytest.raises(StepError, match="own database"):
            run(component, "q", {})


def test_markers_inside_literals_comments_and_casts_are_left_alone() -> None:
    sql, values = to_positional(
        "SELECT ':a', \"x:y\", 1::int, '%' -- :c\n FROM t WHERE a = :a /* :b */ AND b = :b",
        {"a": 1, "b": 2},
        marker="%s",
    )
    assert sql == (
        "SELECT ':a', \"x:y\", 1::int, '%%' -- :c\n FROM t WHERE a = %s /* :b */ AND b = %s"
    )
    assert values == [1, 2]
    sql, _ = to_positional("SELECT 5 % 2", {}, marker="%s")
    assert sql == "SELECT 5 %% 2"


def test_a_database_host_not_on_the_allow_list_is_refused() -> None:
    component = Component(
        kind="database",
        tag="pg",
        config={"url": PG_URL},
        events={"q": {"op": "execute", "sql": "SELECT 1 AS one"}},
    )
    with pytest.raises(StepError, match=r"host '127\.0\.0\.1' is a loopback address") as err:
        run(component, "q", {}, allowed_hosts=("db.internal",), environment="prd")
    assert err.value.retryable is False
    assert run(component, "q", {}, allowed_hosts=("127.0.0.1",))["row"] == {"one": 1}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # Query parameters cannot move the connection past the check.
        ("postgresql://app@db.example.com:5432/app?host=10.0.0.1", "'10.0.0.1' is a private"),
        ("postgresql://app@db.example.com/app?hostaddr=127.0.0.1", "no hostaddr"),
        ("postgresql://app@/app?host=/var/run/postgresql", "no Unix socket"),
        ("postgresql:///app", "no Unix socket"),
        ("postgresql://app@localhost:5432/app", "'localhost' resolves to"),
    ],
)
def test_a_postgres_url_is_checked_whatever_names_its_server(url: str, message: str) -> None:
    component = Component(
        kind="database", tag="pg", config={"url": url}, events={"q": {"op": "execute", "sql": "x"}}
    )
    with pytest.raises(StepError, match=message) as err:
        run(component, "q", {}, allowed_hosts=())
    assert err.value.retryable is False
