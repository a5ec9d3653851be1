"""Data sources → raw split frames with their version (`load_splits`).

Sources (`DataConfig.path`; relative paths resolve against the project folder):

* one CSV, JSON Lines (`.jsonl`, or `.json` holding JSON lines or one array of objects) or
  Parquet file: split here into train/validation/test, stratified by label, with
  `config.split`'s fractions and seed;
* a folder of split files named `train`, `validation` (or `valid`, `val`, `dev`) and `test`,
  any supported extension. A folder holding exactly one data file is split like a single file.
  Otherwise it needs `train` and `test`; a missing `validation` is carved out of `train`
  (`validation_fraction` of its rows, stratified, with the split seed);
* `hf://<dataset id>[:<config name>]`: a Hugging Face dataset through `datasets.load_dataset`
  (`config.rev` is then the Hub revision); its splits map like a folder's files.

With `config.rev` set, a local path is read as it was at that git revision through DVC's file
system: git-tracked files from git, DVC-tracked ones from the local cache or the DVC remote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from components.config import DataConfig
from components.data.readers import FORMATS, SUPPORTED, read_file
from components.data.splits import SPLITS, RawSplits, split_off, split_single, subsample
from components.data.trees import DvcTree, LocalTree, Tree
from components.data.versioning import (
    DataVersion,
    check_dvc_workspace,
    content_hash,
    find_dvc_md5,
    resolve_commit,
)
from components.errors import DataLoadError

HF_PREFIX = "hf://"
SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


def _join(tree: Tree, folder: str, name: str) -> str:
    return (
        str(PurePosixPath(folder) / name) if isinstance(tree, DvcTree) else str(Path(folder) / name)
    )


def _arrange(names: Sequence[str], where: str, what: str) -> dict[str, str] | str:
    """Map split names to source entries, or return the one entry to split.

    `names` are file names (with extensions) or HF split names.
    """
    if len(names) == 1:
        return names[0]
    found: dict[str, str] = {}
    unknown = []
    for name in names:
        stem = name.rsplit(".", 1)[0] if what == "files" else name
        split = SPLIT_NAMES.get(stem.lower())
        if split is None:
            unknown.append(name)
        elif split in found:
            raise DataLoadError(
                f"{where} has two {split} {what}: {found[split]} and {name}; keep one"
            )
        else:
            found[split] = name
    if unknown or "train" not in found or "test" not in found:
        raise DataLoadError(
            f"{where} holds {what} {sorted(names)}: expected exactly one {what[:-1]} to split, "
            "or `train` and `test` (plus optional `validation`, `valid`, `val` or `dev`)"
            + (f"; cannot tell which split {unknown} are" if unknown else "")
        )
    return found


def _read_local_source(tree: Tree, target: str) -> dict[str, pd.DataFrame] | pd.DataFrame:
    """A folder's split frames, or the single frame to split."""
    if not tree.isdir(target):
        return read_file(tree, target)
    entries = [n for n in tree.listdir(target) if not n.startswith(".")]
    files = [n for n in entries if PurePosixPath(n).suffix.lower() in FORMATS]
    where = tree.describe(target)
    if not files:
        raise DataLoadError(
            f"{where} is a folder without data files ({SUPPORTED}); found {entries or 'nothing'}"
        )
    arranged = _arrange(files, where, "files")
    if isinstance(arranged, str):
        return read_file(tree, _join(tree, target, arranged))
    return {split: read_file(tree, _join(tree, target, name)) for split, name in arranged.items()}


def _hf_frames(dataset_dict: Mapping[str, Any], label_column: str) -> dict[str, pd.DataFrame]:
    """Frames of a `datasets.DatasetDict`; a `ClassLabel` label column becomes label names."""
    frames = {}
    for split, dataset in dataset_dict.items():
        frame = dataset.to_pandas()
        feature = dataset.features.get(label_column)
        names = getattr(feature, "names", None)
        if names is not None and label_column in frame.columns:
            values = [
                names[v] if isinstance(v, int | np.integer) and 0 <= v < len(names) else np.nan
                for v in frame[label_column]
            ]
            frame[label_column] = pd.Series(values, index=frame.index, dtype=object)
        frames[split] = frame.reset_index(drop=True)
    return frames


