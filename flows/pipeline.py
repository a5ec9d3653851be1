"""The generic fine-tuning flow and the domain flows, which are presets of it."""

from __future__ import annotations

from prefect import flow

from components.config import PipelineConfig, load_preset
from components.report import RunSummary
from tasks.data import load_data, validate_data
from tasks.evaluation import evaluate
from tasks.registry import register_model
from tasks.report import publish_model_card
from tasks.tracking import end_mlflow_run, start_mlflow_run
from tasks.training import fit_baseline, select_trainable_parameters, train_adapter

FINANCE_DEFAULTS = load_preset("finance")
HEALTHCARE_DEFAULTS = load_preset("healthcare")


def run_pipeline(config: PipelineConfig) -> RunSummary:
    """validate → baseline → select → train → evaluate → register, in one MLflow run."""
    run_id = start_mlflow_run(config)
    try:
        raw = load_data(config, run_id)
        examples = validate_data(raw, config, run_id)
        baseline = fit_baseline(examples, config, run_id)
        selection = select_trainable_parameters(examples, baseline, config, run_id)
        trained = train_adapter(examples, selection, baseline, config, run_id)
        evaluation = evaluate(trained, examples, baseline, config, run_id)
        registration = register_model(
            trained, evaluation, selection, raw.version, examples, config, run_id
        )
        summary = publish_model_card(
            config, run_id, raw.version, selection, trained, evaluation, registration
        )
    except BaseException as err:
        end_mlflow_run(run_id, "FAILED", f"{type(err).__name__}: {err}")
        raise
    end_mlflow_run(run_id, "FINISHED")
    return summary


@flow(name="peftops-finetune", log_prints=True)
def finetune(config: PipelineConfig) -> RunSummary:
    """Fine-tune on any dataset: the generic pipeline with a full config."""
    return run_pipeline(config)


def _domain(config: PipelineConfig, domain: str) -> PipelineConfig:
    if config.domain != domain:
        raise ValueError(f"the {domain} flow needs config.domain={domain!r}, got {config.domain!r}")
    return config


@flow(name="peftops-finance", log_prints=True)
def finance(config: PipelineConfig = FINANCE_DEFAULTS) -> RunSummary:
    """Finance: banking-support intents, promoted on macro-F1 over champion and baseline."""
    return run_pipeline(_domain(config, "finance"))


@flow(name="peftops-healthcare", log_prints=True)
def healthcare(config: PipelineConfig = HEALTHCARE_DEFAULTS) -> RunSummary:
    """Healthcare: patient-message triage, PHI-checked data, a per-class recall floor."""
    return run_pipeline(_domain(config, "healthcare"))


FLOWS = {"finance": finance, "healthcare": healthcare, "custom": finetune}
