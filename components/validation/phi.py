"""PHI-like patterns and their redaction: a leaf, shared by every suite and the report."""

from __future__ import annotations

import re

# (kind, regex): each regex runs on its own (pandas `str.contains`), so inline flags are allowed.
PHI_PATTERNS: tuple[tuple[str, str], ...] = (
    ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ("phone", r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b"),
    ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
    ("record number", r"(?i)\b(?:MRN|medical record(?: number)?|record ?#?)\s*[:#]?\s*\d{4,}"),
    ("record number", r"#\d{6,}"),
    ("long digit run", r"\d{7,}"),
)
_PHI_COMPILED = tuple((kind, re.compile(rx)) for kind, rx in PHI_PATTERNS)


def redact_phi(text: str) -> str:
    """`text` with every PHI-like match replaced by `<kind>` (e.g. `<ssn>`)."""
    for kind, rx in _PHI_COMPILED:
        text = rx.sub(f"<{kind}>", text)
    return text


def phi_kinds(text: str) -> list[str]:
    """The kinds of PHI-like pattern found in `text`, each once, in pattern order."""
    return list(dict.fromkeys(kind for kind, rx in _PHI_COMPILED if rx.search(text)))


def phi_kind_names() -> str:
    """The pattern kinds, comma-separated, each once (for check descriptions)."""
    return ", ".join(dict.fromkeys(kind for kind, _ in PHI_PATTERNS))
