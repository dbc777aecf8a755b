"""The seed's "ctx.graph - Graph Database" sample (examples/components.py), synced as a
code-first workflow and run on a real qcluster against a LadybugDB file: all seven calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from designer.models import Product
from examples import components
from runtime.connectors import ConnectorCall, execute
from runtime.connectors.call import Component
from runtime.models import StepRun
from runtime.services import run_start
from runtime.spec import EventType
from tests.examples.shop import Shop
from tests.examples.test_examples_on_worker import dev, finished, publish

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def graph(event: str, data: dict[str, Any]) -> Any:
    """The example's graph, from the test process."""
    component = Component(
        kind="graph",
        tag="social-graph",
        events=components.SOCIAL_GRAPH_EVENTS,
        config={"path": "acme/social-graph.lbug"},
    )
    return execute(
        ConnectorCall(type=EventType.GRAPH, event=event, input=data, component=component)
    )


def test_the_seed_graph_sample_runs_every_operation_on_a_worker(
    product: Product,
    shop: Shop,
    shop_components: Path,
    worker: Any,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.TRELLIS_GRAPH_ROOT = tmp_path / "graphs"
    for node_id, name in [("ada", "Ada"), ("bob", "Bob"), ("cy", "Cy"), ("gone", "Gone")]:
        graph("create_node", {"labels": ["User"], "properties": {"id": node_id, "name": name}})
    graph("create_relationship", {"from": "bob", "to": "cy", "type": "FOLLOWS"})
    graph("create_relationship", {"from": "cy", "to": "ada", "type": "FOLLOWS"})
    graph(
        "create_relationship",
        {"from": "cy", "to": "bob", "type": "FOLLOWS", "properties": {"id": "old-follow"}},
    )
    wf = publish(components.graph_workflow)["social-graph"]
    worker(env={"TRELLIS_GRAPH_ROOT": str(settings.TRELLIS_GRAPH_ROOT)})
    run_input = {
        "name": "Dee",
        "email": "dee@example.com",
        "userId": "ada",
        "friendId": "bob",
        "nodeId": "gone",
        "relationshipId": "old-follow",
    }
    run = finished(run_start(workflow=wf, environment=dev(product), input=run_input))
    assert run.status == "completed", run.error

    new_id = run.output["node"]
    # ada -> bob (new) -> cy: connections within two hops.
    assert run.output["connections"]["rows"] == [
        {"id": "bob", "name": "Bob"},
        {"id": "cy", "name": "Cy"},
    ]
    assert run.output["influence"]["row"] == {"id": "ada", "influence": 1}  # cy follows ada
    steps = {s.tag: s.output for s in StepRun.objects.filter(run=run)}
    assert steps["social-graph-update-node"]["properties"]["verified"] is True
    assert steps["social-graph-create-relationship"]["properties"]["since"]
    assert steps["social-graph-delete-node"] == {"id": "gone", "deleted": True}
    assert steps["social-graph-delete-relationship"] == {"id": "old-follow", "deleted": True}

    users = graph("find-connections", {"userId": "bob"})["rows"]
    assert users == [{"id": "ada", "name": "Ada"}, {"id": "cy", "name": "Cy"}]  # cy -> bob gone
    dee = graph("update_node", {"id": new_id, "properties": {}})
    assert dee["properties"] == {
        "id": new_id,
        "name": "Dee",
        "email": "dee@example.com",
        "verified": True,
    }
    assert graph("delete_node", {"id": "gone"})["deleted"] is False
