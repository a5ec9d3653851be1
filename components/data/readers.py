"""Data files as frames: CSV (with quoting diagnostics), JSON Lines or a JSON array, Parquet.

A file that cannot be read (empty, invalid UTF-8, broken CSV quoting, unparsable JSON/Parquet)
raises a `DataLoadError` naming the file and place. CSV cells are read as strings and empty
cells become NaN. A frame's index is the 0-based data-row number in its file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import PurePosixPath

import pandas as pd

from components.data.trees import Tree
from components.errors import DataLoadError

FORMATS = {
    ".csv": "csv",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUPPORTED = ".csv, .jsonl/.json (JSON lines) or .parquet"


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text of a file (a leading BOM dropped), or a DataLoadError naming the bad byte."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = data[:offset].count(b"\n") + 1
        raise DataLoadError(
            f"{where} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}); re-save the file as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`)"
        ) from None


def _record_start_lines(text: str) -> list[int]:
    """1-based physical line on which each CSV record starts (quote-aware; blank lines count)."""
    starts, line, in_quote, i = [1], 1, False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            in_quote = not in_quote
        elif char in "\r\n":
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
            line += 1
            if not in_quote:
                starts.append(line)
        i += 1
    return starts


def _csv_error_line(text: str, message: str) -> int | None:
    """The physical line a pandas C-parser error points at (it counts records, not lines)."""
    match = re.search(r"starting at row (\d+)", message)
    record = int(match.group(1)) if match else None
    if record is None and (match := re.search(r"fields in line (\d+)", message)):
        record = int(match.group(1)) - 1
    if record is None:
        return None
    starts = _record_start_lines(text)
    return starts[record] if record < len(starts) else None


_QUOTING_HINT = (
    "Quote fields that contain commas, quotes or newlines, double quotes inside quoted fields "
    '(""), and close every opening quote'
)


def _check_quoting(text: str, where: str) -> None:
    """Refuse stray quotes that pandas' parser accepts silently: a lone `"` inside a quoted
    field (the text is altered) or a field whose quote is never closed (it swallows the
    records after it, up to the next quote)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a long text is not a quoting error
    try:
        while True:
            start = reader.line_num + 1
            try:
                next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                place = (
                    f"line {start}"
                    if reader.line_num <= start
                    else f"the record starting at line {start} (error at line {reader.line_num})"
                )
                raise DataLoadError(
                    f"{where}: broken CSV at {place}: {err} (a quote inside a quoted field "
                    f"that is not doubled, or a quote that is never closed). {_QUOTING_HINT}"
                ) from None
    finally:
        csv.field_size_limit(limit)


def _read_csv(data: bytes, where: str) -> pd.DataFrame:
    text = _decode(data, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise DataLoadError(
            f"{where} has no header row (only blank lines); the first line must name the columns"
        ) from None
    except pd.errors.ParserWarning as err:
        raise DataLoadError(
            f"{where}: data rows have more fields than the header row ({err}); quote texts that "
            'contain commas ("...") and remove trailing commas'
        ) from None
    except pd.errors.ParserError as err:
        message = str(err).strip()
        line = _csv_error_line(text, message)
        # pandas counts records (not lines) from 0 or 1: drop its numbers, keep the cause
        detail = re.sub(r"^Error tokenizing data\. (C error: )?", "", message)
        detail = re.sub(r" (starting at row|in line) \d+", "", detail)
        place = f"line {line}" if line is not None else "an unknown line"
        raise DataLoadError(f"{where}: broken CSV at {place}: {detail}. {_QUOTING_HINT}") from None
    _check_quoting(text, where)
    return frame


def _read_json(data: bytes, where: str) -> pd.DataFrame:
    """JSON lines (one object per line; blank lines skipped) or one JSON array of objects."""
    text = _decode(data, where)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataLoadError(
                f"{where}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
            ) from None
        numbered = list(enumerate(records, start=1))
        unit = "element"
    else:
        numbered = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((lineno, json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataLoadError(
                    f"{where}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}); "
                    "a JSON Lines file holds one JSON object per line"
                ) from None
        unit = "line"
    for number, record in numbered:
        if not isinstance(record, dict):
            raise DataLoadError(
                f"{where}, {unit} {number}: expected a JSON object with the data columns, got "
                f"{type(record).__name__}"
            )
    # object dtype keeps JSON values as they are (no int -> float promotion around nulls)
    frame = pd.DataFrame([r for _, r in numbered], dtype=object)
    return frame.reset_index(drop=True)


def _read_parquet(data: bytes, where: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # pyarrow raises ArrowInvalid/OSError variants
        raise DataLoadError(
            f"{where} cannot be read as Parquet: {err}. Check that it is a complete Parquet "
            "file (not a renamed CSV, nor a partly written or un-pulled one)"
        ) from None
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0:
        return frame
    named = any(name is not None for name in frame.index.names)
    return frame.reset_index(drop=not named)


def read_file(tree: Tree, path: str) -> pd.DataFrame:
    where = tree.describe(path)
    fmt = FORMATS.get(PurePosixPath(path.replace("\\", "/")).suffix.lower())
    if fmt is None:
        raise DataLoadError(f"{where}: unsupported file type; use {SUPPORTED}")
    data = tree.read_bytes(path)
    if not data:
        raise DataLoadError(
            f"{where} is empty (0 bytes); it needs a header/records. If it is DVC-tracked, "
            "`dvc pull` it; otherwise re-export it"
        )
    reader = {"csv": _read_csv, "json": _read_json, "parquet": _read_parquet}[fmt]
    return reader(data, where)
