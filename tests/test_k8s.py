"""The Kubernetes work-pool job template (infra/k8s/base-job-template.json): accepted by
`prefect work-pool create --type kubernetes` against a real Prefect server, and rendered by the
real Kubernetes worker (prefect-kubernetes) into a Job that asks for GPUs and takes the service
URLs and credentials from a Secret, not from the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

from conftest import REPO

TEMPLATE = REPO / "infra" / "k8s" / "base-job-template.json"
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _template() -> dict:
    return json.loads(TEMPLATE.read_text())


def _placeholders(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_placeholders(v) for v in node.values()), set())
    if isinstance(node, list):
        return set().union(*(_placeholders(v) for v in node), set())
    return set(PLACEHOLDER.findall(node)) if isinstance(node, str) else set()


def test_template_asks_for_gpus_and_reads_services_from_a_secret():
    template = _template()
    variables = template["variables"]["properties"]
    job = template["job_configuration"]["job_manifest"]
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert variables["gpu_count"]["default"] >= 1
    assert container["envFrom"] == [{"secretRef": {"name": "{{ services_secret }}"}}]
    # every placeholder is a variable of the pool (the UI's form for job variables)
    assert _placeholders(template["job_configuration"]) <= set(variables)
    # nothing secret, and no service address, is baked into the template
    baked = set(variables["env"]["default"])
    assert not [k for k in baked if re.search(r"PASSWORD|SECRET|_TOKEN$|AUTH|_KEY", k)]
    assert not baked & {"PREFECT_API_URL", "MLFLOW_TRACKING_URI"}
    assert not re.search(r"://[^/\s\"]+:[^/\s\"]+@", TEMPLATE.read_text())  # user:pass@host


@pytest.mark.usefixtures("prefect_harness")
def test_prefect_accepts_the_template_and_the_kubernetes_worker_renders_a_gpu_job(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.asyncutils import run_coro_as_sync

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path)}
    prefect_bin = str(Path(sys.executable).parent / "prefect")
    pool = f"peftops-gpu-{uuid4().hex[:8]}"
    cmd = [prefect_bin, "work-pool", "create", pool, "--type", "kubernetes"]
    created = subprocess.run(
        [*cmd, "--base-job-template", str(TEMPLATE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    with get_client(sync_client=True) as client:
        stored = client.read_work_pool(pool)
    assert stored.type == "kubernetes"
    assert stored.base_job_template == _template()

    pytest.importorskip("prefect_kubernetes", reason="the Kubernetes worker (dev dependency)")
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    config = run_coro_as_sync(
        KubernetesWorkerJobConfiguration.from_template_and_values(
            stored.base_job_template,
            {"image": "registry.example.com/peftops-worker:cuda", "gpu_count": 2},
        )
    )
    config.prepare_for_flow_run(FlowRun(flow_id=uuid4(), name="finance-retrain-1"))
    manifest = config.job_manifest
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["memory"] == "16Gi"
    assert container["envFrom"] == [{"secretRef": {"name": "peftops-services"}}]
    env_names = {item["name"] for item in container["env"]}
    assert {"HF_HUB_OFFLINE", "PEFTOPS_HOME", "PREFECT__FLOW_RUN_ID"} <= env_names
    assert container["image"] == "registry.example.com/peftops-worker:cuda"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert manifest["metadata"]["namespace"] == "peftops"
    assert not _placeholders(manifest)  # every placeholder was filled or dropped


def test_the_ray_cluster_manifest_has_gpu_workers_token_auth_and_shared_storage():
    import yaml

    spec = yaml.safe_load((REPO / "infra" / "k8s" / "raycluster.yaml").read_text())
    assert spec["apiVersion"] == "ray.io/v1" and spec["kind"] == "RayCluster"
    pinned = re.search(r'"ray\[train\]>=([\d.]+),', (REPO / "pyproject.toml").read_text())
    assert spec["spec"]["rayVersion"].startswith(pinned.group(1))  # the ray extra's version
    assert spec["spec"]["authOptions"]["mode"] == "token"
    head = spec["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the head schedules, workers train
    (gpu,) = spec["spec"]["workerGroupSpecs"]
    pods = [head["template"]["spec"], gpu["template"]["spec"]]
    worker = gpu["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    for pod in pods:
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert env["PEFTOPS_HOME"].startswith(mounts["shared"] + "/")  # checkpoints shared
        claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
        assert claims["shared"] == {"claimName": "peftops-shared"}
        assert container["envFrom"] == [{"secretRef": {"name": "peftops-services"}}]
    text = (REPO / "infra" / "k8s" / "raycluster.yaml").read_text()
    assert not re.search(r"PASSWORD|TOKEN\s*:|://[^/\s]+:[^/\s]+@", text)  # no secret inside
