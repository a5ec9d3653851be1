"""The data-efficiency curve flow: one MLflow parent run, a nested run per point and method."""

from __future__ import annotations

from prefect import flow

from components.config import PipelineConfig
from components.curve import CurveReport, check_methods, default_methods, parse_ks, plan_points
from components.generative import curve as gen_curve
from components.heap import skip_exit_collection
from flows.pipeline import FINANCE_DEFAULTS
from tasks.curve import (
    curve_point,
    generative_curve_point,
    prepare_curve,
    prepare_generative_curve,
    publish_curve,
)
from tasks.data import load_data, validate_data
from tasks.tracking import end_mlflow_run, start_mlflow_run

DEFAULT_KS = "1,2,4,8,16,32,all"


@flow(name="peftops-curve", log_prints=True)
def curve(
    config: PipelineConfig = FINANCE_DEFAULTS,
    ks: str = DEFAULT_KS,
    seeds: int = 3,
    seeds_up_to: int = 8,
    methods: list[str] | None = None,
    min_steps: int = 0,
    max_test: int | None = None,
    max_validation: int | None = None,
) -> CurveReport:
    """k labelled examples per class (`ks`, e.g. "1,2,4,all"; `seeds` samples for k ≤
    `seeds_up_to`), scored by the probe, PEFT (the preset's method) and full fine-tuning on
    the same test split; for a generation preset, by the base model's few-shot prompt (shots
    from the k-shot sample), PEFT and full fine-tuning, with the zero-shot base model as the
    k = 0 reference (`components.generative.curve`). The data is validated once, whole,
    before sampling; nothing is registered. `max_test`/`max_validation` cap those splits
    (stratified for classes) to bound the cost."""
    skip_exit_collection()
    generative = config.task == "generation"
    if generative:
        chosen = gen_curve.check_methods(config, methods or gen_curve.default_methods(config))
    else:
        chosen = check_methods(config, methods or default_methods(config))
    points = plan_points(parse_ks(ks), seeds, seeds_up_to)
    run_id = start_mlflow_run(config)
    try:
        raw = load_data(config, run_id)
        examples = validate_data(raw, config, run_id)
        rows: list[dict] = []
        if generative:
            examples = prepare_generative_curve(examples, config, max_test, max_validation, run_id)
            for point in points:
                rows += generative_curve_point(examples, config, point, chosen, min_steps, run_id)
        else:
            examples, features = prepare_curve(
                examples, config, max_test, max_validation, points, run_id
            )
            for point in points:
                rows += curve_point(examples, features, config, point, chosen, min_steps, run_id)
        report = publish_curve(rows, examples, config, chosen, run_id)
        end_mlflow_run(run_id, "FINISHED")
    except BaseException as err:
        end_mlflow_run(run_id, "FAILED", f"{type(err).__name__}: {err}")
        raise
    return report
