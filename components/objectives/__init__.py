"""Task types behind one interface (`Objective`): classification and generation."""

from __future__ import annotations

from components.config import PipelineConfig
from components.objectives.base import Baselines, Objective, PyfuncSpec, Scored


def objective_for(config: PipelineConfig | str) -> Objective:
    """The objective of `config.task` (or of a task name)."""
    task = config if isinstance(config, str) else config.task
    if task == "classification":
        from components.objectives.classification import Classification

        return Classification()
    if task == "generation":
        from components.objectives.generation import Generation

        return Generation()
    raise ValueError(f"unknown task type {task!r}: choose classification or generation")


__all__ = ["Baselines", "Objective", "PyfuncSpec", "Scored", "objective_for"]
