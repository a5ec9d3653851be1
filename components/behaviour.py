"""Behavioural checks (CheckList, Ribeiro et al. 2020): plain messages a model must get right,
whatever its score on a test split drawn from the same templates as its training data.

A suite is YAML data beside the presets (`components/presets/<domain>.behaviour.yaml`) with
four kinds of cases:

- `minimum_functionality`: canonical messages per label that must get that label;
- `invariance`: perturbations of a base message (typos, casing, names, amounts, polite
  openers...) that must keep the base message's prediction;
- `directional`: an edit that must move the prediction a known way (to a label, or raise /
  lower one label's score);
- `out_of_scope`: messages no label fits; the model must be unsure (top score below a
  threshold calibrated on the validation split), or, for a generative model, answer with
  no label of the set. A suite whose label set has an explicit "none of these" route (a
  catch-all class such as healthcare's `general_enquiry`) names it in `none_label`: an
  out-of-scope message then also passes when the model answers that label.

Plain Python: a suite runs against any `Predictor` (texts → `Prediction`s).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SUITES = ("minimum_functionality", "invariance", "directional", "out_of_scope")
OUT_OF_SCOPE = "(out of scope)"  # the per-label row of out-of-scope cases
PRESETS = Path(__file__).resolve().parent / "presets"
SKIP = ("none", "off")  # evaluation.behaviour values that turn the step off
UNSURE_TAG = "behaviour.unsure_below"  # model-version tag: below this top score, "unsure"


class BehaviourError(ValueError):
    """A suite file that cannot be read or does not fit the model's labels."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InvarianceCase(_Strict):
    base: str = Field(min_length=1)
    label: str | None = None  # the base's expected label (reporting; `base` is also checked)
    variants: list[str] = Field(min_length=1)


class DirectionalCase(_Strict):
    base: str = Field(min_length=1)
    edit: str | None = None  # appended to `base` (with a space)
    edited: str | None = None  # or the whole edited message
    to: str | None = None  # the edited message's label
    raises: str | None = None  # or: this label's score must go up
    lowers: str | None = None  # or: down

    @model_validator(mode="after")
    def _one_of_each(self) -> DirectionalCase:
        if (self.edit is None) == (self.edited is None):
            raise ValueError("give exactly one of 'edit' (appended) or 'edited' (whole text)")
        if sum(x is not None for x in (self.to, self.raises, self.lowers)) != 1:
            raise ValueError("give exactly one of 'to', 'raises' or 'lowers'")
        return self

    @property
    def text(self) -> str:
        return self.edited if self.edited is not None else f"{self.base} {self.edit}".strip()

    @property
    def label(self) -> str:
        return self.to or self.raises or self.lowers or ""


