"""Optional human approval before `@champion` moves (Prefect's pause-for-input)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from components.config import PipelineConfig
from tasks.registry import Registration


class PromotionApproval(RunInput):
    """The form a reviewer fills in the Prefect UI to resume the paused flow run."""

    approve: bool = False
    reviewer: str = ""
    comment: str = ""


def request_approval(registration: Registration, config: PipelineConfig) -> str:
    """Pause the flow run until a person approves or rejects the promotion (called from the
    flow, not a task). Returns the approver's name; a rejection or timeout stops promotion."""
    if not (registration.promote and config.registry.require_approval):
        return ""
    get_run_logger().info(
        "waiting for approval to promote %s v%s: %s",
        config.registry.model_name,
        registration.version,
        "; ".join(registration.decision),
    )
    try:
        answer = pause_flow_run(
            wait_for_input=PromotionApproval,
            timeout=config.registry.approval_timeout_minutes * 60,
            key=f"approve-{config.domain}-v{registration.version}",
        )
    except Exception as err:  # prefect raises on timeout
        registration.promote = False
        registration.decision.append(f"approval not given in time: {type(err).__name__}")
        return ""
    if not answer.approve:
        registration.promote = False
        registration.decision.append(
            f"rejected by {answer.reviewer or 'reviewer'}: {answer.comment}"
        )
        return ""
    registration.decision.append(f"approved by {answer.reviewer or 'reviewer'}: {answer.comment}")
    return f"user:{answer.reviewer or 'reviewer'}"
