"""The generic fine-tuning flow and the domain flows, which are presets of it."""

from __future__ import annotations

from prefect import flow

from components.config import PipelineConfig, load_preset
from components.heap import skip_exit_collection
from components.report import RunSummary
from tasks.approval import request_approval
from tasks.behaviour import check_behaviour
from tasks.data import load_data, validate_data
from tasks.evaluation import evaluate
from tasks.export import export_champion
from tasks.registry import (
    Registration,
    check_for_changes,
    promote_model,
    register_model,
    withdraw_registration,
)
from tasks.report import publish_model_card, skipped_summary
from tasks.tracking import end_mlflow_run, start_mlflow_run
from tasks.training import fit_baseline, select_trainable_parameters, train_adapter

FINANCE_DEFAULTS = load_preset("finance")
HEALTHCARE_DEFAULTS = load_preset("healthcare")


def run_pipeline(config: PipelineConfig, force: bool = True) -> RunSummary:
    """validate → baseline → select → train → evaluate → behaviour → register → promote (→
    export, with `export.enabled`), in one MLflow run. Unless `force`, a run whose data, base
    model and config equal `@champion`'s stops early as skipped."""
    skip_exit_collection()  # the interpreter's exit would spend ~3 s collecting the heap
    run_id = start_mlflow_run(config)
    registration: Registration | None = None
    try:
        raw = load_data(config, run_id)
        skip_reason = check_for_changes(config, raw.version, force, run_id)
        if skip_reason:
            end_mlflow_run(run_id, "FINISHED")
            return skipped_summary(config, run_id, skip_reason)
        examples = validate_data(raw, config, run_id)
        baseline = fit_baseline(examples, config, run_id)
        selection = select_trainable_parameters(examples, baseline, config, run_id)
        trained = train_adapter(examples, selection, baseline, config, run_id)
        evaluation = evaluate(trained, examples, baseline, config, run_id)
        behaviour = check_behaviour(trained, examples, config, run_id)
        registration = register_model(
            trained, evaluation, selection, raw.version, examples, config, run_id, behaviour
        )
        approver = request_approval(registration, config)
        registration = promote_model(registration, config, run_id, approver)
        summary = publish_model_card(
            config, run_id, raw.version, selection, trained, evaluation, registration, behaviour
        )
        export_champion(registration, config, run_id)  # export.enabled: the edge model
        end_mlflow_run(run_id, "FINISHED")
    except BaseException as err:
        if registration is not None and isinstance(err, Exception):  # not on Ctrl-C
            # a failed run moves no alias: undo the registration (its own failure is
            # recorded on its task run and must not hide `err`)
            withdraw_registration(registration, config, run_id, return_state=True)
        end_mlflow_run(run_id, "FAILED", f"{type(err).__name__}: {err}")
        raise
    return summary


@flow(name="peftops-finetune", log_prints=True)
def finetune(config: PipelineConfig, force: bool = True) -> RunSummary:
    """Fine-tune on any dataset: the generic pipeline with a full config."""
    return run_pipeline(config, force)


def _domain(config: PipelineConfig, domain: str) -> PipelineConfig:
    if config.domain != domain:
        raise ValueError(f"the {domain} flow needs config.domain={domain!r}, got {config.domain!r}")
    return config


@flow(name="peftops-finance", log_prints=True)
def finance(config: PipelineConfig = FINANCE_DEFAULTS, force: bool = True) -> RunSummary:
    """Finance: banking-support intents, promoted on macro-F1 over champion and baseline.
    `force=false` (scheduled retraining) skips the run when nothing changed."""
    return run_pipeline(_domain(config, "finance"), force)


@flow(name="peftops-healthcare", log_prints=True)
def healthcare(config: PipelineConfig = HEALTHCARE_DEFAULTS, force: bool = True) -> RunSummary:
    """Healthcare: patient-message triage, PHI-checked data, a per-class recall floor.
    `force=false` (scheduled retraining) skips the run when nothing changed."""
    return run_pipeline(_domain(config, "healthcare"), force)


FLOWS = {"finance": finance, "healthcare": healthcare, "custom": finetune}
