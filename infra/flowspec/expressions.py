"""CloudFlow's constructor expressions, the small part the local CloudFlow evaluates (pure).

In an InputConstructor, OutputConstructor, ItemConstructor, BatchInput or a Task's Parameters, a key that
ends in `.$` holds an expression and is written without the suffix; every other value is a constant
(nested objects are constructed the same way). The expressions understood are a root and a path:

    $Input, $Output, $Item, $Context            the root (where each may be used: `check_constructor`)
    $Input.size, $Context.Execution.Input.a      member access by name
    $Input.keys[0]                               an array element

Built-in functions and anything else are refused when the flow is created, naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EXPRESSION = re.compile(r"\$(Input|Output|Item|Context)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*)")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")
MAX_DEPTH = 10  # constructors nest at most this deep (the docs' limit on nested built-in functions)


class ExpressionError(ValueError):
    """A constructor or expression the local CloudFlow does not evaluate; the message names the field."""


def check_expression(text: Any, where: str, roots: frozenset[str]) -> None:
    if not isinstance(text, str):
        raise ExpressionError(f"{where}: an expression must be a string")
    match = _EXPRESSION.fullmatch(text.strip())
    if not match:
        raise ExpressionError(
            f"{where}: {text[:80]!r} is not an expression the local CloudFlow evaluates "
            "($Input, $Output, $Item or $Context, then .name or [n] steps)"
        )
    if match[1] not in roots:
        usable = ", ".join(f"${r}" for r in sorted(roots))
        raise ExpressionError(f"{where}: ${match[1]} cannot be used here (usable: {usable})")


def check_constructor(constructor: Any, where: str, roots: frozenset[str], depth: int = 0) -> None:
    """Refuse a constructor that `construct` could not evaluate with these roots."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"{where}: constructors nest at most {MAX_DEPTH} levels")
    if not isinstance(constructor, dict):
        raise ExpressionError(f"{where}: a constructor must be an object")
    for key, value in constructor.items():
        if not isinstance(key, str):
            raise ExpressionError(f"{where}: keys must be strings")
        if key.endswith(".$"):
            check_expression(value, f"{where}.{key}", roots)
        elif isinstance(value, dict):
            check_constructor(value, f"{where}.{key}", roots, depth + 1)


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """The value of a checked expression in `scope` (root name -> value); a missing member is None."""
    match = _EXPRESSION.fullmatch(text.strip())
    if not match:  # checked at create time: only a bug gets here
        raise ExpressionError(f"not an expression: {text!r}")
    value = scope.get(match[1])
    for name, index in _STEP.findall(match[2]):
        if name:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            position = int(index)
            value = value[position] if isinstance(value, list) and position < len(value) else None
    return value


def construct(constructor: Mapping[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for key, value in constructor.items():
        if key.endswith(".$"):
            built[key[:-2]] = evaluate(value, scope)
        elif isinstance(value, dict):
            built[key] = construct(value, scope)
        else:
            built[key] = value
    return built
