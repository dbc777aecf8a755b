"""Expressions and references: every string parses, every ``$Step``/``$Sequence``
names a step that ran before on every path, and a ``$Secret`` goes only, whole, into an
outgoing call."""

from __future__ import annotations

from typing import Any

from runtime.compiler._graph import GraphChecks
from runtime.compiler._paths import MAX_DEPTH, _collect_strings, _Keys, _TooDeep, _Where
from runtime.errors import ExpressionError
from runtime.expressions import Ref, parse, parse_condition
from runtime.spec import SECRET_OUTGOING, EventSpec, RollbackSpec

_STEP_KINDS = frozenset({"Step", "Sequence"})
_SECRET_ONLY_OUTGOING = "$Secret may only be used in an outgoing call's input"  # noqa: S105
_OUTGOING_TYPES = ", ".join(sorted(t.value for t in SECRET_OUTGOING))


def _not_in(stored: str) -> str:
    return f"{_SECRET_ONLY_OUTGOING} ({_OUTGOING_TYPES}), not in {stored}"


def _stored_input(event: EventSpec | RollbackSpec) -> str | None:
    """What an event's input is, when it is stored or shown (None: only sent out)."""
    if event.type in SECRET_OUTGOING:
        return None
    what = "rollback" if isinstance(event, RollbackSpec) else "step"
    return f"a {event.type.value} {what}'s input"


class ReferenceChecks(GraphChecks):
    """Expression strings, step references and where a ``$Secret`` may go."""

    def parse_value(
        self, value: Any, path: str, *, stored: str | None = None
    ) -> list[tuple[_Where, Ref]]:
        """Parse every expression string in a JSON value; return its step references.

        ``stored`` names what the value is when it is kept or shown (then a ``$Secret``
        anywhere in it is refused); None when it is only sent out in a component's call.
        """
        strings: list[tuple[_Keys, str]] = []
        if isinstance(value, str):
            if "$" in value:
                strings.append(((), value))
        elif isinstance(value, dict | list):
            try:
                _collect_strings(value, (), strings)
            except _TooDeep as exc:
                self.issue((path, exc.keys), f"nested more than {MAX_DEPTH} levels deep")
                return []
        found: list[tuple[_Where, Ref]] = []
        for keys, text in strings:
            try:
                template = parse(text)
            except ExpressionError as exc:
                self.issue((path, keys), str(exc))
                continue
            if stored is not None and template.has_secret:
                self.secret_issue((path, keys), _not_in(stored))
            elif template.secret_cut_by is not None:
                self.secret_issue(
                    (path, keys),
                    f"$Secret may only be sent whole: ${template.secret_cut_by} would take it"
                    " apart or compare with it (an API echoing the request would show that)",
                )
            for ref in template.refs:
                if ref.kind in _STEP_KINDS:
                    found.append(((path, keys), ref))
        return found

    def secret_issue(self, where: _Where, message: str) -> None:
        # Taint is syntactic: Template.refs holds every reference under every operator, so
        # $Lowercase($Substring($Secret{k}, 0, 4)) is refused like $Secret{k} itself.
        self.issue(where, message)

    def parse_cond(self, text: str | None, path: str) -> list[tuple[_Where, Ref]]:
        if text is None:
            return []
        try:
            cond = parse_condition(text)
        except ExpressionError as exc:
            self.issue(path, f"malformed condition: {exc}")
            return []
        if any(r.kind == "Secret" for r in cond.refs):
            # A condition's outcome is journaled (skipped or not): an oracle on the value.
            self.secret_issue(path, _not_in("a condition"))
        return [(path, r) for r in cond.refs if r.kind in ("Step", "Sequence")]

    def locate(self, where: _Where, ref: Ref) -> tuple[str, int, int] | None:
        """The referenced step as (tag, sequence index, event index), or report it unknown."""
        if ref.kind == "Step":
            tag = ref.args[0]
            loc = self.step_index.get(tag)
            if loc is None:
                self.issue(where, f"unknown step '{tag}' in {ref}")
                return None
            return tag, loc[0], loc[1]
        seq_tag, tag = ref.args
        si = self.seq_index.get(seq_tag)
        if si is None:
            self.issue(where, f"unknown sequence '{seq_tag}' in {ref}")
            return None
        loc = self.step_index.get(tag)
        if loc is None or loc[0] != si:
            self.issue(where, f"unknown step '{tag}' in sequence '{seq_tag}' in {ref}")
            return None
        return tag, loc[0], loc[1]

    def check_refs(
        self,
        refs: list[tuple[_Where, Ref]],
        *,
        seq: int | None,
        index: int,
        reader: str,
        inclusive: bool = False,
    ) -> None:
        """Each reference must name a step that ran before ``reader`` on every path.

        ``seq`` None: anywhere in the workflow is fine (workflow output, queries).
        ``index`` is the reader's event index (-1 for a sequence's skip_if); ``inclusive``
        lets a rollback read its own step.
        """
        tags = self.spec.sequences
        for where, ref in refs:
            found = self.locate(where, ref)
            if found is None or seq is None:
                continue
            tag, si, sj = found
            if si == seq:
                if sj < index or (inclusive and sj == index):
                    continue
                if sj == index:
                    self.issue(where, f"step '{tag}' cannot refer to its own output")
                elif index < 0:
                    self.issue(
                        where,
                        f"step '{tag}' is in sequence '{tags[seq].tag}' itself, whose skip_if"
                        " is evaluated before any of its steps run",
                    )
                else:
                    self.issue(
                        where,
                        f"step '{tag}' runs after '{reader}' in sequence '{tags[seq].tag}'",
                    )
            elif seq in self.unordered or si in self.unordered:
                continue  # the cycle is reported; ancestry is meaningless there
            elif not (self.ancestors[seq] >> si) & 1:
                self.issue(
                    where,
                    f"step '{tag}' in sequence '{tags[si].tag}' is not guaranteed to run before"
                    f" '{reader}' (not an ancestor)",
                )
