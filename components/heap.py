"""Skip the garbage collector's passes over the whole heap when the process exits.

Once torch, transformers, Great Expectations, Prefect and MLflow are imported, a flow
process holds ~950,000 objects. When the interpreter exits it collects them again: in a
quick demo flow the process took 3.3 s from its last atexit handler to its end, the same
components in a plain script 2.5 s; with the heap frozen first, 0.24-0.35 s
(docs/benchmarks.md, "Garbage collection").

`skip_exit_collection()` registers `gc.freeze` as an atexit handler, so those last passes
skip every object alive at exit. Atexit handlers (Prefect's log and event workers drain
before them), `weakref.finalize` callbacks and reference-count frees all still run. What
is skipped is finalizing cyclic garbage that is left at exit: an object in a reference cycle
whose `__del__` would flush something (an unclosed buffered file, say) is not finalized.

Freezing when the flow starts, too, was measured (0.7 s fewer collections in a quick
flow) and not kept: it would also freeze cyclic garbage already in the oldest generation
for good, which in a process that runs flows one after another (tests, a notebook) can be
a whole dead model.
"""

from __future__ import annotations

import atexit
import gc
import threading

_lock = threading.Lock()
_registered = False


def skip_exit_collection() -> bool:
    """Freeze the heap when this process exits. Once per process (flows may start
    concurrently): True when this call registered it, False when it already was."""
    global _registered
    with _lock:
        if _registered:
            return False
        atexit.register(gc.freeze)
        _registered = True
        return True
