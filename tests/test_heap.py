"""skip_exit_collection: the heap is frozen at exit, so the interpreter's last collections skip
it; registered once per process; nothing changes while the process runs. And the flow calls
it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# in a fresh interpreter: atexit handlers are process-wide
CHILD = """
import atexit, gc, weakref

# registered first, so it runs last: after skip_exit_collection's handler
atexit.register(lambda: print("frozen at exit", gc.get_freeze_count()))

from components.heap import skip_exit_collection

class Node:
    pass

kept = [Node() for _ in range(1000)]
exits = atexit._ncallbacks()
assert skip_exit_collection() is True
assert skip_exit_collection() is False  # once per process
assert atexit._ncallbacks() == exits + 1
assert gc.get_freeze_count() == 0  # nothing is frozen while the process runs

a, b = Node(), Node()  # cyclic garbage made afterwards is still collected
a.other, b.other = b, a
ref = weakref.ref(a)
del a, b
gc.collect()
assert ref() is None
print("ok")
"""


def test_skip_exit_collection_freezes_the_heap_at_exit_only():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "ok"
    frozen = int(lines[1].removeprefix("frozen at exit "))
    assert frozen >= 1000  # at least the Nodes kept alive to the end


def test_the_pipeline_registers_it_before_its_first_task():
    source = (REPO / "flows" / "pipeline.py").read_text()
    body = next(
        node.body
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "run_pipeline"
    )
    first = body[1]  # after the docstring
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
    assert first.value.func.id == "skip_exit_collection"
