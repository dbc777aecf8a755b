"""From recorded nodes (one recording per scenario) to the spec's sequences."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from runtime.recorder._deps import reduce_deps
from runtime.recorder._recording import Node
from runtime.recorder._run import RecordingResult
from runtime.recorder._sites import RecordingError, Site
from runtime.recorder._step_fns import ALL_STEPS
from runtime.recorder._text import literal, ref_text
from runtime.spec import EventType


def scenario_condition(scenario: Mapping[str, Any], site: Site | None) -> str:
    """``{type: 'a'}`` → ``$Input{type} == 'a'`` (several keys joined with ``&&``)."""
    clauses: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
            return
        try:
            clauses.append(f"{ref_text('Input', (), path)} == {literal(value)}")
        except ValueError:
            raise RecordingError(
                f"record_scenarios: {path} must be a string, number, boolean or null "
                f"(got {type(value).__name__})",
                site=site,
            ) from None

    walk(scenario, "")
    if not clauses:
        raise RecordingError("record_scenarios: a scenario cannot be empty", site=site)
    return " && ".join(clauses)


def _group(clause: str) -> str:
    return f"({clause})" if ("&&" in clause or "||" in clause) else clause


@dataclass
class _Merged:
    tag: str
    event: dict[str, Any]
    deps: set[str]
    alternatives: list[str | None]
    site: Site | None
    order: int
    ending: bool = False  # a RETURN/FAIL: it goes right after its step, in its sequence


def build_sequences(
    recordings: list[tuple[RecordingResult, str | None]],
    *,
    site: Site | None,
    main_output: Any = None,
) -> list[dict[str, Any]]:
    """Merge recordings (one per scenario and path, with the scenario's condition) into
    spec sequences; paths that end otherwise than with ``main_output`` get their ending."""
    merged: dict[str, _Merged] = {}
    recordings = _untangle_auto_tags(recordings)
    for result, scenario_clause in recordings:
        for node in result.nodes.values():
            parts = ([scenario_clause] if scenario_clause else []) + list(node.clauses)
            clause = " && ".join(f"({p})" if "||" in p else p for p in parts) or None
            existing = merged.get(node.tag)
            if existing is None:
                merged[node.tag] = _Merged(
                    node.tag, node.event, set(node.deps), [clause], node.site, len(merged)
                )
                continue
            if existing.event != node.event:
                raise RecordingError(
                    f"step {node.tag!r} is recorded differently in two scenarios or branches "
                    f"(first at {existing.site}); give each variant its own tag",
                    site=node.site,
                )
            existing.deps |= set(node.deps)
            if clause not in existing.alternatives:
                existing.alternatives.append(clause)
    _add_endings(merged, recordings, main_output)
    for item in merged.values():
        item.deps = set(reduce_deps(item.deps, merged))
    _check_acyclic(merged)
    state_keys = list(dict.fromkeys(k for result, _ in recordings for k in result.state_keys))
    for item in merged.values():
        if isinstance(item.event.get("loop"), Mapping):
            item.event = _fill_loop(item.event, _ancestors(item.tag, merged), state_keys)
        elif _wants_live(item.event):
            item.event = _fill_live(item.event, item.tag, _ancestors(item.tag, merged), state_keys)
    return _chains(merged)


def _fill_loop(
    event: dict[str, Any], ancestors: list[str], state_keys: list[str]
) -> dict[str, Any]:
    """A FOREACH's body: each code step sees the steps before the loop and the earlier
    steps of its own iteration."""
    body = []
    seen: list[str] = []
    for step in event["loop"].get("body") or []:
        tag = str(step.get("tag"))
        if _wants_live(step):
            step = _fill_live(step, tag, [*ancestors, *seen], state_keys)
        body.append(step)
        seen.append(tag)
    return {**event, "loop": {**event["loop"], "body": body}}


def _untangle_auto_tags(
    recordings: list[tuple[RecordingResult, str | None]],
) -> list[tuple[RecordingResult, str | None]]:
    """Two paths (or scenarios) number the tags the recorder makes up (``log-2``) each in
    its own order: where one names another step than an earlier recording did, it gets a
    fresh tag (and its references follow), instead of clashing."""
    seen: dict[str, dict[str, Any]] = {}
    taken = {tag for result, _ in recordings for tag in result.nodes}
    out = []
    for result, clause in recordings:
        renames: dict[str, str] = {}
        for node in result.nodes.values():
            event = _renamed(node.event, renames)
            first = seen.get(node.tag)
            if first is not None and first != event and node.tag in result.auto_tags:
                renames[node.tag] = _free_tag(re.sub(r"-\d+$", "", node.tag), taken)
                taken.add(renames[node.tag])
        if renames:
            result = _rename_result(result, renames)
        for node in result.nodes.values():
            seen.setdefault(node.tag, node.event)
        out.append((result, clause))
    return out


def _renamed(value: Any, renames: Mapping[str, str]) -> Any:
    """``value`` with its ``$Step{old}`` references pointing at the new tags."""
    if not renames:
        return value
    pattern = re.compile(r"\$Step\{(" + "|".join(re.escape(t) for t in renames) + r")\}")
    text = pattern.sub(lambda m: "$Step{" + renames[m.group(1)] + "}", json.dumps(value))
    return json.loads(text)


def _rename_result(result: RecordingResult, renames: Mapping[str, str]) -> RecordingResult:
    nodes = {}
    for node in result.nodes.values():
        tag = renames.get(node.tag, node.tag)
        deps = tuple(renames.get(d, d) for d in node.deps)
        clauses = tuple(_renamed(list(node.clauses), renames))
        nodes[tag] = Node(tag, _renamed(node.event, renames), deps, clauses, node.site)
    ending = result.ending
    if ending is not None:
        after = {renames.get(d, d) for d in ending.deps}
        ending = replace(ending, deps=after, message=_renamed(ending.message, renames))
    path = replace(
        result.path,
        clauses=_renamed(result.path.clauses, renames),
        tags={renames.get(t, t) for t in result.path.tags},
    )
    return replace(
        result,
        nodes=nodes,
        output=_renamed(result.output, renames),
        ending=ending,
        path=path,
        auto_tags={renames.get(t, t) for t in result.auto_tags},
    )


def _add_endings(
    merged: dict[str, _Merged],
    recordings: list[tuple[RecordingResult, str | None]],
    main_output: Any,
) -> None:
    """A RETURN step for each path that returns something else than the workflow's output
    mapping, a FAIL step for each path that raises: after that path's last steps, on the
    condition that the run took that path (its scenario and every branch it took)."""
    by_key: dict[str, _Merged] = {}
    for result, scenario_clause in recordings:
        ending = result.ending
        if ending is None or (ending.kind == "return" and result.output == main_output):
            continue
        if ending.kind == "return":
            event: dict[str, Any] = {
                "type": EventType.RETURN.value,
                "event": "return",
                "input": {"output": result.output},
            }
        else:
            event = {
                "type": EventType.FAIL.value,
                "event": "raise",
                "input": {"message": ending.message},
            }
        parts = ([scenario_clause] if scenario_clause else []) + result.path.clauses
        clause = " && ".join(_group(p) if "||" in p else p for p in parts) or None
        deps = {d for d in (ending.deps | result.path.tags) if d in merged}
        key = json.dumps([event, sorted(deps)], sort_keys=True)
        found = by_key.get(key)
        if found is not None:
            if clause not in found.alternatives:
                found.alternatives.append(clause)
            continue
        tag = _free_tag(str(event["event"]), merged)
        item = _Merged(tag, event, deps, [clause], ending.site, len(merged), ending=True)
        by_key[key] = merged[tag] = item


def _free_tag(base: str, merged: Mapping[str, Any] | set[str]) -> str:
    tag, n = base, 1
    while tag in merged:
        n += 1
        tag = f"{base}-{n}"
    return tag


def _wants_live(event: Mapping[str, Any]) -> bool:
    def has(data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("ctx"), Mapping)

    rollback = event.get("rollback")
    return has(event.get("input")) or (isinstance(rollback, Mapping) and has(rollback.get("input")))


def _ancestors(tag: str, merged: Mapping[str, _Merged]) -> list[str]:
    seen: set[str] = set()
    stack = list(merged[tag].deps)
    while stack:
        item = stack.pop()
        if item not in seen:
            seen.add(item)
            stack.extend(merged[item].deps)
    return sorted(seen, key=lambda t: merged[t].order)


def _fill_live(
    event: dict[str, Any], tag: str, ancestors: list[str], state_keys: list[str]
) -> dict[str, Any]:
    """Replace the ``ctx`` placeholders of a code step (and its rollback) with the steps
    guaranteed to have run before it and the state keys the workflow sets."""

    def fill(data: Any, own: str | None) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("ctx"), Mapping):
            return data
        live = dict(data["ctx"])
        if live.get("steps") == ALL_STEPS:
            tags = [*ancestors, *([own] if own else [])]
            live["steps"] = {t: ref_text("Step", (t,), "") for t in tags}
        if live.get("state") == ALL_STEPS:
            live["state"] = {k: ref_text("State", (), k) for k in state_keys}
        return {**data, "ctx": live}

    out = {**event, "input": fill(event.get("input"), None)}
    if isinstance(event.get("rollback"), Mapping):
        rollback = dict(event["rollback"])
        rollback["input"] = fill(rollback.get("input"), tag)
        out["rollback"] = rollback
    return out


def _check_acyclic(merged: Mapping[str, _Merged]) -> None:
    state: dict[str, int] = {}

    def visit(tag: str, path: list[str]) -> None:
        if state.get(tag) == 2:
            return
        if state.get(tag) == 1:
            cycle = [*path[path.index(tag) :], tag]
            raise RecordingError(
                "steps run in a different order in different scenarios: "
                + " → ".join(cycle)
                + "; keep one order or give the steps different tags",
                site=merged[tag].site,
            )
        state[tag] = 1
        for dep in merged[tag].deps:
            if dep in merged:
                visit(dep, [*path, tag])
        state[tag] = 2

    for tag in merged:
        visit(tag, [])


def _condition(alternatives: list[str | None]) -> str | None:
    if any(a is None for a in alternatives):
        return None
    unique = [a for a in dict.fromkeys(alternatives) if a]
    if len(unique) == 1:
        return unique[0]
    return " || ".join(_group(a) for a in unique)


def _chains(merged: Mapping[str, _Merged]) -> list[dict[str, Any]]:
    successors: dict[str, list[str]] = {tag: [] for tag in merged}
    for item in merged.values():
        for dep in item.deps:
            successors[dep].append(item.tag)
    # An ending does not fork its step's chain: it is placed right after that step.
    followers = {t: [s for s in succ if not merged[s].ending] for t, succ in successors.items()}

    def rank(tag: str) -> tuple[bool, int]:
        return (not merged[tag].ending, merged[tag].order)

    sequence_of: dict[str, str] = {}
    sequences: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    used_names: set[str] = set()
    # Kahn's algorithm, recorded order breaking ties: a chain continues while a node has
    # exactly one predecessor whose only successor it is.
    remaining = {tag: len(item.deps) for tag, item in merged.items()}
    ready = sorted((t for t, n in remaining.items() if n == 0), key=rank)
    while ready:
        tag = ready.pop(0)
        item = merged[tag]
        deps = sorted(item.deps, key=lambda t: merged[t].order)
        continues = len(deps) == 1 and (item.ending or len(followers[deps[0]]) == 1)
        if continues:
            seq_tag = sequence_of[deps[0]]
        else:
            seq_tag = _sequence_name(tag, not sequences, used_names)
            parents = list(dict.fromkeys(sequence_of[d] for d in deps))
            sequences[seq_tag] = {"tag": seq_tag, "parents": parents, "events": []}
            order.append(seq_tag)
        sequence_of[tag] = seq_tag
        event = {"tag": tag, **item.event}
        condition = _condition(item.alternatives)
        if condition:
            event["condition"] = condition
        sequences[seq_tag]["events"].append(event)
        for succ in successors[tag]:
            remaining[succ] -= 1
            if remaining[succ] == 0:
                ready.append(succ)
        ready.sort(key=rank)
    out = []
    for name in order:
        seq = sequences[name]
        if not seq["parents"]:
            del seq["parents"]
        out.append(seq)
    return out


def _sequence_name(first_step: str, is_first: bool, used: set[str]) -> str:
    name = "main" if is_first else f"seq-{first_step}"[:100]
    base, n = name, 1
    while name in used:
        n += 1
        name = f"{base[:95]}-{n}"
    used.add(name)
    return name
