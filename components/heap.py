"""Keep Python's cyclic garbage collector off the objects that live as long as the process.

Once torch, transformers, Great Expectations, Prefect and MLflow are imported, a flow
process holds ~950,000 objects. Every full ("generation 2") collection walks all of them,
0.2-0.6 s each, and the interpreter's collections at exit took ~3 s of a 30 s demo run
(measured with `gc.callbacks`; docs/benchmarks.md, "Garbage collection"). Almost none of it is
garbage: each collection found at most a few thousand objects to free.

`freeze_long_lived()` moves every object alive at that moment into the collector's permanent
generation, which later collections skip (`gc.freeze`), and does the same again at exit.
Objects made afterwards (data frames, batches, tensors' Python wrappers) are collected as
before. The price: cyclic garbage already in the old generation when it is called is never
reclaimed. It therefore acts once per process, at start-up.
"""

from __future__ import annotations

import atexit
import gc

_frozen = False


def freeze_long_lived() -> int:
    """The first call in a process collects the young generations, freezes everything alive
    and registers the same freeze at exit, so that the interpreter's last collections skip
    it; later calls change nothing. Returns how many objects are frozen."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect(1)  # recent garbage (cheap: generations 0 and 1 only)
        gc.freeze()
        atexit.register(gc.freeze)
    return gc.get_freeze_count()
