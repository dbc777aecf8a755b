"""A graph component from the API: its declared schema and Cypher checked (400 naming the
field), its database path held under the graph root, and GRAPH steps validated."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from designer.models import Component, ComponentConfig, Product, Workflow
from runtime.compiler import ComponentInfo, compile_spec
from runtime.errors import SpecError
from tests.conftest import client_for
from tests.runtime.connectors.test_graph import EVENTS

pytestmark = pytest.mark.django_db

C = "/api/v1/products/acme/components/"


def paths(response: Any) -> set[str]:
    return {e["path"] for e in response.json()["errors"]}


def test_a_designer_declares_a_graph_and_bad_declarations_name_the_field(
    designer_user: User, product: Product
) -> None:
    dana = client_for(designer_user)
    ok = dana.post(C, {"kind": "graph", "tag": "social", "events": EVENTS}, format="json")
    assert ok.status_code == 201, ok.json()
    bad = {
        **EVENTS,
        "schema": {"nodes": {"User": {"name": "TEXT"}}},
        "dump": {"op": "query", "cypher": "COPY (MATCH (n) RETURN n) TO '/tmp/x.csv'"},
    }
    response = dana.patch(C + "social/", {"events": bad}, format="json")
    assert response.status_code == 400
    assert paths(response) == {"events.schema.nodes.User.name", "events.dump.cypher"}
    assert Component.objects.get(tag="social").events == EVENTS


@pytest.mark.parametrize("path", ["../../etc/x", "/var/lib/x.lbug", "a/../b"])
def test_the_database_path_stays_under_the_graph_root(
    admin_user: User, product: Product, path: str
) -> None:
    Component.objects.create(product=product, kind="graph", tag="social", events=EVENTS)
    url = C + "social/config/dev"
    response = client_for(admin_user).put(url, {"config": {"path": path}}, format="json")
    assert response.status_code == 400, response.json()
    assert paths(response) == {"config.path"}
    assert not ComponentConfig.objects.filter(component__tag="social").exists()
    good = client_for(admin_user).put(url, {"config": {"path": "social/g.lbug"}}, format="json")
    assert good.status_code == 200


GRAPH = {"social": ComponentInfo(kind="graph", events=frozenset(EVENTS))}


def graph_step(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "sequences": [
            {
                "tag": "m",
                "events": [{"type": "GRAPH", "app": "social", "event": event, "input": data}],
            }
        ]
    }


def test_the_built_in_operations_need_no_declaration() -> None:
    for event, data in [
        ("create_node", {"labels": ["User"], "properties": {"name": "$Input{name}"}}),
        ("update_node", {"id": "$Input{id}", "properties": {"verified": True}}),
        ("delete_node", {"id": "x"}),
        ("create_relationship", {"from": "a", "to": "b", "type": "FOLLOWS"}),
        ("delete_relationship", {"id": "r"}),
        ("find-connections", {"params": {"userId": "$Input{id}"}}),
        ("compute-influence", {"input": {"userId": "u"}}),
    ]:
        plan = compile_spec(graph_step(event, data), components=GRAPH)
        assert plan.sequences[0].events[0].app == "social"


@pytest.mark.parametrize(
    ("event", "data", "path"),
    [
        ("create_node", {"labels": ["Us er"]}, "input.labels[0]"),
        ("create_node", {"labels": ["User", "Page"]}, "input.labels"),
        ("create_node", {}, "input.labels"),
        ("update_node", {"id": "x", "properties": {"a-b": 1}}, "input.properties.a-b"),
        ("create_relationship", {"from": "a", "to": "b", "type": "X Y"}, "input.type"),
        ("create_relationship", {"from": "a", "to": "b"}, "input.type"),
        ("find-connections", {"params": {"user id": 1}}, "input.params.user id"),
        ("schema", {}, "event"),
        ("unknown-action", {}, "event"),
    ],
)
def test_graph_steps_are_checked_naming_the_field(
    event: str, data: dict[str, Any], path: str
) -> None:
    with pytest.raises(SpecError) as refused:
        compile_spec(graph_step(event, data), components=GRAPH)
    assert [i.path for i in refused.value.issues] == [f"sequences[0].events[0].{path}"]


def test_publishing_a_bad_graph_step_is_a_400_naming_the_field(
    designer_user: User, product: Product
) -> None:
    Component.objects.create(product=product, kind="graph", tag="social", events=EVENTS)
    Workflow.objects.create(product=product, tag="g", name="g")
    spec = graph_step("create_node", {"labels": ["User) DETACH DELETE (n"]})
    response = client_for(designer_user).post(
        "/api/v1/products/acme/workflows/g/validate", {"spec": spec}, format="json"
    )
    assert response.status_code == 400
    assert paths(response) == {"sequences[0].events[0].input.labels[0]"}


def test_a_graph_step_dropped_on_the_canvas_publishes(
    designer_user: User, product: Product
) -> None:
    # What the palette drops for 'social' (frontend/src/lib/catalog.ts), once filled in.
    Component.objects.create(product=product, kind="graph", tag="social", events=EVENTS)
    Workflow.objects.create(product=product, tag="g", name="g")
    spec = {
        "sequences": [
            {
                "tag": "m",
                "events": [
                    {
                        "type": "GRAPH",
                        "app": "social",
                        "event": "create_node",
                        "tag": "user",
                        "input": {"labels": ["User"], "properties": {"name": "$Input{name}"}},
                    },
                    {
                        "type": "GRAPH",
                        "event": "find-connections",  # the app is found: one graph declares it
                        "input": {"params": {"userId": "$Step{user}{id}"}},
                    },
                ],
            }
        ]
    }
    response = client_for(designer_user).post(
        "/api/v1/products/acme/workflows/g/publish", {"spec": spec}, format="json"
    )
    assert response.status_code == 201, response.json()
    steps = response.json()["plan"]["sequences"][0]["events"]
    assert [(s["event"], s["app"]) for s in steps] == [
        ("create_node", "social"),
        ("find-connections", "social"),
    ]
