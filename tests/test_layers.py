"""The layers of functions/ and infra/, checked on their import graph, read from the source with `ast`.

What counts as an import: every `import` and `from ... import` statement anywhere in a module — at module
level, inside a function, or under `if TYPE_CHECKING:`. An import moved into a function or behind
TYPE_CHECKING still makes the module depend on the other one (it is how a circle gets hidden, not broken).
An import names one module: `import a.b.c` and `from a.b import c` (c a module) depend on `a.b.c`, and
`from a.b import name` on the package `a.b`; the parent packages Python initialises on the way are not
counted. Names resolved at run time (the handler the local FC loads from template.yml) are not imports.

The graph must have no circle, and each layer may import only its own and lower layers (LAYERS). The
commands that work on the real cloud (REAL_CLOUD) must not import the local cloud, except for the
imports listed, with their reasons, in REAL_CLOUD_EXCEPTIONS."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
DEPLOYED = ROOT / "functions"  # every module under it belongs to the lowest layer
TOOLING = ROOT / "infra"  # its modules belong to the layer their top-level package is named in LAYERS

# Lowest first; a module may import modules of its own layer and of the layers before it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    # The deployed code (functions/): it is all FC gets, so it imports nothing of infra/.
    ("autotag", frozenset()),
    # Alibaba Cloud's formats, byte for byte, that the local cloud and the real-cloud commands both make,
    # and CloudFlow's definition language, which the local CloudFlow runs and a deploy checks alike.
    ("cloudformats", frozenset({"cloudformats", "flowspec"})),
    # The local cloud: OSS, FC with its API and EventBridge, RAM.
    ("localcloud", frozenset({"localcloud"})),
    # `autotag deploy`'s engine: template.yml to FC and OSS, through the SDKs.
    ("deployer", frozenset({"deployer"})),
    # The backfill run on the operator's machine: the backfill flow's Map in-process.
    ("backfill", frozenset({"backfill"})),
    # The console `autotag local up` serves: it reads the local cloud only as a client does (oss2, the FC
    # API, the invocation log), so it imports none of it (CLIENTS_ONLY).
    ("webconsole", frozenset({"webconsole"})),
    # The `autotag` command, over all of the above.
    ("autotag_cli", frozenset({"autotag_cli"})),
)
# Scripts dev.py runs on their own: they import none of the project's modules, and none imports them.
STANDALONE = frozenset({"audit_pins", "funcraft"})
LOCAL_CLOUD = "localcloud"
REAL_CLOUD = frozenset({"deployer", "backfill"})  # they work on real buckets and functions
# Layers that reach the local cloud only through its documented APIs: no private path into its code.
CLIENTS_ONLY = frozenset({"webconsole"})
# (layer, module of the local cloud it may import): why.
REAL_CLOUD_EXCEPTIONS: dict[tuple[str, str], str] = {
    # A deploy reads template.yml with the reader the local cloud runs it from, on purpose: a template is
    # deployed only as the local cloud runs and enforces it (RAM Policies it can evaluate, EventBridge
    # triggers and rules it delivers as EventBridge does), so what was tried locally is what is deployed.
    ("deployer", "localcloud.fc.template"): "deploys only the template the local cloud runs",
    # ... and the same trigger settings and event patterns: FC's API names of an EventBridge trigger's
    # properties, and the matcher that finds a function whose writes would trigger itself.
    ("deployer", "localcloud.fc.eventbridge"): "deploys EventBridge triggers as the local cloud reads them",
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, as imported: `autotag.events`, `localcloud.oss` (a package's __init__.py)
    path: Path
    deployed: bool  # under functions/


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def find_modules(roots: Iterable[tuple[Path, bool]]) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for root, deployed in roots:
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            if parts and all(part.isidentifier() for part in parts):
                assert name not in modules, f"{path} and {modules[name].path} are both {name}"
                modules[name] = Module(name, path, deployed)
    return modules


def _package_of(module: Module) -> str:
    return module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]


def _innermost(name: str, modules: Mapping[str, Module]) -> str | None:
    """The module `name` is, or the innermost package of ours that holds it; None if it is not ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: Module, modules: Mapping[str, Module]) -> list[Import]:
    found: set[Import] = set()
    for node in ast.walk(ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))):
        targets: list[str | None] = []
        if isinstance(node, ast.Import):
            targets = [_innermost(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(module).split(".")
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            targets = [_innermost(f"{base}.{alias.name}", modules) for alias in node.names]
        found |= {Import(module.name, t, node.lineno) for t in targets if t is not None and t != module.name}
    return sorted(found, key=lambda i: (i.line, i.imported))


def import_graph(modules: Mapping[str, Module]) -> dict[str, list[Import]]:
    return {name: imports_of(module, modules) for name, module in modules.items()}


def circles(graph: Mapping[str, list[Import]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = sorted({i.imported for i in graph.get(node, [])})
            if position < len(targets):
                work.append((node, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def layer_of(module: Module) -> str:
    if module.deployed:
        return LAYERS[0][0]
    top = module.name.split(".")[0]
    if top in STANDALONE:
        return "standalone"
    for layer, packages in LAYERS:
        if top in packages:
            return layer
    return ""


MODULES = find_modules([(DEPLOYED, True), (TOOLING, False)])
GRAPH = import_graph(MODULES)
RANK = {layer: rank for rank, (layer, _) in enumerate(LAYERS)}


def test_the_graph_is_read_from_the_source() -> None:
    # A checker that sees nothing passes everything: it must see the modules and their imports.
    assert {"autotag.events", "autotag.handlers.upload", "tag_on_upload", "localcloud.oss.server"} <= set(
        MODULES
    )
    assert "autotag.handlers.upload" in {i.imported for i in GRAPH["tag_on_upload"]}
    assert sum(len(imports) for imports in GRAPH.values()) > 300


def test_every_kind_of_import_counts(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "c", "d", "e", "f", "sub/__init__", "sub/g"):
        (package / f"{name}.py").write_text("")
    (package / "a.py").write_text(
        "from __future__ import annotations\n"
        "import json\n"
        "from typing import TYPE_CHECKING\n"
        "import pkg.b\n"
        "from . import c\n"
        "if TYPE_CHECKING:\n"
        "    from .d import Thing\n"
        "def late() -> None:\n"
        "    from pkg.e import helper\n"
        "from .sub.g import name\n"
    )
    (package / "sub" / "g.py").write_text("from .. import f\nfrom ..sub import something\n")
    modules = find_modules([(tmp_path, False)])
    graph = import_graph(modules)
    assert {i.imported for i in graph["pkg.a"]} == {"pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.sub.g"}
    assert {i.imported for i in graph["pkg.sub.g"]} == {"pkg.f", "pkg.sub"}
    assert circles(graph) == []
    (package / "e.py").write_text("def helper() -> None:\n    from .sub import g\n")
    (package / "sub" / "__init__.py").write_text("from ..a import late\n")
    assert circles(import_graph(find_modules([(tmp_path, False)]))) == [
        ["pkg.a", "pkg.e", "pkg.sub", "pkg.sub.g"]
    ]


def test_no_import_circles() -> None:
    found = circles(GRAPH)
    described = [
        ", ".join(component)
        + ":\n    "
        + "\n    ".join(str(i) for m in component for i in GRAPH[m] if i.imported in component)
        for component in found
    ]
    assert not found, "import circles:\n" + "\n".join(described)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(name for name, module in MODULES.items() if not layer_of(module))
    assert not unplaced, f"place these in LAYERS or STANDALONE of {Path(__file__).name}: {unplaced}"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for name, imports in GRAPH.items():
        importer = layer_of(MODULES[name])
        for found in imports:
            imported = layer_of(MODULES[found.imported])
            if importer == imported:
                continue
            if "standalone" in (importer, imported):
                wrong.append(f"{found}: {importer} -> {imported} (standalone scripts share nothing)")
            elif importer and imported and RANK[imported] > RANK[importer]:
                wrong.append(f"{found}: {importer} -> {imported}, a higher layer")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_real_cloud_commands_do_not_import_the_local_cloud() -> None:
    wrong, used = [], set()
    for name, imports in GRAPH.items():
        importer = layer_of(MODULES[name])
        if importer not in REAL_CLOUD:
            continue
        for found in imports:
            if layer_of(MODULES[found.imported]) != LOCAL_CLOUD:
                continue
            if (importer, found.imported) in REAL_CLOUD_EXCEPTIONS:
                used.add((importer, found.imported))
            else:
                wrong.append(str(found))
    assert not wrong, "real-cloud code importing the local cloud:\n" + "\n".join(wrong)
    assert used == set(REAL_CLOUD_EXCEPTIONS), (
        f"exceptions no longer needed: {set(REAL_CLOUD_EXCEPTIONS) - used}"
    )


def test_the_console_reaches_the_local_cloud_only_through_its_apis() -> None:
    wrong = [
        str(found)
        for name, imports in GRAPH.items()
        if layer_of(MODULES[name]) in CLIENTS_ONLY
        for found in imports
        if layer_of(MODULES[found.imported]) == LOCAL_CLOUD
    ]
    assert not wrong, "a client-only layer importing the local cloud:\n" + "\n".join(wrong)
    assert any(name.startswith("webconsole.") for name in MODULES), "the console's modules are not seen"
