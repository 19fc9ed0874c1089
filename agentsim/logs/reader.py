"""Reading a run directory: pyarrow tables, pandas DataFrames, or a DuckDB connection with one view per table.

A `RunLog` reads one snapshot of the run, taken when it is opened (and again on `refresh()`): run.json and the
parts the writer had recorded up to its last commit in parts.jsonl. Every table, and every DuckDB view, reads
exactly those parts and only the rows of steps up to the snapshot's last complete step, so a run read while it is
written gives tables that agree with each other. The parts on disk are checked against the record: a part that
is missing, unreadable, of another table, or whose row count differs, and a part nobody recorded, raise LogError
naming them (or, with `check=False`, a warning, and what exists is read). Runs written before parts.jsonl existed
are read from a directory listing taken at the snapshot, without these checks.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agentsim.logs.manifest import MANIFEST, LogError, PartRecord, part_index, read_manifest
from agentsim.logs.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY, SIDE_TABLES, TABLE_KEY, TABLES

__all__ = ["LogError", "RunLog", "find_runs", "load_run"]

#: run.json statuses of a run whose writer has stopped for good (until a resume): every part it wrote is committed.
FINAL_STATUSES = ("completed", "interrupted", "failed")


def _minor(version: str) -> int:
    try:
        return int(version.split(".")[1])
    except (IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class Snapshot:
    """What a RunLog reads: run.json, and per table the parts to read (in order) and the parts recorded after the
    last commit (being written, or cut off by a kill). `through_step`: rows of later steps are not read (None: no
    limit, for runs without parts.jsonl). `checked`: whether the parts come from parts.jsonl and are checked."""

    meta: dict[str, Any]
    parts: dict[str, list[PartRecord]]
    pending: dict[str, list[PartRecord]]
    through_step: int | None
    checked: bool

    @property
    def final(self) -> bool:
        return self.meta.get("status") in FINAL_STATUSES


class RunLog:
    """A finished, interrupted or running run, read from its directory (one consistent snapshot of it).

    >>> log = RunLog("runs/neutral-...")
    >>> log.events.groupby("action").size()

    `check=False` reads a damaged log: what the checks find is a warning instead of a LogError.
    Raises LogError (naming the file) for a directory that is not a run, an unreadable run.json or parts.jsonl.
    """

    def __init__(self, run_dir: str | Path, check: bool = True):
        self.run_dir = Path(run_dir)
        self.check = check
        if not self.run_dir.is_dir():
            raise LogError(f"{self.run_dir}: no such run directory")
        if not (self.run_dir / "run.json").exists() and not (self.run_dir / "events").is_dir():
            raise LogError(f"{self.run_dir}: not a run directory (no run.json and no events/)")
        self.refresh()

    # -- the snapshot ---------------------------------------------------------------------------------------------
    def refresh(self) -> RunLog:
        """Take a new snapshot: what the writer has completed since is read from now on."""
        self._snap = self._take_snapshot()
        self._verified: dict[str, list[Path]] = {}
        # Side tables (interviews) are whole files written beside the run, not parts of its steps: the snapshot
        # lists those in place now (dot names are files still being written).
        self._side = {name: sorted(p for p in (self.run_dir / name).glob("*.parquet") if not p.name.startswith("."))
                      for name in SIDE_TABLES}
        return self

    def _take_snapshot(self) -> Snapshot:
        meta = self._read_meta()
        manifest_path = self.run_dir / MANIFEST
        # run.json is written after parts.jsonl's commit, so a run.json that names the manifest means it must exist.
        expected = bool(meta.get("log", {}).get("manifest")) if isinstance(meta.get("log"), dict) else False
        if manifest_path.exists():
            m = read_manifest(manifest_path)
            unknown = sorted((set(m.committed) | set(m.pending)) - set(TABLES))
            if unknown:
                msg = (f"{manifest_path}: records parts of unknown table(s) {', '.join(unknown)}; "
                       f"tables of schema {SCHEMA_VERSION}: {', '.join(TABLES)}")
                if _minor(m.schema_version) > _minor(SCHEMA_VERSION) or not self.check:
                    warnings.warn(msg, stacklevel=3)
                else:
                    raise LogError(msg)
            return Snapshot(meta, {n: m.committed.get(n, []) for n in TABLES}, {n: m.pending.get(n, []) for n in TABLES},
                            m.through_step if m.through_step is not None else -1, checked=True)
        if expected:
            msg = (f"{manifest_path}: missing, but run.json says the writer recorded its parts there; the parts "
                   "cannot be checked (RunLog(..., check=False) reads the parts found)")
            if self.check:
                raise LogError(msg)
            warnings.warn(msg, stacklevel=3)
        listing = {n: [PartRecord(n, p.name, -1) for p in sorted((self.run_dir / n).glob("part-*.parquet"))] for n in TABLES}
        return Snapshot(meta, listing, {n: [] for n in TABLES}, None, checked=False)

    def _read_meta(self) -> dict[str, Any]:
        path = self.run_dir / "run.json"
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise LogError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(meta, dict):
            raise LogError(f"{path}: expected a JSON object")
        return meta

    @property
    def meta(self) -> dict[str, Any]:
        """run.json as of the snapshot."""
        return self._snap.meta

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta.get("spec", {})

    @property
    def run_id(self) -> str:
        return self.meta.get("run_id", self.run_dir.name)

    @property
    def complete_steps(self) -> int:
        """How many steps every table holds in this snapshot (run.json's steps_completed for older runs)."""
        if self._snap.through_step is None:
            return int(self.meta.get("steps_completed", 0))
        return self._snap.through_step + 1

    # -- checking the parts ---------------------------------------------------------------------------------------
    def parts(self, name: str) -> list[Path]:
        """The snapshot's parts of table `name`, checked against parts.jsonl (LogError names what is wrong)."""
        if name not in TABLES:
            raise LogError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        if name not in self._verified:
            self._verified[name] = self._verify(name)
        return self._verified[name]

    def _problem(self, msg: str) -> None:
        if self.check:
            raise LogError(msg + " (RunLog(..., check=False) reads the rest)")
        warnings.warn(msg, stacklevel=4)

    def _verify(self, name: str) -> list[Path]:
        snap, folder = self._snap, self.run_dir / name
        records = snap.parts[name]
        if not snap.checked:
            return [folder / r.part for r in records]
        on_disk = {p.name for p in folder.glob("part-*.parquet")} if folder.is_dir() else set()
        problems = []
        missing = [r for r in records if r.part not in on_disk]
        if missing:
            total = sum(r.rows for r in records)
            problems.append(f"{len(missing)} part(s) recorded in {MANIFEST} are missing: "
                            f"{', '.join(r.describe() for r in missing)} ({sum(r.rows for r in missing)} of {total} rows)")
        known = [r.part for r in records + snap.pending[name]]
        stray = sorted(on_disk - set(known), key=part_index)
        if stray and not snap.final:
            # A running (or killed) writer's next parts are numbered on from the last one recorded: not ours to read.
            last = max((part_index(k) for k in known), default=-1)
            if [part_index(s) for s in stray] == list(range(last + 1, last + 1 + len(stray))):
                stray = []
        if stray:
            problems.append(f"part(s) {', '.join(stray)} are not recorded in {MANIFEST} (left by another run or copied in?)")
        summary = snap.meta.get("log", {}).get("tables", {}).get(name) if isinstance(snap.meta.get("log"), dict) else None
        if snap.final and isinstance(summary, dict):
            parts, rows = len(records), sum(r.rows for r in records)
            if (summary.get("parts"), summary.get("rows")) != (parts, rows):
                problems.append(f"run.json records {summary.get('parts')} parts with {summary.get('rows')} rows, "
                                f"{MANIFEST} {parts} parts with {rows} rows")
        if problems:
            self._problem(f"{folder}: " + "; ".join(problems))
        return [folder / r.part for r in records if r.part in on_disk]

    def _open(self, path: Path, record: PartRecord | None, name: str) -> pq.ParquetFile:
        """Open one part and check what its footer says: table, schema version, row count."""
        try:
            pf = pq.ParquetFile(path)
        except Exception as e:
            raise LogError(f"{path}: unreadable Parquet part ({e})") from e
        md = pf.schema_arrow.metadata or {}
        version = md.get(SCHEMA_VERSION_KEY, b"?").decode()
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise LogError(f"{path}: schema version {version}, this agentsim reads {SCHEMA_VERSION}")
        if _minor(version) > _minor(SCHEMA_VERSION):
            warnings.warn(f"{path}: schema version {version} is newer than this reader's {SCHEMA_VERSION}", stacklevel=3)
        table = md.get(TABLE_KEY)
        if table is not None and table.decode() != name:
            self._problem(f"{path}: a part of table {table.decode()!r}, found in {name}/")
        if record is not None and record.rows >= 0 and pf.metadata.num_rows != record.rows:
            self._problem(f"{path}: {pf.metadata.num_rows} rows, but {MANIFEST} records {record.describe()} "
                          "(replaced or rewritten since it was written?)")
        return pf

    def _checked_parts(self, name: str) -> list[tuple[Path, PartRecord | None]]:
        by_name = {r.part: r for r in self._snap.parts[name]}
        return [(p, by_name.get(p.name)) for p in self.parts(name)]

    def _step_limit(self, name: str, record: PartRecord | None) -> int | None:
        """The last step to read from this part, if some of its rows are after the snapshot's last complete step."""
        limit = self._snap.through_step
        if limit is None or "step" not in TABLES[name].names:
            return None
        if record is not None and record.rows >= 0 and (record.steps is None or record.steps[1] <= limit):
            return None
        return limit

    # -- reading --------------------------------------------------------------------------------------------------
    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The whole table (the snapshot's parts), or only `columns` (ten million events read fast that way)."""
        if name in SIDE_TABLES:
            return self._side_table(name, columns)
        schema = TABLES.get(name)
        if schema is None:
            raise LogError(f"unknown table {name!r}; tables: {', '.join([*TABLES, *SIDE_TABLES])}")
        if columns is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise LogError(f"table {name!r} has no column(s) {unknown}; columns: {', '.join(schema.names)}")
            schema = pa.schema([schema.field(c) for c in columns])
        tables = []
        for path, record in self._checked_parts(name):
            pf = self._open(path, record, name)
            limit = self._step_limit(name, record)
            present = pf.schema_arrow.names
            wanted = [c for c in (columns if columns is not None else present) if c in present]
            try:
                t = pf.read(columns=wanted + (["step"] if limit is not None and "step" not in wanted else []))
            except Exception as e:
                raise LogError(f"{path}: unreadable Parquet part ({e})") from e
            finally:
                pf.close()
            if limit is not None:
                t = t.filter(pc.less_equal(t.column("step"), limit)).select(wanted)
            tables.append(t.replace_schema_metadata(None))
        if not tables:
            return schema.empty_table()
        table = pa.concat_tables(tables, promote_options="default")
        # Files of an older minor version lack columns added since: give them as nulls.
        for field in schema:
            if field.name not in table.column_names:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        # The schema's order whatever each part's; columns of a newer minor version (not in this schema) last.
        return table.select(schema.names + [c for c in table.column_names if c not in schema.names])

    def _side_table(self, name: str, columns: list[str] | None) -> pa.Table:
        """A side table (schema.SIDE_TABLES): every file the snapshot listed, oldest first, in the current schema."""
        schema = SIDE_TABLES[name]
        wanted = list(columns) if columns is not None else schema.names
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise LogError(f"table {name!r} has no column(s) {unknown}; columns: {', '.join(schema.names)}")
        tables = []
        for path in self._side[name]:
            pf = self._open(path, None, name)
            try:
                present = pf.schema_arrow.names
                t = pf.read(columns=[c for c in wanted if c in present])
            except Exception as e:
                raise LogError(f"{path}: unreadable Parquet part ({e})") from e
            finally:
                pf.close()
            for c in wanted:
                if c not in t.column_names:
                    t = t.append_column(schema.field(c), pa.nulls(t.num_rows, schema.field(c).type))
            tables.append(t.select(wanted).replace_schema_metadata(None))
        target = pa.schema([schema.field(c) for c in wanted])
        if not tables:
            return target.empty_table()
        return pa.concat_tables([t.cast(target) for t in tables])

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

    @property
    def interviews(self) -> pd.DataFrame:
        """Questions put to the run's agents and their answers (agentsim/interviews.py; schema.INTERVIEWS)."""
        return self.df("interviews")

    def duckdb(self, connection: Any = None) -> Any:
        """A DuckDB connection with a view per table (`SELECT action, count(*) FROM events GROUP BY 1`), over the
        snapshot's parts and steps. Each view has the table's current columns: parts of an older minor schema
        version give nulls for the columns added since."""
        import duckdb

        con = connection or duckdb.connect()
        limit = self._snap.through_step
        for name, schema in TABLES.items():
            files, columns = [], set()
            for path, record in self._checked_parts(name):
                with self._open(path, record, name) as pf:
                    columns.add(tuple(pf.schema_arrow.names))
                files.append("'" + path.as_posix().replace("'", "''") + "'")
            cols = ", ".join(f'"{c}"' for c in schema.names)
            parquet = f"read_parquet([{', '.join(files)}])"
            if not files or columns != {tuple(schema.names)}:
                # Parts of several versions (or none): union them by name with the table's schema as an empty Arrow
                # table, so the view has every current column, with its type (NULL where a part lacks it).
                con.register(f"_{name}_schema", schema.empty_table())
                parquet = f"_{name}_schema" + (
                    f" UNION ALL BY NAME SELECT * FROM read_parquet([{', '.join(files)}], union_by_name = true)" if files else "")
            where = f" WHERE step <= {int(limit)}" if limit is not None and "step" in schema.names else ""
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM (SELECT * FROM {parquet}){where}")
        for name in SIDE_TABLES:  # small tables: read through Arrow (older files' missing columns as nulls)
            con.register(f"_{name}_side", self._side_table(name, None))
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_side")
        return con

    def __repr__(self) -> str:
        return f"RunLog({str(self.run_dir)!r})"


def load_run(run_dir: str | Path, check: bool = True) -> RunLog:
    """Open a run directory for analysis (see RunLog)."""
    return RunLog(run_dir, check=check)


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
