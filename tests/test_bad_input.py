"""Nothing lost, nothing let in: a corpus of malformed inputs, each run through the real flow
(a real Prefect server, a real SQLite MLflow store, a tiny model) and a few through the real
`peftops` CLI. Every one must fail before training, with a message that names the problem and
where it is (column, row numbers or config key), create no model version and move no alias.

The MLflow store of each test starts from a copy of one seeded store (built once per module)
whose models already have a `@champion` (v1), so "no alias moves" is checked against an alias
that exists, and the store's schema migrations run once rather than once per case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prefect.exceptions import ParameterTypeError

from components import registry, tracking
from components.config import ConfigError
from components.data import DataLoadError
from components.validation import DataValidationError
from conftest import DATA, REPO, tiny_config
from flows.pipeline import finance, healthcare

PEFTOPS = str(Path(sys.executable).parent / "peftops")
FLOWS = {"finance": finance, "healthcare": healthcare}
MODELS = {"finance": "peftops-finance", "healthcare": "peftops-healthcare"}
SPLITS = ("train", "validation", "test")

pytestmark = pytest.mark.usefixtures("prefect_harness")


# --------------------------------------------------------------------------- the MLflow store


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store whose models have a v1 that is `@champion` (built once)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("seeded-store")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    for name in MODELS.values():
        client.create_registered_model(name)
        version = client.create_model_version(name, source=(folder / "champion").as_uri())
        client.set_registered_model_alias(name, "champion", version.version)
    return folder / "mlflow.db"


@pytest.fixture()
def store(workspace, seeded_store) -> Path:
    """The workspace with a copy of the seeded store and the domain experiments created."""
    shutil.copy(seeded_store, workspace / "mlflow.db")
    for name in MODELS.values():  # artifacts under the workspace, also when PEFTOPS_HOME moves
        tracking.ensure_experiment(name)
    return workspace


def _runs() -> list:
    client = tracking.client()
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids)


def _assert_registry_untouched() -> None:
    client = tracking.client()
    for name in MODELS.values():
        assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
        assert registry.get_alias_version(name, "champion") == "1"
        assert registry.get_alias_version(name, "challenger") is None


def _assert_stopped_before_training(workspace: Path, message_part: str) -> None:
    """One FAILED run, no training metric on it, the error recorded, nothing registered."""
    runs = _runs()
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "train.seconds" not in runs[0].data.metrics
    assert message_part in runs[0].data.tags.get("error", "")
    assert not (workspace / ".peftops" / "runs").exists()  # no checkpoint was written
    _assert_registry_untouched()


# --------------------------------------------------------------------------- building inputs


def _copy(tmp_path: Path, domain: str = "finance") -> Path:
    folder = tmp_path / "data"
    shutil.copytree(DATA / domain, folder)
    return folder


def _edit(folder: Path, split: str, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    path = folder / f"{split}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    changed = change(frame)  # edits in place, or returns a new frame
    (frame if changed is None else changed).to_csv(path, index=False)


def _set(split: str, column: str, rows: list[int], value) -> Callable[[Path], list[str]]:
    def build(tmp_path: Path) -> list[str]:
        folder = _copy(tmp_path)

        def change(frame):
            frame[column] = frame[column].astype(object)
            for row in rows:
                frame.loc[row, column] = value

        _edit(folder, split, change)
        return [f"data.path={folder}"]

    return build


def _missing_text_column(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "train", lambda f: f.rename(columns={"text": "body"}))
    return [f"data.path={folder}"]


def _missing_label_column(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "test", lambda f: f.drop(columns=["label"]))
    return [f"data.path={folder}"]


def _jsonl_folder(tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    folder = tmp_path / "jsonl"
    folder.mkdir()
    frames = {s: pd.read_csv(DATA / "finance" / f"{s}.csv") for s in SPLITS}
    return folder, frames


def _numbers_as_text_jsonl(tmp_path):
    folder, frames = _jsonl_folder(tmp_path)
    frames["train"]["text"] = frames["train"]["text"].astype(object)
    frames["train"].loc[[7, 8], "text"] = 12345
    for split, frame in frames.items():
        frame.to_json(folder / f"{split}.jsonl", orient="records", lines=True)
    return [f"data.path={folder}"]


def _invalid_jsonl_line(tmp_path):
    folder, frames = _jsonl_folder(tmp_path)
    for split, frame in frames.items():
        frame.to_json(folder / f"{split}.jsonl", orient="records", lines=True)
    lines = (folder / "validation.jsonl").read_text().splitlines()
    lines[2] = '{"text": "my card is gone", "label": card_lost_or_stolen}'
    (folder / "validation.jsonl").write_text("\n".join(lines) + "\n")
    return [f"data.path={folder}"]


def _empty_file(tmp_path):
    folder = _copy(tmp_path)
    (folder / "train.csv").write_bytes(b"")
    return [f"data.path={folder}"]


def _header_only(tmp_path):
    folder = _copy(tmp_path)
    (folder / "test.csv").write_text("text,label\n")
    return [f"data.path={folder}"]


def _single_class(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "train", lambda f: f.assign(label="card_declined"))
    return [f"data.path={folder}"]


def _too_few_per_class(tmp_path):
    folder = _copy(tmp_path)

    def change(frame):
        rare = frame.index[frame["label"] == "exchange_rate"][5:]
        return frame.drop(index=rare)

    _edit(folder, "train", change)
    return [f"data.path={folder}"]


def _invalid_utf8(tmp_path):
    folder = _copy(tmp_path)
    path = folder / "train.csv"
    lines = path.read_bytes().split(b"\n")
    lines[4] = b'"Caf\xe9 charged me twice",unrecognised_charge'  # cp1252 e-acute
    path.write_bytes(b"\n".join(lines))
    return [f"data.path={folder}"]


def _replace_line(split: str, number: int, line: str) -> Callable[[Path], list[str]]:
    def build(tmp_path: Path) -> list[str]:
        folder = _copy(tmp_path)
        path = folder / f"{split}.csv"
        lines = path.read_text().split("\n")
        lines[number - 1] = line
        path.write_text("\n".join(lines))
        return [f"data.path={folder}"]

    return build


# pandas reads both of these without complaint (the text altered, or records swallowed)
_stray_quote = _replace_line(
    "test", 7, '"My transfer is pending, since "Monday" it says",transfer_pending'
)
_unclosed_quote = _replace_line("validation", 4, '"My card was declined at the shop,card_declined')


def _parquet_wrong_schema(tmp_path):
    folder = tmp_path / "parquet"
    folder.mkdir()
    for split in SPLITS:
        frame = pd.read_csv(DATA / "finance" / f"{split}.csv")
        wrong = pd.DataFrame(
            {"body": frame["text"], "target": frame["label"].astype("category").cat.codes}
        )
        wrong.to_parquet(folder / f"{split}.parquet")
    return [f"data.path={folder}"]


def _not_really_parquet(tmp_path):
    folder = _copy(tmp_path)
    (folder / "train.csv").rename(folder / "train.parquet")
    return [f"data.path={folder}"]


def _leakage(tmp_path):
    folder = _copy(tmp_path)
    train = pd.read_csv(folder / "train.csv", dtype=str)

    def change(frame):
        frame.loc[[5, 6], "text"] = train.loc[[0, 1], "text"].str.upper().to_numpy()

    _edit(folder, "test", change)
    return [f"data.path={folder}"]


def _phi(snippet: str) -> Callable[[Path], list[str]]:
    def build(tmp_path: Path) -> list[str]:
        folder = _copy(tmp_path, "healthcare")

        def change(frame):
            frame.loc[4, "text"] = frame.loc[4, "text"] + f" {snippet}"

        _edit(folder, "train", change)
        return [f"data.path={folder}"]

    return build


def _missing_path(tmp_path):
    return [f"data.path={tmp_path / 'nowhere' / 'train.csv'}"]


def _no_such_rev(tmp_path):
    return ["data.path=data/finance", "data.rev=no-such-rev"]


def _rev_outside_git(tmp_path):
    return [f"data.path={_copy(tmp_path)}", "data.rev=main"]


def _hub_offline(tmp_path):
    return ["data.path=hf://nobody/nothing"]


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], list[str]]  # writes the input under tmp_path; config overrides
    error: type[Exception]
    expect: tuple[str, ...]  # the message names the problem and where
    domain: str = "finance"
    never: tuple[str, ...] = ()  # must not appear anywhere in the message (PHI)
    in_repo: bool = False  # the project folder is this repository (git revisions)


V, L = DataValidationError, DataLoadError
CORPUS = [
    Case(
        "missing-text-column",
        _missing_text_column,
        V,
        ("[train]", "required column 'text' is missing", "'body'"),
    ),
    Case(
        "missing-label-column",
        _missing_label_column,
        V,
        ("[test]", "required column 'label' is missing", "columns found: 'text'"),
    ),
    Case(
        "numbers-as-text-jsonl",
        _numbers_as_text_jsonl,
        V,
        ("[train]", "column 'text'", "texts are strings", "row 8: 12345, type=int", "row 9"),
    ),
    Case(
        "numbers-as-text-csv",
        _set("validation", "text", [2], "42"),
        V,
        ("[validation]", "column 'text'", "text length", "row 3: '42'"),
    ),
    Case(
        "numbers-as-labels",
        _set("train", "label", [10, 11], "3"),
        V,
        ("[train]", "column 'label'", "declared label set", "row 11: '3'", "row 12"),
    ),
    Case("empty-file", _empty_file, L, ("train.csv", "is empty (0 bytes)")),
    Case("header-only", _header_only, V, ("[test]", "split is empty (0 rows")),
    Case(
        "single-class",
        _single_class,
        V,
        ("[train]", "column 'label'", "1 distinct label(s)", "absent from the training split"),
    ),
    Case(
        "too-few-examples-of-a-class",
        _too_few_per_class,
        V,
        ("[train]", "column 'label'", "fewer than 20 training examples: 'exchange_rate' (5)"),
    ),
    Case(
        "labels-outside-declared-set",
        _set("train", "label", [3, 9], "crypto_question"),
        V,
        ("[train]", "column 'label'", "row 4: 'crypto_question'", "row 10"),
    ),
    Case(
        "missing-labels",
        _set("test", "label", [4], ""),
        V,
        ("[test]", "column 'label'", "labels not missing", "row 5"),
    ),
    Case(
        "empty-texts",
        _set("validation", "text", [0, 1], ""),
        V,
        ("[validation]", "column 'text'", "texts not missing", "row 1", "row 2"),
    ),
    Case(
        "whitespace-texts",
        _set("train", "text", [5], "  \t   "),
        V,
        ("[train]", "column 'text'", "blank texts fail", "row 6", "length=0"),
    ),
    Case(
        "text-beyond-length-bound",
        _set("train", "text", [2], "my card was declined again " * 400),
        V,
        ("[train]", "column 'text'", "between 3 and 1000", "row 3", "length=10799"),
    ),
    Case("invalid-utf8", _invalid_utf8, L, ("train.csv", "not valid UTF-8", "0xe9", "line 5")),
    Case("stray-quote-in-quoted-field", _stray_quote, L, ("test.csv", "broken CSV at line 7")),
    Case(
        "unclosed-quote",
        _unclosed_quote,
        L,
        ("validation.csv", "broken CSV at line 4"),
    ),
    Case(
        "invalid-jsonl-line",
        _invalid_jsonl_line,
        L,
        ("validation.jsonl", "line 3: invalid JSON"),
    ),
    Case(
        "parquet-wrong-schema",
        _parquet_wrong_schema,
        V,
        ("required column 'text' is missing", "columns found: 'body', 'target'"),
    ),
    Case(
        "csv-named-parquet",
        _not_really_parquet,
        L,
        ("train.parquet", "cannot be read as Parquet"),
    ),
    Case(
        "train-test-leakage",
        _leakage,
        V,
        ("[test]", "column 'text'", "also occurs in the training split", "row 6", "train_row=1"),
    ),
    Case(
        "phi-email",
        _phi("Reach me at jane.doe@example.com."),
        V,
        ("[train]", "column 'text'", "row 5", "pattern=email"),
        domain="healthcare",
        never=("jane.doe@example.com",),
    ),
    Case(
        "phi-phone",
        _phi("Call me on (555) 867-5309."),
        V,
        ("[train]", "row 5", "pattern=phone"),
        domain="healthcare",
        never=("867-5309",),
    ),
    Case(
        "phi-ssn",
        _phi("My SSN is 123-45-6789."),
        V,
        ("[train]", "row 5", "pattern=ssn"),
        domain="healthcare",
        never=("123-45-6789",),
    ),
    Case(
        "phi-mrn",
        _phi("MRN: 00482913."),
        V,
        ("[train]", "row 5", "pattern=record number"),
        domain="healthcare",
        never=("00482913",),
    ),
    Case("path-does-not-exist", _missing_path, L, ("nowhere/train.csv", "does not exist")),
    Case(
        "dvc-rev-does-not-exist",
        _no_such_rev,
        L,
        ("git revision 'no-such-rev' does not exist",),
        in_repo=True,
    ),
    Case("rev-outside-git", _rev_outside_git, L, ("data.rev='main'", "not in a git repository")),
    Case(
        "hub-dataset-offline",
        _hub_offline,
        L,
        ("'nobody/nothing'", "offline mode is on (HF_HUB_OFFLINE=1)"),
    ),
]

CONFIG_CORPUS = [
    ("negative-learning-rate", "training.learning_rate=-0.001", "'training.learning_rate'"),
    ("rank-zero", "method.r=0", "'method.r'"),
    ("unknown-method", "method.name=magic", "'method.name'"),
    ("budget-over-100-percent", "selection.budget=1.5", "'selection.budget'"),
    ("unknown-key", "training.epochz=1", "unknown key 'training.epochz'"),
]


# --------------------------------------------------------------------------- the flow


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CORPUS])
def test_bad_data_stops_before_training(case, store, tiny_bert, tmp_path, monkeypatch):
    overrides = case.build(tmp_path)
    config = tiny_config(case.domain, tiny_bert, *overrides)
    if case.in_repo:
        monkeypatch.setenv("PEFTOPS_HOME", str(REPO))
    with pytest.raises(case.error) as err:
        FLOWS[case.domain](config=config)
    message = str(err.value)
    for part in case.expect:
        assert part in message, f"{part!r} not in:\n{message}"
    for secret in case.never:
        assert secret not in message
        if isinstance(err.value, DataValidationError):  # nor in the report artifacts
            assert secret not in err.value.report.to_markdown()
    _assert_stopped_before_training(store, case.expect[-1])


@pytest.mark.parametrize(
    ("override", "key"), [pytest.param(o, k, id=i) for i, o, k in CONFIG_CORPUS]
)
def test_bad_config_is_refused_before_any_run(override, key, store, tiny_bert):
    # through the CLI's path: overrides on a preset
    with pytest.raises(ConfigError, match=r"invalid configuration|unknown key") as err:
        tiny_config("finance", tiny_bert, override)
    assert key in str(err.value)

    # through the flow's own parameter validation (Prefect UI, deployments): a plain dict
    data = tiny_config("finance", tiny_bert).model_dump(mode="json")
    dotted, _, raw = override.partition("=")
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = yaml.safe_load(raw)
    with pytest.raises(ParameterTypeError) as err:
        finance(config=data)
    assert dotted in str(err.value), str(err.value)

    assert _runs() == []  # no MLflow run was even created
    _assert_registry_untouched()


# --------------------------------------------------------------------------- the CLI


@pytest.fixture()
def cli(store, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
        return subprocess.run(
            [PEFTOPS, *args], capture_output=True, text=True, env=env, cwd=store, timeout=600
        )

    return run


def test_cli_bad_config_value_exits_2_before_any_run(cli, tiny_bert):
    result = cli("run", "finance", "--set", "training.learning_rate=-1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "'training.learning_rate'" in result.stderr and "greater than 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert _runs() == []
    _assert_registry_untouched()


def test_cli_invalid_utf8_exits_3_naming_file_and_line(cli, store, tiny_bert, tmp_path):
    (overrides,) = _invalid_utf8(tmp_path)
    folder = overrides.partition("=")[2]
    result = cli("run", "finance", "--data", folder, "--set", f"model.base_model={tiny_bert}")
    assert result.returncode == 3, result.stderr[-2000:]
    assert "train.csv is not valid UTF-8" in result.stderr and "line 5" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_stopped_before_training(store, "not valid UTF-8")


def test_cli_phi_exits_4_with_redacted_rows(cli, store, tiny_bert, tmp_path):
    (overrides,) = _phi("My SSN is 123-45-6789.")(tmp_path)
    folder = overrides.partition("=")[2]
    result = cli("run", "healthcare", "--data", folder, "--set", f"model.base_model={tiny_bert}")
    assert result.returncode == 4, result.stderr[-2000:]
    assert "data validation failed" in result.stderr
    assert "row 5" in result.stderr and "pattern=ssn" in result.stderr
    assert "123-45-6789" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    _assert_stopped_before_training(store, "data validation failed")
