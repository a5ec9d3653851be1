"""Deployments of the domain flows: weekly scheduled retraining, one run per domain at a time.

`peftops serve` serves them from this process (`prefect.serve`); `prefect.yaml` defines the
same deployments for a work pool (`prefect deploy --all`).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from components.config import apply_overrides, load_preset
from flows.pipeline import finance, healthcare

# preset -> weekly cron (Mondays, UTC); the assistants run through their domain's flow
SCHEDULES = {
    "finance": "0 3 * * 1",
    "healthcare": "0 4 * * 1",
    "finance-assistant": "0 5 * * 1",
    "healthcare-assistant": "0 6 * * 1",
}
FLOWS = {"finance": finance, "healthcare": healthcare}
DEPLOYED = tuple(SCHEDULES)


def build_deployments(
    schedules: bool = True,
    domains: Sequence[str] = DEPLOYED,
    overrides: Sequence[str] = (),
) -> list:
    """RunnerDeployments for `prefect.serve`, one per preset in `domains`, named
    `<preset>-retrain`; scheduled runs pass force=false (skip when nothing changed);
    `ENQUEUE` makes a second run of a deployment wait for the first.

    `overrides` (`key.path=value`, as `peftops run --set`) are applied to each preset and
    stored as the deployment's default `config`, so scheduled runs and the UI form start from
    them; without overrides a classifier preset uses its flow's own default (the preset), and
    an assistant preset stores itself as the default."""
    limit = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    unknown = sorted(set(domains) - set(SCHEDULES))
    if unknown:
        raise ValueError(f"no deployment for {unknown}; choose from {sorted(SCHEDULES)}")
    out = []
    for preset in domains:
        config = load_preset(preset)
        parameters: dict = {"force": False}
        if overrides or preset != config.domain:
            config = apply_overrides(config, list(overrides))
            parameters["config"] = config.model_dump(mode="json")
        out.append(
            FLOWS[config.domain].to_deployment(
                name=f"{preset}-retrain",
                cron=SCHEDULES[preset] if schedules else None,
                parameters=parameters,
                concurrency_limit=limit,
                tags=["peftops", config.domain, config.task],
                description=f"Scheduled retraining of the {preset} model (skips unchanged inputs).",
            )
        )
    return out


# a small default search (9 combinations); the form edits it
SWEEP_GRID = ("method.r=4,8,16", "training.learning_rate=0.0005,0.001,0.002")


def build_sweep_deployment(preset: str = "finance", overrides: Sequence[str] = ()):
    """The `sweep` deployment: no schedule, started from the UI; its form is typed from the
    flow's signature (config as the pipeline's form, trials and parallel as integers, the
    grid as a list of `key=v1,v2` strings, the space as a JSON mapping)."""
    from flows.sweep import sweep

    config = apply_overrides(load_preset(preset), list(overrides))
    return sweep.to_deployment(
        name="sweep",
        parameters={
            "config": config.model_dump(mode="json"),
            "trials": 6,
            "grid": list(SWEEP_GRID),
            "parallel": 1,
        },
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
        ),
        tags=["peftops", "sweep", config.domain],
        description=f"Optuna sweep of the {preset} recipe; only the best trial is registered.",
    )


# the curve's default points for a deployment: every k the CLI runs, 3 seeds up to k = 8
CURVE_PARAMETERS = {"ks": "1,2,4,8,16,32,all", "seeds": 3, "seeds_up_to": 8}


def build_curve_deployment(preset: str = "finance", overrides: Sequence[str] = ()):
    """The `curve` deployment: no schedule, started from the UI; the form edits the config,
    the k values, seeds, methods and the test/validation caps (typed from the flow's
    signature). Nothing is registered: the curve lands on its MLflow parent run."""
    from flows.curve import curve

    config = apply_overrides(load_preset(preset), list(overrides))
    return curve.to_deployment(
        name="curve",
        parameters={"config": config.model_dump(mode="json"), **CURVE_PARAMETERS},
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
        ),
        tags=["peftops", "curve", config.domain],
        description=f"Data-efficiency curve of the {preset} recipe: probe, PEFT and full "
        "fine-tuning at k labelled examples per class.",
    )
