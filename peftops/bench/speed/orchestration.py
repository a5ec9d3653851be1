"""Orchestration overhead: `peftops run finance` (cold: ephemeral Prefect; warm: a running
server) against the same components called in a plain script without Prefect or MLflow,
each in a fresh process."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peftops.bench.speed.harness import (
    DEMO,
    Context,
    child_env,
    comparison,
    fresh_home,
    log,
    median,
    project_env,
    run_child,
)


def plain_pipeline(config, home: Path) -> dict:
    """The flow's components called directly: no Prefect, no MLflow. Per-stage seconds."""
    import csv

    from components.baseline import run_baseline
    from components.data import load_splits
    from components.evaluation import (
        classification_metrics,
        comparison_rows,
        ids_from_names,
        save_confusion_matrix,
    )
    from components.examples import infer_labels, to_examples
    from components.heap import skip_exit_collection
    from components.modeling import load_bundle
    from components.selection import run_selection, save_selection_plot
    from components.training import train_classifier, training_key
    from components.validation import save_report, validate_splits

    stages: dict[str, float] = {}
    out = home / "plain"
    out.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def stage(name: str):
        started = time.perf_counter()
        yield
        stages[name] = round(time.perf_counter() - started, 2)

    skip_exit_collection()  # as the flow does
    d = config.data
    with stage("load_data"):
        raw = load_splits(d, home)
    with stage("validate_data"):
        labels = d.labels or infer_labels(raw.frames["train"], d.label_column, [])
        report = validate_splits(
            raw.frames,
            text_column=d.text_column,
            label_column=d.label_column,
            labels=labels,
            config=config.validation,
            suite_name=f"peftops-{config.domain}",
        )
        save_report(report, out / "validation")
        if not report.success:
            raise RuntimeError(report.summary())
        ex = to_examples(raw.frames, d.text_column, d.label_column, labels)
    m = config.model
    with stage("fit_baseline"):
        baseline = run_baseline(m.base_model, m.pooling, m.max_length, ex.labels, ex.train, ex.test)
    with stage("select_trainable_parameters"):
        selection = run_selection(config, ex.train, len(ex.labels), baseline.probe, ex.validation)
        for name, rows in (
            ("selection.csv", selection.table),
            ("layers.csv", selection.layer_table),
        ):
            with (out / name).open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        save_selection_plot(selection, out / "selection.png")
    with stage("train_adapter"):
        key = training_key(config, ex.train, ex.validation)
        result = train_classifier(
            config,
            selection,
            ex.train,
            ex.validation,
            ex.labels,
            workdir=home / ".peftops" / "runs" / key,
            probe=baseline.probe,
            manifest={"domain": config.domain},
        )
    with stage("evaluate"):
        classifier = load_bundle(Path(result.bundle_dir))
        predicted = classifier.predict(ex.test.texts, config.evaluation.batch_size)
        pred_ids = ids_from_names(predicted, ex.labels)
        metrics = classification_metrics(ex.test.label_ids, pred_ids, ex.labels)
        comparison_rows({"fine-tuned": metrics, "baseline": baseline.metrics})
        save_confusion_matrix(
            ex.test.label_ids, pred_ids, ex.labels, out / "confusion.png", config.domain
        )
    return {"accuracy": metrics["accuracy"], "stages": stages, "train": result.samples_per_second}


