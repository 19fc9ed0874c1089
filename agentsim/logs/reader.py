"""Reading a run directory: pyarrow tables, pandas DataFrames, or a DuckDB connection with one view per table."""

from __future__ import annotations

import json
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from agentsim.logs.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY, TABLES


def _minor(version: str) -> int:
    try:
        return int(version.split(".")[1])
    except (IndexError, ValueError):
        return 0


class LogError(Exception):
    """A run directory or log file that cannot be read; the message names the path."""


class RunLog:
    """A finished, interrupted or running run, read from its directory.

    >>> log = RunLog("runs/neutral-...")
    >>> log.events.groupby("action").size()
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise LogError(f"{self.run_dir}: no such run directory")
        if not (self.run_dir / "run.json").exists() and not (self.run_dir / "events").is_dir():
            raise LogError(f"{self.run_dir}: not a run directory (no run.json and no events/)")

    @cached_property
    def meta(self) -> dict[str, Any]:
        path = self.run_dir / "run.json"
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise LogError(f"{path}: not valid JSON ({e})") from e

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta.get("spec", {})

    @property
    def run_id(self) -> str:
        return self.meta.get("run_id", self.run_dir.name)

    def parts(self, name: str) -> list[Path]:
        if name not in TABLES:
            raise LogError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        return sorted((self.run_dir / name).glob("part-*.parquet"))

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The whole table (all parts), or only `columns` (ten million events read fast that way)."""
        schema = TABLES.get(name)
        if columns is not None and schema is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise LogError(f"table {name!r} has no column(s) {unknown}; columns: {', '.join(schema.names)}")
            schema = pa.schema([schema.field(c) for c in columns])
        tables = []
        for p in self.parts(name):
            try:
                present = pq.read_schema(p).names if columns is not None else None
                t = pq.read_table(p, columns=[c for c in columns if c in present] if columns is not None and present is not None else None)
            except Exception as e:
                raise LogError(f"{p}: unreadable Parquet part ({e})") from e
            version = (t.schema.metadata or {}).get(SCHEMA_VERSION_KEY, b"?").decode()
            if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
                raise LogError(f"{p}: schema version {version}, this agentsim reads {SCHEMA_VERSION}")
            if _minor(version) > _minor(SCHEMA_VERSION):
                warnings.warn(f"{p}: schema version {version} is newer than this reader's {SCHEMA_VERSION}", stacklevel=2)
            tables.append(t.replace_schema_metadata(None))
        if not tables:
            return schema.empty_table() if schema is not None else pa.table({})
        table = pa.concat_tables(tables, promote_options="default")
        # Files of an older minor version lack columns added since: give them as nulls.
        for field in schema or []:
            if field.name not in table.column_names:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        return table

    def df(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self.table(name, columns).to_pandas()

    @property
    def events(self) -> pd.DataFrame:
        return self.df("events")

    @property
    def llm_calls(self) -> pd.DataFrame:
        return self.df("llm_calls")

    @property
    def agents(self) -> pd.DataFrame:
        return self.df("agents")

    @property
    def metrics(self) -> pd.DataFrame:
        return self.df("metrics")

    @property
    def timings(self) -> pd.DataFrame:
        return self.df("timings")

    def duckdb(self, connection: Any = None) -> Any:
        """A DuckDB connection with a view per table (`SELECT action, count(*) FROM events GROUP BY 1`)."""
        import duckdb

        con = connection or duckdb.connect()
        for name in TABLES:
            parts = self.parts(name)
            if parts:
                files = ", ".join(f"'{p.as_posix()}'" for p in parts)
                con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{files}])")
            else:
                con.register(f"_{name}_empty", TABLES[name].empty_table())
                con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_empty")
        return con

    def __repr__(self) -> str:
        return f"RunLog({str(self.run_dir)!r})"


def load_run(run_dir: str | Path) -> RunLog:
    """Open a run directory for analysis."""
    return RunLog(run_dir)


def find_runs(path: str | Path) -> list[Path]:
    """`path` itself if it is a run directory, else the run directories directly under it."""
    path = Path(path)
    if not path.is_dir():
        raise LogError(f"{path}: no such run directory")
    if (path / "run.json").exists() or (path / "events").is_dir():
        return [path]
    runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "run.json").exists())
    if not runs:
        raise LogError(f"{path}: neither a run directory nor a directory of runs")
    return runs
