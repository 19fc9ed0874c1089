"""Streaming, crash-safe Parquet writer for a run directory.

Rows are buffered per table and flushed as numbered Parquet parts (`events/part-000000.parquet`, ...). Each
part is written under a temporary name and renamed, so a killed run leaves only complete parts; everything
flushed before the kill stays readable. Each part, and each step whose rows are all in parts, is recorded in
`parts.jsonl` (see agentsim.logs.manifest): readers check the parts against it and read every table up to the
same complete step.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agentsim.logs.manifest import (
    MANIFEST,
    LogError,
    PartRecord,
    commit_line,
    header_line,
    part_index,
    part_name,
    read_manifest,
)
from agentsim.logs.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY, SIDE_TABLES, TABLE_KEY, TABLES


def _atomic_write(path: Path, mode: str, write: Any) -> None:
    """Write through a temporary file in the same directory, fsync, then rename: readers see the old file or
    the whole new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, "w", lambda f: f.write(text))


def atomic_write_npz(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    _atomic_write(path, "wb", lambda f: np.savez(f, **arrays))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@lru_cache(maxsize=64)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _row(r: Any) -> dict[str, Any]:
    """A flat dataclass (Event, Metric) as a dict: dataclasses.asdict deep-copies, ten times slower for these."""
    return {n: getattr(r, n) for n in _field_names(type(r))}


#: Temporary files of an unfinished write, by folder: `_atomic_write` names them `.<final name>.<random>`, the
#: table writer `.part-NNNNNN.parquet.tmp`. Only a kill leaves them; nothing ever reads them.
_RUN_DIR_TEMP = re.compile(r"^\.(run\.json|checkpoint\.json|checkpoint-\d+\.npz|" + re.escape(MANIFEST) + r")\..+$")
_TABLE_DIR_TEMP = re.compile(r"^\.part-\d+\.parquet\..+$")


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `run_dir` and its table folders; returns them.
    Call only while no process writes the run (on resume)."""
    removed = []
    folders = [(run_dir, _RUN_DIR_TEMP)] + [(run_dir / name, _TABLE_DIR_TEMP) for name in TABLES]
    for folder, pattern in folders:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if pattern.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _step_range(table: pa.Table) -> tuple[int, int] | None:
    if "step" not in table.column_names or table.num_rows == 0:
        return None
    mm = pc.min_max(table.column("step")).as_py()
    return (int(mm["min"]), int(mm["max"]))


class TableWriter:
    def __init__(self, root: Path, name: str, schema: pa.Schema, flush_rows: int, on_part: Callable[[PartRecord], None],
                 start_part: int = 0):
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.schema = schema.with_metadata({SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: name.encode()})
        self.flush_rows = flush_rows
        self.on_part = on_part
        self.part = start_part
        self.rows_written = 0
        self._buf: list[dict[str, Any]] = []

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def append(self, rows: list[Any]) -> None:
        for r in rows:
            self._buf.append(_row(r) if is_dataclass(r) else r)
        if len(self._buf) >= self.flush_rows:
            self.flush()

    def append_table(self, table: pa.Table) -> None:
        """Write an Arrow table built in columns as parts of its own (after whatever rows are buffered)."""
        self.flush()
        table = table.select(self.schema.names).cast(self.schema)
        for start in range(0, max(table.num_rows, 1), self.flush_rows):
            self._write(table.slice(start, self.flush_rows))

    def flush(self) -> None:
        if not self._buf:
            return
        self._write(pa.Table.from_pylist(self._buf, schema=self.schema))

    def _write(self, table: pa.Table) -> None:
        final = self.dir / part_name(self.part)
        tmp = self.dir / f".{final.name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
        # Recorded only once renamed into place: a recorded part always exists whole.
        self.on_part(PartRecord(self.name, final.name, table.num_rows, _step_range(table)))
        self.part += 1
        self.rows_written += table.num_rows
        self._buf.clear()


#: Tables whose rows belong to a step (all but `agents`): the ones a commit's `through_step` speaks of.
STEP_TABLES = tuple(name for name, schema in TABLES.items() if "step" in schema.names)


class DirectoryInUse(OSError):
    """Another process holds the directory's lock (`lock_directory`)."""


#: Directories this process holds locked: realpath -> the lock (its holders share it; see lock_directory).
_LOCKED: dict[str, _Held] = {}


def lock_directory(path: Path, what: str = "run") -> _Held:
    """Take an exclusive advisory lock on directory `path` (flock on the directory itself, so nothing is added to
    it); the lock lasts until every holder in this process has called `close()` on what this returns, or the process
    ends (a SIGKILL too). Two processes writing one run (a resume started twice, or while the run goes on) would
    interleave their parts and commits; the second one is refused with DirectoryInUse instead. Within one process
    the holders share the lock (a branch hands its directory to its runtime; a test resumes in process)."""
    import errno
    import fcntl

    key = os.path.realpath(path)
    held = _LOCKED.get(key)
    if held is not None and held.fd is not None:
        held.holders += 1
        return held
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DirectoryInUse(errno.EBUSY, f"another agentsim process is writing this {what}; let it finish (or stop it), "
                                          "then run the command again", str(path)) from None
    _LOCKED[key] = held = _Held(fd, key)
    return held


class RunLogWriter:
    """Owns the tables of one run directory and their record in parts.jsonl.

    The runtime appends a step's rows, then calls `end_step(step)`; from then on a reader may read that step as
    soon as every table's rows of it are in parts (at once with `flush=True`, as `logging.flush_every_step` does).
    """

    def __init__(self, run_dir: Path, flush_rows: int = 50_000):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _Release(lock_directory(run_dir))
        weakref.finalize(self, self._lock)  # a writer dropped without release() (an experiment's finished run)
        self.manifest = run_dir / MANIFEST
        self.tables = {name: TableWriter(run_dir, name, schema, flush_rows, self._record) for name, schema in TABLES.items()}
        self.records: dict[str, list[PartRecord]] = {name: [] for name in TABLES}
        self.step_done = -1  # the last step whose rows were all appended
        # Per table, the last step all of whose rows are in parts (= step_done whenever its buffer is empty).
        self.through = {name: -1 for name in STEP_TABLES}
        self._committed: int | None = None
        self._uncommitted = 0

    def release(self) -> None:
        """Give up the run directory's lock (another writer of this process takes over, e.g. a branch's runtime)."""
        self._lock()

    # -- the record -----------------------------------------------------------------------------------------------
    def _append_line(self, line: str) -> None:
        # Opened per line (a few per step): the file is replaced whole on resume, so no handle is kept across that.
        new = not self.manifest.exists()
        with open(self.manifest, "a", encoding="utf-8") as f:
            if new:
                f.write(header_line(SCHEMA_VERSION))
            f.write(line)

    def _record(self, rec: PartRecord) -> None:
        self._append_line(rec.line())
        self.records[rec.table].append(rec)
        self._uncommitted += 1

    def _commit(self) -> None:
        """Append a commit line if a part was written or another step became complete since the last one."""
        for name in STEP_TABLES:
            if not self.tables[name].buffered:
                self.through[name] = self.step_done
        through = min(self.through.values())
        if through != self._committed or self._uncommitted:
            self._append_line(commit_line(through))
            self._committed, self._uncommitted = through, 0

    # -- writing --------------------------------------------------------------------------------------------------
    def append(self, table: str, rows: list[Any]) -> None:
        if rows:
            self.tables[table].append(rows)

    def append_table(self, table: str, data: pa.Table) -> None:
        self.tables[table].append_table(data)

    def end_step(self, step: int, flush: bool = False) -> None:
        """All rows of `step` were appended: flush them too if `flush`, and record what is now complete."""
        self.step_done = step
        if flush:
            for t in self.tables.values():
                t.flush()
        self._commit()

    def flush(self) -> None:
        for t in self.tables.values():
            t.flush()
        self._commit()

    def positions(self) -> dict[str, int]:
        """The next part number of each table: where a checkpoint leaves the log."""
        return {n: t.part for n, t in self.tables.items()}

    def truncate_to(self, positions: dict[str, int], next_step: int) -> None:
        """Go back to a checkpoint: delete the parts at or after `positions` (all parts of a table it does not
        name) and the temporary files of a killed writer, rewrite parts.jsonl with the parts kept, and continue
        from step `next_step`.

        Parts kept that parts.jsonl does not record (a run written before it existed) are recorded from their
        Parquet footers; parts it records that are missing stay recorded, so readers still say they are missing.
        """
        remove_temp_files(self.run_dir)
        recorded: dict[str, list[PartRecord]] = {}
        if self.manifest.exists():
            try:
                recorded = read_manifest(self.manifest).all_records()
            except LogError:
                recorded = {}  # unreadable: rebuilt below from the parts themselves, which are checked as read
        lines = [header_line(SCHEMA_VERSION)]
        for name, t in self.tables.items():
            keep = positions.get(name, 0)
            for p in t.dir.glob("part-*.parquet"):
                if part_index(p.name) >= keep:
                    p.unlink()
            by_name = {r.part: r for r in recorded.get(name, []) if 0 <= r.index < keep}
            for p in t.dir.glob("part-*.parquet"):
                if p.name not in by_name and 0 <= part_index(p.name) < keep:
                    by_name[p.name] = _record_from_file(name, p)
            kept = sorted(by_name.values(), key=lambda r: r.index)
            lines += [r.line() for r in kept]
            self.records[name] = kept
            t.part = keep
            t.rows_written = sum(r.rows for r in kept)
            t._buf.clear()
        lines.append(commit_line(next_step - 1))
        atomic_write_text(self.manifest, "".join(lines))
        self.step_done = next_step - 1
        self.through = dict.fromkeys(STEP_TABLES, next_step - 1)
        self._committed, self._uncommitted = next_step - 1, 0

    def rows_written(self) -> dict[str, int]:
        return {n: t.rows_written for n, t in self.tables.items()}

    def summary(self) -> dict[str, Any]:
        """What run.json says about the log: where the parts are recorded, the last complete step, and the parts
        and rows of each table (as of the last commit)."""
        return {
            "manifest": MANIFEST,
            "through_step": self._committed,
            "tables": {n: {"parts": len(r), "rows": sum(x.rows for x in r)} for n, r in self.records.items()},
        }


def _record_from_file(table: str, path: Path) -> PartRecord:
    try:
        rows = pq.read_metadata(path).num_rows
        steps = _step_range(pq.read_table(path, columns=["step"])) if "step" in TABLES[table].names else None
    except Exception as e:
        raise LogError(f"{path}: unreadable Parquet part ({e})") from e
    return PartRecord(table, path.name, rows, steps)


def append_side_table(run_dir: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write `rows` as one new Parquet file of side table `name` (schema.SIDE_TABLES) in `run_dir/<name>/`; returns it.

    The file is named by its time and a random id (`<YYYYmmddTHHMMSSffffff>-<id>.parquet`), written under a dot name
    and renamed into place, so concurrent writers (a CLI interview beside the viewer's) never collide and a reader
    sees whole files only. Nothing of the run's own log (its tables, parts.jsonl, run.json) is touched, and no lock
    is taken: the run may still be writing."""
    import uuid
    from datetime import UTC, datetime

    schema = SIDE_TABLES[name].with_metadata({SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: name.encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    folder = run_dir / name
    folder.mkdir(exist_ok=True)
    final = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{final.name}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


class _Held:
    """A directory lock of this process: its descriptor and how many holders share it (closed by the last)."""

    def __init__(self, fd: int, key: str):
        self.fd: int | None = fd
        self.key = key
        self.holders = 1

    def close(self) -> None:
        if self.fd is None:
            return
        self.holders -= 1
        if self.holders == 0:
            fd, self.fd = self.fd, None
            _LOCKED.pop(self.key, None)
            with contextlib.suppress(OSError):
                os.close(fd)


class _Release:
    """One holder's release of a shared lock, done once however often it is called."""

    def __init__(self, held: _Held):
        self.held: _Held | None = held

    def __call__(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            held.close()
