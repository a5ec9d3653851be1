"""prefect.yaml (`prefect deploy --all`): every deployment's entrypoint loads as a flow and
its parameters are ones that flow takes and validates."""

import yaml
from prefect.flows import load_flow_from_entrypoint

from conftest import REPO
from flows.deployments import CURVE_PARAMETERS, SWEEP_GRID


def test_every_deployment_loads_its_flow_and_takes_its_parameters():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = set()
    for deployment in spec["deployments"]:
        names.add(deployment["name"])
        flow = load_flow_from_entrypoint(str(REPO / deployment["entrypoint"]))
        params = deployment.get("parameters", {})
        assert set(params) <= set(flow.parameters.properties), deployment["name"]
        flow.validate_parameters(params)  # types the flow's signature accepts
        assert deployment["work_pool"]["name"] == "peftops"
    assert names == {"finance-retrain", "healthcare-retrain", "sweep", "curve"}
    sweep = next(d for d in spec["deployments"] if d["name"] == "sweep")
    assert sweep["parameters"]["grid"] == list(SWEEP_GRID)  # the same as `peftops serve`'s
    curve = next(d for d in spec["deployments"] if d["name"] == "curve")
    assert curve["parameters"] == CURVE_PARAMETERS  # the same as `peftops serve`'s