class Suite(_Strict):
    """One suite file."""

    description: str = ""
    # generative models: compare this field of the JSON answer (empty: the whole answer)
    field: str | None = None
    minimum_functionality: dict[str, list[str]] = Field(default_factory=dict)
    invariance: list[InvarianceCase] = Field(default_factory=list)
    directional: list[DirectionalCase] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    # the label set's "none of these" class, if it has one: out-of-scope messages may get it
    none_label: str | None = None

    def labels_used(self) -> set[str]:
        used = set(self.minimum_functionality) | ({self.none_label} - {None})
        used |= {c.label for c in self.invariance if c.label}
        used |= {c.label for c in self.directional}
        return used

    def check_labels(self, labels: Sequence[str], source: str = "suite") -> None:
        """Every label the suite names must be one of the model's."""
        unknown = sorted(self.labels_used() - set(labels))
        if unknown:
            raise BehaviourError(
                f"{source}: label(s) {unknown} are not among the model's labels {list(labels)}"
            )


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise BehaviourError(f"behaviour suite {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise BehaviourError(f"behaviour suite {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise BehaviourError(f"behaviour suite {path} must be a mapping of {list(SUITES)}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc']) or '(suite)'}': "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in err.errors()
        )
        raise BehaviourError(f"behaviour suite {path}: {problems}") from None
    if not any(getattr(suite, name) for name in SUITES):
        raise BehaviourError(f"behaviour suite {path} has no cases (keys: {list(SUITES)})")
    return suite


def resolve_suite_path(setting: str, domain: str, task: str) -> Path | None:
    """The suite file a run uses: `setting` (a path, or a file name in the presets folder),
    empty for the preset's own (`<domain>.behaviour.yaml`, classifiers), 'none' for no
    suite. None when there is none to run."""
    setting = (setting or "").strip()
    if setting.lower() in SKIP:
        return None
    if not setting:
        own = PRESETS / f"{domain}.behaviour.yaml"
        return own if task == "classification" and own.is_file() else None
    path = Path(setting)
    if not path.is_file() and not path.is_absolute() and (PRESETS / setting).is_file():
        return PRESETS / setting
    return path  # a missing file is an error when loaded, not a silent skip


def shown_path(path: Path) -> str:
    """A suite's path for people: relative to the project when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(PRESETS.parent.parent))
    except ValueError:
        return str(path)


@dataclass
class Prediction:
    label: str
    score: float | None = None  # the top score; None for a generative answer
    scores: dict[str, float] | None = None  # every label's score (classifiers)


Predictor = Callable[[list[str]], list[Prediction]]


@dataclass
class CaseResult:
    suite: str
    label: str  # the expected label (OUT_OF_SCOPE for out-of-scope cases)
    text: str
    expected: str
    predicted: str
    score: float | None
    passed: bool


@dataclass
class BehaviourReport:
    """The outcome of a suite (or why none ran): plain, JSON-friendly data."""

    suite_path: str = ""
    skipped: str = ""  # why no suite ran (empty when one did)
    unsure_below: float | None = None  # the out-of-scope threshold, calibrated on validation
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def pass_rates(self) -> dict[str, float]:
        return _rates(self.cases, lambda c: c.suite)

    @property
    def label_pass_rates(self) -> dict[str, float]:
        return _rates(self.cases, lambda c: c.label)

    def counts(self, suite: str) -> tuple[int, int]:
        mine = [c for c in self.cases if c.suite == suite]
        return sum(c.passed for c in mine), len(mine)

    def failures(self, suite: str | None = None) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed and suite in (None, c.suite)]

    def rows(self) -> list[dict]:
        return [asdict(c) for c in self.cases]

    def to_dict(self) -> dict:
        return {
            "suite_path": self.suite_path,
            "skipped": self.skipped,
            "unsure_below": self.unsure_below,
            "pass_rates": self.pass_rates,
            "label_pass_rates": self.label_pass_rates,
            "failures": [asdict(c) for c in self.failures()],
        }


def _rates(cases: list[CaseResult], key: Callable[[CaseResult], str]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for c in cases:
        groups[key(c)].append(c.passed)
    return {k: sum(v) / len(v) for k, v in groups.items()}


def calibrate_unsure_threshold(
    probs: np.ndarray, label_ids: Sequence[int], percentile: float
) -> float | None:
    """`percentile` of the top score over correctly classified examples (validation split):
    a score below it is less confident than nearly every right answer the model gives."""
    probs = np.asarray(probs, dtype=float)
    if probs.size == 0:
        return None
    correct = probs.argmax(axis=1) == np.asarray(label_ids)
    if not correct.any():
        return None
    return float(np.percentile(probs.max(axis=1)[correct], percentile))


def run_suite(
    suite: Suite,
    predict: Predictor,
    labels: Sequence[str],
    unsure_below: float | None = None,
    suite_path: str = "",
) -> BehaviourReport:
    """Every case of `suite` through `predict` (all texts in one call)."""
    suite.check_labels(labels, suite_path or "suite")
    texts: list[str] = []
    for items in suite.minimum_functionality.values():
        texts += items
    for inv in suite.invariance:
        texts += [inv.base, *inv.variants]
    for d in suite.directional:
        texts += [d.base, d.text]
    texts += suite.out_of_scope
    unique = list(dict.fromkeys(texts))
    got = dict(zip(unique, predict(unique), strict=True))
    cases: list[CaseResult] = []

    def add(kind: str, label: str, text: str, expected: str, ok: bool) -> None:
        p = got[text]
        cases.append(CaseResult(kind, label, text, expected, p.label, p.score, bool(ok)))

    for label, items in suite.minimum_functionality.items():
        for text in items:
            add("minimum_functionality", label, text, label, got[text].label == label)
    for inv in suite.invariance:
        base = got[inv.base].label
        label = inv.label or base
        if inv.label is not None:  # a wrong base is a failure of its own, not a pass
            add("invariance", label, inv.base, inv.label, base == inv.label)
        for text in inv.variants:
            add("invariance", label, text, f"same as base ({base})", got[text].label == base)
    for d in suite.directional:
        before, after = got[d.base], got[d.text]
        if d.to is not None:
            add("directional", d.to, d.text, d.to, after.label == d.to)
            continue
        target = d.raises or d.lowers or ""
        if before.scores is None or after.scores is None:
            ok = False  # no scores (a generative answer): the direction cannot be shown
        else:
            delta = after.scores[target] - before.scores[target]
            ok = delta > 0 if d.raises else delta < 0
        word = "raises" if d.raises else "lowers"
        add("directional", target, d.text, f"{word} {target}", ok)
    for text in suite.out_of_scope:
        p = got[text]
        if p.score is None:  # a generative answer: unsure means no label of the set
            ok, expected = p.label not in labels, "no label"
        elif unsure_below is None:
            ok, expected = False, "unsure (no threshold calibrated)"
        else:
            ok, expected = p.score < unsure_below, f"score < {unsure_below:.3f}"
        if suite.none_label is not None:  # the explicit "none of these" answer passes too
            ok, expected = ok or p.label == suite.none_label, f"{suite.none_label} or {expected}"
        add("out_of_scope", OUT_OF_SCOPE, text, expected, ok)
    return BehaviourReport(suite_path=suite_path, unsure_below=unsure_below, cases=cases)


def min_pass_for(policy: float | dict[str, float] | None, suite: str) -> float | None:
    """A suite's required pass rate under `registry.min_behaviour_pass`."""
    if policy is None or isinstance(policy, int | float):
        return policy
    return policy.get(suite)


def behaviour_verdict(
    report: BehaviourReport, policy: float | dict[str, float] | None, shown: int = 3
) -> tuple[bool, list[str]]:
    """(passed, reasons) of the promotion gate: each suite's pass rate against its minimum;
    a failing suite's reason names its first `shown` failing cases."""
    if policy is None:
        return True, []
    if report.skipped:
        return True, [f"behaviour not checked ({report.skipped})"]
    ok, reasons = True, []
    wanted = list(SUITES) if isinstance(policy, int | float) else list(policy)
    rates = report.pass_rates
    for suite in wanted:
        need = min_pass_for(policy, suite)
        if need is None:
            continue
        if suite not in rates:
            if isinstance(policy, dict):  # asked for by name: a suite without cases fails
                ok = False
                reasons.append(f"behaviour {suite}: no cases in {report.suite_path}")
            continue
        passed, total = report.counts(suite)
        good = rates[suite] >= need
        ok &= good
        line = (
            f"behaviour {suite} {passed}/{total} = {rates[suite]:.2f} "
            f"{'>=' if good else '<'} {need}"
        )
        if not good:
            failing = report.failures(suite)[:shown]
            named = "; ".join(f"{c.text!r} → {c.predicted} (want {c.expected})" for c in failing)
            line += f"; failing: {named}"
        reasons.append(line)
    return ok, reasons


def summary_lines(report: BehaviourReport) -> list[str]:
    """One line per suite for the run summary: pass count, rate and first failing case."""
    if report.skipped:
        return [f"skipped: {report.skipped}"]
    lines = []
    for suite in SUITES:
        passed, total = report.counts(suite)
        if not total:
            continue
        line = f"{suite:<22} {passed:>3}/{total:<3} {passed / total:.2f}"
        failing = report.failures(suite)
        if failing:
            c = failing[0]
            line += f"  e.g. {_short(c.text)!r} → {c.predicted}"
        lines.append(line)
    return lines


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def classifier_predictor(classifier: Any, batch_size: int = 64) -> Predictor:
    """A `TextClassifier` (components.modeling) as a `Predictor`: label, top score, scores."""

    def predict(texts: list[str]) -> list[Prediction]:
        probs = classifier.predict_proba(texts, batch_size)
        names = list(classifier.labels)
        return [
            Prediction(
                names[int(row.argmax())],
                float(row.max()),
                dict(zip(names, map(float, row), strict=True)),
            )
            for row in probs
        ]

    return predict


def answer_label(answer: str, field_name: str | None) -> str:
    """What a generative answer says: the whole answer, or one field of its JSON."""
    if not field_name:
        return answer.strip()
    try:
        value = json.loads(answer).get(field_name)
    except (ValueError, AttributeError):
        return "(not JSON)"
    return "(no field)" if value is None else str(value)


def generator_predictor(generator: Any, field_name: str | None) -> Predictor:
    """A generative bundle (`components.generative.bundle.Generator`) as a `Predictor`: each
    text is a user message; its answer (or `field_name` of its JSON) is the label."""

    def predict(texts: list[str]) -> list[Prediction]:
        answers = generator.generate([generator.conversation(t) for t in texts])
        return [Prediction(answer_label(a, field_name)) for a in answers]

    return predict
