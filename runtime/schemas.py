"""JSON Schemas written by designers (workflow input, signal payloads), validated safely
(pure: no Django imports).

A designer's ``pattern`` runs against data an operator (or a published message) sends, in
the web process. Python's ``re`` backtracks: ``^(a+)+$`` against ``"a" * 27 + "!"`` takes
seconds, doubling with each character. Every regular expression of a user schema —
``pattern``, the keys of ``patternProperties`` and the ``additionalProperties`` check that
uses them — therefore runs on RE2 (google-re2), whose matching time is linear in the input.
A pattern RE2 cannot compile (look-arounds, back-references) is refused when the spec is
validated or published, with the path of the field (:func:`schema_issues`).

``unevaluatedProperties`` next to ``patternProperties`` is refused too: jsonschema evaluates
that pair with Python's ``re`` and offers no hook to change it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import re2
import referencing.exceptions
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator

__all__ = ["SAFE_VALIDATOR", "schema_issues", "schema_normalize", "validator_for"]

_SHORTHAND_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null", "any"}
_SCHEMA_KEYS = {
    "type",
    "properties",
    "$schema",
    "$ref",
    "required",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "enum",
    "const",
    "additionalProperties",
}


def schema_normalize(schema: Any) -> dict[str, Any]:
    """A JSON Schema from either JSON Schema or the seed's shorthand ``{field: 'string'}``.

    Shorthand: each field maps to a type name (``string``, ``number``, ``integer``,
    ``boolean``, ``object``, ``array``, ``any``), optional with a trailing ``?``
    (``'string?'``), an array of a type with ``[]`` (``'string[]'``), or a nested shorthand
    object. Fields without ``?`` are required; other fields are allowed.
    """
    if not isinstance(schema, dict) or not schema:
        return {}
    if _SCHEMA_KEYS & set(schema):
        return schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in schema.items():
        optional = False
        if isinstance(spec, str):
            text = spec.strip()
            if text.endswith("?"):
                optional, text = True, text[:-1]
            properties[name] = _shorthand_type(text)
        elif isinstance(spec, dict):
            properties[name] = schema_normalize(spec) or {"type": "object"}
        else:
            properties[name] = {}
        if not optional:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _shorthand_type(text: str) -> dict[str, Any]:
    if text.endswith("[]"):
        return {"type": "array", "items": _shorthand_type(text[:-2])}
    if text == "any" or text not in _SHORTHAND_TYPES:
        return {}
    return {"type": text}


# --- RE2 ------------------------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the user, not to stderr
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    """The RE2 program of ``pattern``; raises ``re2.error`` when RE2 cannot run it."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    try:
        return _compile(pattern).search(text) is not None
    except re2.error:
        # Refused at validate/publish; a version stored before that rule matches nothing.
        return False


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance[:80]!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extras(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    # jsonschema's own version, with RE2 for the patternProperties keys.
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            joined = ", ".join(repr(each) for each in extras)
            plural = "s were" if len(extras) > 1 else " was"
            yield ValidationError(
                f"Additional properties are not allowed ({joined}{plural} unexpected)"
            )


SAFE_VALIDATOR = jsonschema.validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def validator_for(schema: Mapping[str, Any]) -> Validator:
    """A validator of ``schema`` whose regular expressions run on RE2."""
    return SAFE_VALIDATOR(schema)


# --- Checks at validate/publish ----------------------------------------------------------

# Keywords whose values are data, not schemas: a "pattern" key inside them is not a regex.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def schema_issues(schema: Any, where: str) -> list[tuple[str, str]]:
    """``(path, message)`` for each problem of a user schema that would make validating
    with it unsafe: a pattern RE2 cannot run, ``unevaluatedProperties`` with
    ``patternProperties``. (Other mistakes stay tolerated as before: the seed's shorthand
    and JSON Schema overlap, ``{"items": "array"}`` is a valid shorthand.)"""
    normalized = schema_normalize(schema)
    if not normalized or normalized is not schema:
        return []  # none, or shorthand: no patterns
    issues: list[tuple[str, str]] = []
    try:  # a $ref loop recurses forever, a $ref to nowhere raises: both found on {}
        for _error in validator_for(schema).iter_errors({}):
            pass
    except (RecursionError, referencing.exceptions.Unresolvable) as exc:
        issues.append((where, f"this schema cannot be evaluated: {ref_problem(exc)}"))
    found: list[tuple[str, str]] = []
    uses_unevaluated = False
    todo: list[tuple[Any, str]] = [(schema, where)]
    while todo:
        node, path = todo.pop()
        if isinstance(node, list):
            todo.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = _join(path, key)
            if key in _DATA_KEYWORDS:
                continue
            if key == "pattern" and isinstance(value, str):
                found.append((here, value))
            elif key == "patternProperties" and isinstance(value, dict):
                found.extend((_join(here, k), k) for k in value)
            elif key == "unevaluatedProperties":
                uses_unevaluated = True
            todo.append((value, here))
    for path, pattern in found:
        try:
            _compile(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            issues.append(
                (path, f"this pattern cannot run on the linear-time regex engine (RE2): {reason}")
            )
    if uses_unevaluated and any(".patternProperties." in p for p, _ in found):
        issues.append((where, "unevaluatedProperties cannot be combined with patternProperties"))
    return issues


def ref_problem(exc: BaseException) -> str:
    """What is wrong with a schema whose evaluation raised ``exc``."""
    if isinstance(exc, RecursionError):
        return "a $ref that refers back to itself forever"
    return "a $ref that points nowhere"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}"
