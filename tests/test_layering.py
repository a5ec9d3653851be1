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
        f"components.{p.stem}"
        for p in (REPO / "components").glob("*.py")
        if p.stem not in ("__init__", "mlflow_model")
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
