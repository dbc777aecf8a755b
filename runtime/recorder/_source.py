"""The source of the user's functions: the AST of a def or lambda, found from its code."""

from __future__ import annotations

import ast
import linecache
import threading
import types
from collections.abc import Callable
from typing import Any

_AST_CACHE: dict[str, tuple[str, dict[tuple[str, int], list[Any]]]] = {}
_AST_LOCK = threading.Lock()


def function_node(fn: Callable[..., Any]) -> ast.AST | None:
    """The AST of ``fn`` (a def or a lambda) found in its module's source."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return code_node(code, getattr(fn, "__globals__", None))


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


def _index_functions(tree: ast.Module) -> dict[tuple[str, int], list[_FunctionNode]]:
    """Every def and lambda of a module by (name, first line) — what a code object knows."""
    index: dict[tuple[str, int], list[_FunctionNode]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            key = ("<lambda>", node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            key = (node.name, min([node.lineno, *(d.lineno for d in node.decorator_list)]))
        else:
            continue
        index.setdefault(key, []).append(node)
    return index


def code_node(code: types.CodeType, module_globals: Any) -> ast.AST | None:
    """The AST of the def or lambda a code object was compiled from (None when unknown)."""
    filename = code.co_filename
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    source = "".join(lines)
    with _AST_LOCK:
        cached = _AST_CACHE.get(filename)
        if cached is None or cached[0] != source:
            try:
                index = _index_functions(ast.parse(source))
            except SyntaxError:
                index = {}
            _AST_CACHE[filename] = (source, index)
        else:
            index = cached[1]
    candidates = index.get((code.co_name, code.co_firstlineno), [])
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    # Several on one line (lambdas): the real source spans of the function's instructions
    # pick the innermost one holding them (RESUME and friends have empty spans).
    positions = [
        (line, col)
        for line, end_line, col, end_col in code.co_positions()
        if line is not None
        and col is not None
        and end_col is not None
        and ((end_line or line) > line or end_col > col)
    ]
    best: ast.AST | None = None
    best_span = None
    for node in candidates:
        start = (node.lineno, node.col_offset)
        end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
        if positions and not all(start <= p <= end for p in positions):
            continue
        span = (end[0] - start[0], end[1] - start[1])
        if best_span is None or span < best_span:
            best, best_span = node, span
    return best
