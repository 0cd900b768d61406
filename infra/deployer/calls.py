"""What a function's code calls, read from its CodeUri: every module its handler module imports (directly
or not) is scanned for oss2 and aliyun-fc2 calls. Used to check the RAM policy against the calls made and
to find triggers that would receive events the functions themselves cause."""

from __future__ import annotations

import ast
import re
from pathlib import Path

_CALL = re.compile(r"\.(?:bucket|client)\.([a-z_]+)\(")
# oss2 calls that create or remove objects -> the OSS event each one causes (tagging calls cause none)
EVENT_OF_CALL = {
    "put_object": "ObjectCreated:PutObject",
    "copy_object": "ObjectCreated:CopyObject",
    "append_object": "ObjectCreated:AppendObject",
    "complete_multipart_upload": "ObjectCreated:CompleteMultipartUpload",
    "put_symlink": "ObjectCreated:PutSymlink",
    "delete_object": "ObjectRemoved:DeleteObject",
    "batch_delete_objects": "ObjectRemoved:DeleteObjects",
}


def _module_file(code_uri: Path, module: str) -> Path | None:
    base = code_uri / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def reachable_sources(code_uri: Path, handler_module: str) -> str:
    """The source of every module of `code_uri` that `handler_module` imports, directly or not."""
    seen: dict[str, str] = {}
    pending = [handler_module]
    while pending:
        module = pending.pop()
        path = _module_file(code_uri, module)
        if module in seen or path is None:
            continue
        seen[module] = path.read_text()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(seen[module])):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                pending.append(base)
                pending += [f"{base}.{alias.name}" for alias in node.names]
                pending += [base.rsplit(".", parent)[0] for parent in range(1, base.count(".") + 1)]
    return "\n".join(seen.values())


def calls_made(code_uri: Path, handler: str) -> set[str]:
    """The oss2 Bucket and fc2 Client methods a handler (`module.function`) can call."""
    return set(_CALL.findall(reachable_sources(code_uri, handler.rpartition(".")[0])))


def events_caused(code_uri: Path, handler: str) -> set[str]:
    return {EVENT_OF_CALL[call] for call in calls_made(code_uri, handler) if call in EVENT_OF_CALL}
