"""The writer's record of its Parquet parts: `parts.jsonl` in the run directory.

One JSON object per line, appended as the run goes (so a long run costs one short line per part, not a rewrite
of a growing file every step):

    {"agentsim_parts": 1, "schema_version": "1.1"}                                   header, first line
    {"table": "events", "part": "part-000003.parquet", "rows": 23, "steps": [3, 3]}   a part, once renamed into place
    {"through_step": 3}                                                               a commit

A part line is appended only after its file was renamed into place, so every recorded part exists whole. A commit
line says: every row of every table for steps <= `through_step` is in the parts recorded above it. A reader's
snapshot is the prefix up to the last commit line; part lines after it belong to a step still being written (or
to one a kill interrupted) and are not read. A line torn by a kill has no newline yet and is ignored. Resume and
rollback rewrite the file atomically with the parts they keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "parts.jsonl"
MANIFEST_FORMAT = 1
_HEADER_KEY = "agentsim_parts"


class LogError(Exception):
    """A run directory or log file that cannot be read; the message names the path."""


@dataclass(frozen=True)
class PartRecord:
    """One Parquet part as the writer wrote it: its table, file name, row count and the steps its rows cover
    (inclusive; None for a table without a `step` column, or an empty part)."""

    table: str
    part: str
    rows: int
    steps: tuple[int, int] | None = None

    @property
    def index(self) -> int:
        return part_index(self.part)

    def line(self) -> str:
        return json.dumps({"table": self.table, "part": self.part, "rows": self.rows,
                           "steps": list(self.steps) if self.steps else None}) + "\n"

    def describe(self) -> str:
        steps = "" if self.steps is None else f", steps {self.steps[0]}-{self.steps[1]}"
        return f"{self.part} ({self.rows} rows{steps})"


def part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def part_index(name: str) -> int:
    """The number in `part-000012.parquet`; -1 for a name that is not a part's."""
    stem = name.removesuffix(".parquet")
    if not name.endswith(".parquet") or not stem.startswith("part-") or not stem[5:].isdigit():
        return -1
    return int(stem[5:])


def header_line(schema_version: str) -> str:
    return json.dumps({_HEADER_KEY: MANIFEST_FORMAT, "schema_version": schema_version}) + "\n"


def commit_line(through_step: int) -> str:
    return json.dumps({"through_step": through_step}) + "\n"


@dataclass
class Manifest:
    """A parsed parts.jsonl: `committed` parts per table (up to the last commit line) and the step they reach;
    `pending` parts were recorded after the last commit."""

    path: Path
    schema_version: str
    committed: dict[str, list[PartRecord]] = field(default_factory=dict)
    pending: dict[str, list[PartRecord]] = field(default_factory=dict)
    through_step: int | None = None

    def all_records(self) -> dict[str, list[PartRecord]]:
        out: dict[str, list[PartRecord]] = {}
        for source in (self.committed, self.pending):
            for table, recs in source.items():
                out.setdefault(table, []).extend(recs)
        return out


def read_manifest(path: Path) -> Manifest:
    """Parse parts.jsonl. Raises LogError naming the file and line for anything it does not understand."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise LogError(f"{path}: cannot read the parts manifest ({e.strerror or e})") from e
    lines = text.split("\n")
    lines.pop()  # after the last newline: empty, or a line a kill tore (not yet terminated)
    if not lines:
        raise LogError(f"{path}: empty parts manifest (no header line)")
    rows: list[dict[str, Any]] = []
    for no, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise LogError(f"{path}, line {no}: not valid JSON ({e.msg})") from e
        if not isinstance(obj, dict):
            raise LogError(f"{path}, line {no}: expected a JSON object, got {line[:60]!r}")
        rows.append(obj)
    head = rows[0]
    if head.get(_HEADER_KEY) != MANIFEST_FORMAT:
        raise LogError(f"{path}, line 1: not an agentsim parts manifest of format {MANIFEST_FORMAT} (got {lines[0][:80]!r})")
    manifest = Manifest(path, str(head.get("schema_version", "?")))
    open_parts: list[PartRecord] = []
    for no, obj in enumerate(rows[1:], start=2):
        if "through_step" in obj:
            step = obj["through_step"]
            if not isinstance(step, int):
                raise LogError(f"{path}, line {no}: through_step must be an integer, got {step!r}")
            for rec in open_parts:
                manifest.committed.setdefault(rec.table, []).append(rec)
            open_parts = []
            manifest.through_step = step
        elif "table" in obj:
            open_parts.append(_record(path, no, obj))
        else:
            raise LogError(f"{path}, line {no}: neither a part nor a commit: {lines[no - 1][:80]!r}")
    for rec in open_parts:
        manifest.pending.setdefault(rec.table, []).append(rec)
    return manifest


def _record(path: Path, no: int, obj: dict[str, Any]) -> PartRecord:
    table, part, rows, steps = obj.get("table"), obj.get("part"), obj.get("rows"), obj.get("steps")
    if not isinstance(table, str) or not isinstance(part, str) or part_index(part) < 0:
        raise LogError(f"{path}, line {no}: a part line needs a table name and a part-NNNNNN.parquet file name")
    if not isinstance(rows, int) or rows < 0:
        raise LogError(f"{path}, line {no}: rows must be a non-negative integer, got {rows!r}")
    if steps is not None and not (isinstance(steps, list) and len(steps) == 2 and all(isinstance(s, int) for s in steps)):
        raise LogError(f"{path}, line {no}: steps must be [first, last] or null, got {steps!r}")
    return PartRecord(table, part, rows, tuple(steps) if steps is not None else None)
