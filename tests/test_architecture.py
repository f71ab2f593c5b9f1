"""The house's rules, read from the code's own imports (those inside functions included).

- no import cycle between our modules;
- the library (index/) imports neither the application (service/) nor the benchmarks (eval/);
  the application does not import eval/;
- a Milvus module is imported only from inside a stores package (index/stores/, service/stores/);
- every module stays under 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("index", "service", "eval")
STORES_PACKAGES = ("index.stores", "service.stores")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """What an import statement names: ``from package import submodule`` names the submodule."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Our module -> our modules it imports, at any depth of its code (``TYPE_CHECKING`` blocks included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, path.name == "__init__.py", modules):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index_of[node] = low[node] = len(index_of)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index_of:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index_of[successor])
        if low[node] == index_of[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index_of:
            visit(node)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_planted_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_arrows_run_down_only():
    wrong = [
        (source, target)
        for source, targets in import_graph().items()
        for target in targets
        if (_within(source, "index") and not _within(target, "index"))
        or (_within(source, "service") and _within(target, "eval"))
    ]
    assert wrong == []


def test_milvus_is_imported_only_inside_stores_packages():
    def is_milvus(module: str) -> bool:
        return _within(module, "index.stores.milvus") or module.startswith("service.stores.milvus_")

    wrong = [
        (source, target)
        for source, targets in import_graph().items()
        for target in targets
        if is_milvus(target)
        and not any(_within(source, package) for package in STORES_PACKAGES)
        and not _within(source, "eval")  # the Milvus benchmarks measure the stores themselves
    ]
    assert wrong == []


def test_modules_stay_small():
    paths = [p for package in (*PACKAGES, "tests") for p in (REPO / package).rglob("*.py")]
    long = {
        str(p.relative_to(REPO)): n for p in paths if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
