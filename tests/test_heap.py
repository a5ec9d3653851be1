"""freeze_long_lived: what is alive at start-up leaves the collector's passes, once per process;
garbage made before or after it is still reclaimed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# in a fresh interpreter: freezing is process-wide and acts once
CHILD = """
import atexit, gc, weakref
from components.heap import freeze_long_lived

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

assert gc.get_freeze_count() == 0
kept = [Node() for _ in range(1000)]  # alive at start-up
before = cycle()  # garbage made before the call, still young
exits = atexit._ncallbacks()
frozen = freeze_long_lived()
assert before() is None, "young garbage is collected before the freeze"
assert frozen == gc.get_freeze_count() >= 1000, frozen
assert atexit._ncallbacks() == exits + 1  # the freeze at exit
after = cycle()
assert freeze_long_lived() == frozen  # a second call changes nothing
assert atexit._ncallbacks() == exits + 1
assert after() is not None
gc.collect()
assert after() is None, "garbage made after the freeze is collected"
print("ok", frozen)
"""


def test_freeze_long_lived_freezes_once_and_keeps_collecting_new_garbage():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")
