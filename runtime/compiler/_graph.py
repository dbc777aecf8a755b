"""The sequence graph: unique tags, parents, topological order, levels, named cycles.

A sequence's level is the longest path from a root (Ductape's "sequences of events joined
by parents, laid out in levels"), or the ``level`` the spec gives when that is deeper: a
given level orders sequences that parents do not, such as two roots at levels 1 and 2. A
sequence with a given level waits for every sequence at a lower level (the engine's
``schedule``), so steps there count as having run before it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from itertools import groupby

from runtime.compiler._state import CompilerState


class GraphChecks(CompilerState):
    """Tags, the parent graph, topological order, levels and cycles."""

    def index_tags(self) -> None:
        for i, seq in enumerate(self.spec.sequences):
            first = self.seq_index.setdefault(seq.tag, i)
            if first != i:
                self.issue(
                    f"sequences[{i}].tag",
                    f"duplicate sequence tag '{seq.tag}' (also sequences[{first}])",
                )
        for i, seq in enumerate(self.spec.sequences):
            for j, event in enumerate(seq.events):
                tag = event.step_tag
                where = f"sequences[{i}].events[{j}]"
                first_loc = self.step_index.setdefault(tag, (i, j))
                if first_loc != (i, j):
                    fi, fj = first_loc
                    self.issue(
                        f"{where}.{'tag' if event.tag else 'event'}",
                        f"duplicate step tag '{tag}' (also sequences[{fi}].events[{fj}]);"
                        " set a unique tag",
                    )
                elif "{" in tag or "}" in tag:
                    self.issue(
                        f"{where}.{'tag' if event.tag else 'event'}",
                        f"'{tag}' cannot be referenced as $Step{{...}} (braces): set a tag",
                    )

    def build_graph(self) -> None:
        count = len(self.spec.sequences)
        self.parents = [[] for _ in range(count)]
        self.children = [[] for _ in range(count)]
        for i, seq in enumerate(self.spec.sequences):
            if self.seq_index.get(seq.tag) != i:
                continue  # a duplicate: already reported, keep it out of the graph
            seen: set[int] = set()
            for k, parent in enumerate(seq.parents):
                where = f"sequences[{i}].parents[{k}]"
                p = self.seq_index.get(parent)
                if p is None:
                    self.issue(where, f"unknown parent '{parent}'")
                elif p == i:
                    self.issue(where, f"sequence '{seq.tag}' cannot be its own parent")
                elif p in seen:
                    self.issue(where, f"parent '{parent}' is listed twice")
                else:
                    seen.add(p)
                    self.parents[i].append(p)
                    self.children[p].append(i)

    def order(self) -> list[int]:
        """Kahn's algorithm: topological order, levels and ancestor bitsets; cycles reported."""
        count = len(self.spec.sequences)
        indegree = [len(ps) for ps in self.parents]
        levels = [0] * count
        self.level_floor = [0] * count
        ancestors = [0] * count
        ready = [i for i in range(count) if indegree[i] == 0]
        heapq.heapify(ready)
        done: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            done.append(i)
            self.level_floor[i] = levels[i]  # final: every parent is placed
            given = self.spec.sequences[i].level
            if given is not None and given > levels[i]:
                levels[i] = given
            mine = ancestors[i] | (1 << i)
            for c in self.children[i]:
                ancestors[c] |= mine
                if levels[i] + 1 > levels[c]:
                    levels[c] = levels[i] + 1
                indegree[c] -= 1
                if indegree[c] == 0:
                    heapq.heappush(ready, c)
        self.ancestors = ancestors
        self.levels = list(levels)
        self.add_level_ancestors(done)
        if len(done) < count:
            placed = set(done)
            self.unordered = {i for i in range(count) if i not in placed}
            for i in self.unordered:
                self.levels[i] = None
            self.report_cycles()
        return done

    def add_level_ancestors(self, done: list[int]) -> None:
        """A sequence with a given level runs after every sequence at a lower level: they
        (and their ancestors) become its ancestors, and its descendants' (level order is
        an order of both kinds of edge)."""
        if all(self.spec.sequences[i].level is None for i in done):
            return

        def level(i: int) -> int:
            return self.levels[i] or 0

        ancestors = [0] * len(self.spec.sequences)
        below = 0  # the sequences at the levels already passed, with their ancestors
        for _level, group in groupby(sorted(done, key=level), key=level):
            members = list(group)
            for i in members:
                mine = below if self.spec.sequences[i].level is not None else 0
                for p in self.parents[i]:
                    mine |= ancestors[p] | (1 << p)
                ancestors[i] = mine
            for i in members:
                below |= ancestors[i] | (1 << i)
        for i in done:
            self.ancestors[i] = ancestors[i]

    def report_cycles(self) -> None:
        """Name each cycle (in run order, parent -> child) once, at its first sequence's parents."""
        tags = [s.tag for s in self.spec.sequences]
        state: dict[int, int] = {}  # 1 = on the stack, 2 = finished
        reported: set[frozenset[int]] = set()
        for root in sorted(self.unordered):
            if root in state:
                continue
            stack: list[tuple[int, Iterator[int]]] = [(root, iter(self.children[root]))]
            path = [root]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    continue
                if nxt not in self.unordered:
                    continue
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        start = cycle.index(min(cycle))
                        cycle = cycle[start:] + cycle[:start]
                        names = " -> ".join(tags[c] for c in [*cycle, cycle[0]])
                        self.issue(f"sequences[{cycle[0]}].parents", f"cycle: {names}")
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self.children[nxt])))

    def check_levels(self) -> None:
        """A given level may push a sequence deeper than its parents put it, never above."""
        for i, seq in enumerate(self.spec.sequences):
            if seq.level is None or i in self.unordered or i >= len(self.level_floor):
                continue
            floor = self.level_floor[i]
            if seq.level < floor:
                self.issue(
                    f"sequences[{i}].level",
                    f"level {seq.level} is above its parents: at least {floor}"
                    " (1 + its deepest parent)",
                )
