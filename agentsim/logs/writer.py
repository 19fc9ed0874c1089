"""Streaming, crash-safe Parquet writer for a run directory.

Rows are buffered per table and flushed as numbered Parquet parts (`events/part-000000.parquet`, ...). Each
part is written under a temporary name and renamed, so a killed run leaves only complete parts; everything
flushed before the kill stays readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from agentsim.logs.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY, TABLE_KEY, TABLES


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


class TableWriter:
    def __init__(self, root: Path, name: str, schema: pa.Schema, flush_rows: int, start_part: int = 0):
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.schema = schema.with_metadata({SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: name.encode()})
        self.flush_rows = flush_rows
        self.part = start_part
        self.rows_written = 0
        self._buf: list[dict[str, Any]] = []

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
        final = self.dir / f"part-{self.part:06d}.parquet"
        tmp = self.dir / f".part-{self.part:06d}.parquet.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
        self.part += 1
        self.rows_written += table.num_rows
        self._buf.clear()


class RunLogWriter:
    """Owns the tables of one run directory."""

    def __init__(self, run_dir: Path, flush_rows: int = 50_000):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.tables = {name: TableWriter(run_dir, name, schema, flush_rows) for name, schema in TABLES.items()}

    def append(self, table: str, rows: list[Any]) -> None:
        if rows:
            self.tables[table].append(rows)

    def append_table(self, table: str, data: pa.Table) -> None:
        self.tables[table].append_table(data)

    def flush(self) -> None:
        for t in self.tables.values():
            t.flush()

    def positions(self) -> dict[str, int]:
        """The next part number of each table: where a checkpoint leaves the log."""
        return {n: t.part for n, t in self.tables.items()}

    def truncate_to(self, positions: dict[str, int]) -> None:
        """Delete the parts at or after `positions` (all parts of a table it does not name) and continue from there."""
        for name, t in self.tables.items():
            keep = positions.get(name, 0)
            for p in t.dir.glob("*.parquet*"):
                stem = p.name.removeprefix(".").split(".")[0]
                if not stem.startswith("part-") or int(stem[5:]) >= keep or p.name.startswith("."):
                    p.unlink()
            t.part = keep
            t._buf.clear()

    def rows_written(self) -> dict[str, int]:
        return {n: t.rows_written for n, t in self.tables.items()}
