"""Which operators hand a ``$Secret`` on whole, and which take it apart."""

from __future__ import annotations

from runtime.expressions._nodes import Node, _Array, _Call


def involves_secret(node: Node) -> bool:
    """True when a ``$Secret`` appears anywhere under ``node``."""
    return any(ref.kind == "Secret" for ref in node.refs())


# Operators that hand a secret on whole (in another letter case at most), and which of their
# arguments may hold one: all an outgoing call may do with a secret. Every other operator
# takes it apart ($Substring, $Split), measures it ($Size) or compares with it ($Filter,
# $Find; $Pick's key): an API that echoes the request would hand the pieces, or the answers
# of an oracle, back into the run, below what masking recognises as the secret.
WHOLE_SECRET_ARGS: dict[str, frozenset[int] | None] = {  # None: any argument
    "Concat": None,
    "Default": None,
    "Join": None,
    "Trim": frozenset({0}),
    "Uppercase": frozenset({0}),
    "Lowercase": frozenset({0}),
    "Pick": frozenset({0}),
}


def secret_cut_by(node: Node) -> str | None:
    """The first operator (outermost first) through which a secret does not pass whole."""
    if isinstance(node, _Call):
        allowed = WHOLE_SECRET_ARGS.get(node.name, frozenset())
        for k, arg in enumerate(node.args):
            if allowed is not None and k not in allowed and involves_secret(arg):
                return node.name
            inner = secret_cut_by(arg)
            if inner is not None:
                return inner
    elif isinstance(node, _Array):
        for item in node.items:
            inner = secret_cut_by(item)
            if inner is not None:
                return inner
    return None
