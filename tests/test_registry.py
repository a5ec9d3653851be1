"""The MLflow registry against a real SQLite store: pyfunc models, versions, aliases."""

import pandas as pd
import pytest
from mlflow.models import infer_signature

from components import registry, tracking
from components.config import RegistryConfig
from components.modeling import build_classifier, save_bundle

LABELS = ["card", "transfer", "refund"]


def _metrics(accuracy, macro_f1, recalls=(1.0, 1.0, 1.0)):
    per_class = {
        name: {"precision": 1, "recall": r, "f1": 1, "support": 5}
        for name, r in zip(LABELS, recalls, strict=True)
    }
    return {"accuracy": accuracy, "macro_f1": macro_f1, "per_class": per_class}


@pytest.mark.parametrize(
    ("candidate", "champion", "baseline", "policy", "promote"),
    [
        (_metrics(0.9, 0.9), None, _metrics(0.8, 0.8), {}, True),
        (_metrics(0.9, 0.9), _metrics(0.85, 0.85), _metrics(0.8, 0.8), {}, True),
        (_metrics(0.9, 0.9), _metrics(0.9, 0.9), _metrics(0.8, 0.8), {}, False),
        (_metrics(0.9, 0.9), _metrics(0.88, 0.88), None, {"min_improvement": 0.05}, False),
        (_metrics(0.9, 0.9), None, _metrics(0.95, 0.95), {}, False),
        (_metrics(0.9, 0.9), None, _metrics(0.95, 0.95), {"require_beats_baseline": False}, True),
        (_metrics(0.9, 0.9, (1, 1, 0.5)), None, None, {"min_class_recall": 0.7}, False),
        (_metrics(0.9, 0.9, (1, 1, 0.8)), None, None, {"min_class_recall": 0.7}, True),
    ],
)
def test_promotion_policy(candidate, champion, baseline, policy, promote):
    decision = registry.decide_promotion(candidate, baseline, champion, RegistryConfig(**policy))
    assert decision.promote is promote
    assert decision.reasons


@pytest.fixture()
def bundle(tiny_bert, tmp_path):
    model, _, resolved = build_classifier(str(tiny_bert), len(LABELS))
    return save_bundle(
        model, tmp_path / "bundle", {"base_model": resolved.reference, "labels": LABELS}
    )


def _new_run(name="test"):
    experiment = tracking.ensure_experiment(name)
    return tracking.client().create_run(experiment).info.run_id


def test_register_load_predict_and_idempotent_re_registration(workspace, bundle):
    run_id = _new_run()
    source = registry.log_pyfunc_model(run_id, bundle, ["a card", "a transfer", "x"])
    version = registry.register_version("m", source, run_id, {"data.dvc_md5": "abc"})
    assert version == "1"
    assert registry.get_alias_version("m", registry.CHALLENGER) == "1"
    assert registry.register_version("m", source, run_id, {}) == "1"  # same run: same version
    assert tracking.client().get_model_version("m", "1").tags["data.dvc_md5"] == "abc"

    model = registry.load_model("m", "1")
    texts = pd.DataFrame({"text": ["my card", "send money", "refund me"]})
    out = model.predict(texts)
    assert list(out.columns) == ["label", "score"]
    # the signature logged with the model (stated, to save a reload) is what predict does
    assert model.metadata.signature == infer_signature(texts, out)
    assert model.metadata.signature == registry.pyfunc_signature()
    assert set(out["label"]) <= set(LABELS)
    assert ((out["score"] > 0) & (out["score"] <= 1)).all()
    assert (workspace / "mlartifacts").is_dir()  # artifacts stay inside the project folder


def test_promote_is_compare_and_set(workspace, bundle):
    versions = []
    for _ in range(3):
        run_id = _new_run()
        source = registry.log_pyfunc_model(run_id, bundle, ["x"])
        versions.append(registry.register_version("m", source, run_id, {}))
    registry.promote("m", versions[0], None, {"promotion.by": "test"})
    assert registry.get_alias_version("m", registry.CHAMPION) == versions[0]
    # a run that saw no champion must not overwrite the one that appeared meanwhile
    with pytest.raises(registry.RegistryError, match="moved"):
        registry.promote("m", versions[2], None, {})
    assert registry.get_alias_version("m", registry.CHAMPION) == versions[0]
    registry.promote("m", versions[1], versions[0], {})
    assert registry.get_alias_version("m", registry.CHAMPION) == versions[1]
    tags = tracking.client().get_model_version("m", versions[1]).tags
    assert tags["promotion.previous_champion"] == versions[0]


