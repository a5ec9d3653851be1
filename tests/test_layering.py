"""flows → tasks → components: components never import prefect."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _component_modules(root: Path = REPO / "components") -> dict[str, Path]:
    """Dotted name → file of every module under `root` (a package by its __init__)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_components_do_not_import_prefect_or_upper_layers():
    offenders = {
        str(p.relative_to(REPO)): sorted(_imports(p) & {"prefect", "tasks", "flows"})
        for p in (REPO / "components").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_tasks_do_not_import_flows():
    offenders = [p.name for p in (REPO / "tasks").rglob("*.py") if "flows" in _imports(p)]
    assert offenders == []


def test_importing_every_component_loads_no_prefect():
    """Transitively too: a fresh interpreter imports all components, prefect stays unloaded."""
    modules = sorted(
        m for m in _component_modules() if m not in ("components", "components.mlflow_model")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'prefect'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


# Import cycles tolerated for now, each as the set of modules in the cycle.
KNOWN_CYCLES: list[set[str]] = []


def _component_import_graph(root: Path = REPO / "components") -> dict[str, set[str]]:
    """Module → the `components` modules it imports, anywhere in it (functions and
    TYPE_CHECKING blocks too). Importing `a.b.c` also runs package `a.b`'s __init__, so it
    counts as importing `a.b` as well, except from inside `a.b` (whose modules are imported
    while the package itself loads)."""
    modules = _component_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets.add(base)
                targets |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
        edges = set()
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                imported = ".".join(parts[:i])
                if imported in modules and imported != name and not name.startswith(imported + "."):
                    edges.add(imported)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_sees_package_inits_and_function_imports(tmp_path):
    files = {
        "__init__.py": "",
        "low.py": "def f():\n    from components.sub import thing\n",
        "sub/__init__.py": "from components.sub.mod import thing\n",
        "sub/mod.py": "from components import low\nthing = low\n",
        "sub/other.py": "from .mod import thing\n",
    }
    for name, text in files.items():
        (tmp_path / "components" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "components" / name).write_text(text)
    graph = _component_import_graph(tmp_path / "components")
    assert graph["components.low"] == {"components.sub"}  # a package import runs its __init__
    assert graph["components.sub.other"] == {"components.sub.mod"}  # not its own package
    assert _cycles(graph) == [{"components.low", "components.sub", "components.sub.mod"}]


def test_components_have_no_import_cycles():
    cycles = [c for c in _cycles(_component_import_graph()) if c not in KNOWN_CYCLES]
    assert cycles == [], "import cycles among components: " + "; ".join(
        " <-> ".join(sorted(c)) for c in cycles
    )
