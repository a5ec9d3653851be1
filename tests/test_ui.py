"""Triggering from the UI, end to end: `peftops server` (what `make ui` runs: a Prefect server
with its UI, the MLflow UI on the project's SQLite store, and the served finance deployment)
driven by a real headless Chromium (Debian's `chromium` package) through Playwright.

The browser opens the finance deployment's custom-run form, checks that the config is a form
with descriptions, a dropdown and bounds, starts a run with changed parameters, and the test
then follows the run through the Prefect API and the new version through MLflow.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest
import requests

from components.config import MethodName, TrainingConfig
from conftest import DATA

# imported here, not first inside CliRunner below: Prefect binds its console log handler to
# the stderr of whoever imports it first, and CliRunner's stream is closed after `invoke`
from flows.deployments import build_deployments
from peftops.server import free_port, port_is_free, tail

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAME = "peftops-finance"
READY = "Ctrl-C stops all of it."


@pytest.fixture()
def chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
    pytest.skip("needs Debian's chromium package (apt-get install chromium); CI installs it")


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture()
def local_stack(tmp_path, tiny_bert):
    """`peftops server` in a subprocess: its own project folder, Prefect home and ports;
    the finance deployment fast (tiny model, 160 training examples, 1 epoch by default)."""
    prefect_port, mlflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "PEFTOPS_HOME": str(tmp_path),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # pick the UI's run up sooner (default 10 s)
    }
    for name in ("PREFECT_API_URL", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)
    peftops = str(Path(sys.executable).parent / "peftops")
    cmd = [
        peftops,
        "server",
        "--prefect-port",
        str(prefect_port),
        "--mlflow-port",
        str(mlflow_port),
        "--no-schedules",
        "--domain",
        "finance",
    ]
    for item in (
        f"data.path={DATA / 'finance'}",
        f"model.base_model={tiny_bert}",
        "data.max_train_examples=160",
        "validation.min_examples_per_class=5",
        "training.epochs=1",
        "training.batch_size=32",
        "evaluation.batch_size=128",
        "registry.require_beats_baseline=false",
    ):
        cmd += ["--set", item]
    log = tmp_path / "server.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack = {
        "proc": proc,
        "log": log,
        "prefect": f"http://127.0.0.1:{prefect_port}",
        "mlflow": f"http://127.0.0.1:{mlflow_port}",
        "ports": (prefect_port, mlflow_port),
        "tracking_uri": env["MLFLOW_TRACKING_URI"],
    }
    try:
        deadline = time.monotonic() + 420
        while READY not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"peftops server exited:\n{tail(log)}"
            assert time.monotonic() < deadline, f"peftops server not ready:\n{tail(log)}"
            time.sleep(1)
        yield stack
    finally:
        if proc.poll() is None:  # the test did not get to stop it: Ctrl-C, then harder
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=60)


def _field(page, label: str):
    """The schema-form property whose label is `label` (innermost match)."""
    return page.locator(
        "xpath=//span[contains(@class,'schema-form-property__label') and "
        f"starts-with(normalize-space(), '{label} (')]"
        "/ancestor::div[contains(concat(' ', @class, ' '), ' schema-form-property ')][1]"
    )


def _wait_for_url(page, pattern: str, log: Path) -> None:
    """`page.wait_for_url`, failing with what the page and the server said instead of a bare
    timeout: the toasts (a refused flow run shows one), the form's errors, the server log."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url(re.compile(pattern))
    except PlaywrightTimeout:
        said = {
            "toasts": page.locator(".p-toast-container").all_inner_texts(),
            "form errors": page.locator(".p-label__message--failed").all_inner_texts(),
        }
        pytest.fail(f"stayed on {page.url}, not {pattern}: {said}\nserver:\n{tail(log)}")


def _flow_runs(client, deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )


