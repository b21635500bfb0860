"""The package layout holds: no import cycles among our modules, and imports follow the layers.

Layers: `schemas` ← `eventstore` ← `projections` ← `service`; `service/domain` imports only `schemas` and
itself; nothing imports `service.routes` except the app's route table. Imports under `TYPE_CHECKING` and
inside functions count too: a cycle hidden there is still a knot for a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "eventstore", "projections", "service")
LAYER = {name: rank for rank, name in enumerate(PACKAGES)}
ROUTE_TABLE = "service.app"


def module_name(path: Path, root: Path) -> str:
    """`service/web/request.py` → `service.web.request`; a package's `__init__.py` is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules(root: Path) -> dict[str, Path]:
    """Every module of our packages under `root`, by dotted name."""
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules of ours that `name` imports, wherever in the file the import stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph(root: Path) -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports."""
    modules = our_modules(root)
    known = set(modules)
    return {name: set(imports_of(name, path, known)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            # a package's __init__ importing its own submodules is how a package re-exports
            if node.startswith(nxt + ".") or nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the layers, as `importer -> imported: why`."""
    wrong = []
    for importer, targets in sorted(graph.items()):
        top = importer.split(".")[0]
        for target in sorted(targets):
            if LAYER[target.split(".")[0]] > LAYER[top]:
                wrong.append(f"{importer} -> {target}: {top} may not import from a higher layer")
            if importer.startswith("service.domain") and not (
                target.startswith("service.domain") or target.startswith("schemas")
            ):
                wrong.append(f"{importer} -> {target}: domain rules import only schemas and service.domain")
            if target.startswith("service.routes") and not (
                importer == ROUTE_TABLE or importer.startswith("service.routes")
            ):
                wrong.append(f"{importer} -> {target}: only the app's route table imports route modules")
            if (importer.startswith("service.routes.") and target.startswith("service.routes.")
                    and target != "service.routes"):
                wrong.append(f"{importer} -> {target}: route modules share code through commands/web, not each other")
    return wrong


def test_our_modules_import_no_cycle() -> None:
    assert find_cycle(import_graph(REPO)) is None


def test_imports_follow_the_layers() -> None:
    assert layering_violations(import_graph(REPO)) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "service/a.py": "from service.b import x\n",
        "service/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from service.a import y\n",
    })
    assert find_cycle(import_graph(root)) == ["service.a", "service.b", "service.a"]


@pytest.mark.parametrize(("rel", "text", "why"), [
    ("eventstore/x.py", "from service.app import create_app\n", "higher layer"),
    ("service/domain/x.py", "import asyncpg\nfrom eventstore.append import Appender\n", "domain rules"),
    ("service/identity/x.py", "from service.routes.rooms import ENDPOINTS\n", "route table"),
    ("service/routes/y.py", "from service.routes.x import f\n", "each other"),
])
def test_an_import_against_the_layers_is_reported(tmp_path: Path, rel: str, text: str, why: str) -> None:
    root = _tree(tmp_path, {"eventstore/append.py": "", "service/app.py": "", "service/routes/__init__.py": "",
                            "service/routes/rooms.py": "", "service/routes/x.py": "", rel: text})
    wrong = layering_violations(import_graph(root))
    assert len(wrong) == 1 and why in wrong[0], wrong
