"""Tests of the data-loading component: real files, real git and DVC in temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from components.config import DataConfig, SplitConfig
from components.data import (
    SPLITS,
    DataLoadError,
    DataVersion,
    content_hash,
    load_splits,
)
from components.data.sources import _hf_frames
from components.examples import encode_labels

CLASSES = ("billing", "card", "transfer")


def make_rows(per_class: int = 40, classes: tuple[str, ...] = CLASSES) -> pd.DataFrame:
    """Rows in class-interleaved order, each text unique and naming its row number."""
    rows = [
        {"text": f"row {i} about {classes[i % len(classes)]}", "label": classes[i % len(classes)]}
        for i in range(per_class * len(classes))
    ]
    return pd.DataFrame(rows)


def write(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    return path


def load(project: Path, path: str, **kwargs) -> object:
    return load_splits(DataConfig(path=path, **kwargs), project)


def class_counts(frame: pd.DataFrame) -> dict[str, int]:
    return frame["label"].value_counts().to_dict()


# --------------------------------------------------------------------------- single files


@pytest.mark.parametrize("name", ["all.csv", "all.jsonl", "all.parquet"])
def test_single_file_is_split_stratified_with_original_row_indexes(tmp_path, name):
    source = make_rows()
    write(tmp_path / name, source)
    raw = load(tmp_path, name)
    assert raw.was_split
    sizes = {s: len(raw.frames[s]) for s in SPLITS}
    assert sizes == {"train": 84, "validation": 18, "test": 18}
    assert class_counts(raw.frames["test"]) == dict.fromkeys(CLASSES, 6)
    assert class_counts(raw.frames["validation"]) == dict.fromkeys(CLASSES, 6)
    indexes = [i for s in SPLITS for i in raw.frames[s].index]
    assert sorted(indexes) == list(range(len(source)))
    for split in SPLITS:
        frame = raw.frames[split]
        assert list(frame.columns) == ["text", "label"]
        assert frame.index.is_monotonic_increasing
        pd.testing.assert_frame_equal(
            frame, source.loc[frame.index], check_dtype=False, check_index_type=False
        )


def test_split_is_deterministic_per_seed(tmp_path):
    write(tmp_path / "all.csv", make_rows())

    def test_rows(seed: int) -> list[int]:
        config = DataConfig(path="all.csv", split=SplitConfig(seed=seed))
        return list(load_splits(config, tmp_path).frames["test"].index)

    assert test_rows(7) == test_rows(7)
    assert test_rows(7) != test_rows(8)


def test_split_fractions_follow_config(tmp_path):
    write(tmp_path / "all.csv", make_rows(per_class=100))
    split = SplitConfig(validation_fraction=0.1, test_fraction=0.2)
    raw = load_splits(DataConfig(path="all.csv", split=split), tmp_path)
    assert {s: len(raw.frames[s]) for s in SPLITS} == {"train": 210, "validation": 30, "test": 60}


def test_unstratifiable_labels_fall_back_to_a_plain_split(tmp_path):
    rows = make_rows(per_class=10)
    rows.loc[3, "label"] = "singleton"
    rows.loc[5, "label"] = None
    write(tmp_path / "all.csv", rows)
    raw = load(tmp_path, "all.csv")
    assert sum(len(raw.frames[s]) for s in SPLITS) == len(rows)
    everything = pd.concat([raw.frames[s] for s in SPLITS])
    assert everything.loc[5, "label"] is pd.NA or pd.isna(everything.loc[5, "label"])

    write(tmp_path / "one_class.csv", make_rows(per_class=20, classes=("only",)))
    raw = load(tmp_path, "one_class.csv")
    assert sum(len(raw.frames[s]) for s in SPLITS) == 20


def test_csv_cells_stay_strings_and_only_empty_cells_are_nan(tmp_path):
    (tmp_path / "all.csv").write_text(
        'text,label\nNA,007\nNone,1\n,1\n"",007\n"a, quoted\nline",1\n'
    )
    raw = load(tmp_path, "all.csv", split=SplitConfig(test_fraction=0.2))
    frame = pd.concat([raw.frames[s] for s in SPLITS]).sort_index()
    assert frame["label"].tolist() == ["007", "1", "1", "007", "1"]
    assert frame.loc[0, "text"] == "NA" and frame.loc[1, "text"] == "None"
    assert frame["text"].isna().tolist() == [False, False, True, True, False]
    assert frame.loc[4, "text"] == "a, quoted\nline"


def test_header_only_csv_gives_empty_frames(tmp_path):
    (tmp_path / "all.csv").write_text("text,label\n")
    raw = load(tmp_path, "all.csv")
    for split in SPLITS:
        assert raw.frames[split].empty
        assert list(raw.frames[split].columns) == ["text", "label"]


def test_json_array_file_and_native_json_values(tmp_path):
    records = [{"text": f"t{i}", "label": i % 2} for i in range(40)]
    (tmp_path / "all.json").write_text(json.dumps(records))
    raw = load(tmp_path, "all.json")
    labels, ids = encode_labels(raw.frames, "label", [])
    assert labels == ["0", "1"]
    assert ids["train"] == [int(v) for v in raw.frames["train"]["label"]]


def test_max_train_examples_subsamples_train_stratified(tmp_path):
    write(tmp_path / "all.csv", make_rows())
    full = load(tmp_path, "all.csv")
    small = load(tmp_path, "all.csv", max_train_examples=30)
    assert class_counts(small.frames["train"]) == dict.fromkeys(CLASSES, 10)
    assert set(small.frames["train"].index) <= set(full.frames["train"].index)
    pd.testing.assert_frame_equal(small.frames["test"], full.frames["test"])
    assert small.version.content_hash != full.version.content_hash


# --------------------------------------------------------------------------- folders


def test_folder_with_three_split_files_in_mixed_formats(tmp_path):
    rows = make_rows(per_class=5)
    write(tmp_path / "d" / "train.csv", rows)
    write(tmp_path / "d" / "dev.jsonl", rows.iloc[:6])
    write(tmp_path / "d" / "test.parquet", rows.iloc[:9])
    (tmp_path / "d" / "README.md").write_text("not data")
    raw = load(tmp_path, "d")
    assert not raw.was_split
    assert [len(raw.frames[s]) for s in SPLITS] == [15, 6, 9]
    assert list(raw.frames["validation"].index) == list(range(6))
    assert raw.frames["test"].loc[8, "text"] == rows.loc[8, "text"]


def test_folder_without_validation_carves_it_from_train(tmp_path):
    write(tmp_path / "d" / "train.csv", make_rows(per_class=20))
    write(tmp_path / "d" / "test.csv", make_rows(per_class=4))
    raw = load(tmp_path / "d", str(tmp_path / "d"))  # an absolute path works as well
    assert raw.was_split
    train, validation = raw.frames["train"], raw.frames["validation"]
    assert len(validation) == 9 and class_counts(validation) == dict.fromkeys(CLASSES, 3)
    assert sorted([*train.index, *validation.index]) == list(range(60))
    assert len(raw.frames["test"]) == 12


def test_folder_with_one_file_is_split(tmp_path):
    write(tmp_path / "d" / "examples.jsonl", make_rows())
    raw = load(tmp_path, "d")
    assert raw.was_split and len(raw.frames["test"]) == 18


def test_folder_with_unrecognised_file_names_is_refused(tmp_path):
    write(tmp_path / "d" / "train.csv", make_rows(per_class=2))
    write(tmp_path / "d" / "holdout.csv", make_rows(per_class=2))
    with pytest.raises(DataLoadError, match=r"holdout\.csv.*train.*test"):
        load(tmp_path, "d")


# --------------------------------------------------------------------------- unreadable input


def test_missing_path(tmp_path):
    with pytest.raises(DataLoadError, match=r"data path nope/x\.csv does not exist"):
        load(tmp_path, "nope/x.csv")


def test_empty_file(tmp_path):
    (tmp_path / "all.csv").write_bytes(b"")
    with pytest.raises(DataLoadError, match=r"all\.csv is empty \(0 bytes\)"):
        load(tmp_path, "all.csv")


def test_invalid_utf8_names_byte_offset_and_line(tmp_path):
    data = b"text,label\nok,a\ncaf\xe9 latte,b\n"
    (tmp_path / "all.csv").write_bytes(data)
    with pytest.raises(DataLoadError) as err:
        load(tmp_path, "all.csv")
    assert "all.csv is not valid UTF-8: byte 0xe9 at byte offset 19 (line 3)" in str(err.value)


def test_broken_csv_quoting_names_the_line(tmp_path):
    text = 'text,label\n"multi\nline",a\nfine,b\n"never closed,c\nmore,d\n'
    (tmp_path / "all.csv").write_text(text)
    with pytest.raises(DataLoadError, match=r"all\.csv: broken CSV at line 5: EOF inside string"):
        load(tmp_path, "all.csv")


def test_stray_quotes_pandas_accepts_silently_are_refused(tmp_path):
    # an un-doubled quote inside a quoted field: pandas would alter the text
    (tmp_path / "all.csv").write_text('text,label\nok,a\n"since "Monday" it says",b\n')
    with pytest.raises(DataLoadError, match=r"all\.csv: broken CSV at line 3: ',' expected"):
        load(tmp_path, "all.csv")
    # a quote never closed: pandas would merge the next record into this one
    (tmp_path / "all.csv").write_text('text,label\n"never closed,a\n"next",b\nlast,c\n')
    with pytest.raises(DataLoadError, match=r"record starting at line 2 \(error at line 3\)"):
        load(tmp_path, "all.csv")


def test_csv_row_with_extra_fields_names_the_line(tmp_path):
    (tmp_path / "all.csv").write_text("text,label\nok,a\n\nnot, quoted,b\n")
    with pytest.raises(DataLoadError, match=r"broken CSV at line 4: Expected 2 fields"):
        load(tmp_path, "all.csv")


def test_bad_parquet(tmp_path):
    (tmp_path / "all.parquet").write_text("text,label\nthis is a csv,a\n")
    with pytest.raises(DataLoadError, match=r"all\.parquet cannot be read as Parquet"):
        load(tmp_path, "all.parquet")


def test_bad_json_line(tmp_path):
    (tmp_path / "all.jsonl").write_text('{"text": "a", "label": "x"}\n\n{"text": "b", label}\n')
    with pytest.raises(DataLoadError, match=r"all\.jsonl, line 3: invalid JSON"):
        load(tmp_path, "all.jsonl")


def test_unsupported_extension(tmp_path):
    (tmp_path / "all.xlsx").write_bytes(b"PK")
    with pytest.raises(DataLoadError, match="unsupported file type"):
        load(tmp_path, "all.xlsx")


# --------------------------------------------------------------------------- Hugging Face


def test_hf_dataset_offline_is_a_data_load_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    # Both libraries read the offline switch once, at import: make it hold if they were imported.
    if "datasets" in sys.modules:
        monkeypatch.setattr(sys.modules["datasets"].config, "HF_HUB_OFFLINE", True)
    if "huggingface_hub" in sys.modules:
        monkeypatch.setattr(sys.modules["huggingface_hub"].constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataLoadError, match=r"someorg/no-such-set:cfg.*offline"):
        load(tmp_path, "hf://someorg/no-such-set:cfg")


def test_hf_splits_map_class_labels_to_names():
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    data = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["a", "b", "c"], "label": [0, 1, -1]}, features=features
            )
        }
    )
    frame = _hf_frames(data, "label")["train"]
    assert frame["label"].tolist()[:2] == ["neg", "pos"] and pd.isna(frame.loc[2, "label"])


# --------------------------------------------------------------------------- labels, versions


def test_encode_labels_declared_inferred_and_unknown():
    frames = {
        "train": pd.DataFrame({"label": ["b", "a", "b"]}),
        "test": pd.DataFrame({"label": ["a"]}, index=[7]),
    }
    assert encode_labels(frames, "label", []) == (["a", "b"], {"train": [1, 0, 1], "test": [0]})
    assert encode_labels(frames, "label", ["b", "a", "c"])[1] == {
        "train": [0, 1, 0],
        "test": [1],
    }
    frames["test"] = pd.DataFrame({"label": ["a", "c", None]}, index=[7, 8, 9])
    with pytest.raises(DataLoadError, match=r"split 'test'.*2 label.*row 8: 'c', row 9: empty"):
        encode_labels(frames, "label", ["a", "b"])
    with pytest.raises(DataLoadError, match="no label column 'y'"):
        encode_labels(frames, "y", ["a"])


def test_version_outside_git_and_tags(tmp_path):
    write(tmp_path / "all.csv", make_rows())
    first = load(tmp_path, "all.csv").version
    again = load(tmp_path, "all.csv").version
    assert first.git_commit is None and first.dvc_md5 is None and first.rev is None
    assert first.content_hash == again.content_hash and len(first.content_hash) == 64
    assert first.as_tags() == {"data.source": "all.csv", "data.content_hash": first.content_hash}
    with pytest.raises(DataLoadError, match="not in a git repository"):
        load(tmp_path, "all.csv", rev="main")


def test_content_hash_tracks_values_and_rows():
    frame = pd.DataFrame({"text": ["a", None], "label": ["x", "y"]})
    base = content_hash({"train": frame})
    assert base == content_hash({"train": frame.copy()})
    assert base != content_hash({"train": frame.assign(label=["x", "z"])})
    assert base != content_hash({"train": frame.set_axis([1, 2])})


def test_data_version_is_frozen():
    version = DataVersion("p", None, None, None, "h")
    with pytest.raises(AttributeError):
        version.rev = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- git + DVC

ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def run(cwd: Path, *args: str) -> str:
    command = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message)
    return run(repo, "git", "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> dict:
    """A git+DVC project with two commits of `data/` (old: 60 rows, new: 90), both pushed."""
    base = tmp_path_factory.mktemp("dvc")
    repo, remote = base / "project", base / "remote"
    repo.mkdir()
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "remote", "add", "-d", "store", str(remote))
    old, new = make_rows(per_class=20), make_rows(per_class=30)
    write(repo / "data" / "finance" / "all.csv", old)
    run(repo, "dvc", "add", "-q", "data")
    first = commit(repo, "data v1")
    old_md5 = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    run(repo, "git", "tag", "v1")
    write(repo / "data" / "finance" / "all.csv", new)
    run(repo, "dvc", "add", "-q", "data")
    second = commit(repo, "data v2")
    new_md5 = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    run(repo, "dvc", "push", "-q", "--all-commits")
    return {
        "repo": repo,
        "old": old,
        "new": new,
        "first": first,
        "second": second,
        "old_md5": old_md5,
        "new_md5": new_md5,
    }


def all_rows(raw) -> pd.DataFrame:
    return pd.concat([raw.frames[s] for s in SPLITS]).sort_index()


def test_dvc_workspace_version(dvc_repo):
    raw = load(dvc_repo["repo"], "data/finance")
    assert len(all_rows(raw)) == len(dvc_repo["new"])
    assert raw.version.git_commit == dvc_repo["second"]
    assert raw.version.dvc_md5 == dvc_repo["new_md5"] != dvc_repo["old_md5"]
    assert raw.version.dvc_md5.endswith(".dir")


def test_dvc_old_revision_returns_old_content_and_md5(dvc_repo):
    raw = load(dvc_repo["repo"], "data/finance", rev="v1")
    rows = all_rows(raw)
    pd.testing.assert_frame_equal(rows, dvc_repo["old"], check_dtype=False)
    assert raw.version.rev == "v1"
    assert raw.version.git_commit == dvc_repo["first"]
    assert raw.version.dvc_md5 == dvc_repo["old_md5"]
    by_sha = load(dvc_repo["repo"], "data/finance/all.csv", rev=dvc_repo["first"][:10])
    assert by_sha.version.content_hash == raw.version.content_hash
    assert by_sha.version.dvc_md5 == dvc_repo["old_md5"]


def test_dvc_revision_is_read_from_the_remote_without_a_cache(dvc_repo, tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(dvc_repo["repo"], clone, symlinks=True)
    shutil.rmtree(clone / ".dvc" / "cache")
    shutil.rmtree(clone / "data")
    config = clone / ".dvc" / "config"
    remote = str(dvc_repo["repo"].parent / "remote")
    config.write_text(config.read_text().replace(remote, remote + "-gone"))
    with pytest.raises(DataLoadError, match=r"data/finance at git revision v1.*dvc push"):
        load(clone, "data/finance", rev="v1")
    config.write_text(config.read_text().replace(remote + "-gone", remote))
    raw = load(clone, "data/finance", rev="v1")
    assert len(all_rows(raw)) == len(dvc_repo["old"])
    with pytest.raises(DataLoadError, match=r"tracked by data\.dvc: run `dvc pull`"):
        load(clone, "data/finance")


def test_unknown_revision_and_missing_path_at_revision(dvc_repo):
    with pytest.raises(DataLoadError, match="git revision 'no-such-tag' does not exist"):
        load(dvc_repo["repo"], "data/finance", rev="no-such-tag")
    with pytest.raises(
        DataLoadError, match=r"data/other at git revision v1 \(\w+\) does not exist"
    ):
        load(dvc_repo["repo"], "data/other", rev="v1")
