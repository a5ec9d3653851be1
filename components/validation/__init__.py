"""Data validation with Great Expectations 1.x, reported with offending rows, PHI redacted.

- `phi`: PHI-like patterns and `redact_phi` (a leaf).
- `report`: `CheckResult`, `ValidationReport` (markdown, summary), `DataValidationError`,
  `save_report`.
- `engine`: runs a suite's checks through GE, one GE suite per split, and makes the results.
- `checks` + `suite`: the classification suite, `validate_splits`.
- `generative`: the instruction-tuning (chat `messages`) suite, `validate_chat_splits`.
"""

from components.validation.engine import SPLIT_ORDER
from components.validation.generative import validate_chat_splits
from components.validation.phi import PHI_PATTERNS, redact_phi
from components.validation.report import (
    CheckResult,
    DataValidationError,
    ValidationReport,
    save_report,
)
from components.validation.suite import validate_splits

__all__ = [
    "PHI_PATTERNS",
    "SPLIT_ORDER",
    "CheckResult",
    "DataValidationError",
    "ValidationReport",
    "redact_phi",
    "save_report",
    "validate_chat_splits",
    "validate_splits",
]
