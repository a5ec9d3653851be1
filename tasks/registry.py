"""Register the model with its lineage and apply the domain's promotion policy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components import registry, tracking
from components.config import PipelineConfig
from components.data import DataVersion
from components.examples import Examples
from components.selection import Selection
from components.training import TrainResult
from tasks.evaluation import Evaluation


@dataclass
class Registration:
    version: str | None = None
    model_uri: str | None = None
    champion_moved: bool = False
    previous_champion: str | None = None
    decision: list[str] = field(default_factory=list)


def lineage_tags(
    config: PipelineConfig,
    data_version: DataVersion,
    selection: Selection,
    trained: TrainResult,
    evaluation: Evaluation,
) -> dict[str, str]:
    """Everything needed to say where a version came from."""
    return {
        **data_version.as_tags(),
        "git_commit": tracking.git_commit() or "unknown",
        "domain": config.domain,
        "base_model": config.model.base_model,
        "config": config.model_dump_json(),
        "validation.success": "true",
        "method": config.method.name,
        "selection.strategy": selection.strategy,
        "selection.modules": json.dumps(selection.target_modules),
        "trainable_params": str(trained.trainable_params),
        "trainable_percent": f"{100 * trained.trainable_fraction:.4f}",
        "test.accuracy": f"{evaluation.metrics['accuracy']:.6f}",
        "test.macro_f1": f"{evaluation.metrics['macro_f1']:.6f}",
    }


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def register_model(
    trained: TrainResult,
    evaluation: Evaluation,
    selection: Selection,
    data_version: DataVersion,
    examples: Examples,
    config: PipelineConfig,
    run_id: str,
) -> Registration:
    """Log the pyfunc model, register a version (`@challenger`), maybe move `@champion`."""
    logger = get_run_logger()
    policy, name = config.registry, config.registry.model_name
    if not policy.enabled:
        return Registration(decision=["registration disabled (registry.enabled=false)"])
    source = registry.log_pyfunc_model(run_id, trained.bundle_dir, examples.test.texts[:3])
    tags = lineage_tags(config, data_version, selection, trained, evaluation)
    version = registry.register_version(name, source, run_id, tags)
    decision = registry.decide_promotion(
        evaluation.metrics, evaluation.baseline, evaluation.champion, policy
    )
    if evaluation.champion_error:
        decision.promote = False
        decision.reasons.append(evaluation.champion_error)
    moved = False
    if decision.promote and policy.promote:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        audit = {
            "promotion.at": when,
            "promotion.by": f"run:{run_id}",
            "promotion.reason": "policy",
        }
        try:
            registry.promote(name, version, evaluation.champion_version, audit)
            moved = True
        except registry.RegistryError as err:
            decision.reasons.append(str(err))
    elif decision.promote:
        decision.reasons.append("promotion disabled (registry.promote=false)")
    client = tracking.client()
    client.set_model_version_tag(name, version, "promotion.decision", "; ".join(decision.reasons))
    tracking.set_tags(run_id, {"registered_version": version, "champion_moved": moved})
    logger.info("registered %s v%s; @champion moved: %s", name, version, moved)
    return Registration(
        version=version,
        model_uri=registry.model_uri(name, version),
        champion_moved=moved,
        previous_champion=evaluation.champion_version,
        decision=decision.reasons,
    )
