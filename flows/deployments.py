"""Deployments of the domain flows: weekly scheduled retraining, one run per domain at a time.

`peftops serve` serves them from this process (`prefect.serve`); `prefect.yaml` defines the
same deployments for a work pool (`prefect deploy --all`).
"""

from __future__ import annotations

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.pipeline import finance, healthcare

SCHEDULES = {"finance": "0 3 * * 1", "healthcare": "0 4 * * 1"}  # Mondays, 03:00 / 04:00 UTC


def build_deployments(schedules: bool = True) -> list:
    """RunnerDeployments for `prefect.serve`; scheduled runs pass force=false (skip when
    nothing changed); `ENQUEUE` makes a second run of a domain wait for the first."""
    limit = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    out = []
    for domain, flow in (("finance", finance), ("healthcare", healthcare)):
        out.append(
            flow.to_deployment(
                name=f"{domain}-retrain",
                cron=SCHEDULES[domain] if schedules else None,
                parameters={"force": False},
                concurrency_limit=limit,
                tags=["peftops", domain],
                description=f"Scheduled retraining of the {domain} model (skips unchanged inputs).",
            )
        )
    return out
