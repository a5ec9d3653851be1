"""The real public datasets used by the benchmarks (read in place from `shared/datasets`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from components.examples import Examples, TextSplit

SEED = 13


@dataclass
class BenchData:
    name: str
    examples: Examples
    max_length: int


def datasets_dir() -> Path:
    """`PEFTOPS_DATASETS`, else `../shared/datasets` beside the project folder."""
    env = os.environ.get("PEFTOPS_DATASETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2]
    for candidate in (
        here.parent / "shared" / "datasets",
        Path.cwd().parent / "shared" / "datasets",
    ):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "datasets not found: set PEFTOPS_DATASETS to the shared/datasets folder"
    )


def _stratified(frame: pd.DataFrame, size: int | None, seed: int = SEED) -> pd.DataFrame:
    if size is None or size >= len(frame):
        return frame
    try:
        kept, _ = train_test_split(
            frame, train_size=size, stratify=frame["label"], random_state=seed
        )
    except ValueError:  # too few rows left over to stratify: a plain sample
        kept = frame.sample(n=size, random_state=seed)
    return kept


def _split(frame: pd.DataFrame, labels: list[str]) -> TextSplit:
    index = {name: i for i, name in enumerate(labels)}
    return TextSplit(frame["text"].astype(str).tolist(), [index[x] for x in frame["label"]])


def _pubmedqa_split(root: Path, split: str) -> pd.DataFrame:
    """The question first, so truncation to the model's length cuts the abstract's end."""
    raw = pd.read_json(root / "pubmedqa" / f"{split}.jsonl", lines=True)
    text = raw["question"].astype(str) + "\n" + raw["context"].astype(str)
    return pd.DataFrame({"text": text, "label": raw["decision"]})


def load_bench_dataset(
    name: str, max_train: int | None = None, max_test: int | None = None
) -> BenchData:
    """banking77 (its train/test; validation = 10% of train), medical_abstracts (the
    published test split, split 70/15/15 stratified) or pubmedqa (PQA-L's 450/50/500 as
    published: question and abstract as one text, the yes/no/maybe decision as the label);
    fixed seeds; optional subsampling."""
    root = datasets_dir()
    if name == "banking77":
        train = pd.read_csv(root / "banking77" / "train.csv").rename(columns={"category": "label"})
        test = pd.read_csv(root / "banking77" / "test.csv").rename(columns={"category": "label"})
        train, val = train_test_split(
            train, test_size=0.1, stratify=train["label"], random_state=SEED
        )
        max_length = 64
    elif name == "medical_abstracts":
        folder = root / "medical_abstracts"
        names = pd.read_csv(folder / "medical_tc_labels.csv")
        mapping = dict(zip(names["condition_label"], names["condition_name"], strict=True))
        frame = pd.read_csv(folder / "medical_tc_test.csv")
        frame = pd.DataFrame(
            {"text": frame["medical_abstract"], "label": frame["condition_label"].map(mapping)}
        )
        train, rest = train_test_split(
            frame, test_size=0.3, stratify=frame["label"], random_state=SEED
        )
        val, test = train_test_split(rest, test_size=0.5, stratify=rest["label"], random_state=SEED)
        max_length = 256
    elif name == "pubmedqa":
        train, val, test = (
            _pubmedqa_split(root, split) for split in ("train", "validation", "test")
        )
        max_length = 256  # all-MiniLM-L6-v2's training length: the question and ~180 words
    else:
        raise ValueError(
            f"unknown benchmark dataset {name!r}; use banking77, medical_abstracts or pubmedqa"
        )
    labels = sorted(set(train["label"]))
    train, test = _stratified(train, max_train), _stratified(test, max_test)
    val = _stratified(val, max_test)
    examples = Examples(labels, _split(train, labels), _split(val, labels), _split(test, labels))
    return BenchData(name, examples, max_length)


def export_bench_dataset(name: str, folder: Path) -> tuple[Path, BenchData]:
    """Write a benchmark dataset's splits (as `load_bench_dataset` makes them) to
    train/validation/test CSVs in `folder`, so the pipeline's flows can read it as any user's
    data folder."""
    data = load_bench_dataset(name)
    folder.mkdir(parents=True, exist_ok=True)
    ex = data.examples
    for split, part in (("train", ex.train), ("validation", ex.validation), ("test", ex.test)):
        frame = pd.DataFrame({"text": part.texts, "label": [ex.labels[i] for i in part.label_ids]})
        frame.to_csv(folder / f"{split}.csv", index=False)
    return folder, data
