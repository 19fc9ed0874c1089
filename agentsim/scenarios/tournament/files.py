"""The tournament family's data files: score tables (CSD) and benchmark items (live). The row models are the
file formats (README "File formats", generated from them); a bad file is refused with its file, row, id and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FiniteFloat

from agentsim.core.datafile import DataFileError, check_columns, read_jsonl, read_table, validate_rows
from agentsim.core.names import Name, NamedId, name_problems, nfc
from agentsim.scenarios.tournament.config import Item


def _present(v: object) -> object:
    if v is None or (isinstance(v, str) and not v.strip()):
        raise ValueError("the score is missing")
    return v


Score = Annotated[FiniteFloat, BeforeValidator(_present)]


class WideScoreRow(BaseModel):
    """One row of a wide score table: a model and its score on each benchmark (one column per benchmark, in round order)."""

    model_config = ConfigDict(extra="forbid")
    model: Name = Field(..., description="The model's name: its agent id in the run; unique in the table.")
    scores: dict[Name, Score] = Field(
        ..., alias="<benchmark>", description="Every other column is a benchmark (its header a name), in round order; its cells are the model's scores.",
        json_schema_extra={"doc_type": "number, one column per benchmark", "doc_constraints": "finite, not empty"},
    )


class LongScoreRow(BaseModel):
    """One row of a long score table: one model's score on one benchmark."""

    model_config = ConfigDict(extra="forbid")
    model: Name = Field(..., description="The model's name: its agent id in the run.")
    benchmark: Name = Field(..., description="The benchmark; rounds follow the order of first appearance.")
    score: Score = Field(..., description="The model's score on it (a finite number); one row per (model, benchmark).")


@dataclass(frozen=True)
class ScoreTable:
    """A validated score table: models, benchmarks in round order, the (M, K) scores and each model's first row."""

    models: list[str]
    benchmarks: list[str]
    scores: np.ndarray
    rows: list[int]


def load_score_table(path: str | Path, benchmarks: list[str] | None = None) -> ScoreTable:
    """A CSV or Parquet score table: wide (`model` plus one column per benchmark) or long (`model`, `benchmark`,
    `score`). Raises DataFileError naming the file, row, model and benchmark of every bad cell."""
    p = Path(path)
    columns, raw = read_table(p, "score table")
    if "model" not in columns:
        raise DataFileError(p, [f"{p}: needs a 'model' column; columns are {columns}"])
    if {"benchmark", "score"} <= set(columns):
        check_columns(p, columns, LongScoreRow, "long score table")
        long = validate_rows(p, [dict(r) for r in raw], LongScoreRow, "model")
        order = list(dict.fromkeys(r.benchmark for r in long))
        models = list(dict.fromkeys(r.model for r in long))
        first = {}
        cell: dict[tuple[str, str], float] = {}
        problems = []
        for i, r in enumerate(long, start=1):
            first.setdefault(r.model, i)
            if (r.model, r.benchmark) in cell:
                problems.append(f"{p} row {i} (id {r.model!r}): field benchmark: {r.model!r} already has a score on {r.benchmark!r}")
            cell[r.model, r.benchmark] = r.score
        problems += [f"{p}: model {m!r} (row {first[m]}) has no score on benchmark {b!r}" for m in models for b in order if (m, b) not in cell]
        if problems:
            raise DataFileError(p, problems)
        rows = [first[m] for m in models]
        table = np.array([[cell[m, b] for b in order] for m in models], dtype=float).reshape(len(models), len(order))
    else:
        order = [nfc(c) for c in columns if c != "model"]
        if not order:
            raise DataFileError(p, [f"{p}: no benchmark columns; a wide table has `model` and one column per benchmark"])
        records = [{"model": r.get("model"), "<benchmark>": {c: v for c, v in r.items() if c != "model"}} for r in raw]
        wide = validate_rows(p, records, WideScoreRow, "model", strip_loc=1)
        models = [r.model for r in wide]
        rows = list(range(1, len(models) + 1))
        table = np.array([list(r.scores.values()) for r in wide], dtype=float).reshape(len(models), len(order))
    if len(models) < 2:
        raise DataFileError(p, [f"{p}: a tournament needs at least 2 models; the table has {len(models)}"])
    repeats = name_problems([NamedId(m, (), str(p), row, "model") for m, row in zip(models, rows, strict=True)], ())
    if repeats:
        raise DataFileError(p, [msg for _, msg in repeats])
    if benchmarks is not None:
        wanted = [nfc(b) for b in benchmarks]
        missing = [b for b in wanted if b not in order]
        if missing:
            raise DataFileError(p, [f"{p}: benchmarks {missing} not in the table; it has {order}"])
        table = table[:, [order.index(b) for b in wanted]]
        order = wanted
    return ScoreTable(models, order, table, rows)


def read_items(path: str | Path) -> list[Item]:
    """Benchmark items from JSONL (one object per line) or CSV (a header with `question`[, `answer`]). Raises
    DataFileError naming the file, row and field of every bad item."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        rows = read_jsonl(p, "items")
    else:
        columns, rows = read_table(p, "items")
        check_columns(p, columns, Item, "items")
    if not rows:
        raise DataFileError(p, [f"{p}: no items"])
    return validate_rows(p, rows, Item, None)
