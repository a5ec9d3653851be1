"""The benchmark's child processes: `plain CONFIG_JSON HOME` (the pipeline without Prefect or
MLflow), `memory KIND EXAMPLES THREADS MODEL` (one peak-RSS side) and `genmemory METHOD
TOKENS SETTING THREADS MODEL` (one causal-LM peak-RSS side)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from peftops.bench.speed.memory import memory_child
from peftops.bench.speed.orchestration import plain_pipeline


def _main(argv: list[str]) -> None:
    """Run the child named by `argv[0]` and print its result as one JSON line."""
    import warnings

    warnings.filterwarnings("ignore")
    if argv[0] == "plain":
        from components.config import PipelineConfig

        config = PipelineConfig.model_validate_json(Path(argv[1]).read_text())
        print(json.dumps(plain_pipeline(config, Path(argv[2]))))
    elif argv[0] == "genmemory":
        from peftops.bench.speed.generative import gen_memory_child

        print(json.dumps(gen_memory_child(argv[1], int(argv[2]), argv[3], int(argv[4]), argv[5])))
    elif argv[0] == "memory":
        print(json.dumps(memory_child(argv[1], int(argv[2]), int(argv[3]), argv[4])))
    else:
        raise SystemExit(f"unknown child {argv[0]!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
