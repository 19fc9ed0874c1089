"""What analyses take and give: checks of input tables, and notes on output tables.

Notes. Every analysis returns named DataFrames; whatever a reader must know about a table (it is empty and why, an
interval is undefined, a fit warned about separation or convergence) is a note on that table, kept in
`df.attrs["notes"]` (a list of str; pandas carries `attrs` through copies, sorting and slicing). `note(df, ...)`
adds one, `notes_of(df)` reads them, `notes_table(tables)` gathers them as rows (table, note); `agentsim analyze`
prints each table's notes under it and writes them to `<analysis>_notes.csv`.

Checks. Functions that accept tables from outside the platform (events, match logs, adoption rows, edge lists)
call `check_table` first, so a missing column, a wrong type, a null or a duplicate key is a `TableError` naming the
table, the column and the first offending rows, not a KeyError or a silent wrong answer deep inside.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import pandas as pd

NOTES = "notes"

Kind = Literal["int", "float", "number", "str", "any"]


class TableError(ValueError):
    """A table handed to an analysis is not what it needs; the message names the table, the column and rows."""


# -- notes -----------------------------------------------------------------------------------------------------
def note(df: pd.DataFrame, *messages: str) -> pd.DataFrame:
    """Add notes to `df` (in place; returns `df`). Repeated notes are kept once."""
    have = list(df.attrs.get(NOTES, []))
    for m in messages:
        if m and m not in have:
            have.append(m)
    df.attrs[NOTES] = have
    return df


def notes_of(df: pd.DataFrame) -> list[str]:
    return list(df.attrs.get(NOTES, []))


def empty(columns: Sequence[str], *messages: str) -> pd.DataFrame:
    """An empty table with these columns and notes saying why it is empty."""
    return note(pd.DataFrame(columns=list(columns)), *messages)


def notes_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All notes of an analysis's tables as rows (table, note), in table order."""
    rows = [{"table": name, "note": m} for name, df in tables.items() for m in notes_of(df)]
    return pd.DataFrame(rows, columns=["table", "note"])


def run_progress_note(log: Any) -> str:
    """How far the run got, for notes on empty tables: "the run completed 0 of 14 steps (status 'running': ...)";
    "" when the run has no run.json."""
    meta = log.meta
    done = meta.get("steps_completed")
    if done is None:
        return ""
    steps = (meta.get("spec") or {}).get("steps", "?")
    status = meta.get("status")
    text = f"the run completed {done} of {steps} step{'s' if steps != 1 else ''}"
    if status == "running":
        text += " (status 'running': its process was killed, or it is still running)"
    elif status and status != "completed":
        text += f" (status {status!r})"
    return text


def run_incomplete(log: Any) -> str:
    """"" for a run that ran all its steps (status completed, or no_valid_answers: every step ran); otherwise the
    note every table of its analyses carries: "incomplete run: the run completed 3 of 14 steps (status
    'interrupted'); its tables cover the first 3 steps only (steps 0 to 2)". A log without run.json is taken as it is ("")."""
    meta = log.meta
    done, steps = meta.get("steps_completed"), (meta.get("spec") or {}).get("steps")
    if done is None:
        return ""
    finished = meta.get("status") in ("completed", "no_valid_answers") and (not isinstance(steps, int) or done >= steps)
    if finished:
        return ""
    # tables count steps from 0 (`step`) or from 1 (days, turns): say both, so neither reads it off by one
    cover = ("no step" if not done else "the first step only (step 0)" if done == 1
             else f"the first {done} steps only (steps 0 to {done - 1})")
    return f"incomplete run: {run_progress_note(log)}; its tables cover {cover}"


def note_empty_tables(tables: Mapping[str, pd.DataFrame], log: Any) -> Mapping[str, pd.DataFrame]:
    """For a run that did not complete (`run_incomplete`): every table of the analysis, empty or not, says so, how
    far the run got and through which step its tables go (one note); returns `tables`."""
    incomplete = run_incomplete(log)
    if not incomplete:
        return tables
    for df in tables.values():
        note(df, incomplete)
    return tables


def note_incomplete_runs(tables: Mapping[str, pd.DataFrame], logs: Sequence[Any]) -> Mapping[str, pd.DataFrame]:
    """The analysis of several runs: every table names each run that did not complete (`run_incomplete`)."""
    lines = [f"{log.run_dir.name}: {why}" for log in logs if (why := run_incomplete(log))]
    for df in tables.values():
        note(df, *lines)
    return tables


# -- tables that do not apply --------------------------------------------------------------------------------------
HIDDEN = "not_applicable"


def not_applicable(df: pd.DataFrame, reason: str) -> pd.DataFrame:
    """Mark `df` as a table that does not apply to this run (a herd table of a run without a herd experiment); the
    reason is also a note, so `--out`'s notes CSV says why. The terminal hides such tables and lists them in one line
    (`agentsim analyze`); `--out` still writes them. Returns `df`."""
    df.attrs[HIDDEN] = reason
    return note(df, reason)