def test_failed_alias_leaves_no_half_registered_version(workspace, bundle):
    run_id = _new_run()
    source = registry.log_pyfunc_model(run_id, bundle, ["x"])
    with pytest.raises(registry.RegistryError, match="version removed"):
        registry.register_version("m", source, run_id, {}, alias="not a valid alias!")
    assert tracking.client().search_model_versions("name='m'") == []


def test_a_retried_promotion_keeps_the_previous_champion_so_rollback_works(workspace, bundle):
    """An attempt that moved `@champion` and died before its tags: the retry (which finds the
    alias already moved) still records the champion it replaced."""
    versions = []
    for _ in range(2):
        run_id = _new_run()
        source = registry.log_pyfunc_model(run_id, bundle, ["x"])
        versions.append(registry.register_version("m", source, run_id, {}))
    registry.promote("m", versions[0], None, {})
    tracking.client().set_registered_model_alias("m", registry.CHAMPION, versions[1])  # died
    registry.promote("m", versions[1], versions[0], {"promotion.by": "retry"})
    tags = tracking.client().get_model_version("m", versions[1]).tags
    assert tags["promotion.previous_champion"] == versions[0]
    assert registry.rollback("m", "test", "retry left the tag") == (versions[1], versions[0])
    assert registry.get_alias_version("m", registry.CHAMPION) == versions[0]


def test_withdraw_puts_the_aliases_back_and_deletes_the_version(workspace, bundle):
    c = tracking.client()
    versions = []
    for _ in range(3):
        run_id = _new_run()
        source = registry.log_pyfunc_model(run_id, bundle, ["x"])
        versions.append(registry.register_version("m", source, run_id, {}))  # @challenger
    v1, v2, v3 = versions
    registry.promote("m", v1, None, {})
    c.set_registered_model_alias("m", registry.CHALLENGER, v2)
    # v3 (registered last, so @challenger until just now) was promoted by its run, which
    # then failed
    c.set_registered_model_alias("m", registry.CHALLENGER, v3)
    registry.promote("m", v3, v1, {})
    done = registry.withdraw_version("m", v3, champion_before=v1, challenger_before=v2)
    assert done == [f"@champion back to v{v1}", f"@challenger back to v{v2}", f"v{v3} deleted"]
    assert registry.get_alias_version("m", registry.CHAMPION) == v1
    assert registry.get_alias_version("m", registry.CHALLENGER) == v2
    assert sorted(str(v.version) for v in c.search_model_versions("name='m'")) == [v1, v2]

    # the first run ever: no alias named anything before it; an alias moved meanwhile by
    # someone else stays where they put it
    registry.promote("m", v2, v1, {})  # a person promoted v2
    run_id = _new_run()
    source = registry.log_pyfunc_model(run_id, bundle, ["x"])
    v4 = registry.register_version("m", source, run_id, {})
    done = registry.withdraw_version("m", v4, champion_before=v1, challenger_before=None)
    assert done == ["@challenger removed (it named no other version before)", f"v{v4} deleted"]
    assert registry.get_alias_version("m", registry.CHAMPION) == v2
    assert registry.get_alias_version("m", registry.CHALLENGER) is None


@pytest.mark.parametrize(
    ("interval", "promote"),
    [
        ({"mean_diff": 0.05, "low": 0.01, "high": 0.09}, True),  # the lower bound clears 0
        ({"mean_diff": 0.05, "low": -0.01, "high": 0.11}, False),  # it could be no better
        (None, False),  # a champion without an interval is never passed over
    ],
)
def test_promotion_with_a_bootstrap_interval_looks_at_its_lower_bound(interval, promote):
    policy = RegistryConfig(bootstrap_confidence=0.95)
    decision = registry.decide_promotion(
        _metrics(0.9, 0.9), None, _metrics(0.85, 0.85), policy, interval
    )
    assert decision.promote is promote
    assert any("CI" in r or "bootstrap" in r for r in decision.reasons)
