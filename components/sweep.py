"""Search spaces for `peftops sweep` and their mapping to Optuna (plain Python, no Prefect).

A space maps dotted config keys to either a list of choices (categorical) or a range
`{low, high, log}` (float, or int when both bounds are ints). `--grid key=v1,v2` gives
choices, parsed like `--set` values. A space of choices only is searched exhaustively
(every combination once, in a seeded order); one with ranges by a seeded TPE sampler. Both prune
hopeless trials with a MedianPruner on the per-epoch validation loss, compared at equal
fractions of each trial's schedule (`schedule_step`).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError, PipelineConfig, apply_overrides

EXTRA_HINT = 'Optuna is not installed: pip install "peftops[sweep]"'


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as err:  # an optional extra: say which
        raise ImportError(EXTRA_HINT) from err
    return optuna


@dataclass(frozen=True)
class Param:
    """One searched key: `choices` (categorical, as `--set` value strings) or a range."""

    key: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def suggest(self, trial: Any) -> str:
        """The trial's value as a `--set` value string."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return str(trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log))
        return repr(trial.suggest_float(self.key, self.low, self.high, log=self.log))


def _as_text(value: Any) -> str:
    # choices stay strings for Optuna; JSON is YAML, so apply_overrides parses them back
    return value if isinstance(value, str) else json.dumps(value)


def parse_grid(items: list[str]) -> dict[str, Param]:
    """`key.path=v1,v2,...` options as categorical params (a key may not repeat)."""
    space: dict[str, Param] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not sep or not key or not values:
            raise ConfigError(f"--grid {item!r} is not of the form key.path=v1,v2")
        if key in space:
            raise ConfigError(f"--grid key {key!r} given twice")
        space[key] = Param(key, choices=tuple(values))
    return space


def parse_space(data: dict[str, Any]) -> dict[str, Param]:
    """A YAML search space: `key: [choices]` or `key: {low, high, log}`."""
    if not isinstance(data, dict) or not data:
        raise ConfigError("a search space is a non-empty mapping of config keys")
    space: dict[str, Param] = {}
    for key, spec in data.items():
        if isinstance(spec, list) and spec:
            space[key] = Param(key, choices=tuple(_as_text(v) for v in spec))
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec):
            low, high = spec["low"], spec["high"]
            if not low < high:
                raise ConfigError(f"search space {key!r}: low must be below high")
            integer = isinstance(low, int) and isinstance(high, int)
            space[key] = Param(key, low=low, high=high, log=bool(spec.get("log")), integer=integer)
        else:
            raise ConfigError(f"search space {key!r}: give a list of choices or {{low, high}}")
    return space


def load_space(path: Path) -> dict[str, Param]:
    return parse_space(yaml.safe_load(Path(path).read_text()))


def check_keys(config: PipelineConfig, space: dict[str, Param]) -> None:
    """Fail before any trial on a key the config does not have (values are checked per
    trial: a bad combination fails its trial, not the sweep)."""
    for param in space.values():
        value = param.choices[0] if param.choices else str(param.low)
        try:
            apply_overrides(config, [f"{param.key}={value}"])
        except ConfigError as err:
            if "unknown key" in str(err):
                raise


def _pruner() -> Any:
    return _optuna().pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def schedule_step(epoch: int, epochs: int) -> int:
    """The step a trial reports its epoch's validation loss at: the percent of its own
    schedule done. Optuna's pruners compare trials at equal steps only, so a trial is judged
    against trials at the same point of their warm-up and decay (a 3-epoch trial's first
    epoch is not held against a 1-epoch trial's finished schedule)."""
    return round(100 * epoch / max(epochs, 1))


def _storage(path: Path) -> Any:
    """Optuna's journal storage in a file: several processes (a Ray or Dask task runner's
    workers on a shared volume, or threads) report to the same study through it."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


@dataclass(frozen=True)
class TrialRef:
    """A trial as a task can receive it in any process: the study's journal file, its name
    and the trial's id (an Optuna `Trial` object is bound to its process's storage)."""

    storage: str
    study: str
    trial_id: int

    def trial(self) -> Any:
        optuna = _optuna()
        study = optuna.load_study(
            study_name=self.study, storage=_storage(Path(self.storage)), pruner=_pruner()
        )
        return optuna.trial.Trial(study, self.trial_id)


def trial_ref(study: Any, trial: Any, storage: Path) -> TrialRef:
    # Trial has no public id accessor; `_trial_id` is what Optuna's own Trial(study, id) takes
    return TrialRef(str(storage), study.study_name, trial._trial_id)


def create_study(space: dict[str, Param], seed: int, trials: int, storage: Path) -> Any:
    """A maximising study with a seeded TPE sampler and median pruning (after two complete
    trials, from the first epoch), kept in the journal file `storage`. A choices-only space
    is searched exhaustively instead: its combinations (in a seeded order, up to `trials`)
    are enqueued, which works with ask/tell where GridSampler's end-of-grid `study.stop()`
    does not."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=_pruner(),
        storage=_storage(storage),
        study_name=f"sweep-{storage.stem}",
    )
    if grid_size(space):
        combos = list(itertools.product(*(p.choices for p in space.values())))
        random.Random(seed).shuffle(combos)
        for combo in combos[:trials]:
            study.enqueue_trial(dict(zip(space, combo, strict=True)))
    return study


