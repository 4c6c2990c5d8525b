"""The layout's rules (docs/architecture.md): imports only point down the layers, no import cycle
among impbench modules, the core never imports a plugin or torch outside impbench/nn, no module
over 500 lines, no private name imported from another module, and docs/architecture.md names
every module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "impbench"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
#: The layers, lowest first (docs/architecture.md, "Layers"): a module may import its own layer's
#: modules and those of layers below it, never above. The package root (``impbench/__init__.py``:
#: ``__version__``, ``hookimpl``) is in the plugin API's layer; ``bench.exec`` is inside ``bench``.
LAYERS = (
    ("impbench.genotypes", "impbench.errors", "impbench.files", "impbench.progress"),
    ("impbench.io",),
    ("impbench.data",),
    ("impbench", "impbench.imputers"),
    ("impbench.scoring",),
    ("impbench.nn",),
    ("impbench.bench",),
    ("impbench.report",),
    ("impbench.testing",),
    ("impbench.cli",),
)
PLUGIN_MODULES = ("impbench_biunet", "impbench_hapmlp", "impbench_scda", "impbench_beagle", "impbench_minimac4", "impbench_example")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside an ``if TYPE_CHECKING`` block) for every absolute import."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from pkg import submodule" depends on the submodule; "from mod import name" on mod
            for alias in node.names:
                found.append((f"{node.module}.{alias.name}", id(node) in typing_only))
                found.append((node.module, id(node) in typing_only))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in typing_only) for a in node.names]
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {}
    for m, p in modules.items():
        targets = {t for t, typing_only in _imports(p) if not typing_only}
        # an import of pkg.sub counts as sub only (pkg is already being initialised)
        graph[m] = {t for t in targets if t in modules and t != m
                    and not any(o.startswith(t + ".") and o in modules for o in targets)}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [module])


def test_core_imports_no_plugin_and_only_nn_imports_torch():
    for name, path in _modules().items():
        for target, _ in _imports(path):
            root = target.split(".")[0]
            assert root not in PLUGIN_MODULES, f"{name} imports plugin {target}"
            if root == "torch":
                assert name.startswith("impbench.nn"), f"{name} imports torch"


def test_modules_are_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"


def test_runner_and_registry_do_not_import_torch():
    code = ("import sys, impbench.bench.runner, impbench.cli.run, impbench.report; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of the longest prefix naming ``module``'s layer."""
    best, rank = "", None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    assert rank is not None, f"{module} is in no layer of LAYERS (add it there and to docs/architecture.md)"
    return rank


def test_imports_point_down_the_layers():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        for target, typing_only in _imports(path):
            if typing_only or target not in modules or target == name:
                continue
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(set(upward)))


def test_layer_list_matches_the_architecture_doc():
    import re

    line = next((ln for ln in ARCHITECTURE.read_text().splitlines() if ln.startswith("Layers, lowest first:")), None)
    assert line is not None, "docs/architecture.md has no line 'Layers, lowest first: ...'"

    def module(path: str) -> str:  # `io/` -> impbench.io, `files.py` -> impbench.files, `impbench/__init__.py` -> impbench
        if path == "impbench/__init__.py":
            return "impbench"
        return "impbench." + path.removesuffix("/").removesuffix(".py").replace("/", ".")

    documented = [{module(p) for p in re.findall(r"`([^`]+)`", group)} for group in line.split(":", 1)[1].split("->")]
    assert documented == [set(layer) for layer in LAYERS], f"docs/architecture.md's layers differ from LAYERS: {line}"


def test_no_private_name_is_imported_from_another_module():
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("impbench") and node.level == 0:
                found += [f"{name} imports {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names imported across modules: " + "; ".join(found)


def test_architecture_doc_names_every_module():
    text = ARCHITECTURE.read_text()
    missing = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "__init__.py" and f"`{p.relative_to(PACKAGE)}`" not in text]
    assert not missing, "docs/architecture.md does not name these modules: " + ", ".join(missing)
