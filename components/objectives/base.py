"""The task-type seam: what differs between a classifier and an instruction-tuned causal LM.

Flows and Prefect tasks are task-agnostic: they call the run's `Objective` (chosen by
`config.task`) for every step whose content depends on the task type, and handle logging,
artifacts, registry and policy the same way for all. "Objective" rather than "task" so it
cannot be misread as a Prefect task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd

from components.config import PipelineConfig
from components.selection import Selection
from components.training import TrainResult
from components.validation import ValidationReport

EpochCallback = Callable[[dict], None]


@dataclass
class Baselines:
    """The simple models a fine-tuned one must beat, scored on the test split.

    `metrics` maps a baseline's name (e.g. "baseline", "zero-shot", "few-shot") to its
    metrics; `state` is what later steps reuse (the classifier's probe initialises its head).
    """

    metrics: dict[str, dict]
    seconds: float = 0.0
    state: Any = None
    artifacts: dict[str, Any] = field(default_factory=dict)  # name -> JSON-able data

    def strongest(self, metric: str) -> dict | None:
        """The baseline with the highest `metric` (the one a challenger must beat), its
        name under "name"."""
        scored = [{**m, "name": n} for n, m in self.metrics.items() if metric in m]
        return max(scored, key=lambda m: m[metric]) if scored else None


@dataclass
class Scored:
    """A model's predictions on the test split and their metrics (plain, loggable data)."""

    metrics: dict
    predictions: list = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)  # name -> JSON-able data


@dataclass(frozen=True)
class PyfuncSpec:
    """How a task type's model is logged as an MLflow pyfunc: the models-from-code file,
    its signature and an input example."""

    python_model: Path
    signature: Any
    input_example: Any


class Objective(Protocol):
    """One task type. Every method is plain Python (no Prefect), testable on tiny models."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]  # metrics the promotion policy may compare
    shown: ClassVar[tuple[str, ...]]  # metrics of the summary's and model card's tables

    def validate(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> ValidationReport:
        """Run the task type's Great Expectations suite on the raw splits."""
        ...

    def prepare(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> Any:
        """Validated frames → the examples later steps take."""
        ...

    def preview(self, examples: Any, config: PipelineConfig) -> str | None:
        """Markdown showing how examples become training input (None: nothing to show)."""
        ...

    def fit_baselines(self, examples: Any, config: PipelineConfig) -> Baselines: ...

    def select(self, examples: Any, baselines: Baselines, config: PipelineConfig) -> Selection: ...

    def training_key(self, examples: Any, config: PipelineConfig) -> str: ...

    def train(
        self,
        examples: Any,
        selection: Selection,
        baselines: Baselines,
        config: PipelineConfig,
        workdir: Path,
        on_epoch_end: EpochCallback | None = None,
        manifest: dict | None = None,
    ) -> TrainResult: ...

    def job_inputs(self, examples: Any, baselines: Baselines) -> dict:
        """What `train` reads of the examples and baselines, as JSON-able data (the input file
        of a distributed training job; no pickle)."""
        ...

    def from_job_inputs(self, data: dict) -> tuple[Any, Baselines]:
        """`job_inputs` back into (examples, baselines) for `train` (test split left out)."""
        ...

    def evaluate(self, bundle_dir: Path, examples: Any, config: PipelineConfig) -> Scored: ...

    def score_model(self, model: Any, examples: Any, config: PipelineConfig) -> Scored:
        """Score a loaded registered pyfunc model (the champion) on the same test split."""
        ...

    def metric_fn(self, metric: str, examples: Any) -> Callable[[list, list], float]:
        """`metric` of predictions against references, for the paired bootstrap."""
        ...

    def references(self, examples: Any) -> list: ...

    def pyfunc(self, examples: Any) -> PyfuncSpec: ...

    def save_evidence(self, scored: Scored, examples: Any, folder: Path, title: str) -> list[Path]:
        """Files that show the evaluation (confusion matrix, predictions table)."""
        ...
