"""GRAPH on LadybugDB: the seven operations on a real database file, the names that may
enter Cypher text, values only as parameters, the bounds on results, and the database's
place under the graph root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ladybug
import pytest

from runtime.connectors import ConnectorCall, execute
from runtime.connectors.call import Component
from runtime.cypher import cypher_issue, graph_events_issues, graph_path_issue
from runtime.errors import StepError, StepTimeout
from runtime.spec import EventType

EVENTS: dict[str, Any] = {
    "schema": {
        "nodes": {
            "User": {"name": "STRING", "email": "STRING", "verified": "BOOLEAN", "score": "INT64"},
            "Page": {"title": "STRING", "published": "DATE", "seen": "TIMESTAMP", "rank": "DOUBLE"},
        },
        "relationships": {
            "FOLLOWS": {"from": "User", "to": ["User", "Page"], "properties": {"since": "STRING"}}
        },
    },
    "find-connections": {
        "op": "query",
        "cypher": "MATCH (u:User {id: $userId})-[:FOLLOWS*1..2]->(f) "
        "RETURN DISTINCT f.id AS id ORDER BY id",
    },
    "by-name": {"op": "query", "cypher": "MATCH (u:User) WHERE u.name = $name RETURN u.id AS id"},
    "all-users": {"op": "query", "cypher": "MATCH (u:User) RETURN u ORDER BY u.id"},
    "sneaky-write": {"op": "query", "cypher": "CREATE (u:User {id: 'q'})"},
    "compute-influence": {
        "op": "execute",
        "cypher": "MATCH (u:User {id: $userId})<-[:FOLLOWS]-(f:User) "
        "WITH u, count(f) AS n SET u.score = n RETURN u.score AS score",
    },
    "many": {"op": "query", "cypher": "UNWIND range(1, $n) AS x RETURN x"},
    "slow": {
        "op": "query",
        "cypher": "UNWIND range(1, 10000) AS a UNWIND range(1, 10000) AS b "
        "WITH a, b WHERE (a * b) % 7 = 3 RETURN count(*) AS c",
    },
}


@pytest.fixture
def graph_root(tmp_path: Path, settings: Any) -> Path:
    settings.TRELLIS_GRAPH_ROOT = tmp_path / "graphs"
    return tmp_path / "graphs"


def call(
    event: str,
    data: dict[str, Any],
    *,
    events: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    step: str = "s",
    run_id: int | None = 1,
    timeout_s: float | None = None,
) -> Any:
    component = Component(
        kind="graph", tag="social", events=EVENTS if events is None else events, config=config or {}
    )
    return execute(
        ConnectorCall(
            type=EventType.GRAPH,
            event=event,
            input=data,
            app="social",
            component=component,
            environment="dev",
            run_id=run_id,
            step=step,
            timeout_s=timeout_s,
        )
    )


def user(node_id: str, name: str = "Ann", **extra: Any) -> dict[str, Any]:
    return call(
        "create_node",
        {"labels": ["User"], "properties": {"id": node_id, "name": name, **extra}},
    )


def test_create_node_returns_the_node_and_a_retried_step_makes_no_second_one(
    graph_root: Path,
) -> None:
    node = call(
        "create_node",
        {"labels": ["User"], "properties": {"name": "Ann", "email": "ann@example.com"}},
        step="create-user",
    )
    assert node["labels"] == ["User"]
    assert node["properties"] == {"id": node["id"], "name": "Ann", "email": "ann@example.com"}
    again = call(
        "create_node",
        {"labels": ["User"], "properties": {"name": "Ann", "email": "ann@example.com"}},
        step="create-user",
    )
    assert again["id"] == node["id"]
    other_step = call("create_node", {"labels": ["User"], "properties": {"name": "Bo"}}, step="x")
    assert other_step["id"] != node["id"]
    rows = call("all-users", {})["rows"]
    assert sorted(r["u"]["properties"]["name"] for r in rows) == ["Ann", "Bo"]
    assert (graph_root / "_" / "dev" / "social.lbug").exists()


def test_each_call_of_a_code_step_makes_its_own_node_and_its_retry_finds_it(
    graph_root: Path,
) -> None:
    component = Component(kind="graph", tag="social", events=EVENTS)

    def create(key: str) -> str:
        made = execute(
            ConnectorCall(
                type=EventType.GRAPH,
                event="create_node",
                input={"labels": ["User"], "properties": {"name": key}},
                component=component,
                environment="dev",
                run_id=7,
                step="code",
                idempotency_key=key,
            )
        )
        return str(made["id"])

    first, second = create("7:code:1:1"), create("7:code:1:2")
    assert first != second
    assert create("7:code:2:1") == first  # the next attempt's first call
    assert call("all-users", {})["count"] == 2


def test_json_values_are_stored_as_the_declared_types(graph_root: Path) -> None:
    page = call(
        "create_node",
        {
            "label": "Page",
            "properties": {
                "id": "p1",
                "published": "2024-05-01",
                "seen": "2024-05-01T10:00:00+02:00",
                "rank": 1,
            },
        },
    )
    assert page["properties"] == {
        "id": "p1",
        "published": "2024-05-01",
        "seen": "2024-05-01T08:00:00",
        "rank": 1.0,
    }
    with pytest.raises(StepError, match=r"input\.properties\.published: 'soon' is not a DATE"):
        call("update_node", {"id": "p1", "properties": {"published": "soon"}})


def test_update_node_sets_properties_by_id(graph_root: Path) -> None:
    user("u1")
    updated = call("update_node", {"id": "u1", "properties": {"verified": True, "score": 3}})
    assert updated == {
        "id": "u1",
        "labels": ["User"],
        "properties": {"id": "u1", "name": "Ann", "verified": True, "score": 3},
    }
    with pytest.raises(StepError, match="no node 'nope'") as missing:
        call("update_node", {"id": "nope", "properties": {"verified": True}})
    assert not missing.value.retryable
    with pytest.raises(StepError, match=r"properties.title: not declared for label 'User'"):
        call("update_node", {"id": "u1", "properties": {"title": "x"}})


def test_delete_node_removes_it_and_its_relationships(graph_root: Path) -> None:
    user("u1")
    user("u2", "Bo")
    call("create_relationship", {"from": "u1", "to": "u2", "type": "FOLLOWS"})
    assert call("delete_node", {"id": "u2"}) == {"id": "u2", "deleted": True}
    assert call("delete_node", {"id": "u2"}) == {"id": "u2", "deleted": False}
    assert call("find-connections", {"params": {"userId": "u1"}})["count"] == 0


def test_create_relationship_between_declared_labels(graph_root: Path) -> None:
    user("u1")
    user("u2", "Bo")
    call("create_node", {"label": "Page", "properties": {"id": "p1", "title": "Home"}})
    rel = call(
        "create_relationship",
        {"from": "u1", "to": "u2", "type": "FOLLOWS", "properties": {"since": "2024-01-01"}},
        step="follow",
    )
    assert rel == {
        "id": rel["id"],
        "type": "FOLLOWS",
        "from": "u1",
        "to": "u2",
        "properties": {"id": rel["id"], "since": "2024-01-01"},
    }
    again = call(
        "create_relationship", {"from": "u1", "to": "u2", "type": "FOLLOWS"}, step="follow"
    )
    assert again["id"] == rel["id"]
    call("create_relationship", {"from": "u1", "to": "p1", "type": "FOLLOWS"}, step="page")
    found = call("find-connections", {"params": {"userId": "u1", "depth": 2}})
    assert [r["id"] for r in found["rows"]] == ["p1", "u2"]
    with pytest.raises(StepError, match=r"input.from: no node 'p1' labelled User"):
        call("create_relationship", {"from": "p1", "to": "u1", "type": "FOLLOWS"})


def test_delete_relationship_by_id(graph_root: Path) -> None:
    user("u1")
    user("u2", "Bo")
    rel = call(
        "create_relationship",
        {"from": "u1", "to": "u2", "type": "FOLLOWS", "properties": {"id": "r1"}},
    )
    assert rel["id"] == "r1"
    assert call("delete_relationship", {"id": "r1"}) == {"id": "r1", "deleted": True}
    assert call("delete_relationship", {"id": "r1", "type": "FOLLOWS"})["deleted"] is False
    assert call("find-connections", {"params": {"userId": "u1"}})["count"] == 0


def test_query_runs_declared_cypher_read_only(graph_root: Path) -> None:
    user("u1")
    out = call("by-name", {"params": {"name": "Ann"}})
    assert out == {"rows": [{"id": "u1"}], "count": 1, "row": {"id": "u1"}}
    with pytest.raises(StepError, match=r"read-only transaction.*op: execute"):
        call("sneaky-write", {})
    assert call("all-users", {})["count"] == 1


def test_execute_runs_declared_cypher_that_writes(graph_root: Path) -> None:
    for i, name in enumerate(["u1", "u2", "u3"]):
        user(name, f"N{i}")
    for follower in ("u2", "u3"):
        call(
            "create_relationship", {"from": follower, "to": "u1", "type": "FOLLOWS"}, step=follower
        )
    out = call("compute-influence", {"input": {"userId": "u1"}})
    assert out["row"] == {"score": 2}
    assert call("all-users", {})["rows"][0]["u"]["properties"]["score"] == 2


# --- Names, parameters, bounds --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("create_node", {"labels": ["User`) DETACH DELETE n //"]}, "not a valid label"),
        ("create_node", {"labels": ["Admin"]}, "label 'Admin' is not declared"),
        ("create_node", {"labels": ["User", "Page"]}, "exactly one label"),
        ("create_node", {"labels": ["User"], "properties": {"a b": 1}}, "not a valid property"),
        ("create_node", {"labels": ["User"], "properties": {"age": 1}}, "properties.age: not"),
        ("update_node", {"id": "u1", "labels": ["1x"], "properties": {}}, "not a valid label"),
        ("create_relationship", {"from": "a", "to": "b", "type": "F-1"}, "not a valid relat"),
        ("create_relationship", {"from": "a", "to": "b", "type": "LIKES"}, "'LIKES' is not decl"),
        ("delete_relationship", {"id": "r", "type": "x`]->() DELETE r"}, "not a valid relat"),
        ("many", {"params": {"n-1": 1}}, "not a parameter name"),
        ("nope", {}, "has no operation 'nope'"),
    ],
)
def test_bad_names_are_refused_before_any_cypher_runs(
    graph_root: Path, event: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(StepError, match=message) as refused:
        call(event, data)
    assert not refused.value.retryable
    assert not graph_root.exists()  # refused before the database was even opened


def test_values_are_parameters_never_cypher(graph_root: Path) -> None:
    user("u1")
    evil = "x'}) MATCH (m) DETACH DELETE m //"
    made = call(
        "create_node",
        {"labels": ["User"], "properties": {"id": evil, "name": "' OR 1=1 //", "email": evil}},
    )
    assert made["id"] == evil and made["properties"]["name"] == "' OR 1=1 //"
    assert call("by-name", {"params": {"name": "Ann' OR true //"}})["count"] == 0
    assert call("by-name", {"params": {"name": "' OR 1=1 //"}})["row"] == {"id": evil}
    assert (
        call("update_node", {"id": evil, "properties": {"name": "$name"}})["properties"]["name"]
        == "$name"
    )
    assert call("all-users", {})["count"] == 2  # nothing was deleted


def test_results_are_bounded_in_rows_and_bytes(graph_root: Path, settings: Any) -> None:
    assert call("many", {"params": {"n": 50}})["count"] == 50
    with pytest.raises(StepError, match="returned 51 rows, more than 50: add a LIMIT"):
        call("many", {"params": {"n": 51}}, config={"max_rows": 50})
    settings.TRELLIS_GRAPH_MAX_ROWS = 20
    with pytest.raises(StepError, match="more than 20"):  # the config cannot raise it
        call("many", {"params": {"n": 30}}, config={"max_rows": 1000})
    with pytest.raises(StepError, match="larger than 100 bytes"):
        call("many", {"params": {"n": 15}}, config={"max_result_bytes": 100})


def test_a_long_statement_is_interrupted_at_the_timeout(graph_root: Path) -> None:
    with pytest.raises(StepTimeout, match="timed out"):
        call("slow", {}, config={"timeout": "100ms"})


def test_a_busy_graph_fails_the_attempt_as_retryable(graph_root: Path) -> None:
    import fcntl

    user("u1")
    lock = graph_root / "_" / "dev" / "social.lbug.lock"
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StepError, match="is busy") as busy:
            call("all-users", {}, timeout_s=0.3)
        assert busy.value.retryable
    finally:
        os.close(fd)
    assert call("all-users", {})["count"] == 1


@pytest.mark.parametrize(
    "path", ["../x.lbug", "/etc/x.lbug", "a/../../x", "~/x", "a\\b", "a//b", "./x"]
)
def test_config_path_may_not_leave_the_graph_root(graph_root: Path, path: str) -> None:
    assert graph_path_issue(path)
    with pytest.raises(StepError, match=r"config\.path") as refused:
        call("all-users", {}, config={"path": path})
    assert not refused.value.retryable


def test_a_symlink_cannot_lead_out_of_the_graph_root(graph_root: Path, tmp_path: Path) -> None:
    graph_root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (graph_root / "link").symlink_to(outside)
    with pytest.raises(StepError, match="outside the graph root"):
        call("all-users", {}, config={"path": "link/x.lbug"})
    assert list(outside.iterdir()) == []


def test_config_path_places_the_database(graph_root: Path) -> None:
    call("all-users", {}, config={"path": "shared/social.lbug"})
    assert (graph_root / "shared" / "social.lbug").exists()
    db = ladybug.Database(str(graph_root / "shared" / "social.lbug"))
    tables = ladybug.Connection(db).execute("CALL show_tables() RETURN name").get_all()
    db.close()
    assert sorted(t[0] for t in tables) == ["FOLLOWS", "Page", "User"]


@pytest.mark.parametrize(
    "cypher",
    [
        "LOAD FROM '/etc/passwd' (file_format='csv') RETURN *",
        "COPY (MATCH (n) RETURN n.id) TO '/tmp/out.csv'",
        "COPY User FROM '/tmp/users.csv'",
        "INSTALL httpfs",
        "load extension '/tmp/x.so'",
        "ATTACH '/tmp/other.lbug' AS other",
        "CALL timeout=0",
        "MATCH (n) RETURN n; MATCH (m) DETACH DELETE m",
        "EXPORT DATABASE '/tmp/dump'",
        "MATCH (n) DETACH n",
        "COMMIT",
        "MATCH (n) RETURN 'unterminated",
    ],
)
def test_designer_cypher_cannot_reach_outside_the_graph(graph_root: Path, cypher: str) -> None:
    assert cypher_issue(cypher)
    issues = graph_events_issues({**EVENTS, "bad": {"op": "execute", "cypher": cypher}})
    assert list(issues) == ["events.bad.cypher"]
    with pytest.raises(StepError, match=r"events\.bad\.cypher"):
        call("bad", {}, events={**EVENTS, "bad": {"op": "execute", "cypher": cypher}})


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (n:User) WHERE n.load > 1 RETURN n.copy AS `call`",
        "MATCH (n) WHERE n.name = 'COPY TO; LOAD FROM' RETURN n // CALL",
        "MATCH (n:User {id: $id}) DETACH DELETE n;",
        "/* ATTACH */ RETURN 1",
    ],
)
def test_ordinary_cypher_is_allowed(cypher: str) -> None:
    assert cypher_issue(cypher) is None


def test_the_declared_schema_is_checked_naming_the_field() -> None:
    assert graph_events_issues(EVENTS) == {}
    bad = {
        "schema": {"nodes": {"User": {"name": "STRNG"}}},
        "create_node": {},
        "q": {"op": "write", "cypher": "RETURN 1"},
    }
    assert graph_events_issues(bad) == {
        "events.schema.nodes.User.name": graph_events_issues(bad)["events.schema.nodes.User.name"],
        "events.create_node": "a built-in operation: it needs no declaration",
        "events.q.op": "'query' (read only) or 'execute'",
    }
    assert "unknown type 'STRNG'" in graph_events_issues(bad)["events.schema.nodes.User.name"]
    rel = {"schema": {"nodes": {}, "relationships": {"R": {"from": "X", "to": "X"}}}}
    assert graph_events_issues(rel) == {
        "events.schema.relationships.R.from": "'X' is not a declared node label"
    }
