"""Per event and per workflow: durations, event types (signals, SLEEP, FEATURE, CODE),
the components events use, schemas, outputs, queries and triggers."""

from __future__ import annotations

import re
from typing import Any

from runtime.compiler._paths import _duration_ms, _join
from runtime.compiler._references import ReferenceChecks, _stored_input
from runtime.cypher import BUILTIN_OPERATIONS, SCHEMA_EVENT, is_identifier
from runtime.schemas import schema_issues
from runtime.spec import (
    COMPONENT_KINDS,
    ENDING_TYPES,
    TAG_RE,
    Duration,
    EventSpec,
    EventType,
    RollbackSpec,
    duration_ms,
)
from runtime.step_functions import step_function_path as _step_function_name

_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")


class EventChecks(ReferenceChecks):
    """Each event (durations, type, component) and the workflow-level fields."""

    def duration(self, value: Duration | None, path: str) -> int | None:
        try:
            return _duration_ms(value)
        except ValueError as exc:
            self.issue(path, str(exc))
            return None

    def component(self, type_: EventType, event: str, app: str | None, path: str) -> str | None:
        """Check the component an event uses; returns the app (resolved when implied)."""
        kind = COMPONENT_KINDS.get(type_)
        if kind is None:
            return app
        name = event
        app_path = f"{path}.app"
        if type_ in (EventType.PUBLISH, EventType.DB_ACTION) and ":" in event:
            prefix, name = event.split(":", 1)
            if app is None:
                app, app_path = prefix, f"{path}.event"
            elif app != prefix:
                self.issue(app_path, f"app '{app}' does not match '{prefix}' in event '{event}'")
        if type_ is EventType.PUBLISH and ":" not in event and app is None:
            self.issue(f"{path}.event", f"a PUBLISH event is 'broker:topic', got '{event}'")
            return app
        if self.components is None:
            return app
        if app is not None:
            info = self.components.get(app)
            if info is None:
                self.issue(app_path, f"unknown {kind} component '{app}'")
            elif info.kind != kind:
                self.issue(
                    app_path,
                    f"component '{app}' is a {info.kind}; a {type_.value} event needs a {kind}",
                )
            elif not _declares(type_, info.events, name, event):
                self.issue(f"{path}.event", f"{kind} '{app}' has no event '{name}'")
            return app
        candidates = sorted(
            tag
            for tag, info in self.components.items()
            if info.kind == kind and _declares(type_, info.events, name, event)
        )
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            self.issue(f"{path}.event", f"no {kind} component declares event '{name}'")
        else:
            self.issue(
                app_path,
                f"event '{name}' is declared by several {kind} components"
                f" ({', '.join(candidates)}): set app",
            )
        return None

    def check_event(self, i: int, j: int, event: EventSpec) -> None:
        path = f"sequences[{i}].events[{j}]"
        tag = event.step_tag
        refs = self.parse_value(event.input, f"{path}.input", stored=_stored_input(event))
        refs += self.parse_cond(event.condition, f"{path}.condition")
        self.check_refs(refs, seq=i, index=j, reader=tag)
        self.duration(event.retry_delay, f"{path}.retry_delay")
        self.duration(event.timeout, f"{path}.timeout")
        self.check_type(event, path)
        self.apps[(i, j)] = self.component(event.type, event.event, event.app, path)
        if event.rollback is not None:
            rb = event.rollback
            rb_path = f"{path}.rollback"
            refs = self.parse_value(rb.input, f"{rb_path}.input", stored=_stored_input(rb))
            self.check_refs(refs, seq=i, index=j, reader=f"{tag}.rollback", inclusive=True)
            self.duration(rb.retry_delay, f"{rb_path}.retry_delay")
            self.duration(rb.timeout, f"{rb_path}.timeout")
            self.check_type(rb, rb_path)
            self.rollback_apps[(i, j)] = self.component(rb.type, rb.event, rb.app, rb_path)

    def check_type(self, event: EventSpec | RollbackSpec, path: str) -> None:
        type_ = event.type
        data = event.input
        if type_ in ENDING_TYPES:
            self.check_ending(event, path)
        elif type_ is EventType.WAIT_SIGNAL:
            names = data.get("signals", data.get("signal"))
            if names is None:
                self.check_signal(event.event, f"{path}.event")
            elif isinstance(names, str):
                key = "signals" if "signals" in data else "signal"
                self.check_signal(names, f"{path}.input.{key}")
            elif isinstance(names, list) and names:
                for k, name in enumerate(names):
                    self.check_signal(name, f"{path}.input.signals[{k}]")
            else:
                self.issue(f"{path}.input.signals", "a list of signal names")
            self.maybe_duration(data.get("timeout"), f"{path}.input.timeout")
        elif type_ is EventType.SLEEP:
            if "duration" in data:
                self.maybe_duration(data["duration"], f"{path}.input.duration")
            else:
                try:
                    duration_ms(event.event)
                except ValueError:
                    self.issue(
                        f"{path}.event",
                        f"SLEEP needs a duration: an event like '5m' or input.duration"
                        f" (got '{event.event}')",
                    )
        elif type_ is EventType.FEATURE:
            if not TAG_RE.match(event.event):
                self.issue(f"{path}.event", f"'{event.event}' is not a workflow tag")
        elif type_ is EventType.GRAPH:
            self.check_graph(event.event, data, path)
        elif type_ is EventType.CODE:
            if not _DOTTED_PATH.match(event.event):
                self.issue(
                    f"{path}.event",
                    f"'{event.event}' is not a dotted path like 'package.module:function'",
                )
            elif self.step_functions is not None and (
                _step_function_name(event.event) not in self.step_functions
            ):
                self.issue(f"{path}.event", f"'{event.event}' is not a registered step function")

    def check_graph(self, name: str, data: dict[str, Any], path: str) -> None:
        """The names a GRAPH step writes into Cypher text (labels, type, property and
        parameter names) are identifiers; a value from an expression is checked at run time."""
        where = f"{path}.input"
        if name in {"create_node", "update_node", "delete_node"}:
            key = "labels" if "labels" in data or "label" not in data else "label"
            raw = data.get(key)
            labels = raw if isinstance(raw, list) else [] if raw is None else [raw]
            if name == "create_node" and (not labels or len(labels) > 1):
                self.issue(f"{where}.{key}", "create_node needs exactly one label")
            for k, label in enumerate(labels):
                _graph_name(self, label, f"{where}.{key}[{k}]", "label")
        if name in {"create_relationship", "delete_relationship"}:
            if name == "create_relationship" and "type" not in data:
                self.issue(f"{where}.type", "create_relationship needs a relationship type")
            elif "type" in data:
                _graph_name(self, data["type"], f"{where}.type", "relationship type")
        if isinstance(data.get("properties"), dict):
            for prop in data["properties"]:
                _graph_name(self, prop, f"{where}.properties.{prop}", "property name")
        if name not in BUILTIN_OPERATIONS:
            params = data.get("params", data.get("input"))
            for param in params if isinstance(params, dict) else ():
                _graph_name(self, param, f"{where}.params.{param}", "parameter name")

    def check_ending(self, event: EventSpec | RollbackSpec, path: str) -> None:
        """RETURN {output} and FAIL {message}: a step that ends the run, nothing to undo."""
        if isinstance(event, RollbackSpec):
            self.issue(f"{path}.type", f"a rollback cannot be a {event.type.value}")
            return
        allowed = {"output"} if event.type is EventType.RETURN else {"message"}
        for key in sorted(set(event.input) - allowed):
            self.issue(f"{path}.input.{key}", f"a {event.type.value} takes only {sorted(allowed)}")
        if event.type is EventType.FAIL and not isinstance(event.input.get("message"), str):
            self.issue(f"{path}.input.message", "a FAIL needs a message (a string)")
        if event.rollback is not None:
            self.issue(f"{path}.rollback", f"a {event.type.value} has nothing to roll back")
        if event.retries or event.allow_fail:
            field = "retries" if event.retries else "allow_fail"
            self.issue(f"{path}.{field}", f"a {event.type.value} ends the run: no {field}")

    def check_signal(self, name: Any, path: str) -> None:
        if not isinstance(name, str):
            self.issue(path, "a signal name is a string")
        elif name not in self.spec.signals:
            declared = ", ".join(sorted(self.spec.signals)) or "none"
            self.issue(path, f"signal '{name}' is not declared in signals (declared: {declared})")

    def maybe_duration(self, value: Any, path: str) -> None:
        if value is None or (isinstance(value, str) and "$" in value):
            return  # resolved at run time
        if not isinstance(value, int | str) or isinstance(value, bool):
            self.issue(path, "a duration is a number of ms or a string like '5m'")
            return
        self.duration(value, path)

    # ---- workflow level

    def check_workflow(self) -> None:
        spec = self.spec
        # Schemas validate what operators and messages send, in the web process: each
        # must be valid and its patterns must run on RE2 (linear time, no ReDoS).
        for path, message in schema_issues(spec.input, "input"):
            self.issue(path, message)
        for name, signal in spec.signals.items():
            for path, message in schema_issues(signal.input, f"signals.{name}.input"):
                self.issue(path, message)
        self.duration(spec.options.timeout, "options.timeout")
        for name in spec.options.groups:
            if not TAG_RE.match(name):
                self.issue(
                    _join("options.groups", name), "a group name is a tag: letters, digits, _ - ."
                )
        for i, seq in enumerate(spec.sequences):
            if seq.group is not None and seq.group not in spec.options.groups:
                declared = ", ".join(sorted(spec.options.groups)) or "none"
                self.issue(
                    f"sequences[{i}].group",
                    f"group '{seq.group}' is not declared in options.groups (declared: {declared})",
                )
        refs = self.parse_value(spec.output, "output", stored="the workflow's output")
        self.check_refs(refs, seq=None, index=0, reader="output")
        for name, query in spec.queries.items():
            refs = self.parse_value(
                query.output, _join(_join("queries", name), "output"), stored="a query's output"
            )
            self.check_refs(refs, seq=None, index=0, reader=name)
        for k, trigger in enumerate(spec.triggers):
            path = f"triggers[{k}]"
            trigger_input = self.parse_value(
                trigger.input, f"{path}.input", stored="a trigger's input (the run's input)"
            )
            for where, ref in trigger_input:
                self.issue(where, f"a trigger starts the run: {ref} has not run yet (use $Input)")
            if ":" not in trigger.event:
                self.issue(
                    f"{path}.event", f"a trigger event is 'broker:topic', got '{trigger.event}'"
                )
            elif self.components is not None:
                broker = trigger.event.split(":", 1)[0]
                info = self.components.get(broker)
                if info is None or info.kind != "broker":
                    self.issue(f"{path}.event", f"unknown broker component '{broker}'")


def _declares(type_: EventType, events: Any, name: str, event: str) -> bool:
    """Whether a component offers the event: the graph operations are built in."""
    if type_ is EventType.GRAPH and name in BUILTIN_OPERATIONS:
        return True
    if type_ is EventType.GRAPH and name == SCHEMA_EVENT:
        return False  # the declared tables, not an operation
    return name in events or event in events


def _graph_name(checks: EventChecks, value: Any, path: str, what: str) -> None:
    if isinstance(value, str) and "$" in value:
        return  # an expression: resolved, and checked, at run time
    if not is_identifier(value):
        checks.issue(path, f"{value!r} is not a valid {what} (letters, digits and _)")