@contextmanager
def prefect_server(
    home: Path, log_file: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """A Prefect server in a subprocess (own PREFECT_HOME, `env` added to its environment);
    yields its API URL and pid."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = child_env(PREFECT_HOME=str(home), **(env or {}))
    env.pop("PREFECT_API_URL", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    with log_file.open("w") as out:
        proc = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {log_file.read_text()[-500:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start in 300 s")
            time.sleep(1)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _flow_task_times(api_url: str) -> dict:
    """Per-task run times (s) of the newest flow run on the server, and the flow's own time."""
    import httpx

    flows = httpx.post(
        f"{api_url}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}, timeout=30
    ).json()
    if not flows:
        return {}
    flow = flows[0]
    tasks = httpx.post(
        f"{api_url}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [flow["id"]]}}, "limit": 200},
        timeout=30,
    ).json()
    times: dict[str, float] = {}
    for t in tasks:
        name = t["name"].rsplit("-", 1)[0]
        times[name] = round(times.get(name, 0.0) + float(t.get("total_run_time") or 0.0), 2)
    return {"flow_run_seconds": round(float(flow.get("total_run_time") or 0.0), 2), "tasks": times}


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (0 without psutil)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the dependencies
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _init_mlflow_db(home: Path, log_file: Path, template: Path) -> float | None:
    """Give `home` an empty, migrated MLflow store ahead of the run (a first-ever run's cost,
    not the orchestration's): created once (returns the seconds it took), then copied."""
    if template.is_file():
        shutil.copyfile(template, home / "mlflow.db")
        return None
    started = time.perf_counter()
    code = "from mlflow import MlflowClient; MlflowClient().search_experiments(); print('{}')"
    run_child([sys.executable, "-c", code], project_env(home), log_file)
    shutil.copyfile(home / "mlflow.db", template)
    return time.perf_counter() - started


def bench_orchestration(ctx: Context) -> None:
    from components.config import apply_overrides, load_preset

    sets = [
        f"data.path={json.dumps(str(DEMO))}",
        f"model.base_model={json.dumps(ctx.base_model)}",
        f"training.num_threads={ctx.threads}",
        *ctx.settings.flow_overrides,
    ]
    config = apply_overrides(load_preset("finance"), sets)
    config_file = ctx.workdir / "orchestration-config.json"
    config_file.write_text(config.model_dump_json())
    cli = [sys.executable, "-m", "peftops.cli", "run", "finance"]
    cli += [x for s in sets for x in ("--set", s)]
    logs = ctx.workdir / "logs"
    logs.mkdir(exist_ok=True)

    cold_prefect = ctx.workdir / "prefect-cold"
    cold_prefect.mkdir(exist_ok=True)
    prefect = str(Path(sys.executable).with_name("prefect"))
    log("migrating the ephemeral Prefect database (not timed)")
    run_child(
        [prefect, "server", "database", "upgrade", "-y"],
        child_env(PREFECT_HOME=str(cold_prefect)),
        logs / "prefect-upgrade.log",
    )

    times: dict[str, list[float]] = {"plain": [], "warm": [], "cold": []}
    cpu: dict[str, list[float]] = {"plain": [], "warm": [], "cold": []}
    details: dict[str, Any] = {}
    server_log = logs / "prefect-server.log"
    with prefect_server(ctx.workdir / "prefect-warm", server_log) as (api, server):
        for i in range(ctx.settings.flow_rounds):
            order = ["plain", "warm", "cold"] if i % 2 == 0 else ["cold", "warm", "plain"]
            for kind in order:
                home = fresh_home(ctx, f"{kind}-{i}")
                if kind == "plain":
                    env = project_env(home)
                    args = [sys.executable, "-m", "peftops.bench.speed", "plain"]
                    args += [str(config_file), str(home)]
                else:
                    created = _init_mlflow_db(
                        home, logs / f"mlflow-{kind}-{i}.log", ctx.workdir / "empty-mlflow.db"
                    )
                    if created is not None:
                        details["mlflow_db_create_s"] = round(created, 1)
                    extra = {"PREFECT_API_URL": api} if kind == "warm" else {}
                    env = project_env(home, PREFECT_HOME=str(cold_prefect), **extra)
                    if kind == "cold":
                        env.pop("PREFECT_API_URL", None)
                    summary = home / "summary.json"
                    args = [*cli, "--summary-json", str(summary)]
                started = time.perf_counter()
                used = _children_cpu_seconds() + _tree_cpu_seconds(server)
                result = run_child(args, env, logs / f"{kind}-{i}.log", timeout=1800)
                times[kind].append(time.perf_counter() - started)
                # the run's own CPU (and its ephemeral server's) plus the warm server's share
                used = _children_cpu_seconds() + _tree_cpu_seconds(server) - used
                cpu[kind].append(used)
                log(f"{kind} run {i + 1}: {times[kind][-1]:.1f} s, {used:.1f} CPU s")
                if kind == "plain":
                    details["plain_stages"] = result.get("stages")
                elif kind == "warm":
                    details["warm_tasks"] = _flow_task_times(api)
                    ctx.registered_home = home
    for kind in ("warm", "cold"):
        extra = {"flow_tasks": details.get("warm_tasks")} if kind == "warm" else {}
        for suffix, measured, unit in (("", times, "s"), ("_cpu", cpu, "cpu-s")):
            value, plain = median(measured[kind]), median(measured["plain"])
            comparison(
                ctx,
                f"orchestration_{kind}{suffix}",
                value,
                "plain script (same components, no Prefect/MLflow)",
                plain,
                unit,
                higher_is_better=False,
                overhead=round(value - plain, 2),
                overhead_fraction=round((value - plain) / value, 4),
                prefect="running server" if kind == "warm" else "ephemeral (cold start)",
                plain_stages=details.get("plain_stages"),
                mlflow_db_create_s=details.get("mlflow_db_create_s"),
                data="demo finance",
                overrides=list(ctx.settings.flow_overrides),
                rounds={k: [round(x, 2) for x in measured[k]] for k in (kind, "plain")},
                **extra,
            )
