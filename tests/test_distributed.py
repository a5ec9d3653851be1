"""Training in several processes, for real: torch elastic spawns the workers, accelerate wraps
the model in DDP over gloo (CPU), a tiny BERT learns the toy intents.

Tolerance (two processes against one, same global batch of 8 split 4 + 4, dropout off): final
weights within an absolute 1e-5 (they move by ~1e-2), per-epoch losses within a relative 1e-5;
the two ranks end with bitwise identical weights.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from components import distributed, tracking
from components.baseline import run_baseline
from components.config import apply_overrides, load_preset
from components.examples import Examples, TextSplit
from components.objectives import Baselines, objective_for
from components.selection import run_selection
from components.training import train_classifier
from toy_data import LABELS, toy_split

EPOCHS = 2
TOLERANCE = 1e-5


def _config(model: Path, *overrides: str):
    return apply_overrides(
        load_preset("custom"),
        [
            f"model.base_model={model}",
            f"data.labels={json.dumps(LABELS)}",
            f"training.epochs={EPOCHS}",
            "training.batch_size=8",
            "training.learning_rate=0.01",
            "training.head_learning_rate=0.01",
            "method.dropout=0",
            "training.num_processes=2",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def no_dropout_bert(tiny_bert, tmp_path_factory) -> Path:
    """The tiny BERT without dropout: one process and two then draw no masks, so their
    results can be compared."""
    folder = tmp_path_factory.mktemp("bert-no-dropout")
    shutil.copytree(tiny_bert, folder, dirs_exist_ok=True)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _inputs(config, n_train: int):
    train, val = toy_split(n_train, 0), toy_split(16, 1)
    examples = Examples(LABELS, train, val, TextSplit([], []))
    m = config.model
    probe = run_baseline(m.base_model, m.pooling, m.max_length, LABELS, train, val)
    return examples, run_selection(config, train, len(LABELS)), Baselines({}, state=probe)


def per_rank_worker(job: dict) -> dict:
    """`train_worker`, except that each rank but 0 gets an output folder and a project
    folder (token cache) of its own: anything it writes lands there."""
    rank = os.environ["RANK"]
    base = Path(job["workdir"]).parent
    os.environ["PEFTOPS_HOME"] = str(base / f"home-{rank}")
    if rank != "0":
        job = {**job, "workdir": str(base / f"work-{rank}")}
    return distributed.train_worker(job)


@pytest.fixture(scope="module")
def two_processes(no_dropout_bert, tmp_path_factory):
    """One 2-process run (MLflow run for rank 0 to log on) and its reports."""
    base = tmp_path_factory.mktemp("ddp")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "PEFTOPS_HOME")}
    uri = f"sqlite:///{base / 'mlflow.db'}"
    os.environ.update(MLFLOW_TRACKING_URI=uri, PEFTOPS_HOME=str(base / "launcher-home"))
    config = _config(no_dropout_bert)
    examples, selection, baselines = _inputs(config, 64)
    experiment = tracking.ensure_experiment("ddp")
    run_id = tracking.client().create_run(experiment).info.run_id
    job = distributed.write_job(
        objective_for(config),
        examples,
        selection,
        baselines,
        config,
        base / "work-0",
        {"domain": "custom"},
        run_id,
    )
    reports = distributed.launch(job, 2, worker=per_rank_worker)
    yield {
        "base": base,
        "config": config,
        "inputs": (examples, selection, baselines),
        "reports": reports,
        "run_id": run_id,
        "experiment": experiment,
        "tracking_uri": uri,
    }
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _bundle(workdir: Path) -> dict:
    bundle = workdir / "bundle"
    return {
        **{f"head.{k}": v for k, v in load_file(str(bundle / "head.safetensors")).items()},
        **load_file(str(bundle / "adapter" / "adapter_model.safetensors")),
    }


@pytest.mark.long
def test_two_processes_train_in_step_and_like_one_process_with_the_same_global_batch(
    two_processes, workspace, tmp_path
):
    reports = two_processes["reports"]
    assert [r["rank"] for r in reports] == [0, 1]
    assert [r["world_size"] for r in reports] == [2, 2]
    # DDP synchronised the gradients: both ranks hold the same weights, bit for bit
    assert reports[0]["trained_digest"] == reports[1]["trained_digest"] is not None
    result = reports[0]["result"]
    assert (result["world_size"], result["strategy"], result["backend"]) == (2, "ddp", "gloo")
    assert result["launcher"] == "torch-elastic" and reports[1]["result"] is None

    # one process, the same config and global batch of 8
    config = two_processes["config"]
    single = config.model_copy(
        update={"training": config.training.model_copy(update={"num_processes": 1})}
    )
    examples, selection, baselines = two_processes["inputs"]
    one = train_classifier(
        single,
        selection,
        examples.train,
        examples.validation,
        LABELS,
        tmp_path / "one",
        probe=baselines.state.probe,
    )
    assert one.world_size == 1 and one.strategy == "single" and one.launcher is None
    assert not (tmp_path / "one" / distributed.JOB_FOLDER).exists()  # nothing was launched
    for a, b in zip(one.history, result["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=TOLERANCE)
        # each process scored a share of the rows: predictions came back to their labels
        assert (b["val_accuracy"], b["val_macro_f1"]) == (a["val_accuracy"], a["val_macro_f1"])
    assert result["best_epoch"] == one.best_epoch
    wa, wb = _bundle(tmp_path / "one"), _bundle(two_processes["base"] / "work-0")
    assert wa.keys() == wb.keys()
    for name in wa:
        assert (wa[name] - wb[name]).abs().max().item() <= TOLERANCE, name
    # ... a tolerance far below how far training moved the weights
    ckpt = tmp_path / "one" / "checkpoints"
    start = load_file(str(ckpt / "start" / "trainable.safetensors"))
    end = load_file(str(ckpt / f"epoch-{EPOCHS}" / "trainable.safetensors"))
    assert max((end[k] - start[k]).abs().max().item() for k in start) > 100 * TOLERANCE


@pytest.mark.long
def test_rank_0_alone_writes_and_logs(two_processes):
    base = two_processes["base"]
    work = base / "work-0"
    assert {p.name for p in (work / "checkpoints").iterdir()} == {"start", "epoch-1", "epoch-2"}
    assert (work / "bundle" / "peftops.json").is_file()
    saved = json.loads((work / distributed.RESULT_FILE).read_text())
    assert saved["world_size"] == 2 and saved["bundle_dir"] == str(work / "bundle")
    # rank 1 trained from the same inputs but wrote nothing: no folder, no cache entry
    # (where rank 0 stored its tokenization)
    assert not (base / "work-1").exists()
    assert list((base / "home-0").rglob("*.npz"))
    assert not (base / "home-1").exists()
    # checkpoints hold the unwrapped model's tensors (no DDP `module.` prefix)
    names = load_file(str(work / "checkpoints" / "epoch-2" / "trainable.safetensors")).keys()
    assert names and not any(n.startswith("module.") for n in names)
    assert any(n.startswith("head.") for n in names)
    # one run, its epochs logged once (by rank 0)
    client = MlflowClient(two_processes["tracking_uri"])
    runs = client.search_runs([two_processes["experiment"]])
    assert [r.info.run_id for r in runs] == [two_processes["run_id"]]
    history = client.get_metric_history(two_processes["run_id"], "val_loss")
    assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))


def _rank_pid(rank: int, deadline: float) -> int | None:
    """The pid of this test process's training worker of local `rank`: torch elastic spawns
    them in rank order (multiprocessing's spawn children; the resource tracker is not one).
    Should the order ever differ, the failure message below names another rank."""
    while time.time() < deadline:
        workers = []
        for child in psutil.Process().children(recursive=True):
            try:
                if "--multiprocessing-fork" in child.cmdline():
                    workers.append((child.create_time(), child.pid))
            except psutil.NoSuchProcess:
                continue
        if len(workers) >= 2:
            return sorted(workers)[rank][1]
        time.sleep(0.05)
    return None


@pytest.mark.long
def test_a_sigkilled_rank_fails_the_run_promptly_and_one_process_resumes(
    no_dropout_bert, workspace, tmp_path
):
    config = _config(no_dropout_bert, "training.epochs=3")
    examples, selection, baselines = _inputs(config, 320)  # 40 steps an epoch
    workdir = tmp_path / "work"
    job = distributed.write_job(
        objective_for(config), examples, selection, baselines, config, workdir
    )
    killed: dict = {}

    def kill_rank_1_after_the_first_checkpoint() -> None:
        deadline = time.time() + 120
        pid = _rank_pid(1, deadline)
        first = workdir / "checkpoints" / "epoch-1" / "state.json"
        while pid and not first.exists() and time.time() < deadline:
            time.sleep(0.02)
        if pid and first.exists():
            os.kill(pid, signal.SIGKILL)
            killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_rank_1_after_the_first_checkpoint)
    killer.start()
    sigint = signal.getsignal(signal.SIGINT)
    with pytest.raises(distributed.DistributedTrainingError) as failed:
        distributed.launch(job, 2)
    noticed = time.monotonic()
    killer.join()
    assert signal.getsignal(signal.SIGINT) is sigint  # the agent's handlers are gone
    assert "at" in killed, "rank 1 was not killed"
    assert noticed - killed["at"] < 30  # the kill ends the run: no hang, no restart
    message = str(failed.value)
    assert "rank 1" in message and "exit code -9" in message and "SIGKILL" in message
    assert "resumes from the last checkpoint" in message
    done = sorted(p.name for p in (workdir / "checkpoints").glob("epoch-*"))
    assert "epoch-1" in done and "epoch-3" not in done
    assert not (workdir / "bundle").exists()

    # the same job again, in one process: it resumes from the 2-process checkpoint
    single = config.model_copy(
        update={"training": config.training.model_copy(update={"num_processes": 1})}
    )
    killed_at = json.loads((workdir / "checkpoints" / done[-1] / "state.json").read_text())
    resumed = train_classifier(
        single,
        selection,
        examples.train,
        examples.validation,
        LABELS,
        workdir,
        probe=baselines.state.probe,
    )
    assert resumed.resumed_from_epoch == killed_at["epoch"] >= 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[0] == killed_at["history"][0]  # not trained again
    assert (workdir / "bundle" / "peftops.json").is_file()


def test_config_and_what_fsdp_cannot_combine_with_are_refused_with_a_message(no_dropout_bert):
    from components.config import ConfigError

    with pytest.raises(ConfigError, match=r"training\.num_processes"):
        _config(no_dropout_bert, "training.num_processes=0")
    with pytest.raises(ConfigError, match=r"training\.distributed"):
        _config(no_dropout_bert, "training.distributed=horovod")
    distributed.check_distributed(_config(no_dropout_bert, "training.distributed=fsdp"))
    for option, named in [
        ("training.frozen_precision=bf16", r"frozen_precision=bf16"),
        ("method.name=adalora", r"adalora"),
    ]:
        fsdp = _config(no_dropout_bert, "training.distributed=fsdp", option)
        with pytest.raises(ConfigError, match=named):
            distributed.check_distributed(fsdp)


@pytest.mark.long
@pytest.mark.usefixtures("prefect_harness")
def test_the_finance_flow_trains_in_two_processes_and_registers_the_model(workspace, tiny_bert):
    from components.report import format_summary
    from conftest import tiny_config
    from flows.pipeline import finance

    config = tiny_config(
        "finance",
        tiny_bert,
        "registry.require_beats_baseline=false",
        "evaluation.compare_champion=false",
        "data.max_train_examples=96",
        "validation.min_examples_per_class=5",
        "training.num_processes=2",
    )
    summary = finance(config=config)
    assert summary.version == "1" and summary.model_uri
    client = tracking.client()
    run = client.get_run(summary.mlflow_run_id)
    tags, params = run.data.tags, run.data.params
    assert params["training.num_processes"] == "2" and params["training.distributed"] == "ddp"
    assert tags["train.world_size"] == "2" and tags["train.strategy"] == "ddp"
    assert tags["train.backend"] == "gloo" and tags["train.launcher"] == "torch-elastic"
    metrics = run.data.metrics  # the processes' start-up shows in the step's wall time
    assert metrics["train.wall_seconds"] > metrics["train.seconds"] > 0
    # rank 0 logged each epoch once
    history = client.get_metric_history(summary.mlflow_run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2]
    how = "ddp over 2 processes (gloo, torch-elastic)"
    assert how in summary.how_trained and how in format_summary(summary)
    card = client.download_artifacts(summary.mlflow_run_id, "model_card.md")
    assert how in Path(card).read_text()
    versions = client.search_model_versions(f"name='{config.registry.model_name}'")
    assert [v.run_id for v in versions] == [summary.mlflow_run_id]


@pytest.mark.long
def test_a_causal_lm_trains_in_two_processes_like_in_one(tiny_causal_lm, workspace, tmp_path):
    """Generation's loss is a mean over trained tokens: each process's part of a batch
    weighs by its token count. Batches of 5 rows split 3 + 2 (and a last batch of 1 leaves
    rank 1 a zero-weight row), answers of 1 to 6 words: unequal parts everywhere."""
    from components.generative.examples import ChatExamples

    config = apply_overrides(
        load_preset("finance-assistant"),
        [
            f"model.base_model={tiny_causal_lm}",
            "training.epochs=1",
            "training.batch_size=5",
            "training.learning_rate=0.01",
            "method.dropout=0",
            "generation.few_shot=0",
            "training.num_processes=2",
        ],
    )

    def chat(i: int) -> list[dict]:
        label = LABELS[i % len(LABELS)]
        answer = " ".join([label] * (1 + i % 6))
        question = f"question {i} about my {label}"
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]

    examples = ChatExamples([chat(i) for i in range(21)], [chat(i) for i in range(21, 27)], [])
    objective = objective_for(config)
    baselines = Baselines({})
    selection = objective.select(examples, baselines, config)
    two = distributed.train_in_processes(
        objective, examples, selection, baselines, config, tmp_path / "two"
    )
    assert (two.world_size, two.strategy) == (2, "ddp")
    one_config = config.model_copy(
        update={"training": config.training.model_copy(update={"num_processes": 1})}
    )
    one = objective.train(examples, selection, baselines, one_config, tmp_path / "one")
    assert one.world_size == 1
    assert two.history[0]["train_loss"] == pytest.approx(one.history[0]["train_loss"], rel=1e-5)
    assert two.history[0]["val_loss"] == pytest.approx(one.history[0]["val_loss"], rel=1e-5)
    ckpt = "checkpoints/epoch-1/trainable.safetensors"
    wa, wb = load_file(str(tmp_path / "one" / ckpt)), load_file(str(tmp_path / "two" / ckpt))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert (wa[name] - wb[name]).abs().max().item() <= TOLERANCE, name


@pytest.mark.long
def test_fsdp_shards_over_two_processes_trains_like_one_and_resumes(
    tiny_causal_lm, workspace, tmp_path
):
    """training.distributed=fsdp (torch FSDP2 over gloo): the weights each rank holds while
    training are half the model, the result equals one process's within the tolerance, and
    its checkpoint (optimiser state gathered into the one-process format) resumes in FSDP for
    a second epoch that again equals one process's resumed second epoch."""
    from components.generative.examples import ChatExamples

    def config(epochs: int, processes: int):
        return apply_overrides(
            load_preset("finance-assistant"),
            [
                f"model.base_model={tiny_causal_lm}",
                f"training.epochs={epochs}",
                "training.batch_size=6",
                "training.learning_rate=0.01",
                "method.dropout=0",
                "generation.few_shot=0",
                f"training.num_processes={processes}",
                "training.distributed=fsdp",
            ],
        )

    def chat(i: int) -> list[dict]:
        label = LABELS[i % len(LABELS)]
        answer = " ".join([label] * (1 + i % 5))
        return [
            {"role": "user", "content": f"question {i} about my {label}"},
            {"role": "assistant", "content": answer},
        ]

    examples = ChatExamples([chat(i) for i in range(18)], [chat(i) for i in range(18, 24)], [])
    objective = objective_for(config(1, 2))
    selection = objective.select(examples, Baselines({}), config(1, 2))
    two = tmp_path / "two"
    first = distributed.train_in_processes(
        objective, examples, selection, Baselines({}), config(1, 2), two
    )
    assert (first.world_size, first.strategy, first.backend) == (2, "fsdp", "gloo")
    resumed = distributed.train_in_processes(
        objective, examples, selection, Baselines({}), config(2, 2), two
    )
    assert resumed.resumed_from_epoch == 1 and resumed.strategy == "fsdp"
    # one process, the same two calls (the second epoch resumes under a 2-epoch schedule)
    objective.train(examples, selection, Baselines({}), config(1, 1), tmp_path / "one")
    one = objective.train(examples, selection, Baselines({}), config(2, 1), tmp_path / "one")
    assert (one.world_size, one.strategy, one.resumed_from_epoch) == (1, "single", 1)
    for a, b in zip(one.history, resumed.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
    for epoch in (1, 2):
        ckpt = f"checkpoints/epoch-{epoch}/trainable.safetensors"
        wa, wb = load_file(str(tmp_path / "one" / ckpt)), load_file(str(two / ckpt))
        assert wa.keys() == wb.keys()
        for name in wa:
            assert (wa[name] - wb[name]).abs().max().item() <= TOLERANCE, (epoch, name)
    bundle = two / "bundle" / "adapter" / "adapter_model.safetensors"
    assert bundle.is_file()


def test_fsdp_shards_the_weights_and_gathers_them_whole(tiny_causal_lm, tmp_path):
    """What each of two FSDP processes holds: half of every weight it shards; the gathered
    state is the whole model, on every rank."""
    reports = distributed.launch(
        distributed.TrainJob(config={}, inputs=str(tiny_causal_lm), workdir=str(tmp_path)),
        2,
        worker=fsdp_shard_worker,
    )
    assert [r["rank"] for r in reports] == [0, 1]
    for report in reports:
        assert report["local"] * 2 == pytest.approx(report["total"], rel=0.01)
        assert report["gathered_equal"] is True


def fsdp_shard_worker(job: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from components import fsdp

    torch.distributed.init_process_group("gloo")
    model = AutoModelForCausalLM.from_pretrained(job["inputs"])
    sharded = fsdp.shard(model, torch.device("cpu"))
    local = sum(p.to_local().numel() for p in sharded.parameters())
    for p in sharded.parameters():  # something to gather back
        p.data.add_(1.0)
    fsdp.gather_into(sharded, model)
    expected = AutoModelForCausalLM.from_pretrained(job["inputs"]).state_dict()
    equal = all(torch.allclose(model.state_dict()[k], v + 1.0) for k, v in expected.items())
    torch.distributed.destroy_process_group()
    return {
        "rank": int(os.environ["RANK"]),
        "local": local,
        "total": sum(p.numel() for p in model.parameters()),
        "gathered_equal": equal,
    }


@pytest.mark.parametrize(
    ("strategy", "shares"),
    [
        # rank 1's share padded with the last row, so every rank makes as many forward passes
        ("fsdp", [[0, 1, 2, 3], [4, 5, 6, 6]]),
        # 3 ranks: padding inside the gathered rows too, not only at their end
        ("ddp", [[0, 1, 2], [3, 4, 6], [5, 6, 6]]),
    ],
)
def test_each_rank_validates_its_share_of_the_rows(strategy, shares, tmp_path):
    """Validation is split between the processes: 7 rows in contiguous shares of equal
    length (under FSDP every forward pass is a collective, so the ranks must make the same
    number). FSDP scores the sharded copy on every rank (not rank 0 alone on its host copy);
    rank 0 summarises all 7 rows once, in order, each from the rank that owns it, and its
    scores equal the returned model's on all rows in one process."""
    config = apply_overrides(
        load_preset("custom"),
        [
            "training.epochs=1",
            f"training.num_processes={len(shares)}",
            f"training.distributed={strategy}",
            "training.precision=fp32",
            "training.warmup_ratio=0",
        ],
    )
    job = distributed.TrainJob(
        config=config.model_dump(mode="json"), inputs="", workdir=str(tmp_path)
    )
    reports = distributed.launch(job, len(shares), worker=validation_share_worker)
    copy = "sharded" if strategy == "fsdp" else "plain"
    assert [r["scored"] for r in reports] == [[(copy, share)] for share in shares]
    first = reports[0]
    assert first["summarized"] == [list(range(7))]  # every row once, in order
    assert all(r["summarized"] == [] for r in reports[1:])
    assert first["history"][0]["val_loss"] == pytest.approx(first["host_val_loss"], rel=1e-6)
    assert all("val_loss" not in r["history"][0] for r in reports[1:])  # rank 0 records


class _Blocks(torch.nn.Module):
    """Embeddings, a list of blocks (FSDP's units) and a head: the shape `fsdp.shard` cuts."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(16, 8)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(2))
        self.head = torch.nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids).mean(1)
        for block in self.blocks:
            x = torch.tanh(block(x))
        return self.head(x)


def validation_share_worker(job: dict) -> dict:
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.functional import cross_entropy

    from components.config import PipelineConfig
    from components.training import Recipe, fit

    torch.manual_seed(0)
    model = _Blocks()
    ids = torch.randint(0, 16, (8, 5))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids[:, 0] % 2}
    val_ids = torch.randint(0, 16, (7, 5))
    scored, summarized = [], []

    def score(m: torch.nn.Module, indices) -> dict:
        rows = list(indices)
        scored.append(("sharded" if isinstance(m, FSDPModule) else "plain", rows))
        with torch.inference_mode():  # as the objectives' validation runs
            out = m(val_ids[rows], torch.ones_like(val_ids[rows]))
        return {
            "row": torch.tensor(rows),
            "loss": cross_entropy(out, val_ids[rows, 0] % 2, reduction="none"),
        }

    def summarize(stats: dict) -> dict:
        summarized.append(stats["row"].tolist())
        return {"val_loss": float(stats["loss"].mean())}

    recipe = Recipe(
        model=model,
        param_groups=[{"params": list(model.parameters()), "lr": 0.1}],
        train_size=8,
        steps_per_epoch=1,
        batches=lambda epoch: [batch],
        forward=lambda m, b, d: m(b["input_ids"].to(d), b["attention_mask"].to(d)),
        loss=lambda out, b, d: cross_entropy(out, b["labels"].to(d)),
        val_size=7,
        score=score,
        summarize=summarize,
        best_key=lambda h: (-h["val_loss"],),
    )
    config = PipelineConfig.model_validate(job["config"])
    trained, result = fit(config, recipe, job["workdir"], resume=False)
    during, summaries = list(scored), list(summarized)
    return {
        "scored": during,
        "summarized": summaries,
        "history": result.history,
        "host_val_loss": recipe.validate(trained)["val_loss"],
    }


def test_a_worker_error_is_reported_with_its_rank_and_message(no_dropout_bert, tmp_path):
    config = _config(no_dropout_bert)
    job = distributed.TrainJob(
        config=config.model_dump(mode="json"),
        inputs=str(tmp_path / "missing.json"),
        workdir=str(tmp_path / "work"),
    )
    with pytest.raises(distributed.DistributedTrainingError) as failed:
        distributed.launch(job, 2)
    message = str(failed.value)
    assert "exit code 1" in message and "missing.json" in message
    assert "rank 0" in message or "rank 1" in message
    assert not (tmp_path / "work").exists()
