"""The optional last step of a domain flow: ship an edge model (ONNX) with a new champion."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from components import tracking
from components.config import PipelineConfig
from components.export import ExportGateError, export_version, format_report
from tasks.registry import Registration


@task(cache_policy=NO_CACHE, retries=0)  # a failed gate fails again on the same model
def export_champion(
    registration: Registration, config: PipelineConfig, run_id: str
) -> dict[str, Any] | None:
    """With `export.enabled`, export the version this run made `@champion` and register
    `<name>-onnx` if the gate passes. Returns the gate's figures (None when not exported).

    The trained model is registered and promoted by then: a failed gate or export is
    recorded (run tags, metrics, a Prefect artifact) and logged as a warning, and leaves the
    run and its registration as they are."""
    logger = get_run_logger()
    if not config.export.enabled:
        return None
    if config.task != "classification":
        logger.warning("export.enabled: only classifiers are exported (task=%s)", config.task)
        tracking.set_tags(run_id, {"export.status": f"skipped: task {config.task}"})
        return None
    if registration.version is None or not registration.champion_moved:
        tracking.set_tags(run_id, {"export.status": "skipped: @champion did not move"})
        logger.info("export skipped: this run did not move @champion")
        return None
    name = config.registry.model_name
    try:
        result = export_version(name, registration.version, config.export)
        status = f"registered {result.registered_name} v{result.registered_version}"
    except ExportGateError as err:
        result, status = err.result, "gate failed: nothing registered"
    except Exception as err:  # an optional step: it must not undo the run's registration
        status = f"failed: {type(err).__name__}: {err}"
        tracking.set_tags(run_id, {"export.status": status[:5000]})
        logger.warning("export of %s v%s %s", name, registration.version, status)
        return None
    report = format_report(result)
    tracking.set_tags(run_id, {"export.status": status, "export.gate": "; ".join(result.reasons)})
    tracking.log_metrics(run_id, result.figures())
    tracking.log_text(run_id, report, "export/gate.txt")
    create_markdown_artifact(
        f"# {config.domain}: edge export\n\n```text\n{report}\n```",
        key=f"{config.domain}-export",
        description=status,
    )
    (logger.info if result.passed else logger.warning)("export: %s\n%s", status, report)
    return result.to_dict()
