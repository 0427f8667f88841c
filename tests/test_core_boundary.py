"""crmcore is the product and is usable without a UI: it must never import streamlit."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "crmcore"


def test_crmcore_never_imports_streamlit():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno}" for name in names if name.split(".")[0] == "streamlit"]
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """crmcore module → the crmcore modules it imports, at the top or inside a function alike.

    `from crmcore.x import y` counts as importing crmcore.x.y when y is a module, else crmcore.x; importing
    a module also runs its package's __init__, so a module depends on the packages above it too.
    """
    paths = {_module_name(p): p for p in CORE.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in paths else node.module for alias in node.names}
        targets = set()
        for target in found:
            parts = target.split(".")
            targets |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in paths}
        package = name.rsplit(".", 1)[0] if name.count(".") > 1 else None
        graph[name] = {t for t in targets if t != name and t != package}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_crmcore_has_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_the_old_rollups_dashboard_circle():
    graph = import_graph()
    assert "crmcore.kpis" in graph["crmcore.library.activity"]  # the rollups bring the dashboard up to date
    graph["crmcore.kpis.figures"] = graph["crmcore.kpis.figures"] | {"crmcore.library.activity"}  # as it once was
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and {"crmcore.library.activity", "crmcore.kpis", "crmcore.kpis.figures"} <= set(cycle)


def test_the_project_folder_is_the_one_holding_app_py():
    from crmcore.admin import config

    assert (config.ROOT / "app.py").is_file() and config.DATA_DIR == config.ROOT / "data"
