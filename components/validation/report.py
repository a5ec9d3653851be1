"""What a suite run returns and how it is shown: results, the report, its markdown and files."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SHOWN_CHARS = 300  # longest value stored in an example
_SUMMARY_CHARS = 60  # longest value shown in summary()


@dataclass
class CheckResult:
    """The outcome of one expectation on one split."""

    split: str
    expectation: str
    description: str
    column: str | None
    success: bool
    unexpected_count: int
    element_count: int
    examples: list[dict] = field(default_factory=list)
    severity: str = "critical"  # "warning": shown, never fails the suite


@dataclass
class ValidationReport:
    """All checks of one suite run (`validate_splits`, `validate_chat_splits`)."""

    suite_name: str
    success: bool
    checks: list[CheckResult]

    def failures(self) -> list[CheckResult]:
        """The failed checks, in suite order (warnings are not failures)."""
        return [c for c in self.checks if not c.success and c.severity != "warning"]

    def warnings(self) -> list[CheckResult]:
        """Checks that did not hold but only warn (e.g. a group too small to judge)."""
        return [c for c in self.checks if not c.success and c.severity == "warning"]

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return {
            "suite_name": self.suite_name,
            "success": self.success,
            "evaluated": len(self.checks),
            "failed": len(self.failures()),
            "checks": [asdict(c) for c in self.checks],
        }

    def to_markdown(self) -> str:
        """A table of all checks, then a section per failure with its offending rows."""
        failures = self.failures()
        status = "passed" if self.success else f"failed ({len(failures)} of {len(self.checks)})"
        lines = [
            f"# Data validation: {self.suite_name}",
            "",
            f"**Result:** {status}",
            "",
            "| split | expectation | column | result | unexpected | rows | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            lines.append(
                f"| {c.split} | `{c.expectation}` | {_md(c.column or '')} | "
                f"{_result(c)} | {c.unexpected_count} | "
                f"{c.element_count} | {_md(c.description)} |"
            )
        if failures:
            lines += ["", "## Failures"]
        for c in failures:
            lines += self._detail(c)
        if self.warnings():
            lines += ["", "## Warnings"]
        for c in self.warnings():
            lines += self._detail(c)
        return "\n".join(lines) + "\n"

    def _detail(self, c: CheckResult) -> list[str]:
        """A failure's or warning's section: its description and offending rows."""
        lines: list[str] = []
        where = f"{c.split}, column `{c.column}`" if c.column else c.split
        lines += ["", f"### `{c.expectation}` ({where})", "", _md(c.description), ""]
        if not c.examples:
            return lines
        extra = sorted({k for e in c.examples for k in e} - {"row", "value"})
        lines.append("| " + " | ".join(["row", "value", *extra]) + " |")
        lines.append("|" + "---|" * (2 + len(extra)))
        for e in c.examples:
            cells = [_row_label(e.get("row")), _md(_show(e.get("value"), SHOWN_CHARS))]
            cells += [_md("" if e.get(k) is None else e[k]) for k in extra]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    def summary(self) -> str:
        """Plain text naming each failure (split, expectation, column, count, a few rows)."""
        failures = self.failures()
        if not failures:
            return f"data validation passed: suite {self.suite_name!r}, {len(self.checks)} checks"
        lines = [
            f"data validation failed: suite {self.suite_name!r}, "
            f"{len(failures)} of {len(self.checks)} checks failed"
        ]
        for c in failures:
            col = f" column {c.column!r}" if c.column else ""
            count = (
                f" ({c.unexpected_count} of {c.element_count} rows)" if c.unexpected_count else ""
            )
            lines.append(f"- [{c.split}] {c.expectation}{col}: {c.description}{count}")
            for e in c.examples:
                extra = "".join(f", {k}={v}" for k, v in e.items() if k not in ("row", "value"))
                head = f"row {e['row']}" if e.get("row") is not None else "value"
                lines.append(f"    {head}: {_show(e.get('value'), _SUMMARY_CHARS)}{extra}")
        return "\n".join(lines)


class DataValidationError(Exception):
    """Raised by callers when a `ValidationReport` failed; `str(exc)` is `report.summary()`."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


def save_report(report: ValidationReport, folder: Path) -> list[Path]:
    """Write `validation_report.json` and `validation_report.md` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "validation_report.json"
    md_path = folder / "validation_report.md"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    md_path.write_text(report.to_markdown())
    return [json_path, md_path]


# ---------------------------------------------------------------------------------------------
# Formatting (also used by the suites for example values and descriptions)


def cell(value: Any) -> Any:
    """A JSON-friendly copy of a cell value (capped later, when the result is made)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def percent(share: float) -> str:
    """0.05 -> '5%', 0.4743 -> '47.43%'."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _show(value: Any, limit: int) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[:limit] + "…"
        return repr(shown)
    return "null" if value is None else str(value)


def _row_label(row: Any) -> str:
    return "–" if row is None else str(row)


def _result(c: CheckResult) -> str:
    if c.success:
        return "pass"
    return "warn" if c.severity == "warning" else "**FAIL**"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