def why_not_applicable(df: pd.DataFrame) -> str:
    """The reason a table does not apply to its run ("" when it does)."""
    return str(df.attrs.get(HIDDEN, ""))


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect the warnings raised inside the block as readable one-line strings (category: message), each once,
    instead of letting them reach stderr raw; the caller puts them on a table with `note`. Deprecation warnings
    are dropped: they are about the library's code, not the data."""
    out: list[str] = []
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield out
    for w in caught:
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning | FutureWarning):
            continue  # a library warning about its own code (powerlaw uses its deprecated `sigma`), not the data
        line = f"{w.category.__name__}: {_readable(str(w.message))}"
        if line not in out:
            out.append(line)


def _readable(message: str, limit: int = 300) -> str:
    """One line of prose: whitespace collapsed, code examples (from ">>>" on, and the sentence that introduces
    them) dropped, cut at `limit` characters."""
    text = " ".join(message.split())
    if ">>>" in text:
        text = text[: text.index(">>>")].rstrip()
        if text.endswith(":"):  # "For example, try the following code:"
            cut = max(text.rfind(". ", 0, len(text) - 1), text.rfind("? ", 0, len(text) - 1))
            text = text[: cut + 1] if cut > 0 else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- checks ----------------------------------------------------------------------------------------------------
def _rows(mask: np.ndarray, df: pd.DataFrame, limit: int = 5) -> str:
    idx = df.index[np.asarray(mask, bool)]
    shown = ", ".join(str(i) for i in idx[:limit])
    return f"row{'s' if len(idx) > 1 else ''} {shown}" + (f" (and {len(idx) - limit} more)" if len(idx) > limit else "")


def _kind_ok(s: pd.Series, kind: Kind) -> np.ndarray:
    """Per value: does it have the kind (nulls count as fine here; `nullable` decides about them)?"""
    if kind == "any":
        return np.ones(len(s), bool)
    # Fast paths for the dtypes logs have, so ten million events are checked in well under a second.
    types = pd.api.types
    if kind == "str" and types.is_string_dtype(s.dtype) and types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return np.ones(len(s), bool)
    numeric = types.is_numeric_dtype(s.dtype) and not types.is_bool_dtype(s.dtype)
    if numeric and (kind in ("float", "number") or (kind == "int" and types.is_integer_dtype(s.dtype))):
        return np.ones(len(s), bool)
    notna = s.notna().to_numpy()
    if kind == "str":
        return ~notna | s.map(lambda v: isinstance(v, str)).to_numpy(bool)
    num = pd.to_numeric(s, errors="coerce")
    ok = ~notna | num.notna().to_numpy()
    if kind == "int":
        ok &= ~notna | (num.fillna(0) % 1 == 0).to_numpy()
    if s.dtype == bool:  # True is 1 to numpy, not an id or a count
        ok &= ~notna
    return ok


def check_table(df: object, name: str, columns: Mapping[str, Kind], *, nullable: Iterable[str] = (),
                unique: Sequence[str] = ()) -> pd.DataFrame:
    """Check a foreign table before an analysis reads it; raise `TableError` naming what is wrong and where.

    `columns`: required column -> kind ("int", "float"/"number", "str", "any"); `nullable`: columns that may hold
    nulls (the others may not); `unique`: columns whose combined values must not repeat (e.g. event_id).
    Returns `df` unchanged."""
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TableError(f"{name}: missing column(s) {missing}; it needs {list(columns)} (has {list(df.columns)})")
    nullable = set(nullable)
    for col, kind in columns.items():
        s = df[col]
        if col not in nullable and s.isna().any():
            raise TableError(f"{name}: column {col!r} has nulls at {_rows(s.isna().to_numpy(), df)}")
        bad = ~_kind_ok(s, kind)
        if bad.any():
            first = s[bad].iloc[0]
            first = first.item() if isinstance(first, np.generic) else first  # 2.5, not np.float64(2.5)
            want = {"int": "whole numbers", "float": "numbers", "number": "numbers", "str": "strings"}[kind]
            raise TableError(f"{name}: column {col!r} must hold {want}; {_rows(bad, df)} hold{'s' if bad.sum() == 1 else ''} "
                             f"{first!r} ({type(first).__name__})")
    if unique:
        dup = df.duplicated(list(unique), keep=False).to_numpy()
        if dup.any():
            vals = df.loc[dup, list(unique)].drop_duplicates().head(5).to_numpy().tolist()
            shown = [v[0] if len(v) == 1 else tuple(v) for v in vals]
            raise TableError(f"{name}: {'/'.join(unique)} must be unique; repeated value(s) {shown} at {_rows(dup, df)}")
    return df
