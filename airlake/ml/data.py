"""Reading user CSVs into a frame the trainers understand, with clear errors for bad input.

Any CSV with a header works: comma separated, dot decimals, ISO-8601 timestamps. Feature columns
default to every numeric column except the target/label, the timestamp and the group; non-numeric
columns are excluded (not one-hot encoded: a free-text or id column would otherwise become hundreds
of spurious features). Columns that are empty in the training data are dropped from the defaults and
reported. Rows that cannot be used (missing target, unparsable timestamp) are counted and reported,
never silently dropped.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MIN_TRAINING_ROWS = 20


class UsageError(Exception):
    """Bad command-line input: the CLI prints the one-line message and exits with status 2."""


@dataclass
class InputReport:
    """What happened to the input rows and columns, printed to stderr and kept in the metadata."""

    rows_read: int = 0
    rows_used: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    excluded_columns: dict[str, str] = field(default_factory=dict)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "dropped": dict(sorted(self.dropped.items())),
            "excluded_columns": dict(sorted(self.excluded_columns.items())),
        }

    def print(self) -> None:
        for reason, count in sorted(self.dropped.items()):
            print(f"skipped {count} rows: {reason}", file=sys.stderr)
        for column, reason in sorted(self.excluded_columns.items()):
            print(f"excluded column {column!r}: {reason}", file=sys.stderr)


def read_csv(path: Path, na_values: Sequence[str] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    try:
        frame = pd.read_csv(path, na_values=list(na_values) or None, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path} as CSV: {str(error).splitlines()[0]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def require_column(frame: pd.DataFrame, column: str | None, role: str) -> None:
    if column is not None and column not in frame.columns:
        raise UsageError(f"{role} column {column!r} not in the CSV (columns: {', '.join(frame.columns)})")


def parse_timestamps(values: pd.Series) -> np.ndarray:
    """Epoch milliseconds (int64; -1 where unparsable). Naive timestamps are read as UTC."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    ms = np.full(len(values), -1, dtype=np.int64)
    ok = parsed.notna().to_numpy()
    ms[ok] = (parsed[ok].astype("datetime64[ms, UTC]").astype("int64")).to_numpy()
    return ms


def choose_features(
    frame: pd.DataFrame,
    *,
    explicit: Sequence[str] | None,
    exclude: Sequence[str | None],
    report: InputReport,
) -> list[str]:
    """The input columns: `--features` as given (must exist and be numeric), else every numeric column."""
    if explicit:
        for column in explicit:
            require_column(frame, column, "feature")
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == 0:
                raise UsageError(f"feature column {column!r} has no numeric values")
            frame[column] = converted
        return list(explicit)
    skip = {c for c in exclude if c is not None}
    chosen = []
    for column in frame.columns:
        if column in skip:
            continue
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            report.excluded_columns[column] = "not numeric"
        elif frame[column].notna().sum() == 0:
            report.excluded_columns[column] = "empty"
        else:
            chosen.append(column)
    if not chosen:
        raise UsageError("no numeric feature columns (pass --features a,b,c)")
    return chosen


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    return items or None
