"""The interface of a graph backend (:class:`GraphBackend`: the seven operations) and what
one is given to open a component's graph for a step. A backend is a context manager
factory listed in ``runtime.connectors.graph.BACKENDS``; LadybugDB is the one today, a
server backend (Neo4j's Bolt driver) would be another."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.component_configs import GraphConfig
from runtime.connectors.call import Component, ConnectorCall
from runtime.cypher import GraphSchema


class GraphBackend(Protocol):
    """One open graph database for one step: the seven operations. Names it is given are
    checked identifiers; values must be sent as parameters."""

    def create_node(
        self, *, label: str, node_id: str, properties: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def update_node(
        self, *, node_id: str, labels: Sequence[str], properties: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete_node(self, *, node_id: str, labels: Sequence[str]) -> dict[str, Any]: ...

    def create_relationship(
        self,
        *,
        rel_type: str,
        rel_id: str,
        from_id: str,
        to_id: str,
        properties: Mapping[str, Any],
    ) -> dict[str, Any]: ...

    def delete_relationship(self, *, rel_id: str, types: Sequence[str]) -> dict[str, Any]: ...

    def query(self, *, cypher: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def execute(self, *, cypher: str, params: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Limits:
    """What one step may take: seconds, result rows, result bytes."""

    timeout_s: float
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class Target:
    """What a backend needs to open the component's graph for one step."""

    call: ConnectorCall
    component: Component
    config: GraphConfig
    schema: GraphSchema
    limits: Limits


Opener = Callable[[Target], AbstractContextManager[GraphBackend]]
"""Opens the graph for one step; closing it releases the database."""
