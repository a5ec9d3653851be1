"""One slower test: the real default base model (MiniLM, shipped in a PyPI package), offline."""

import pytest

from components import registry
from components.config import DEFAULT_BASE_MODEL, apply_overrides, load_preset
from conftest import DATA
from flows.pipeline import finance


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_finance_flow_with_minilm_on_a_small_sample(workspace):
    config = apply_overrides(
        load_preset("finance"),
        [
            f"data.path={DATA / 'finance'}",
            "data.max_train_examples=96",
            "validation.min_examples_per_class=5",
            "training.epochs=1",
            "model.max_length=48",
        ],
    )
    assert config.model.base_model == DEFAULT_BASE_MODEL
    summary = finance(config=config)
    # Real embeddings separate the demo intents far above chance (1/8).
    assert summary.baseline["accuracy"] > 0.7
    assert summary.metrics["accuracy"] > 0.7
    assert summary.trainable_percent < 1.0
    assert registry.get_alias_version("peftops-finance", "champion") == summary.version