@pytest.mark.ui
def test_custom_run_from_the_prefect_ui_registers_a_version(chromium, local_stack):
    from mlflow import MlflowClient
    from playwright.sync_api import expect, sync_playwright
    from prefect.client.orchestration import SyncPrefectClient

    url, proc = local_stack["prefect"], local_stack["proc"]
    out = local_stack["log"].read_text()
    assert url in out and local_stack["mlflow"] in out  # the URLs are printed
    # analytics and telemetry off, as the servers themselves report it
    settings = requests.get(f"{url}/api/admin/settings", timeout=30).json()
    assert settings["server"]["analytics_enabled"] is False
    ui_telemetry = requests.get(f"{local_stack['mlflow']}/ajax-api/3.0/mlflow/ui-telemetry")
    assert ui_telemetry.json()["disable_ui_telemetry"] is True
    with SyncPrefectClient(api=f"{url}/api") as prefect, sync_playwright() as pw:
        deployment = prefect.read_deployment_by_name("peftops-finance/finance-retrain")
        assert deployment.parameters["config"]["training"]["epochs"] == 1  # baked in by --set
        assert _flow_runs(prefect, deployment.id) == []
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=60_000)
        try:
            page.goto(f"{url}/deployments")
            page.get_by_role("link", name="finance-retrain").first.click()
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run").click()
            _wait_for_url(page, r"/run(\?.*)?$", local_stack["log"])

            # the config as a form: descriptions, the --set default, a dropdown of the methods
            epochs = _field(page, "Epochs")
            expect(epochs).to_contain_text(TrainingConfig.model_fields["epochs"].description)
            expect(epochs.locator("input")).to_have_value("1")
            method = _field(page, "Name")
            method.locator("button.p-select-button__control").focus()
            page.keyboard.press("ArrowDown")
            expect(page.locator(".p-select-option")).to_have_text(list(get_args(MethodName)))
            page.locator(".p-select-option", has_text=re.compile(r"^\s*dora\s*$")).click()
            expect(method.locator(".p-select-button__value")).to_have_text("dora")

            # bounds: 0 epochs is refused with the field's minimum, and nothing starts
            epochs.locator("input").fill("0")
            page.get_by_role("button", name="Submit").click()
            refused = page.get_by_text(re.compile(r"config\.training\.epochs.*minimum of 1"))
            expect(refused.first).to_be_visible()
            assert _flow_runs(prefect, deployment.id) == []

            epochs.locator("input").fill("2")
            epochs.locator("input").press("Tab")
            # with an error shown, the form re-validates a changed value a second later:
            # Submit once the refusal has gone, i.e. once the UI itself holds the form valid
            expect(refused).to_have_count(0)
            page.get_by_role("button", name="Submit").click()
            _wait_for_url(page, r"/deployments/deployment/[^/]+(\?.*)?$", local_stack["log"])

            # the run, through the Prefect API
            deadline, runs = time.monotonic() + 420, []
            while time.monotonic() < deadline:
                runs = _flow_runs(prefect, deployment.id)
                if runs and runs[0].state and runs[0].state.is_final():
                    break
                assert proc.poll() is None, tail(local_stack["log"])
                time.sleep(2)
            assert len(runs) == 1, runs
            run = runs[0]
            assert run.state.is_completed(), (run.state, tail(Path(local_stack["log"])))
            assert run.parameters["config"]["training"]["epochs"] == 2
            assert run.parameters["config"]["method"]["name"] == "dora"

            # the new version, through MLflow: trained with what the form said
            mlflow = MlflowClient(tracking_uri=local_stack["tracking_uri"])
            versions = mlflow.search_model_versions(f"name='{NAME}'")
            assert [str(v.version) for v in versions] == ["1"]
            mlflow_run = mlflow.get_run(versions[0].run_id)
            assert mlflow_run.data.params["training.epochs"] == "2"
            assert mlflow_run.data.params["method.name"] == "dora"
            assert mlflow_run.data.tags["prefect.flow_run_id"] == str(run.id)

            # and both UIs show it
            page.goto(f"{url}/runs/flow-run/{run.id}")
            expect(page.get_by_text("Completed").first).to_be_visible()
            page.goto(f"{local_stack['mlflow']}/#/models/{NAME}")
            expect(page.get_by_text("Version 1").first).to_be_visible()
        finally:
            browser.close()

    # Ctrl-C stops all of it: the servers and the deployments' process
    children = _children(proc.pid)
    assert len(children) == 3, children
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 0, tail(local_stack["log"])
    assert not [pid for pid in children if _alive(pid)]
    assert all(port_is_free("127.0.0.1", port) for port in local_stack["ports"])


def test_deployment_defaults_from_overrides():
    (finance,) = build_deployments(domains=["finance"], overrides=["training.epochs=2"])
    assert finance.name == "finance-retrain"
    assert finance.parameters["force"] is False
    assert finance.parameters["config"]["training"]["epochs"] == 2
    assert finance.parameters["config"]["domain"] == "finance"
    plain = build_deployments(schedules=False)
    assert [d.name for d in plain] == [
        "finance-retrain",
        "healthcare-retrain",
        "finance-assistant-retrain",
        "healthcare-assistant-retrain",
    ]
    assert not any(d.schedules for d in plain)
    assert all(d.parameters == {"force": False} for d in plain[:2])  # the flows' own defaults
    assert all(d.parameters["config"]["task"] == "generation" for d in plain[2:])


def test_server_refuses_bad_options_before_starting_anything(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from peftops.cli import app

    monkeypatch.setenv("PEFTOPS_HOME", str(tmp_path))
    port = free_port()
    runner = CliRunner()
    bad_value = ["server", "--prefect-port", str(port), "--set", "training.epochs=0"]
    result = runner.invoke(app, bad_value)
    assert result.exit_code == 2 and "training.epochs" in result.output
    result = runner.invoke(app, ["server", "--prefect-port", str(port), "--domain", "custom"])
    assert result.exit_code == 2 and "choose one of ['finance', 'healthcare'" in result.output
    result = runner.invoke(app, ["serve", "--domain", "finance", "--set", "no.such=1"])
    assert result.exit_code == 2 and "no.such" in result.output
    assert port_is_free("127.0.0.1", port) and not (tmp_path / ".peftops").exists()
