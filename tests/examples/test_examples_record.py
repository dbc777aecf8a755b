"""Every seed sample ported to examples/ records to the documented spec, and that spec
compiles to the same plan as the hand-written JSON in tests/examples/fixtures/."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from runtime.compiler import compile_spec
from runtime.recorder import registry
from runtime.workflows import WorkflowDefinition

FIXTURES = Path(__file__).parent / "fixtures"
MODULES = [
    "definition",
    "branch_overrides",
    "record_input",
    "record_scenarios",
    "signals_queries",
    "steps",
    "components",
    "control_flow",
    "state",
    "data_access",
    "order_fulfillment",
    "batch_charges",
]


def example_definitions() -> list[WorkflowDefinition]:
    found: list[WorkflowDefinition] = []
    for name in MODULES:
        module = importlib.import_module(f"examples.{name}")
        found.extend(v for v in vars(module).values() if isinstance(v, WorkflowDefinition))
    return found


DEFINITIONS = {d.tag: d for d in example_definitions()}


def test_every_example_has_a_hand_written_fixture() -> None:
    assert sorted(DEFINITIONS) == sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("tag", sorted(DEFINITIONS))
def test_the_recorded_spec_compiles_to_the_same_plan_as_the_json(tag: str) -> None:
    recorded = compile_spec(DEFINITIONS[tag].spec_json())
    written = compile_spec(json.loads((FIXTURES / f"{tag}.json").read_text()))
    assert recorded.model_dump(mode="json") == written.model_dump(mode="json")


def conditions(tag: str) -> dict[str, Any]:
    return {
        e["tag"]: e.get("condition")
        for seq in DEFINITIONS[tag].spec_json()["sequences"]
        for e in seq["events"]
    }


def test_the_seed_conditions_are_recorded_exactly() -> None:
    assert conditions("order-validation")["process-payment"] == "$Step{validate}{valid} == true"
    assert conditions("order-fulfillment")["payment"] == "$Step{validate}{available} == true"
    assert conditions("handle-by-type") == {
        "handle-a": "$Input{type} == 'a'",
        "handle-b": "$Input{type} == 'b'",
    }
    assert list(conditions("process-orders")) == ["each-items"]  # one runtime loop


def test_examples_are_registered_for_sync_and_for_workers() -> None:
    for tag in DEFINITIONS:
        assert registry.get("acme", tag) is DEFINITIONS[tag]
