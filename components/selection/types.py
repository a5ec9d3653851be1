"""What selection produces and works on: plain data with no dependency on the rest of the
package, so `components.methods` can import it without importing selection itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

Scores = dict[str, float]
# module table → scores (one measure) or measure → scores
Importance = Callable[[list["ModuleInfo"]], Scores | dict[str, Scores]]
# a candidate selection → its validation loss after a short run
Proxy = Callable[["Selection"], float]


class SelectionError(ValueError):
    """A selection that cannot be made (e.g. no module matches); says which and why."""


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    layer: int | None
    kind: str  # "attention" | "feed_forward" | "other"
    in_features: int
    out_features: int
    params: int


@dataclass
class Selection:
    """The outcome of selection: what to train and the evidence for it."""

    strategy: str
    method: str
    target_modules: list[str]
    trainable_parameters: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    base_parameters: int = 0
    estimated_trainable: int = 0
    layer_table: list[dict] = field(default_factory=list)
    rank_pattern: dict[str, int] = field(default_factory=dict)
    candidates: list[dict] = field(default_factory=list)
    importance: str | None = None
    budget_params: int | None = None

    @property
    def estimated_fraction(self) -> float:
        return self.estimated_trainable / max(self.base_parameters, 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.strategy}/{self.method}: {len(self.target_modules)} modules, "
            f"~{self.estimated_trainable:,} trainable "
            f"({100 * self.estimated_fraction:.3f}% of base)"
        )
