"""Property-based tests: random DAGs get the right levels and order; cycles are always refused."""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.compiler import compile_spec
from runtime.errors import SpecError

MAX_NODES = 12


@st.composite
def dags(draw: st.DrawFn) -> dict[int, list[int]]:
    """node -> parents; edges only go from a lower to a higher node, so no cycle."""
    n = draw(st.integers(min_value=1, max_value=MAX_NODES))
    graph: dict[int, list[int]] = {}
    for i in range(n):
        graph[i] = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
    return graph


@st.composite
def graphs(draw: st.DrawFn) -> dict[int, list[int]]:
    """Any directed graph without self-loops (cyclic or not)."""
    n = draw(st.integers(min_value=2, max_value=MAX_NODES))
    graph: dict[int, list[int]] = {}
    for i in range(n):
        others = draw(st.sets(st.integers(0, n - 2), max_size=3))
        graph[i] = sorted(p + 1 if p >= i else p for p in others)  # skip i: no self-loop
    return graph


def to_spec(graph: dict[int, list[int]], order: list[int], refs: bool = False) -> dict[str, Any]:
    """Sequences in ``order``; each has one step that may read every parent's step."""
    sequences = []
    for i in order:
        inputs = {f"p{p}": f"$Step{{step{p}}}{{v}}" for p in graph[i]} if refs else {}
        sequences.append(
            {
                "tag": f"s{i}",
                "parents": [f"s{p}" for p in graph[i]],
                "events": [{"type": "ACTION", "event": f"step{i}", "input": inputs}],
            }
        )
    return {"sequences": sequences}


def expected_levels(graph: dict[int, list[int]]) -> dict[int, int]:
    @cache
    def level(i: int) -> int:
        return 1 + max((level(p) for p in graph[i]), default=-1)

    return {i: level(i) for i in graph}


def ancestors(graph: dict[int, list[int]], i: int) -> set[int]:
    seen: set[int] = set()
    stack = list(graph[i])
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(graph[p])
    return seen


def has_cycle(graph: dict[int, list[int]]) -> bool:
    return any(i in ancestors(graph, i) for i in graph)


@settings(max_examples=300, deadline=None)
@given(graph=dags(), data=st.data())
def test_levels_are_one_more_than_the_deepest_parent_and_order_is_topological(
    graph: dict[int, list[int]], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(list(graph)))
    plan = compile_spec(to_spec(graph, order, refs=True))
    levels = {int(s.tag[1:]): s.level for s in plan.sequences}
    assert levels == expected_levels(graph)
    for i, parents in graph.items():
        if not parents:
            assert levels[i] == 0
        else:
            assert levels[i] == 1 + max(levels[p] for p in parents)
    position = {s.tag: k for k, s in enumerate(plan.sequences)}
    for s in plan.sequences:
        for parent in s.parents:
            assert position[parent] < position[s.tag]
    # by level, then spec order
    keys = [(s.level, order.index(int(s.tag[1:]))) for s in plan.sequences]
    assert keys == sorted(keys)
    assert {r.tag for r in plan.roots} == {f"s{i}" for i, ps in graph.items() if not ps}


@settings(max_examples=300, deadline=None)
@given(graph=dags(), data=st.data())
def test_a_reference_compiles_exactly_when_it_points_at_an_ancestor(
    graph: dict[int, list[int]], data: st.DataObject
) -> None:
    reader = data.draw(st.sampled_from(sorted(graph)))
    target = data.draw(st.sampled_from(sorted(graph)))
    spec = to_spec(graph, sorted(graph))
    spec["sequences"][reader]["events"][0]["input"] = {"x": f"$Step{{step{target}}}{{v}}"}
    if target in ancestors(graph, reader):
        compile_spec(spec)
        return
    try:
        compile_spec(spec)
    except SpecError as exc:
        [issue] = exc.issues
        assert issue.path == f"sequences[{reader}].events[0].input.x"
        if target != reader:
            assert f"step 'step{target}' in sequence 's{target}'" in issue.message
            assert f"before 'step{reader}' (not an ancestor)" in issue.message
    else:
        raise AssertionError("a reference to a non-ancestor compiled")


@settings(max_examples=400, deadline=None)
@given(graph=graphs())
def test_cycles_are_always_refused_and_every_named_cycle_is_real(
    graph: dict[int, list[int]],
) -> None:
    spec = to_spec(graph, sorted(graph))
    if not has_cycle(graph):
        plan = compile_spec(spec)
        assert len(plan.sequences) == len(graph)
        return
    try:
        compile_spec(spec)
    except SpecError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.message.startswith("cycle: ")
            names = [int(t[1:]) for t in issue.message.removeprefix("cycle: ").split(" -> ")]
            assert names[0] == names[-1]
            assert len(set(names[:-1])) == len(names) - 1
            # written in run order: each is a parent of the next
            for parent, child in itertools.pairwise(names):
                assert parent in graph[child]
            assert issue.path == f"sequences[{names[0]}].parents"
    else:
        raise AssertionError("a cyclic graph compiled")


@settings(max_examples=100, deadline=None)
@given(graph=dags(), data=st.data())
def test_a_dag_plus_one_back_edge_is_refused(
    graph: dict[int, list[int]], data: st.DataObject
) -> None:
    with_ancestors = [i for i in graph if ancestors(graph, i)]
    if not with_ancestors:
        return
    child = data.draw(st.sampled_from(with_ancestors))
    ancestor = data.draw(st.sampled_from(sorted(ancestors(graph, child))))
    graph = {**graph, ancestor: [*graph[ancestor], child]}
    try:
        compile_spec(to_spec(graph, sorted(graph)))
    except SpecError as exc:
        assert any(i.message.startswith("cycle: ") for i in exc.issues)
    else:
        raise AssertionError("a cyclic graph compiled")
