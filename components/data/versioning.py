"""What data a run read (`DataVersion`: git commit, DVC md5, content hash), and the check that
DVC-tracked workspace data is the version its `.dvc` file records."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import yaml

from components.data.trees import LocalTree, Tree
from components.errors import DataLoadError


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


def resolve_commit(project_dir: Path, rev: str | None) -> str | None:
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


def find_dvc_md5(tree: Tree, target: str, root: str | None) -> tuple[str, str] | None:
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


def _is_repo_root(tree: Tree, folder: str) -> bool:
    return isinstance(tree, LocalTree) and any(
        (Path(folder) / marker).exists() for marker in (".dvc", ".git")
    )


def _read_dvc_yaml(tree: Tree, path: str) -> Any:
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
