"""The compilation: every check in order, then the plan; and the spec's checksum."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from runtime.compiler._loops import LoopChecks
from runtime.compiler._paths import _duration_ms, validation_issues
from runtime.compiler._plan import ComponentInfo, Plan
from runtime.errors import SpecError
from runtime.spec import EventSpec, WorkflowSpec


def spec_checksum(spec: WorkflowSpec | Mapping[str, Any]) -> str:
    """sha256 of the spec's canonical JSON (sorted keys, defaults filled in when it validates)."""
    data: Any
    if isinstance(spec, WorkflowSpec):
        data = spec.model_dump(mode="json")
    else:
        try:
            data = WorkflowSpec.model_validate(spec).model_dump(mode="json")
        except ValidationError:
            data = spec
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Compiler(LoopChecks):
    """One compilation: the checks of its bases in order, then the plan."""

    def run(self) -> Plan:
        self.index_tags()
        self.build_graph()
        self.order()
        self.check_levels()
        for i, seq in enumerate(self.spec.sequences):
            refs = self.parse_cond(seq.skip_if, f"sequences[{i}].skip_if")
            self.check_refs(refs, seq=i, index=-1, reader=seq.tag)
            for j, event in enumerate(seq.events):
                self.check_event(i, j, event)
        self.check_workflow()
        if self.issues:
            raise SpecError(self.issues)
        return self.plan()

    def plan(self) -> Plan:
        # Plain dicts validated in one call: pydantic-core builds 5,000 steps faster than
        # 5,000 model constructors would, and the plan is still checked against its schema.
        spec = self.spec
        tags = [s.tag for s in spec.sequences]
        levels = self.levels
        order = sorted(range(len(tags)), key=lambda i: (levels[i] or 0, i))
        sequences = []
        for i in order:
            seq = spec.sequences[i]
            sequences.append(
                {
                    "tag": seq.tag,
                    "parents": [tags[p] for p in self.parents[i]],
                    "children": [tags[c] for c in self.children[i]],
                    "level": levels[i] or 0,
                    "level_given": seq.level is not None,
                    "skip_if": seq.skip_if,
                    "group": seq.group,
                    "events": [self.step(i, j, e) for j, e in enumerate(seq.events)],
                }
            )
        return Plan.model_validate(
            {
                "sequences": sequences,
                "options": {
                    "timeout_ms": _duration_ms(spec.options.timeout),
                    "rollback_strategy": spec.options.rollback_strategy,
                    "max_concurrency": spec.options.max_concurrency,
                    "groups": {k: g.max_concurrency for k, g in spec.options.groups.items()},
                },
                "signals": {name: s.input for name, s in spec.signals.items()},
                "queries": {name: q.output for name, q in spec.queries.items()},
                "input_schema": spec.input,
                "output": spec.output,
                "triggers": [t.model_dump(mode="json") for t in spec.triggers],
            }
        )

    def step(self, i: int, j: int, event: EventSpec) -> dict[str, Any]:
        out = self.step_dict(
            event,
            sequence=self.spec.sequences[i].tag,
            index=j,
            app=self.apps.get((i, j), event.app),
            rollback_app=self.rollback_apps.get(
                (i, j), event.rollback.app if event.rollback else None
            ),
        )
        if event.loop is not None:
            loop_tag = out["tag"]
            out["input"] = {"items": event.loop.items}
            out["max_concurrency"] = event.loop.max_concurrency
            out["body"] = [
                {
                    **self.step_dict(
                        body,
                        sequence=loop_tag,
                        index=k,
                        app=self.body_apps.get((i, j, k), body.app),
                        rollback_app=self.body_rollback_apps.get(
                            (i, j, k), body.rollback.app if body.rollback else None
                        ),
                    ),
                    "loop": loop_tag,
                }
                for k, body in enumerate(event.loop.body)
            ]
        return out

    @staticmethod
    def step_dict(
        event: EventSpec, *, sequence: str, index: int, app: str | None, rollback_app: str | None
    ) -> dict[str, Any]:
        rollback = None
        if event.rollback is not None:
            rb = event.rollback
            rollback = {
                "type": rb.type.value,
                "event": rb.event,
                "app": rollback_app,
                "input": rb.input,
                "retries": rb.retries,
                "retry_delay_ms": _duration_ms(rb.retry_delay) or 0,
                "timeout_ms": _duration_ms(rb.timeout),
            }
        return {
            "tag": event.tag or event.event,
            "sequence": sequence,
            "index": index,
            "type": event.type,
            "event": event.event,
            "app": app,
            "input": event.input,
            "retries": event.retries,
            "retry_delay_ms": _duration_ms(event.retry_delay) or 0,
            "backoff": event.backoff,
            "timeout_ms": _duration_ms(event.timeout),
            "allow_fail": event.allow_fail,
            "critical": event.critical,
            "condition": event.condition,
            "rollback": rollback,
        }


def compile_spec(
    spec: WorkflowSpec | Mapping[str, Any],
    *,
    components: Mapping[str, ComponentInfo] | None = None,
    step_functions: Collection[str] | None = None,
) -> Plan:
    """Compile a spec (model or JSON dict) into a :class:`Plan`.

    Raises :class:`SpecError` listing every issue found, each with a JSON path. When
    ``components`` (tag → :class:`ComponentInfo`) is None, component checks are skipped.
    ``step_functions`` (registered names, ``package.module:function``): when given, a CODE
    event naming anything else is an issue.
    """
    with _gc_paused():
        if isinstance(spec, WorkflowSpec):
            model = spec
        else:
            try:
                model = WorkflowSpec.model_validate(spec)
            except ValidationError as exc:
                raise SpecError(validation_issues(exc)) from None
        return _Compiler(model, components, step_functions).run()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling a big spec allocates ~10^5 long-lived objects and no cycles; the cyclic GC
    would sweep the whole heap several times for nothing (a third of the compile time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
