"""Safe loading: safetensors only. A bundle or a registered model that would need unpickling
is refused before anything in it is loaded, and every torch.load uses weights_only=True."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from components import registry, tracking
from components.modeling import ModelLoadError, build_classifier, load_bundle, save_bundle
from conftest import REPO

LABELS = ["card", "transfer"]


@pytest.fixture()
def bundle(tiny_bert, tmp_path) -> Path:
    model, _, resolved = build_classifier(str(tiny_bert), len(LABELS))
    return save_bundle(
        model, tmp_path / "bundle", {"base_model": resolved.reference, "labels": LABELS}
    )


@pytest.mark.parametrize("name", ["adapter/adapter_model.bin", "head.pt", "extra/weights.pkl"])
def test_a_bundle_with_pickled_weights_is_refused(bundle, name):
    assert load_bundle(bundle).predict(["my card"])[0] in LABELS  # the clean bundle loads
    target = bundle / name
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.zeros(2)}, target)
    with pytest.raises(ModelLoadError, match=rf"refusing to load .*{re.escape(name)}.*unpickling"):
        load_bundle(bundle)


class _Tripwire:
    """Unpickling this writes a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_registered_model_that_needs_unpickling_is_refused_before_loading(workspace, bundle):
    import cloudpickle
    import mlflow.pyfunc

    # a clean peftops model loads from the registry
    run_id = tracking.client().create_run(tracking.ensure_experiment("m")).info.run_id
    source = registry.log_pyfunc_model(run_id, bundle, ["x"])
    clean = registry.register_version("m", source, run_id, {})
    out = registry.load_model("m", clean).predict(pd.DataFrame({"text": ["my card"]}))
    assert out["label"].iloc[0] in LABELS

    # a version whose artifacts hold a pickle (MLflow's classic pickled pyfunc model)
    marker = workspace / "unpickled"
    mlflow.set_tracking_uri(tracking.tracking_uri())
    run_id = tracking.client().create_run(tracking.ensure_experiment("m")).info.run_id
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=mlflow.pyfunc.PythonModel())
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(workspace / "p")))
    (local / "python_model.pkl").write_bytes(cloudpickle.dumps(_Tripwire(str(marker))))
    tracking.client().log_artifacts(run_id, str(local), "tampered")
    artifact = f"{tracking.client().get_run(run_id).info.artifact_uri}/tampered"
    bad = registry.register_version("m", artifact, run_id, {})

    with pytest.raises(ModelLoadError, match=r"python_model\.pkl.*unpickling"):
        registry.load_model("m", bad)
    assert not marker.exists()  # refused before anything was unpickled
    # (what would have happened: loading it runs the pickle)
    with pytest.raises(Exception):  # noqa: B017 - the tripwire is no PythonModel
        mlflow.pyfunc.load_model(str(local))
    assert marker.exists()


def test_every_torch_load_uses_weights_only():
    calls = []
    for folder in ("components", "tasks", "flows", "peftops"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            for match in re.finditer(r"torch\.load\(", text):
                depth, end = 1, match.end()
                while depth and end < len(text):
                    depth += {"(": 1, ")": -1}.get(text[end], 0)
                    end += 1
                calls.append((path.relative_to(REPO).as_posix(), text[match.start() : end]))
    assert calls, "expected at least the checkpoint loader"
    for where, call in calls:
        assert "weights_only=True" in call, f"{where}: {call}"
