"""The `peftops` command line: run a domain flow, inspect presets.

Errors a person can fix (bad config, unreadable or invalid data) are printed as messages,
never as tracebacks, and the command exits non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])

EXIT_CONFIG, EXIT_DATA, EXIT_VALIDATION, EXIT_FAILED = 2, 3, 4, 1


def _quiet_environment() -> None:
    """No telemetry anywhere; keep Prefect's and MLflow's chatter out of the summary."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # a busy machine can take longer than Prefect's default 20 s to start its ephemeral server
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)


class _NoTracebackFor(logging.Filter):
    """Drop the traceback from log records about errors whose message already says it all."""

    def __init__(self, errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.errors = errors

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.errors):
            record.exc_info, record.exc_text = None, None
        return True


def _hide_tracebacks(errors: tuple[type[BaseException], ...]) -> None:
    for name in ("prefect", ""):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_NoTracebackFor(errors))


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def build_run_config(
    domain: str,
    data: str | None,
    rev: str | None,
    text_column: str | None,
    label_column: str | None,
    labels: str | None,
    overrides: list[str],
    task: str | None = None,
    prompt_column: str | None = None,
    response_column: str | None = None,
):
    """The domain's preset with the CLI's options and `--set` overrides applied."""
    from components.config import apply_overrides, load_preset

    config = load_preset(domain)
    sets: list[str] = []
    if data is not None:
        path, _, at = (
            data.partition("@") if "@" in data and not Path(data).exists() else (data, "", "")
        )
        sets.append(f"data.path={json.dumps(path)}")
        if at:
            sets.append(f"data.rev={json.dumps(at)}")
    if rev is not None:
        sets.append(f"data.rev={json.dumps(rev)}")
    if text_column is not None:
        sets.append(f"data.text_column={json.dumps(text_column)}")
    if label_column is not None:
        sets.append(f"data.label_column={json.dumps(label_column)}")
    if labels is not None:
        names = [x.strip() for x in labels.split(",") if x.strip()]
        sets.append(f"data.labels={json.dumps(names)}")
    if task is not None:
        sets.append(f"task={json.dumps(task)}")
        if task == "generation" and config.registry.metric in ("accuracy", "macro_f1"):
            sets.append("registry.metric=token_f1")  # the classifier's default cannot apply
    if prompt_column is not None:
        sets.append(f"data.prompt_column={json.dumps(prompt_column)}")
    if response_column is not None:
        sets.append(f"data.response_column={json.dumps(response_column)}")
    return apply_overrides(config, sets + list(overrides))


@app.command()
def run(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    data: Annotated[
        str | None,
        typer.Option(
            help="CSV/JSONL/Parquet file or folder, PATH@REV for a DVC path at a git "
            "revision, or hf://<dataset id>."
        ),
    ] = None,
    rev: Annotated[str | None, typer.Option(help="Git revision to read --data at.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label.")] = None,
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated label set (custom tasks).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="classification or generation (instruction tuning of a causal LM)."),
    ] = None,
    prompt_column: Annotated[
        str | None, typer.Option(help="Generation: column holding the prompt.")
    ] = None,
    response_column: Annotated[
        str | None, typer.Option(help="Generation: column holding the response.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set training.epochs=2 (repeatable)."),
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the run summary as JSON here.")
    ] = None,
    skip_unchanged: Annotated[
        bool,
        typer.Option(help="Skip when data, base model and config equal @champion's."),
    ] = False,
    behaviour: Annotated[
        str | None,
        typer.Option(
            help="Behavioural suite YAML run after evaluation (none: skip; default: the "
            "preset's own, if any)."
        ),
    ] = None,
) -> None:
    """Run a domain flow end to end: validate, select, train, evaluate, register."""
    _quiet_environment()
    from components.config import ConfigError, preset_names

    if domain not in preset_names():
        raise _fail(f"unknown domain {domain!r}; choose one of {preset_names()}", EXIT_CONFIG)
    try:
        config = build_run_config(
            domain,
            data,
            rev,
            text_column,
            label_column,
            labels,
            [
                *([f"evaluation.behaviour={json.dumps(behaviour)}"] if behaviour else []),
                *(set_ or []),
            ],
            task,
            prompt_column,
            response_column,
        )
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None

    from components.data import DataLoadError
    from components.methods import MethodError
    from components.modeling import ModelLoadError
    from components.registry import RegistryError
    from components.report import format_summary
    from components.selection import SelectionError
    from components.validation import DataValidationError
    from flows.pipeline import FLOWS

    _hide_tracebacks(
        (
            DataValidationError,
            DataLoadError,
            ModelLoadError,
            ConfigError,
            SelectionError,
            MethodError,
            RegistryError,
        )
    )
    try:
        summary = FLOWS[config.domain](config=config, force=not skip_unchanged)
    except DataValidationError as err:
        typer.echo(err.report.summary(), err=True)
        raise _fail(
            "data validation failed; nothing was trained or registered", EXIT_VALIDATION
        ) from None
    except (SelectionError, MethodError) as err:  # the config asks what this model cannot do
        raise _fail(str(err), EXIT_CONFIG) from None
    except (DataLoadError, ModelLoadError, ConfigError) as err:
        raise _fail(str(err), EXIT_DATA) from None
    except Exception as err:  # anything else: say what, where to look, and fail
        raise _fail(f"{type(err).__name__}: {err}", EXIT_FAILED) from None
    typer.echo(format_summary(summary))
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.to_dict(), indent=2, default=str))


