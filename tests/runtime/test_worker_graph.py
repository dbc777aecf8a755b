"""Each ``ctx.graph`` operation in a workflow run on a real qcluster process, against a
LadybugDB file under the graph root; and two worker processes sharing one graph file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from designer.models import Component, ComponentConfig, Environment, Product
from runtime.connectors import ConnectorCall, execute
from runtime.connectors.call import Component as CallComponent
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_start
from runtime.spec import EventType
from tests.runtime.conftest import code, make_workflow, wait_for
from tests.runtime.connectors.test_graph import EVENTS

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CONFIG = {"path": "acme/social.lbug"}


@pytest.fixture
def graph(product: Product, env_dev: Environment, tmp_path: Path, settings: Any) -> Path:
    """The 'social' graph component in acme/dev; its root is shared with the worker."""
    root = tmp_path / "graphs"
    settings.TRELLIS_GRAPH_ROOT = root
    component = Component.objects.create(product=product, kind="graph", tag="social", events=EVENTS)
    ComponentConfig.objects.create(component=component, environment=env_dev, config=CONFIG)
    return root


def here(event: str, data: dict[str, Any]) -> Any:
    """The same graph from the test process (it waits for the worker's lock like any step)."""
    component = CallComponent(kind="graph", tag="social", events=EVENTS, config=CONFIG)
    return execute(
        ConnectorCall(type=EventType.GRAPH, event=event, input=data, component=component)
    )


def seed_users(*ids: str) -> None:
    for node_id in ids:
        here("create_node", {"labels": ["User"], "properties": {"id": node_id, "name": node_id}})


def step(event: str, data: dict[str, Any], tag: str | None = None) -> dict[str, Any]:
    return {"type": "GRAPH", "app": "social", "event": event, "tag": tag or event, "input": data}


def run_on_worker(
    product: Product,
    env_dev: Environment,
    worker: Any,
    graph: Path,
    events: list[dict[str, Any]],
    run_input: dict[str, Any],
    output: dict[str, Any],
) -> Run:
    workflow = make_workflow(
        product, {"sequences": [{"tag": "m", "events": events}], "output": output}, tag="graph"
    )
    worker(env={"TRELLIS_GRAPH_ROOT": str(graph)})
    run = run_start(workflow=workflow, environment=env_dev, input=run_input)
    assert wait_for(lambda: Run.objects.get(pk=run.pk).status in RUN_FINISHED, timeout=60)
    run.refresh_from_db()
    assert run.status == "completed", (run.error, list(StepRun.objects.values("tag", "error")))
    return run


def test_create_node_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [
            step(
                "create_node",
                {"labels": ["User"], "properties": {"name": "$Input{name}", "score": 7}},
                "user",
            )
        ],
        {"name": "Ann"},
        {"id": "$Step{user}{id}", "node": "$Step{user}"},
    )
    node = run.output["node"]
    assert node["labels"] == ["User"] and node["properties"]["name"] == "Ann"
    found = here("by-name", {"params": {"name": "Ann"}})
    assert found["rows"] == [{"id": run.output["id"]}]
    assert (graph / "acme" / "social.lbug").exists()


def test_update_node_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1")
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [step("update_node", {"id": "$Input{id}", "properties": {"verified": True}})],
        {"id": "u1"},
        {"node": "$Step{update_node}"},
    )
    assert run.output["node"]["properties"] == {"id": "u1", "name": "u1", "verified": True}
    assert here("all-users", {})["row"]["u"]["properties"]["verified"] is True


def test_delete_node_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1", "u2")
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [step("delete_node", {"id": "$Input{id}"})],
        {"id": "u2"},
        {"result": "$Step{delete_node}"},
    )
    assert run.output["result"] == {"id": "u2", "deleted": True}
    assert [r["u"]["id"] for r in here("all-users", {})["rows"]] == ["u1"]


