"""The expression language: references, operators and conditions (pure: no Django imports).

A string value in a spec is a *template*: plain text with ``$``-expressions in it.

- References: ``$Input{a.b}``, ``$Step{tag}{a.b}``, ``$Sequence{seq}{step}{a.b}``,
  ``$State{key}``, ``$Variable{app}{key}``, ``$Constant{app}{key}``, ``$Secret{key}``,
  ``$Run{field}``, ``$Now``, and in a FOREACH body ``$Item{path}`` and ``$Index``. Paths
  use dots and numeric indexes (``items.0.id`` or ``items[0].id``); a missing path
  resolves to ``None``, never an error.
- Operators: ``$Name(arg, ...)`` where an argument is a literal (``'text'``, ``"text"``,
  numbers, ``true``/``false``/``null``, ``[a, b]``), a reference or another operator.
- A string that is exactly one expression keeps the value's type (``"$Input{n}"`` → ``5``);
  expressions inside longer text are interpolated (``None`` → ``""``, objects as JSON).
- ``$$`` is a literal ``$``; a ``$`` not followed by a capitalised name is plain text, and so is
  ``$Word`` not followed by ``(`` or ``{`` (``"costs $USD"``); ``$Unknown(...)`` is an error.

Conditions (step ``condition``, sequence ``skip_if``) compare operands with
``== === != !== > >= < <=``, combine with ``&& ||`` and ``!``, and group with parentheses.
Equality is JSON-typed: numbers compare by value (``1 == 1.0``), there is no string/number
coercion (``1 == '1'`` is false) and ``==``/``===`` mean the same, as in the seed's table.
Ordering works on two numbers or two strings; anything else (``None > 1``) is false.
A bare operand is tested for truthiness (``None``, ``false``, ``0``, ``''``, empty = false).

Why a hand-written recursive-descent parser instead of lark: references are
brace-delimited and read "until the closing brace" (tags may contain ``-`` and ``.``), and
expressions sit inside free text — both awkward for a context-free lexer. The grammar is
tiny, positions in errors come for free, and it is several times faster than a general
parser. Parsed templates are cached by string, so the engine pays for parsing once.

This package is the façade: importers use ``runtime.expressions``; its private modules are
``_limits`` (bounds, value budget), ``_values`` (equality, ordering, text), ``_paths``,
``_scope``, ``_operators``, ``_nodes`` (evaluation), ``_parser``, ``_templates``,
``_secrets`` and ``_resolve`` (resolution and redaction of JSON values).
"""

from __future__ import annotations

from runtime.expressions._limits import (
    LIMITS,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    check_number,
    set_limits,
    value_budget,
)
from runtime.expressions._nodes import Ref, Scope
from runtime.expressions._operators import OPERATORS, Operator
from runtime.expressions._parser import REF_KINDS
from runtime.expressions._resolve import (
    REDACTED,
    references,
    resolve,
    resolve_masked,
    resolve_redacted,
)
from runtime.expressions._scope import DictScope
from runtime.expressions._secrets import WHOLE_SECRET_ARGS
from runtime.expressions._templates import (
    Condition,
    Template,
    evaluate_condition,
    parse,
    parse_condition,
)
from runtime.expressions._values import COMPARISONS, as_text, compare, equal, truthy

__all__ = [
    "COMPARISONS",
    "LIMITS",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "OPERATORS",
    "REDACTED",
    "REF_KINDS",
    "WHOLE_SECRET_ARGS",
    "Condition",
    "DictScope",
    "Operator",
    "Ref",
    "Scope",
    "Template",
    "as_text",
    "check_number",
    "compare",
    "equal",
    "evaluate_condition",
    "parse",
    "parse_condition",
    "references",
    "resolve",
    "resolve_masked",
    "resolve_redacted",
    "set_limits",
    "truthy",
    "value_budget",
]