def _comma_list(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def run_curve(
    config,
    ks: str,
    seeds: int,
    seeds_up_to: int,
    methods: list[str] | None,
    min_steps: int,
    max_test: int | None,
    max_validation: int | None,
    out: Path | None,
):
    """Run the curve flow with the CLI's error handling; print its table and crossings."""
    import shutil

    from components.config import ConfigError
    from components.data import DataLoadError
    from components.methods import MethodError
    from components.modeling import ModelLoadError
    from components.selection import SelectionError
    from components.validation import DataValidationError
    from flows.curve import curve

    _hide_tracebacks((DataValidationError, DataLoadError, ModelLoadError, ConfigError))
    try:  # bad k or method names fail here, before any server starts
        from components.curve import check_methods, parse_ks, plan_points
        from components.generative import curve as gen_curve

        plan_points(parse_ks(ks), seeds, seeds_up_to)
        if methods is not None:
            check = gen_curve.check_methods if config.task == "generation" else check_methods
            check(config, methods)
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    try:
        report = curve(
            config=config,
            ks=ks,
            seeds=seeds,
            seeds_up_to=seeds_up_to,
            methods=methods,
            min_steps=min_steps,
            max_test=max_test,
            max_validation=max_validation,
        )
    except DataValidationError as err:
        typer.echo(err.report.summary(), err=True)
        raise _fail("data validation failed; nothing was trained", EXIT_VALIDATION) from None
    except (ConfigError, SelectionError, MethodError) as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    except (DataLoadError, ModelLoadError) as err:
        raise _fail(str(err), EXIT_DATA) from None
    except Exception as err:
        raise _fail(f"{type(err).__name__}: {err}", EXIT_FAILED) from None
    typer.echo(
        f"{config.domain}: {report.test_examples} test, {report.validation_examples} "
        f"validation examples"
    )
    typer.echo(report.table)
    for line in report.verdict:
        typer.echo(line)
    failed = [r for r in report.rows if "error" in r]
    for row in failed:
        typer.echo(f"FAILED {row['method']} k={row['k']} seed={row['seed']}: {row['error']}")
    folder = Path(report.folder)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("curve.png", "points.csv", "curve.json"):
            shutil.copy(folder / name, out / name)
        folder = out
    typer.echo(
        f"curve: {folder / 'curve.png'} (MLflow run {report.mlflow_run_id}, artifacts curve/)"
    )
    if failed:
        raise typer.Exit(EXIT_FAILED)
    return report


@app.command("curve")
def curve_command(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    data: Annotated[str | None, typer.Option(help="Data file or folder (as for run).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label.")] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated label set.")] = None,
    k: Annotated[
        str, typer.Option("--k", help="Labelled examples per class: comma-separated, or all.")
    ] = "1,2,4,8,16,32,all",
    seeds: Annotated[int, typer.Option(help="Samples (seeds) per small k.")] = 3,
    seeds_up_to: Annotated[int, typer.Option(help="k up to which every seed is run.")] = 8,
    methods: Annotated[
        str | None,
        typer.Option(
            help="probe, a peft method, full (default: probe,<preset method>,full); "
            "generation presets: few-shot in place of probe."
        ),
    ] = None,
    min_steps: Annotated[
        int, typer.Option(help="Train at least this many steps (more epochs at small k).")
    ] = 0,
    max_test: Annotated[
        int | None, typer.Option(help="Score on a stratified sample of this many test rows.")
    ] = None,
    max_validation: Annotated[
        int | None, typer.Option(help="Validate on a stratified sample of this many rows.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also copy curve.png, points.csv, curve.json here.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key (repeatable)."),
    ] = None,
) -> None:
    """Data efficiency: probe (generation: few-shot prompt) vs PEFT vs full fine-tuning at k
    labelled examples per class."""
    _quiet_environment()
    from components.config import ConfigError, preset_names

    if domain not in preset_names():
        raise _fail(f"unknown domain {domain!r}; choose one of {preset_names()}", EXIT_CONFIG)
    try:
        config = build_run_config(
            domain, data, None, text_column, label_column, labels, list(set_ or [])
        )
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    run_curve(
        config,
        k,
        seeds,
        seeds_up_to,
        _comma_list(methods),
        min_steps,
        max_test,
        max_validation,
        out,
    )


@app.command()
def sweep(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    trials: Annotated[
        int, typer.Option(min=1, help="Trials to run (at most the grid's size).")
    ] = 8,
    grid: Annotated[
        list[str] | None,
        typer.Option(help="Search a key over values: --grid method.r=4,8,16 (repeatable)."),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(help="YAML search space: key: [choices] or key: {low, high, log}."),
    ] = None,
    parallel: Annotated[int, typer.Option(min=1, help="Trials running at once.")] = 1,
    data: Annotated[str | None, typer.Option(help="Data, as for peftops run.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key for every trial (repeatable)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Run the trials as Ray tasks on this cluster (prefect-ray; 'auto': RAY_ADDRESS "
            "or a local Ray). Needs the ray extra and the project folder on a shared volume."
        ),
    ] = None,
) -> None:
    """Search training recipes with Optuna; the best trial's config then runs the pipeline
    (evaluate, register, promote); the other trials are not registered."""
    _quiet_environment()
    from components.config import ConfigError, preset_names

    if domain not in preset_names():
        raise _fail(f"unknown domain {domain!r}; choose one of {preset_names()}", EXIT_CONFIG)
    try:
        import yaml

        config = build_run_config(
            domain, data, None, text_column, label_column, None, list(set_ or [])
        )
        searched = yaml.safe_load(space.read_text()) if space is not None else None
        from components import sweep as sweeps

        parsed = sweeps.parse_grid(list(grid or []))  # bad options fail here, before any trial
        if searched is not None:
            parsed |= sweeps.parse_space(searched)
        if not parsed:
            raise ConfigError("nothing to search: give --grid key=v1,v2 or --space file.yaml")
        sweeps.check_keys(config, parsed)
    except (ConfigError, OSError, yaml.YAMLError) as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    from components.report import format_summary
    from flows.sweep import sweep as sweep_flow

    if ray_address:
        from flows.sweep import ray_task_runner

        runner = ray_task_runner(None if ray_address == "auto" else ray_address)
        sweep_flow = sweep_flow.with_options(task_runner=runner)
    try:
        out = sweep_flow(
            config=config, trials=trials, grid=list(grid or []), space=searched, parallel=parallel
        )
    except Exception as err:
        raise _fail(f"{type(err).__name__}: {err}", EXIT_FAILED) from None
    typer.echo(sweeps.format_trials(out["trials"], config.registry.metric))
    typer.echo(f"sweep run {out['mlflow_run_id']}: best trial {out['best']['number']}\n")
    typer.echo(format_summary(out["summary"]))


@app.command()
def presets() -> None:
    """List the domain presets."""
    from components.config import preset_names

    for name in preset_names():
        typer.echo(name)


@app.command("config")
def show_config(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
) -> None:
    """Print a domain's effective config (preset + overrides) as YAML."""
    import yaml

    from components.config import ConfigError, apply_overrides, load_preset

    try:
        config = apply_overrides(load_preset(domain), list(set_ or []))
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def _model_name(domain: str) -> str:
    from components.config import ConfigError, load_preset

    try:
        return load_preset(domain).registry.model_name
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None


def _who() -> str:
    import getpass

    return f"user:{os.environ.get('PEFTOPS_USER') or getpass.getuser()}"


@app.command()
def promote(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    version: Annotated[str, typer.Argument(help="Model version to make @champion.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "manual",
) -> None:
    """Make VERSION the domain's @champion (audit: when, who, why as version tags)."""
    _quiet_environment()
    from components import registry

    name = _model_name(domain)
    try:
        previous = registry.promote_version(name, version, _who(), reason)
    except registry.RegistryError as err:
        raise _fail(str(err), EXIT_FAILED) from None
    was = f"v{previous}" if previous else "none"
    typer.echo(f"{name}: @champion v{version} (was {was})")


@app.command()
def rollback(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "rollback",
) -> None:
    """Move the domain's @champion back to the version it replaced."""
    _quiet_environment()
    from components import registry

    name = _model_name(domain)
    try:
        old, new = registry.rollback(name, _who(), reason)
    except registry.RegistryError as err:
        raise _fail(str(err), EXIT_FAILED) from None
    typer.echo(f"{name}: @champion v{new} (rolled back from v{old})")


@app.command()
def predict(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify or prompts to answer.")],
    alias: Annotated[str, typer.Option(help="Alias or version to load.")] = "champion",
    onnx: Annotated[
        bool,
        typer.Option(help="Use the exported edge model <name>-onnx (`peftops export`)."),
    ] = False,
) -> None:
    """Classify texts, or answer prompts, with the preset's registered model (@champion)."""
    _quiet_environment()
    import pandas as pd

    from components import registry

    name = _model_name(domain) + ("-onnx" if onnx else "")
    try:
        model = registry.load_model(name, alias)
    except Exception as err:
        raise _fail(f"cannot load {registry.model_uri(name, alias)}: {err}", EXIT_FAILED) from None
    columns = model.metadata.get_input_schema().input_names()
    out = model.predict(pd.DataFrame({columns[0]: texts}))
    if "text" in out.columns:  # a generative model: its answers
        for prompt, answer in zip(texts, out["text"], strict=True):
            typer.echo(f"> {prompt}\n{answer}\n")
        return
    unsure = _unsure_below(name, alias)
    for text, label, score in zip(texts, out["label"], out["score"], strict=True):
        if unsure is not None and score < unsure:  # less sure than nearly any right answer
            label = f"unsure (best guess {label})"
        typer.echo(f"{label}\t{score:.3f}\t{text}")


def _unsure_below(name: str, alias: str) -> float | None:
    """The version's calibrated 'unsure' threshold (a tag set at registration), if any."""
    from components import registry, tracking
    from components.behaviour import UNSURE_TAG

    version = alias if alias.isdigit() else registry.get_alias_version(name, alias)
    if version is None:
        return None
    value = tracking.client().get_model_version(name, version).tags.get(UNSURE_TAG)
    return float(value) if value else None


@app.command("export")
def export_model(
    domain: Annotated[str, typer.Argument(help="a preset: peftops presets lists them")],
    version: Annotated[
        str | None, typer.Option(help="Version number to export (default: --alias).")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias to export.")] = "champion",
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    quantize: Annotated[
        str | None, typer.Option(help="int8 or none (default: the preset's export.quantize).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a gate setting: --set export.min_agreement=0.99."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the gate's figures as JSON here.")
    ] = None,
) -> None:
    """Merge, export (ONNX) and quantize a registered classifier; register <name>-onnx only
    if the gate passes on the version's own test split (agreement, metric drop)."""
    _quiet_environment()
    from components.config import ConfigError, apply_overrides, load_preset

    sets = [f"export.format={json.dumps(format_)}"]
    if quantize is not None:
        sets.append(f"export.quantize={json.dumps(quantize)}")
    try:
        config = apply_overrides(load_preset(domain), sets + list(set_ or []))
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    from components.export import ExportError, ExportGateError, export_version, format_report
    from components.modeling import ModelLoadError

    name = config.registry.model_name
    try:
        result = export_version(name, version or alias, config.export)
    except ExportGateError as err:
        typer.echo(format_report(err.result))
        if json_out is not None:
            json_out.write_text(json.dumps(err.result.to_dict(), indent=2))
        raise _fail(f"{err}; nothing was registered", EXIT_FAILED) from None
    except (ExportError, ModelLoadError) as err:
        raise _fail(str(err), EXIT_DATA) from None
    typer.echo(format_report(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))


@app.command()
def serve(
    no_schedules: Annotated[
        bool, typer.Option(help="Register the deployments without their cron schedules.")
    ] = False,
    domain: Annotated[
        list[str] | None,
        typer.Option(help="Serve only this preset's deployment (repeatable; default: all)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Bake a config override into the deployments' default parameters: "
            "--set training.epochs=2 (repeatable; applied to each domain's preset).",
        ),
    ] = None,
) -> None:
    """Serve the presets' retrain deployments (classifiers and assistants), `sweep` and `curve`
    from this process (Ctrl-C stops).

    Needs a Prefect server: `peftops server` starts one with everything, or run
    `prefect server start` and set PREFECT_API_URL (see README)."""
    _quiet_environment()
    from components.config import ConfigError

    try:
        from flows.deployments import (
            DEPLOYED,
            build_curve_deployment,
            build_deployments,
            build_sweep_deployment,
        )

        deployments = build_deployments(
            schedules=not no_schedules,
            domains=list(domain or DEPLOYED),
            overrides=list(set_ or []),
        )
        # the sweep starts from the first served preset (finance by default)
        preset = (domain or list(DEPLOYED))[0]
        deployments.append(build_sweep_deployment(preset, overrides=list(set_ or [])))
        deployments.append(build_curve_deployment(preset, overrides=list(set_ or [])))
    except (ConfigError, ValueError) as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    from prefect import serve as prefect_serve

    prefect_serve(*deployments)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Interface to bind both servers to.")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Prefect server + UI port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
    no_schedules: Annotated[
        bool, typer.Option(help="Register the deployments without their cron schedules.")
    ] = False,
    domain: Annotated[
        list[str] | None, typer.Option(help="Serve only this preset's deployment (repeatable).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override baked into the deployments (repeatable)."),
    ] = None,
) -> None:
    """Start a local Prefect server with its UI, the MLflow UI on the project's store, and
    serve the deployments; analytics and telemetry off. Ctrl-C stops all of it."""
    _quiet_environment()
    from components import tracking
    from components.config import ConfigError, apply_overrides, load_preset
    from flows.deployments import DEPLOYED
    from peftops.server import ServiceError, run_local_stack

    domains = list(domain or DEPLOYED)
    try:  # fail here, before starting anything, on a bad preset or override
        for name in domains:
            if name not in DEPLOYED:
                raise ConfigError(f"no deployment for {name!r}; choose one of {list(DEPLOYED)}")
            apply_overrides(load_preset(name), list(set_ or []))
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    try:
        code = run_local_stack(
            host,
            prefect_port,
            mlflow_port,
            tracking.tracking_uri(),
            tracking.project_dir(),
            schedules=not no_schedules,
            domains=domains,
            overrides=list(set_ or []),
            echo=typer.echo,
        )
    except ServiceError as err:
        raise _fail(str(err), EXIT_FAILED) from None
    raise typer.Exit(code)


bench = typer.Typer(no_args_is_help=True, help="Benchmarks on real data (not tests).")
app.add_typer(bench, name="bench")


@bench.command("quality")
def bench_quality(
    dataset: Annotated[
        str,
        typer.Option(
            help="banking77, medical_abstracts or pubmedqa; generation: pubmedqa or banking77"
        ),
    ] = "banking77",
    quick: Annotated[bool, typer.Option(help="Subsampled, fewer epochs (< 15 min).")] = False,
    only: Annotated[
        list[str] | None, typer.Option(help="Run only these configurations (repeatable).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    task: Annotated[
        str, typer.Option(help="classification, or generation (a causal LM's rows)")
    ] = "classification",
    long_answer: Annotated[
        bool,
        typer.Option(help="Generation on pubmedqa: the long answer (ROUGE-L), not yes/no/maybe."),
    ] = False,
    base_model: Annotated[
        str | None,
        typer.Option(help="Generation: a local causal LM folder instead of SmolLM2-135M-Instruct."),
    ] = None,
    constrained: Annotated[
        bool,
        typer.Option(help="Generation: decode only the closed label set's answers (no invalid)."),
    ] = False,
) -> None:
    """PEFT configurations side by side: one JSON line per configuration on stdout."""
    _quiet_environment()
    if task == "generation":
        from peftops.bench.generation_quality import run_generation_quality

        if dataset not in ("pubmedqa", "banking77"):
            raise _fail(
                f"unknown generation dataset {dataset!r}; use pubmedqa or banking77", EXIT_CONFIG
            )
        run_generation_quality(
            dataset,
            quick=quick,
            only=list(only or []),
            threads=threads,
            long_answer=long_answer,
            base_model=base_model,
            constrained=constrained,
        )
        return
    if task != "classification":
        raise _fail(f"unknown task {task!r}; use classification or generation", EXIT_CONFIG)
    from peftops.bench.quality import FULL, run_quality_benchmark

    if dataset not in FULL:
        raise _fail(f"unknown dataset {dataset!r}; use one of {', '.join(FULL)}", EXIT_CONFIG)
    run_quality_benchmark(dataset, quick=quick, only=list(only or []), threads=threads)


@bench.command("speed")
def bench_speed(
    quick: Annotated[bool, typer.Option(help="Smaller runs (< 10 min on 2 cores).")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only these benchmarks (repeatable): throughput, padding, orchestration, "
            "inference, memory, scaling; and, only when named, distributed (process "
            "start-ups, minutes), gen_throughput, gen_inference, gen_memory (SmolLM2, tens of "
            "minutes)."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    base_model: Annotated[
        str | None,
        typer.Option(help="Encoder id or local folder for the classifier rows (default MiniLM)."),
    ] = None,
    gen_model: Annotated[
        str | None,
        typer.Option(help="Causal LM id or local folder for the gen_* rows (default SmolLM2)."),
    ] = None,
) -> None:
    """The pipeline vs hand-written baselines: one JSON line per comparison, ratios on stderr."""
    _quiet_environment()
    from peftops.bench.speed import BENCHMARKS, run_speed_benchmark

    unknown = sorted(set(only or []) - set(BENCHMARKS))
    if unknown:
        raise _fail(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", EXIT_CONFIG)
    try:
        run_speed_benchmark(
            quick=quick,
            only=list(only or []),
            threads=threads,
            base_model=base_model,
            gen_model=gen_model,
        )
    except FileNotFoundError as err:
        raise _fail(str(err), EXIT_DATA) from None


@bench.command("curve")
def bench_curve(
    dataset: Annotated[str, typer.Option(help="banking77 or medical_abstracts")] = "banking77",
    k: Annotated[str, typer.Option("--k", help="Examples per class: e.g. 1,4,16,all.")] = (
        "1,2,4,8,16,32,all"
    ),
    seeds: Annotated[int, typer.Option(help="Samples (seeds) per small k.")] = 3,
    seeds_up_to: Annotated[int, typer.Option(help="k up to which every seed is run.")] = 8,
    methods: Annotated[str | None, typer.Option(help="Default: probe,lora,full.")] = None,
    min_steps: Annotated[int, typer.Option(help="Train at least this many steps.")] = 0,
    max_test: Annotated[int | None, typer.Option(help="Stratified test sample size.")] = None,
    max_validation: Annotated[
        int | None, typer.Option(help="Stratified validation sample size.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Copy curve.png/points.csv here.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
) -> None:
    """The data-efficiency curve on a shared benchmark dataset, through the curve flow (the
    custom preset, the dataset's splits written as a data folder under .peftops/)."""
    _quiet_environment()
    from components import tracking
    from components.config import ConfigError
    from peftops.bench.datasets import export_bench_dataset

    if dataset not in ("banking77", "medical_abstracts"):
        raise _fail(f"unknown dataset {dataset!r}; use banking77 or medical_abstracts", EXIT_CONFIG)
    try:
        folder, data = export_bench_dataset(
            dataset, tracking.project_dir() / ".peftops" / "bench-data" / dataset
        )
    except FileNotFoundError as err:
        raise _fail(str(err), EXIT_DATA) from None
    sets = [f"model.max_length={data.max_length}", *(set_ or [])]
    try:
        config = build_run_config(
            "custom", str(folder), None, None, None, ",".join(data.examples.labels), sets
        )
    except ConfigError as err:
        raise _fail(str(err), EXIT_CONFIG) from None
    run_curve(
        config,
        k,
        seeds,
        seeds_up_to,
        _comma_list(methods),
        min_steps,
        max_test,
        max_validation,
        out,
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
