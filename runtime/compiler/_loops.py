"""FOREACH steps: the loop's items, its body's steps and what they may refer to.

A body step may read what ran before the FOREACH step (as the FOREACH step itself may),
the earlier steps of its own body (in the same iteration), ``$Item`` and ``$Index``. Steps
outside the body read the loop's result as ``$Step{<loop>}``, never a body step, and
``$Item``/``$Index`` mean nothing there. Loops do not nest.
"""

from __future__ import annotations

from typing import Any

from runtime.compiler._events import EventChecks
from runtime.compiler._paths import _collect_strings, _Keys, _TooDeep, _Where
from runtime.compiler._references import _stored_input
from runtime.errors import ExpressionError
from runtime.expressions import Ref, parse, parse_condition
from runtime.spec import LOOP_TAG_MAX, EventSpec, EventType, RollbackSpec

_LOOP_KINDS = frozenset({"Item", "Index"})


def _loop_refs(value: Any) -> bool:
    """Whether a JSON value (or condition text) uses ``$Item``/``$Index`` anywhere."""
    strings: list[tuple[_Keys, str]] = []
    if isinstance(value, str):
        strings.append(((), value))
    elif isinstance(value, dict | list):
        try:
            _collect_strings(value, (), strings)
        except _TooDeep:
            return False  # reported by the general checks
    for _, text in strings:
        if "$I" not in text:
            continue
        try:
            refs = parse(text).refs
        except ExpressionError:
            try:
                refs = parse_condition(text).refs
            except ExpressionError:
                continue
        if any(r.kind in _LOOP_KINDS for r in refs):
            return True
    return False


