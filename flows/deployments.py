"""Deployments of the domain flows: weekly scheduled retraining, one run per domain at a time.

`peftops serve` serves them from this process (`prefect.serve`); `prefect.yaml` defines the
same deployments for a work pool (`prefect deploy --all`).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from components.config import apply_overrides, load_preset
from flows.pipeline import finance, healthcare

SCHEDULES = {"finance": "0 3 * * 1", "healthcare": "0 4 * * 1"}  # Mondays, 03:00 / 04:00 UTC
FLOWS = {"finance": finance, "healthcare": healthcare}


def build_deployments(
    schedules: bool = True,
    domains: Sequence[str] = ("finance", "healthcare"),
    overrides: Sequence[str] = (),
) -> list:
    """RunnerDeployments for `prefect.serve`; scheduled runs pass force=false (skip when
    nothing changed); `ENQUEUE` makes a second run of a domain wait for the first.

    `overrides` (`key.path=value`, as `peftops run --set`) are applied to each domain's preset
    and stored as the deployment's default `config`, so scheduled runs and the UI form start
    from them; without overrides the flow's own default (the preset) is used."""
    limit = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    unknown = sorted(set(domains) - set(FLOWS))
    if unknown:
        raise ValueError(f"no deployment for {unknown}; choose from {sorted(FLOWS)}")
    out = []
    for domain in domains:
        parameters: dict = {"force": False}
        if overrides:
            config = apply_overrides(load_preset(domain), list(overrides))
            parameters["config"] = config.model_dump(mode="json")
        out.append(
            FLOWS[domain].to_deployment(
                name=f"{domain}-retrain",
                cron=SCHEDULES[domain] if schedules else None,
                parameters=parameters,
                concurrency_limit=limit,
                tags=["peftops", domain],
                description=f"Scheduled retraining of the {domain} model (skips unchanged inputs).",
            )
        )
    return out
