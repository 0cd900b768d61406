"""Load a handler from a CodeUri and `module.function`, as FC does: the CodeUri folder goes first on
sys.path and the module is imported by name."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class HandlerError(ValueError):
    """The Handler does not name a function in the CodeUri."""


def load_handler(code_uri: Path | str, handler: str) -> Callable[..., Any]:
    module_name, dot, function_name = handler.rpartition(".")
    if not dot or not module_name or not function_name:
        raise HandlerError(f"Handler {handler!r} is not module.function")
    code_uri = Path(code_uri).resolve()
    if not (code_uri / f"{module_name.replace('.', '/')}.py").exists():
        raise HandlerError(f"Handler {handler!r}: no {module_name}.py in CodeUri {code_uri}")
    if str(code_uri) not in sys.path:
        sys.path.insert(0, str(code_uri))
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise HandlerError(f"Handler {handler!r}: {module_name} has no function {function_name!r}")
    return function
