"""Load a text-classification data set as raw train/validation/test frames, with its version.

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

The loader fails only on what makes a source unreadable (missing path, empty file, invalid
UTF-8, broken CSV quoting, unparsable JSON/Parquet), with a `DataLoadError` naming the file and
place. Bad rows (empty cells, unknown labels, short texts) are kept as they are, for the
validation step to report: CSV cells are read as strings and empty cells become NaN. Each
frame's index is the 0-based data-row number in its source file, also after splitting.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from components.config import DataConfig, SplitConfig
from components.examples import label_key

SPLITS = ("train", "validation", "test")
HF_PREFIX = "hf://"
FORMATS = {
    ".csv": "csv",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}
_SUPPORTED = ".csv, .jsonl/.json (JSON lines) or .parquet"


class DataLoadError(Exception):
    """A data source that cannot be read; the message names the place and what to do."""


@dataclass(frozen=True)
class DataVersion:
    """What data a run read: enough to read exactly the same data again."""

    source: str
    rev: str | None
    git_commit: str | None
    dvc_md5: str | None
    content_hash: str

    def as_tags(self) -> dict[str, str]:
        """Flat `data.*` string tags for MLflow; fields that are None are left out."""
        fields = {
            "source": self.source,
            "rev": self.rev,
            "git_commit": self.git_commit,
            "dvc_md5": self.dvc_md5,
            "content_hash": self.content_hash,
        }
        return {f"data.{k}": str(v) for k, v in fields.items() if v is not None}


@dataclass
class RawSplits:
    """Raw frames per split ("train", "validation", "test") and the version they came from.

    `was_split` is True when this loader made a split itself: a single file split three ways,
    or validation carved out of a train file.
    """

    frames: dict[str, pd.DataFrame]
    version: DataVersion
    was_split: bool


# --------------------------------------------------------------------------- file access


class _Tree(Protocol):
    """Read-only view of the files a path can point to (the workspace, or git+DVC at a rev)."""

    def describe(self, path: str) -> str: ...
    def exists(self, path: str) -> bool: ...
    def isdir(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def read_bytes(self, path: str) -> bytes: ...
    def close(self) -> None: ...


class _LocalTree:
    """The working tree; paths are absolute."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir

    def describe(self, path: str) -> str:
        p = Path(path)
        return str(p.relative_to(self.project_dir)) if p.is_relative_to(self.project_dir) else path

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def isdir(self, path: str) -> bool:
        return Path(path).is_dir()

    def listdir(self, path: str) -> list[str]:
        return sorted(p.name for p in Path(path).iterdir())

    def read_bytes(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as err:
            raise DataLoadError(f"cannot read {self.describe(path)}: {err.strerror}") from err

    def close(self) -> None:
        pass


class _DvcTree:
    """The project at a git commit through `dvc.api.DVCFileSystem`; paths are relative POSIX."""

    def __init__(self, project_dir: Path, rev: str, commit: str) -> None:
        from dvc.api import DVCFileSystem

        self.rev = rev
        self.label = rev if commit.startswith(rev) else f"{rev} ({commit[:12]})"
        self.fs = DVCFileSystem(str(project_dir), rev=commit)

    def describe(self, path: str) -> str:
        return f"{path} at git revision {self.label}"

    def _call(self, what: str, path: str, fn, *args):
        try:
            return fn(path, *args)
        except FileNotFoundError as err:
            raise DataLoadError(f"{self.describe(path)} does not exist") from err
        except DataLoadError:
            raise
        except Exception as err:  # DVC raises many kinds (missing cache/remote, bad config)
            cause = f" (cause: {err.__cause__})" if err.__cause__ else ""
            raise DataLoadError(
                f"DVC could not {what} {self.describe(path)}: {type(err).__name__}: {err}{cause}. "
                "Its DVC-tracked data is neither in the local cache nor on the DVC remote: push "
                "it (`dvc push --all-commits`) where it was added, or check the remote config"
            ) from err

    def exists(self, path: str) -> bool:
        # not fs.exists: that answers False when DVC cannot fetch a tracked folder's listing
        def info(p: str) -> bool:
            try:
                self.fs.info(p)
            except FileNotFoundError:
                return False
            return True

        return bool(self._call("look up", path, info))

    def isdir(self, path: str) -> bool:
        return bool(self._call("look up", path, self.fs.isdir))

    def listdir(self, path: str) -> list[str]:
        entries = self._call("list", path, self.fs.ls, False)
        return sorted(PurePosixPath(str(e)).name for e in entries)

    def read_bytes(self, path: str) -> bytes:
        def read(p: str) -> bytes:
            with self.fs.open(p, "rb") as handle:
                return handle.read()

        return self._call("read", path, read)

    def close(self) -> None:
        self.fs.close()


def _join(tree: _Tree, folder: str, name: str) -> str:
    return (
        str(PurePosixPath(folder) / name)
        if isinstance(tree, _DvcTree)
        else str(Path(folder) / name)
    )


# --------------------------------------------------------------------------- parsing


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text of a file (a leading BOM dropped), or a DataLoadError naming the bad byte."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = data[:offset].count(b"\n") + 1
        raise DataLoadError(
            f"{where} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}); re-save the file as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`)"
        ) from None


def _record_start_lines(text: str) -> list[int]:
    """1-based physical line on which each CSV record starts (quote-aware; blank lines count)."""
    starts, line, in_quote, i = [1], 1, False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            in_quote = not in_quote
        elif char in "\r\n":
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
            line += 1
            if not in_quote:
                starts.append(line)
        i += 1
    return starts


def _csv_error_line(text: str, message: str) -> int | None:
    """The physical line a pandas C-parser error points at (it counts records, not lines)."""
    match = re.search(r"starting at row (\d+)", message)
    record = int(match.group(1)) if match else None
    if record is None and (match := re.search(r"fields in line (\d+)", message)):
        record = int(match.group(1)) - 1
    if record is None:
        return None
    starts = _record_start_lines(text)
    return starts[record] if record < len(starts) else None


_QUOTING_HINT = (
    "Quote fields that contain commas, quotes or newlines, double quotes inside quoted fields "
    '(""), and close every opening quote'
)


def _check_quoting(text: str, where: str) -> None:
    """Refuse stray quotes that pandas' parser accepts silently: a lone `"` inside a quoted
    field (the text is altered) or a field whose quote is never closed (it swallows the
    records after it, up to the next quote)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a long text is not a quoting error
    try:
        while True:
            start = reader.line_num + 1
            try:
                next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                place = (
                    f"line {start}"
                    if reader.line_num <= start
                    else f"the record starting at line {start} (error at line {reader.line_num})"
                )
                raise DataLoadError(
                    f"{where}: broken CSV at {place}: {err} (a quote inside a quoted field "
                    f"that is not doubled, or a quote that is never closed). {_QUOTING_HINT}"
                ) from None
    finally:
        csv.field_size_limit(limit)


def _read_csv(data: bytes, where: str) -> pd.DataFrame:
    text = _decode(data, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise DataLoadError(
            f"{where} has no header row (only blank lines); the first line must name the columns"
        ) from None
    except pd.errors.ParserWarning as err:
        raise DataLoadError(
            f"{where}: data rows have more fields than the header row ({err}); quote texts that "
            'contain commas ("...") and remove trailing commas'
        ) from None
    except pd.errors.ParserError as err:
        message = str(err).strip()
        line = _csv_error_line(text, message)
        # pandas counts records (not lines) from 0 or 1: drop its numbers, keep the cause
        detail = re.sub(r"^Error tokenizing data\. (C error: )?", "", message)
        detail = re.sub(r" (starting at row|in line) \d+", "", detail)
        place = f"line {line}" if line is not None else "an unknown line"
        raise DataLoadError(f"{where}: broken CSV at {place}: {detail}. {_QUOTING_HINT}") from None
    _check_quoting(text, where)
    return frame


def _read_json(data: bytes, where: str) -> pd.DataFrame:
    """JSON lines (one object per line; blank lines skipped) or one JSON array of objects."""
    text = _decode(data, where)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataLoadError(
                f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
            ) from None
        numbered = list(enumerate(records, start=1))
        unit = "element"
    else:
        numbered = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((lineno, json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataLoadError(
                    f"{where}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}); "
                    "a JSON Lines file holds one JSON object per line"
                ) from None
        unit = "line"
    for number, record in numbered:
        if not isinstance(record, dict):
            raise DataLoadError(
                f"{where}, {unit} {number}: expected a JSON object with the data columns, got "
                f"{type(record).__name__}"
            )
    # object dtype keeps JSON values as they are (no int -> float promotion around nulls)
    frame = pd.DataFrame([r for _, r in numbered], dtype=object)
    return frame.reset_index(drop=True)


def _read_parquet(data: bytes, where: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # pyarrow raises ArrowInvalid/OSError variants
        raise DataLoadError(
            f"{where} cannot be read as Parquet: {err}. Check that it is a complete Parquet "
            "file (not a renamed CSV, nor a partly written or un-pulled one)"
        ) from None
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0:
        return frame
    named = any(name is not None for name in frame.index.names)
    return frame.reset_index(drop=not named)


def _read_file(tree: _Tree, path: str) -> pd.DataFrame:
    where = tree.describe(path)
    fmt = FORMATS.get(PurePosixPath(path.replace("\\", "/")).suffix.lower())
    if fmt is None:
        raise DataLoadError(f"{where}: unsupported file type; use {_SUPPORTED}")
    data = tree.read_bytes(path)
    if not data:
        raise DataLoadError(
            f"{where} is empty (0 bytes); it needs a header/records. If it is DVC-tracked, "
            "`dvc pull` it; otherwise re-export it"
        )
    reader = {"csv": _read_csv, "json": _read_json, "parquet": _read_parquet}[fmt]
    return reader(data, where)


# --------------------------------------------------------------------------- sources


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


def _read_local_source(tree: _Tree, target: str) -> dict[str, pd.DataFrame] | pd.DataFrame:
    """A folder's split frames, or the single frame to split."""
    if not tree.isdir(target):
        return _read_file(tree, target)
    entries = [n for n in tree.listdir(target) if not n.startswith(".")]
    files = [n for n in entries if PurePosixPath(n).suffix.lower() in FORMATS]
    where = tree.describe(target)
    if not files:
        raise DataLoadError(
            f"{where} is a folder without data files ({_SUPPORTED}); found {entries or 'nothing'}"
        )
    arranged = _arrange(files, where, "files")
    if isinstance(arranged, str):
        return _read_file(tree, _join(tree, target, arranged))
    return {split: _read_file(tree, _join(tree, target, name)) for split, name in arranged.items()}


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


# --------------------------------------------------------------------------- versions


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(project_dir), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # git not installed
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _resolve_commit(project_dir: Path, rev: str | None) -> str | None:
    """The commit `rev` names (HEAD for the workspace); None for a workspace outside git."""
    if rev is None:
        return _git(project_dir, "rev-parse", "--verify", "--quiet", "HEAD")
    if _git(project_dir, "rev-parse", "--is-inside-work-tree") != "true":
        raise DataLoadError(
            f"data.rev={rev!r} is set but {project_dir} is not in a git repository; unset "
            "data.rev to read the workspace"
        )
    commit = (
        None
        if rev.startswith("-")
        else _git(project_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    )
    if not commit:
        raise DataLoadError(
            f"git revision {rev!r} does not exist in {project_dir}; use a commit, branch or tag "
            "(`git log --oneline`, `git tag`)"
        )
    return commit


def _dvc_out_md5(document: Any, out_dir: PurePosixPath, target: PurePosixPath) -> str | None:
    """md5 of the output in a .dvc / dvc.lock `outs` list that is `target` or holds it."""
    outs = document.get("outs") if isinstance(document, dict) else None
    for out in outs or []:
        if not isinstance(out, dict) or "path" not in out:
            continue
        out_path = PurePosixPath(os.path.normpath(out_dir / str(out["path"])).replace("\\", "/"))
        if target == out_path or out_path in target.parents:
            md5 = out.get("md5")
            return str(md5) if md5 else None
    return None


def _find_dvc_md5(tree: _Tree, target: str, root: str | None) -> tuple[str, str] | None:
    """(.dvc or dvc.lock file, md5) of the DVC output holding `target`, searching upward.

    `<dir>.dvc` is looked for next to the target and next to each parent up to `root` (the
    project folder in the tree's terms; None for a path outside the project), then `dvc.lock`
    at the root for pipeline outputs.
    """
    path = PurePosixPath(target.replace("\\", "/"))
    stop = PurePosixPath(root.replace("\\", "/")) if root is not None else None
    for current in [path, *path.parents]:
        if current == stop or current.name == "":
            break
        dvc_file = str(current.parent / f"{current.name}.dvc")
        found = _read_dvc_yaml(tree, dvc_file)
        if found is not None and (md5 := _dvc_out_md5(found, current.parent, path)):
            return dvc_file, md5
        if stop is None and _is_repo_root(tree, str(current.parent)):
            break
    if stop is None:
        return None
    lock = str(stop / "dvc.lock")
    document = _read_dvc_yaml(tree, lock)
    if isinstance(document, dict):
        for stage in (document.get("stages") or {}).values():
            if md5 := _dvc_out_md5(stage, stop, path):
                return lock, md5
    return None


def _is_repo_root(tree: _Tree, folder: str) -> bool:
    return isinstance(tree, _LocalTree) and any(
        (Path(folder) / marker).exists() for marker in (".dvc", ".git")
    )


def _read_dvc_yaml(tree: _Tree, path: str) -> Any:
    try:
        if not tree.exists(path) or tree.isdir(path):
            return None
        return yaml.safe_load(tree.read_bytes(path))
    except (DataLoadError, yaml.YAMLError):
        return None


def _plain(value: Any) -> Any:
    """A JSON-able, type-stable form of a cell for hashing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def content_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    """sha256 over split names, columns, row indexes and cell values (NaN/None alike)."""
    digest = hashlib.sha256()
    for split in sorted(frames):
        frame = frames[split]
        header = {"split": split, "columns": [str(c) for c in frame.columns]}
        digest.update(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        for index, row in zip(
            frame.index.tolist(), frame.itertuples(index=False, name=None), strict=True
        ):
            cells = [_plain(index), [_plain(v) for v in row]]
            digest.update(json.dumps(cells, ensure_ascii=False, default=str).encode() + b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------- splitting


def _stratify_labels(frame: pd.DataFrame, label_column: str) -> pd.Series | None:
    if label_column not in frame.columns:
        return None
    labels = frame[label_column]
    if labels.isna().any():
        return None
    labels = labels.map(label_key)  # 1 and 1.0 are one class, as in validation
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        return None
    return labels


def _split_off(
    frame: pd.DataFrame, size: float | int, seed: int, label_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, taken) with `size` rows (fraction or count) taken, stratified when possible.

    Falls back to an unstratified split, and for frames too small to split keeps every row.
    Both parts keep the original index, sorted.
    """
    stratify = _stratify_labels(frame, label_column)
    for labels in (stratify, None) if stratify is not None else (None,):
        try:
            kept, taken = train_test_split(
                frame, test_size=size, random_state=seed, shuffle=True, stratify=labels
            )
        except ValueError:
            continue
        return kept.sort_index(), taken.sort_index()
    return frame, frame.iloc[0:0]


def _split_single(
    frame: pd.DataFrame, split: SplitConfig, label_column: str
) -> dict[str, pd.DataFrame]:
    rest, test = _split_off(frame, split.test_fraction, split.seed, label_column)
    share = split.validation_fraction / (1 - split.test_fraction)
    train, validation = _split_off(rest, share, split.seed, label_column)
    return {"train": train, "validation": validation, "test": test}


def _subsample(frame: pd.DataFrame, limit: int, seed: int, label_column: str) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    kept, _ = _split_off(frame, len(frame) - limit, seed, label_column)
    return kept


# --------------------------------------------------------------------------- entry points


def _missing_path_error(
    tree: _Tree, target: str, root: str | None, config: DataConfig, rev: str | None
) -> str:
    message = f"data path {tree.describe(target)} does not exist"
    if rev is None:
        project = tree.project_dir if isinstance(tree, _LocalTree) else root
        message += f" (data.path={config.path!r}; relative paths resolve against {project})"
        tracked = _find_dvc_md5(tree, target, root)
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
    commit = _resolve_commit(repo, rev)
    tree: _Tree
    if rev is None:
        tree = _LocalTree(project_dir)
        where, root = str(target), (str(project_dir) if inside else None)
    else:
        if not inside:
            raise DataLoadError(
                f"data.path {config.path!r} is outside the project {project_dir}; with "
                f"data.rev={rev!r} it must be a path inside the project's repository"
            )
        assert commit is not None
        tree = _DvcTree(project_dir, rev, commit)
        where, root = target.relative_to(project_dir).as_posix(), "."
    try:
        if not tree.exists(where):
            raise DataLoadError(_missing_path_error(tree, where, root, config, rev))
        tracked = _find_dvc_md5(tree, where, root)
        if rev is None and tracked is not None:  # versioned data first, then read it
            check_dvc_workspace(target, Path(tracked[0]))
        source = _read_local_source(tree, where)
    finally:
        tree.close()
    return source, commit, tracked[1] if tracked else None


def _dvc_root(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def check_dvc_workspace(target: Path, dvc_file: Path) -> None:
    """Refuse DVC-tracked data whose workspace copy is not what its `.dvc` file (or `dvc.lock`)
    records, or whose `.dvc` file is not committed to git: such a run could not be traced back
    to a data version. Uses DVC's own `data status` (cached file hashes make it cheap)."""
    from dvc.repo import Repo

    root = _dvc_root(dvc_file.parent)
    if root is None:  # a stray .dvc file outside any DVC project: nothing to check against
        return
    relative = os.path.relpath(target, root)
    try:
        with Repo(str(root)) as repo:
            status = repo.data_status(targets=[relative], granular=True)
    except Exception as err:  # not a usable DVC/git project: report, do not guess
        raise DataLoadError(
            f"cannot check {relative} against {os.path.relpath(dvc_file, root)} with DVC "
            f"({type(err).__name__}: {err}); fix the DVC project in {root} (`dvc doctor`)"
        ) from err
    changes = [
        f"{kind}: {path}"
        for kind, paths in sorted((status.get("uncommitted") or {}).items())
        for path in paths
    ]
    meta = os.path.relpath(dvc_file, root)
    if dvc_file.name == "dvc.lock":
        fix = "`dvc commit` (or `dvc repro`) and `git commit dvc.lock`"
    else:
        out = meta[: -len(".dvc")]
        fix = f"`dvc add {out} && git add {meta} && git commit -m 'data: ...'`"
    if changes:
        more = f" and {len(changes) - 8} more" if len(changes) > 8 else ""
        shown = "; ".join(changes[:8]) + more
        raise DataLoadError(
            f"the DVC-tracked data in {relative} differs from what {meta} records ({shown}). "
            f"A run must read a versioned dataset: version the change with {fix}, or restore "
            f"the recorded data with `dvc checkout {meta}`"
        )
    committed = [
        f"{kind}: {path}"
        for kind, paths in sorted((status.get("committed") or {}).items())
        for path in paths
    ]
    if committed:
        raise DataLoadError(
            f"{meta} records a version of {relative} that is not committed to git "
            f"({'; '.join(committed[:8])}): commit it first (`git add {meta} && git commit`)"
        )


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
        frames = _split_single(source, config.split, config.label_column)
        was_split = True
    elif "validation" in source:
        frames = {split: source[split] for split in SPLITS}
        was_split = False
    else:
        train, validation = _split_off(
            source["train"],
            config.split.validation_fraction,
            config.split.seed,
            config.label_column,
        )
        frames = {"train": train, "validation": validation, "test": source["test"]}
        was_split = True
    if config.max_train_examples is not None:
        frames["train"] = _subsample(
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


def encode_labels(
    frames: Mapping[str, pd.DataFrame], label_column: str, labels: Sequence[str] = ()
) -> tuple[list[str], dict[str, list[int]]]:
    """The label list and each split's label ids.

    The list is `labels` when declared, else the sorted distinct labels of the train split.
    Labels match by `label_key` (1, 1.0 and "1" alike), as in validation. An empty or
    undeclared label raises DataLoadError naming the split and rows (validation should have
    reported these first).
    """
    if labels:
        label_list = [str(label) for label in labels]
        if len(set(label_list)) != len(label_list):
            raise DataLoadError(f"data.labels has duplicates: {label_list}")
    else:
        train = frames.get("train")
        if train is None or label_column not in train.columns:
            raise DataLoadError(
                f"cannot take the label set from the train split: no column {label_column!r}"
            )
        label_list = sorted({k for v in train[label_column] if (k := label_key(v)) is not None})
    ids_of = {label: i for i, label in enumerate(label_list)}
    encoded: dict[str, list[int]] = {}
    for split, frame in frames.items():
        if label_column not in frame.columns:
            raise DataLoadError(
                f"split {split!r} has no label column {label_column!r}; its columns are "
                f"{[str(c) for c in frame.columns]} (set data.label_column)"
            )
        ids, bad = [], []
        for row, value in zip(frame.index, frame[label_column], strict=True):
            key = label_key(value)
            if key in ids_of:
                ids.append(ids_of[key])
            else:
                bad.append(f"row {row}: " + ("empty" if key is None else repr(value)))
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise DataLoadError(
                f"split {split!r}: {len(bad)} label(s) are empty or not in {label_list} "
                f"({shown}); fix those rows or declare the labels in data.labels"
            )
        encoded[split] = ids
    return label_list, encoded