class LoopChecks(EventChecks):
    """FOREACH steps and their bodies."""

    # body step tag -> (sequence index, FOREACH event index, body index)
    body_index: dict[str, tuple[int, int, int]]
    body_apps: dict[tuple[int, int, int], str | None]
    body_rollback_apps: dict[tuple[int, int, int], str | None]

    def index_tags(self) -> None:
        super().index_tags()
        self.body_index = {}
        self.body_apps = {}
        self.body_rollback_apps = {}
        for i, seq in enumerate(self.spec.sequences):
            for j, event in enumerate(seq.events):
                for k, body in enumerate(event.loop.body if event.loop else []):
                    self.index_body_tag(i, j, k, body)

    def index_body_tag(self, i: int, j: int, k: int, body: EventSpec) -> None:
        tag = body.step_tag
        where = f"sequences[{i}].events[{j}].loop.body[{k}].{'tag' if body.tag else 'event'}"
        if tag in self.step_index or tag in self.body_index:
            self.issue(where, f"duplicate step tag '{tag}': set a unique tag")
        elif len(tag) > LOOP_TAG_MAX or any(c in tag for c in "[]{}"):
            self.issue(
                where,
                f"a loop body step's tag has no brackets or braces and at most {LOOP_TAG_MAX}"
                f" characters (its iterations are '{tag[:20]}[0]', ...): set a tag",
            )
        else:
            self.body_index[tag] = (i, j, k)

    def locate(self, where: _Where, ref: Ref) -> tuple[str, int, int] | None:
        if ref.kind == "Step" and ref.args[0] in self.body_index:
            i, j, _ = self.body_index[ref.args[0]]
            loop = self.spec.sequences[i].events[j].step_tag
            self.issue(
                where,
                f"step '{ref.args[0]}' runs inside loop '{loop}': read the list of its"
                f" iterations' results as $Step{{{loop}}}",
            )
            return None
        return super().locate(where, ref)

    def check_event(self, i: int, j: int, event: EventSpec) -> None:
        path = f"sequences[{i}].events[{j}]"
        if event.type is not EventType.FOREACH:
            if event.loop is not None:
                self.issue(f"{path}.loop", "only a FOREACH step has a loop")
            if _loop_refs(event.input) or _loop_refs(event.condition):
                self.issue(path, "$Item and $Index exist only inside a FOREACH step's loop.body")
            super().check_event(i, j, event)
            return
        self.check_foreach(i, j, event, path)

    def check_foreach(self, i: int, j: int, event: EventSpec, path: str) -> None:
        tag = event.step_tag
        if event.input:
            self.issue(f"{path}.input", "a FOREACH step takes its list from loop.items")
            self.parse_value(event.input, f"{path}.input", stored=_stored_input(event))
        loop = event.loop
        if loop is None:
            self.issue(f"{path}.loop", "a FOREACH step needs a loop: {items, body}")
            return
        if len(tag) > LOOP_TAG_MAX:
            self.issue(f"{path}.tag", f"a FOREACH step's tag is at most {LOOP_TAG_MAX} characters")
        if event.rollback is not None:
            self.issue(
                f"{path}.rollback", "a FOREACH step has no rollback: give its body's steps one"
            )
        if "$" not in loop.items:
            self.issue(f"{path}.loop.items", "an expression giving a list, like $Input{items}")
        if _loop_refs(loop.items) or _loop_refs(event.condition):
            self.issue(path, "$Item and $Index exist only inside the loop's body")
        refs = self.parse_value(loop.items, f"{path}.loop.items", stored="a FOREACH step's items")
        refs += self.parse_cond(event.condition, f"{path}.condition")
        self.check_refs(refs, seq=i, index=j, reader=tag)
        self.duration(event.retry_delay, f"{path}.retry_delay")
        self.duration(event.timeout, f"{path}.timeout")
        self.apps[(i, j)] = None
        for k, body in enumerate(loop.body):
            body_path = f"{path}.loop.body[{k}]"
            if body.type is EventType.FOREACH or body.loop is not None:
                self.issue(f"{body_path}.type", "loops do not nest: a loop body holds no FOREACH")
                continue
            self.check_body_event(i, j, k, body, body_path)

    def check_type(self, event: EventSpec | RollbackSpec, path: str) -> None:
        if isinstance(event, RollbackSpec) and event.type is EventType.FOREACH:
            self.issue(f"{path}.type", "a rollback is one event, not a FOREACH loop")
        super().check_type(event, path)

    def check_body_event(self, i: int, j: int, k: int, event: EventSpec, path: str) -> None:
        tag = event.step_tag
        refs = self.parse_value(event.input, f"{path}.input", stored=_stored_input(event))
        refs += self.parse_cond(event.condition, f"{path}.condition")
        self.check_body_refs(refs, i, j, k, reader=tag)
        self.duration(event.retry_delay, f"{path}.retry_delay")
        self.duration(event.timeout, f"{path}.timeout")
        self.check_type(event, path)
        self.body_apps[(i, j, k)] = self.component(event.type, event.event, event.app, path)
        if event.rollback is not None:
            rb = event.rollback
            rb_path = f"{path}.rollback"
            refs = self.parse_value(rb.input, f"{rb_path}.input", stored=_stored_input(rb))
            self.check_body_refs(refs, i, j, k, reader=f"{tag}.rollback", inclusive=True)
            self.duration(rb.retry_delay, f"{rb_path}.retry_delay")
            self.duration(rb.timeout, f"{rb_path}.timeout")
            self.check_type(rb, rb_path)
            self.body_rollback_apps[(i, j, k)] = self.component(rb.type, rb.event, rb.app, rb_path)

    def check_body_refs(
        self,
        refs: list[tuple[_Where, Ref]],
        i: int,
        j: int,
        k: int,
        *,
        reader: str,
        inclusive: bool = False,
    ) -> None:
        """A body step reads earlier steps of its body, or what the FOREACH step may read."""
        outside = []
        for where, ref in refs:
            loc = self.body_index.get(ref.args[0]) if ref.kind == "Step" else None
            if loc is None:
                outside.append((where, ref))
            elif loc[:2] != (i, j):
                outside.append((where, ref))  # another loop's body: locate() reports it
            elif loc[2] == k and not inclusive:
                self.issue(where, f"step '{ref.args[0]}' cannot refer to its own output")
            elif loc[2] > k:
                self.issue(where, f"step '{ref.args[0]}' runs after '{reader}' in the loop body")
        self.check_refs(outside, seq=i, index=j, reader=reader)