def _load_hf(config: DataConfig, rev: str | None) -> dict[str, pd.DataFrame] | pd.DataFrame:
    spec = config.path[len(HF_PREFIX) :]
    dataset_id, _, name = spec.partition(":")
    if not dataset_id:
        raise DataLoadError(f"data.path {config.path!r} names no dataset: use hf://<id>[:<config>]")
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise DataLoadError(f"reading {config.path} needs the `datasets` package: {err}") from err
    try:
        loaded = datasets.load_dataset(dataset_id, name or None, revision=rev)
    except Exception as err:
        offline = bool(datasets.config.HF_HUB_OFFLINE) or any(
            os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"}
            for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
        )
        if isinstance(err, ConnectionError):  # what datasets raises offline or unreachable
            reason = (
                "offline mode is on (HF_HUB_OFFLINE=1)" if offline else "the Hub is unreachable"
            )
            raise DataLoadError(
                f"cannot load Hugging Face dataset {spec!r}: {reason} and it is not in the local "
                f"cache ({datasets.config.HF_DATASETS_CACHE}). Load it once with network "
                "access, or export it to a file under data/ and track it with DVC "
                f"[{type(err).__name__}: {err}]"
            ) from None
        at = f" at revision {rev!r}" if rev else ""
        raise DataLoadError(
            f"cannot load Hugging Face dataset {spec!r}{at}: {type(err).__name__}: {err}"
        ) from None
    frames = _hf_frames(loaded, config.label_column)
    arranged = _arrange(list(frames), config.path, "splits")
    if isinstance(arranged, str):
        return frames[arranged]
    return {split: frames[name] for split, name in arranged.items()}


def _missing_path_error(
    tree: Tree, target: str, root: str | None, config: DataConfig, rev: str | None
) -> str:
    message = f"data path {tree.describe(target)} does not exist"
    if rev is None:
        project = tree.project_dir if isinstance(tree, LocalTree) else root
        message += f" (data.path={config.path!r}; relative paths resolve against {project})"
        tracked = find_dvc_md5(tree, target, root)
        if tracked is not None:
            message += f"; it is tracked by {tree.describe(tracked[0])}: run `dvc pull`"
    else:
        message += "; check data.path and data.rev (`git ls-tree -r --name-only <rev>`)"
    return message


def _existing_parent(path: Path) -> Path:
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _load_path(
    config: DataConfig, project_dir: Path, rev: str | None
) -> tuple[dict[str, pd.DataFrame] | pd.DataFrame, str | None, str | None]:
    """(source frames, git commit, DVC md5) of a local path, in the workspace or at `rev`."""
    path = Path(config.path).expanduser()
    target = Path(os.path.normpath(path if path.is_absolute() else project_dir / path))
    inside = target.is_relative_to(project_dir)
    # outside the project (workspace reads only), the commit is that of the data's own repo
    repo = project_dir if inside or rev is not None else _existing_parent(target)
    commit = resolve_commit(repo, rev)
    tree: Tree
    if rev is None:
        tree = LocalTree(project_dir)
        where, root = str(target), (str(project_dir) if inside else None)
    else:
        if not inside:
            raise DataLoadError(
                f"data.path {config.path!r} is outside the project {project_dir}; with "
                f"data.rev={rev!r} it must be a path inside the project's repository"
            )
        assert commit is not None
        tree = DvcTree(project_dir, rev, commit)
        where, root = target.relative_to(project_dir).as_posix(), "."
    try:
        if not tree.exists(where):
            raise DataLoadError(_missing_path_error(tree, where, root, config, rev))
        tracked = find_dvc_md5(tree, where, root)
        if rev is None and tracked is not None:  # versioned data first, then read it
            check_dvc_workspace(target, Path(tracked[0]))
        source = _read_local_source(tree, where)
    finally:
        tree.close()
    return source, commit, tracked[1] if tracked else None


def load_splits(config: DataConfig, project_dir: Path) -> RawSplits:
    """Read `config.path` (at `config.rev`) as train/validation/test frames, with its version."""
    project_dir = Path(project_dir).resolve()
    rev = (config.rev or "").strip() or None
    commit: str | None = None
    dvc_md5: str | None = None
    if config.path.startswith(HF_PREFIX):
        source = _load_hf(config, rev)
    else:
        source, commit, dvc_md5 = _load_path(config, project_dir, rev)

    if isinstance(source, pd.DataFrame):
        frames = split_single(source, config.split, config.label_column)
        was_split = True
    elif "validation" in source:
        frames = {split: source[split] for split in SPLITS}
        was_split = False
    else:
        train, validation = split_off(
            source["train"],
            config.split.validation_fraction,
            config.split.seed,
            config.label_column,
        )
        frames = {"train": train, "validation": validation, "test": source["test"]}
        was_split = True
    if config.max_train_examples is not None:
        frames["train"] = subsample(
            frames["train"], config.max_train_examples, config.split.seed, config.label_column
        )
    version = DataVersion(
        source=config.path,
        rev=rev,
        git_commit=commit,
        dvc_md5=dvc_md5,
        content_hash=content_hash(frames),
    )
    return RawSplits(frames=frames, version=version, was_split=was_split)