def grid_size(space: dict[str, Param]) -> int | None:
    """How many distinct trials a choices-only space has (None: ranges, unbounded)."""
    size = 1
    for p in space.values():
        if not p.choices:
            return None
        size *= len(p.choices)
    return size


def trial_overrides(trial: Any, space: dict[str, Param]) -> list[str]:
    return [f"{key}={param.suggest(trial)}" for key, param in space.items()]


def tell(study: Any, trial: Any, row: dict) -> None:
    """Report a finished trial's row (state COMPLETE, FAIL or PRUNED) to the study."""
    state = getattr(_optuna().trial.TrialState, row["state"])
    study.tell(trial, row.get("value") if row["state"] == "COMPLETE" else None, state)


def counts(rows: list[dict]) -> dict[str, int]:
    """The sweep's trial counts by outcome, as parent-run metrics."""
    return {
        "sweep.complete": sum(r["state"] == "COMPLETE" for r in rows),
        "sweep.failed": sum(r["state"] == "FAIL" for r in rows),
        "sweep.pruned": sum(r["state"] == "PRUNED" for r in rows),
    }


def validation_score(history: list[dict], best_epoch: int, metric: str) -> float:
    """The validation score of the epoch training kept, on the policy's metric (minus the
    validation loss where the task type has no such validation metric)."""
    rows = [h for h in history if h.get("epoch") == best_epoch] or history[-1:]
    if not rows:
        raise ValueError("training recorded no epoch")
    row = rows[0]
    return float(row[f"val_{metric}"]) if f"val_{metric}" in row else -float(row["val_loss"])


def save_comparison_plot(rows: list[dict], path: Path, metric: str) -> Path:
    """Validation metric against trainable parameters and training time, one marker colour
    per method; failed and pruned trials are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("state") == "COMPLETE"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for method in sorted({r["method"] for r in done}):
        mine = [r for r in done if r["method"] == method]
        score = [r["value"] for r in mine]
        axes[0].scatter([r["trainable_params"] for r in mine], score, label=method)
        axes[1].scatter([r["train_seconds"] for r in mine], score, label=method)
    axes[0].set_xscale("log")
    axes[0].xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels overlap
    axes[0].set_xlabel("trainable parameters")
    axes[1].set_xlabel("training time (s)")
    axes[0].set_ylabel(f"validation {metric}")
    for ax in axes:
        ax.grid(alpha=0.3)
    if done:
        axes[1].legend(title="method")
    fig.suptitle(f"sweep: {len(done)} of {len(rows)} trials complete")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# Trials that change only the recipe (method, rank, learning rate, ...) share the base model
# and data, hence the baselines (the frozen-embedding probe embeds every training and test
# text): fit them once per sweep, not once per trial. Keyed on what they depend on; the lock
# makes concurrent trials wait for the first fit instead of repeating it.
_BASELINES: OrderedDict[tuple, Any] = OrderedDict()
_BASELINES_LOCK = threading.Lock()


def _shared_baselines(objective: Any, examples: Any, config: PipelineConfig, frames: dict) -> Any:
    key = (
        id(frames),  # one sweep's data (trials share the loaded splits)
        config.task,
        config.data.model_dump_json(),
        config.model.model_dump_json(),
        config.generation.model_dump_json(),
        config.evaluation.model_dump_json(),
    )
    with _BASELINES_LOCK:
        if key not in _BASELINES:
            # the entry holds `frames` so its id cannot be reused by other data while cached
            _BASELINES[key] = (frames, objective.fit_baselines(examples, config))
            while len(_BASELINES) > 4:  # a long-lived worker runs many sweeps
                _BASELINES.popitem(last=False)
        return _BASELINES[key][1]


def train_candidate(config: PipelineConfig, frames: dict, on_epoch_end: Any = None) -> Any:
    """One trial's training as the pipeline does it (prepare, baselines, selection, train),
    checkpointed under the same `.peftops/runs/<key>/` folder, so the pipeline run of the
    winning config later resumes from it instead of training again."""
    from components import tracking
    from components.objectives import objective_for

    objective = objective_for(config)
    examples = objective.prepare(frames, config)
    baselines = _shared_baselines(objective, examples, config, frames)
    selection = objective.select(examples, baselines, config)
    key = objective.training_key(examples, config)
    workdir = tracking.project_dir() / ".peftops" / "runs" / key
    return objective.train(
        examples, selection, baselines, config, workdir=workdir, on_epoch_end=on_epoch_end
    )


def format_trials(rows: list[dict], metric: str) -> str:
    """The trials as a plain-text table, best first (failed and pruned last)."""
    order = sorted(rows, key=lambda r: (r["state"] != "COMPLETE", -r.get("value", 0.0)))
    lines = [f"{'trial':>5}  {'state':8}  {'val ' + metric:>12}  {'trainable %':>11}  config"]
    for r in order:
        value = f"{r['value']:.4f}" if "value" in r else "-"
        share = f"{r['trainable_percent']:.3f}" if "trainable_percent" in r else "-"
        config = " ".join(r["overrides"])
        lines.append(f"{r['number']:>5}  {r['state']:8}  {value:>12}  {share:>11}  {config}")
    return "\n".join(lines)