def test_create_relationship_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1", "u2")
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [
            step(
                "create_relationship",
                {
                    "from": "$Input{userId}",
                    "to": "$Input{friendId}",
                    "type": "FOLLOWS",
                    "properties": {"since": "2024-05-01"},
                },
                "follow",
            )
        ],
        {"userId": "u1", "friendId": "u2"},
        {"rel": "$Step{follow}"},
    )
    rel = run.output["rel"]
    assert (rel["type"], rel["from"], rel["to"]) == ("FOLLOWS", "u1", "u2")
    assert rel["properties"]["since"] == "2024-05-01"
    assert here("find-connections", {"params": {"userId": "u1"}})["rows"] == [{"id": "u2"}]


def test_delete_relationship_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1", "u2")
    here(
        "create_relationship",
        {"from": "u1", "to": "u2", "type": "FOLLOWS", "properties": {"id": "r1"}},
    )
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [step("delete_relationship", {"id": "$Input{relationshipId}"})],
        {"relationshipId": "r1"},
        {"result": "$Step{delete_relationship}"},
    )
    assert run.output["result"] == {"id": "r1", "deleted": True}
    assert here("find-connections", {"params": {"userId": "u1"}})["count"] == 0


def test_query_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1", "u2", "u3")
    here("create_relationship", {"from": "u1", "to": "u2", "type": "FOLLOWS"})
    here("create_relationship", {"from": "u2", "to": "u3", "type": "FOLLOWS"})
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [step("find-connections", {"params": {"userId": "$Input{userId}", "depth": 2}})],
        {"userId": "u1"},
        {"ids": "$Step{find-connections}{rows}", "count": "$Step{find-connections}{count}"},
    )
    assert run.output == {"ids": [{"id": "u2"}, {"id": "u3"}], "count": 2}


def test_execute_on_a_worker(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("u1", "u2", "u3")
    here("create_relationship", {"from": "u2", "to": "u1", "type": "FOLLOWS"})
    here("create_relationship", {"from": "u3", "to": "u1", "type": "FOLLOWS"})
    run = run_on_worker(
        product,
        env_dev,
        worker,
        graph,
        [step("compute-influence", {"input": {"userId": "$Input{userId}"}})],
        {"userId": "u1"},
        {"score": "$Step{compute-influence}{row.score}"},
    )
    assert run.output == {"score": 2}
    rows = here("all-users", {})["rows"]
    assert {r["u"]["id"]: r["u"]["properties"].get("score") for r in rows}["u1"] == 2


def test_two_worker_processes_share_one_graph_file(
    product: Product, env_dev: Environment, worker: Any, graph: Path
) -> None:
    seed_users("hub")
    workflow = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "m",
                    "events": [
                        code("pid", tag="where", input={"seconds": 0.2}),
                        step(
                            "create_node",
                            {"labels": ["User"], "properties": {"name": "$Input{name}"}},
                            "user",
                        ),
                        step(
                            "create_relationship",
                            {"from": "$Step{user}{id}", "to": "hub", "type": "FOLLOWS"},
                            "follow",
                        ),
                    ],
                }
            ]
        },
        tag="fan",
    )
    cluster = worker(workers=2, env={"TRELLIS_GRAPH_ROOT": str(graph)})
    runs = [
        run_start(workflow=workflow, environment=env_dev, input={"name": f"n{i}"})
        for i in range(12)
    ]
    ids = [r.pk for r in runs]
    assert wait_for(
        lambda: Run.objects.filter(pk__in=ids, status__in=RUN_FINISHED).count() == 12, timeout=120
    )
    assert set(Run.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"completed"}
    pids = {s.output["pid"] for s in StepRun.objects.filter(run__in=ids, tag="where")}
    assert len(pids) == 2  # both worker processes wrote to the graph file
    assert here("all-users", {})["count"] == 13
    followers = here("compute-influence", {"userId": "hub"})
    assert followers["row"] == {"score": 12}
    assert cluster.proc is not None and cluster.proc.poll() is None
