"""The run log and checkpoints against known answers: parts.jsonl parsed line by line, the writer's parts and
commits by hand, what a reader's snapshot holds, a checkpoint written and restored in process (a resumed run gives
the uninterrupted run's log), seeds by an independent hash. Fast: the mutation run executes these many times."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentsim.core.seeding import derive_seed, make_rng, restore_rng, rng_state
from agentsim.core.state import join_arrays, same_state, split_arrays
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
from agentsim.logs.reader import RunLog, find_runs, load_run
from agentsim.logs.schema import SCHEMA_VERSION, TABLES
from agentsim.logs.writer import (
    RunLogWriter,
    atomic_write_json,
    atomic_write_npz,
    atomic_write_text,
    remove_temp_files,
)

from conftest import SCENARIOS, write_scenario


def _ev(step: int, i: int) -> dict:
    return {"event_id": i, "step": step, "sim_time": float(step), "phase": "p", "agent_id": "a", "action": "x"}


# -- parts.jsonl ---------------------------------------------------------------------------------------------------
def test_manifest_lines_by_hand(tmp_path: Path) -> None:
    m = tmp_path / MANIFEST
    a0 = PartRecord("events", "part-000000.parquet", 3, (0, 1))
    a1 = PartRecord("agents", "part-000000.parquet", 2)
    b0 = PartRecord("events", "part-000001.parquet", 1, (2, 2))
    m.write_text(header_line("1.1") + a0.line() + a1.line() + commit_line(1) + b0.line() + '{"table": "eve')  # torn
    man = read_manifest(m)
    assert man.schema_version == "1.1" and man.through_step == 1
    assert man.committed == {"events": [a0], "agents": [a1]} and man.pending == {"events": [b0]}
    assert man.all_records() == {"events": [a0, b0], "agents": [a1]}
    assert json.loads(a0.line()) == {"table": "events", "part": "part-000000.parquet", "rows": 3, "steps": [0, 1]}
    assert json.loads(a1.line())["steps"] is None and a0.line().endswith("\n") and a0.index == 0 and b0.index == 1
    assert a0.describe() == "part-000000.parquet (3 rows, steps 0-1)" and a1.describe() == "part-000000.parquet (2 rows)"
    m.write_text(header_line("1.0") + a0.line())
    only_pending = read_manifest(m)
    assert only_pending.through_step is None and only_pending.committed == {} and only_pending.pending == {"events": [a0]}


@pytest.mark.parametrize(("name", "index"), [("part-000012.parquet", 12), ("part-1.parquet", 1), ("part-.parquet", -1),
                                             ("part-00x.parquet", -1), ("part-000001.csv", -1), ("x-000001.parquet", -1)])
def test_part_names(name: str, index: int) -> None:
    assert part_index(name) == index
    assert part_name(12) == "part-000012.parquet" and part_index(part_name(7)) == 7


@pytest.mark.parametrize(("text", "where"), [
    ("", "empty parts manifest"),
    ('{"agentsim_parts": 2}\n', "line 1"),
    ("[1]\n", "line 1: expected a JSON object"),
    ('{"agentsim_parts": 1}\nnot json\n', "line 2: not valid JSON"),
    ('{"agentsim_parts": 1}\n{"through_step": "3"}\n', "line 2: through_step"),
    ('{"agentsim_parts": 1}\n{"table": "events", "part": "p.parquet", "rows": 1}\n', "line 2: a part line"),
    ('{"agentsim_parts": 1}\n{"table": "events", "part": "part-000001.parquet", "rows": -1}\n', "line 2: rows"),
    ('{"agentsim_parts": 1}\n{"table": "events", "part": "part-000001.parquet", "rows": 1, "steps": [1]}\n', "line 2: steps"),
    ('{"agentsim_parts": 1}\n{"commit": 1}\n', "line 2: neither"),
])
def test_bad_manifests_name_the_line(tmp_path: Path, text: str, where: str) -> None:
    m = tmp_path / MANIFEST
    m.write_text(text)
    with pytest.raises(LogError, match=where):
        read_manifest(m)
    with pytest.raises(LogError, match="cannot read"):
        read_manifest(tmp_path / "missing.jsonl")


# -- the writer ------------------------------------------------------------------------------------------------------
def test_writer_parts_and_commits_by_hand(tmp_path: Path) -> None:
    w = RunLogWriter(tmp_path / "r", flush_rows=2)
    w.append("events", [_ev(0, 0)])
    w.append("metrics", [{"step": 0, "metric": "m", "value": 1.0}])
    w.append("events", [])
    w.end_step(0)  # rows still buffered: step 0 is not complete in parts yet
    assert read_manifest(tmp_path / "r" / MANIFEST).through_step == -1
    w.append("events", [_ev(1, 1), _ev(1, 2)])  # 3 buffered rows >= flush_rows: one part of steps 0..1
    w.end_step(1, flush=True)
    man = read_manifest(tmp_path / "r" / MANIFEST)
    assert man.through_step == 1
    assert man.committed["events"] == [PartRecord("events", "part-000000.parquet", 3, (0, 1))]
    assert man.committed["metrics"] == [PartRecord("metrics", "part-000000.parquet", 1, (0, 0))]
    assert w.positions() == {"events": 1, "llm_calls": 0, "agents": 0, "metrics": 1, "timings": 0}
    assert w.rows_written()["events"] == 3
    assert w.summary() == {"manifest": MANIFEST, "through_step": 1,
                           "tables": {"events": {"parts": 1, "rows": 3}, "llm_calls": {"parts": 0, "rows": 0},
                                      "agents": {"parts": 0, "rows": 0}, "metrics": {"parts": 1, "rows": 1},
                                      "timings": {"parts": 0, "rows": 0}}}
    t = pq.read_table(tmp_path / "r" / "events" / "part-000000.parquet")
    assert t.schema.metadata[b"agentsim.schema_version"] == SCHEMA_VERSION.encode() and t.schema.metadata[b"agentsim.table"] == b"events"
    lines = (tmp_path / "r" / MANIFEST).read_text().splitlines()
    assert json.loads(lines[0]) == {"agentsim_parts": 1, "schema_version": SCHEMA_VERSION}
    assert [json.loads(x) for x in lines].count({"through_step": 1}) == 1
    w.end_step(1)  # nothing new: no new commit line
    assert (tmp_path / "r" / MANIFEST).read_text().splitlines() == lines
    w.append_table("agents", pa.table({"agent_id": list("abcde"), "kind": ["k"] * 5, "model": ["m"] * 5,
                                       "group": ["g"] * 5, "persona": [None] * 5}))
    assert [r.rows for r in w.records["agents"]] == [2, 2, 1] and w.tables["agents"].part == 3


def test_a_commit_waits_for_every_table(tmp_path: Path) -> None:
    w = RunLogWriter(tmp_path / "r", flush_rows=100)
    w.append("events", [_ev(0, 0)])
    w.tables["events"].flush()
    w.append("metrics", [{"step": 0, "metric": "m", "value": 1.0}])  # still buffered
    w.end_step(0)
    assert w.summary()["through_step"] == -1  # metrics of step 0 are not in a part yet
    w.flush()
    assert w.summary()["through_step"] == 0 and read_manifest(tmp_path / "r" / MANIFEST).through_step == 0


def test_truncate_to_a_checkpoint_by_hand(tmp_path: Path) -> None:
    run = tmp_path / "r"
    w = RunLogWriter(run, flush_rows=1)
    for s in range(4):
        w.append("events", [_ev(s, s)])
        w.end_step(s)
    (run / "events" / ".part-000009.parquet.tmp").write_text("torn")
    (run / ".run.json.abc").write_text("torn")
    # a part nobody recorded (a run from before parts.jsonl): recorded from its footer
    pq.write_table(pa.table({"event_id": [9], "step": [7]}, schema=pa.schema([("event_id", pa.int64()), ("step", pa.int32())])),
                   run / "metrics" / "part-000000.parquet")
    w2 = RunLogWriter(run, flush_rows=1)
    w2.truncate_to({"events": 2, "metrics": 1}, next_step=2)
    assert sorted(p.name for p in (run / "events").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    assert not (run / ".run.json.abc").exists()
    man = read_manifest(run / MANIFEST)
    assert man.through_step == 1 and man.pending == {}
    assert [r.part for r in man.committed["events"]] == ["part-000000.parquet", "part-000001.parquet"]
    assert man.committed["metrics"] == [PartRecord("metrics", "part-000000.parquet", 1, (7, 7))]
    assert w2.positions()["events"] == 2 and w2.rows_written()["events"] == 2 and w2.step_done == 1
    w2.append("events", [_ev(2, 2)])
    w2.end_step(2)
    assert RunLog(run).events["step"].tolist() == [0, 1, 2]
    (run / MANIFEST).write_text("garbage\n")
    w3 = RunLogWriter(run)
    w3.truncate_to({"events": 1}, next_step=1)  # an unreadable record is rebuilt from the parts kept
    assert [r.part for r in read_manifest(run / MANIFEST).committed["events"]] == ["part-000000.parquet"]


def test_temp_files_and_atomic_writes(tmp_path: Path) -> None:
    run = tmp_path / "r"
    atomic_write_text(run / "a.txt", "hello")
    atomic_write_json(run / "b.json", {"z": 1, "a": Path("x")})
    atomic_write_npz(run / "c.npz", {"x": np.arange(3)})
    assert (run / "a.txt").read_text() == "hello"
    assert (run / "b.json").read_text() == '{\n  "a": "x",\n  "z": 1\n}\n'
    with np.load(run / "c.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]
    (run / "events").mkdir()
    temps = [run / ".run.json.x1", run / ".checkpoint.json.y", run / ".checkpoint-000004.npz.z", run / ".parts.jsonl.q",
             run / "events" / ".part-000001.parquet.tmp"]
    keep = [run / ".other.x", run / "events" / "part-000001.parquet", run / "run.json", run / "events" / ".part-x.parquet.tmp"]
    for p in temps + keep:
        p.write_text("x")
    assert sorted(remove_temp_files(run)) == sorted(temps)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in temps)
    with pytest.raises(ZeroDivisionError):
        atomic_write_text(run / "d.txt", 1 / 0)  # type: ignore[arg-type]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".d.txt")) == []


# -- the reader's snapshot ---------------------------------------------------------------------------------------------
def _run(tmp_path: Path, steps: int = 3, final: bool = True) -> Path:
    run = tmp_path / "r"
    w = RunLogWriter(run, flush_rows=100)
    w.append_table("agents", pa.table({"agent_id": ["a"], "kind": ["k"], "model": ["m"], "group": ["g"], "persona": [None]}))
    for s in range(steps):
        w.append("events", [_ev(s, 2 * s), _ev(s, 2 * s + 1)])
        w.append("metrics", [{"step": s, "metric": "m", "value": float(s)}])
        w.end_step(s, flush=True)
    atomic_write_json(run / "run.json", {"run_id": "rid", "status": "completed" if final else "running", "log": w.summary(),
                                         "steps_completed": steps, "spec": {"steps": steps, "seed": 3}})
    return run


def test_a_snapshot_reads_what_was_committed(tmp_path: Path) -> None:
    run = _run(tmp_path)
    log = RunLog(run)
    assert log.run_id == "rid" and log.spec == {"steps": 3, "seed": 3} and log.complete_steps == 3 and log.meta["status"] == "completed"
    assert log.events["event_id"].tolist() == [0, 1, 2, 3, 4, 5] and log.metrics["value"].tolist() == [0.0, 1.0, 2.0]
    assert log.df("events", ["step", "action"]).columns.tolist() == ["step", "action"]
    assert log.table("events").schema.names == TABLES["events"].names
    assert log.agents["agent_id"].tolist() == ["a"] and log.llm_calls.empty and log.timings.empty
    assert log.parts("events") == [run / "events" / "part-000000.parquet", run / "events" / "part-000001.parquet",
                                   run / "events" / "part-000002.parquet"]
    con = log.duckdb()
    assert con.execute("SELECT count(*), max(step) FROM events").fetchone() == (6, 2)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (0,)
    assert repr(log) == f"RunLog({str(run)!r})" and load_run(run).events.equals(log.events)
    with pytest.raises(LogError, match="unknown table 'evnts'"):
        log.table("evnts")
    with pytest.raises(LogError, match="no column"):
        log.table("events", ["step", "nope"])
    with pytest.raises(LogError, match="unknown table"):
        log.parts("evnts")


def test_a_snapshot_stops_at_the_last_complete_step(tmp_path: Path) -> None:
    run = _run(tmp_path, final=False)
    w = RunLogWriter(run, flush_rows=100)
    w.truncate_to({"events": 3, "metrics": 3, "agents": 1}, next_step=3)
    w.append("events", [_ev(3, 6)])
    w.tables["events"].flush()  # a part of step 3, recorded but not committed (metrics of step 3 still missing)
    log = RunLog(run)
    assert log.complete_steps == 3 and log.events["step"].max() == 2
    assert log.duckdb().execute("SELECT max(step) FROM events").fetchone() == (2,)
    # a part written after the record was read (the writer's next one): not ours, not an error while running
    pq.write_table(pq.read_table(run / "events" / "part-000000.parquet"), run / "events" / "part-000004.parquet")
    assert RunLog(run).events["step"].max() == 2


@pytest.mark.parametrize("columns", [None, ["step"], ["event_id"], ["action", "agent_id"], ["event_id", "step"],
                                     ["payload", "event_id", "phase"]])
def test_any_columns_of_a_run_being_written_stop_at_the_last_complete_step(tmp_path: Path, columns) -> None:
    run = _run(tmp_path, steps=2, final=False)
    w = RunLogWriter(run, flush_rows=100)
    w.truncate_to({"events": 2, "metrics": 2, "agents": 1}, next_step=2)
    w.append("events", [_ev(2, 4), _ev(2, 5)])
    w.append("metrics", [{"step": 2, "metric": "m", "value": 2.0}])
    w.end_step(2)  # buffered, not flushed
    w.append("events", [_ev(3, 6), _ev(3, 7)])
    w.flush()  # one events part holds steps 2-3; step 2 is complete, step 3 (no metrics yet) is not
    assert read_manifest(run / MANIFEST).through_step == 2
    assert pq.read_table(run / "events" / "part-000002.parquet").column("step").to_pylist() == [2, 2, 3, 3]
    full = RunLog(run).table("events")
    assert full.column("event_id").to_pylist() == [0, 1, 2, 3, 4, 5]
    # Reading some columns (without `step` too) gives the same rows: the limit is applied before the selection.
    t = RunLog(run).table("events", columns)
    assert t.num_rows == 6 and t.column_names == (columns or TABLES["events"].names)
    assert t.equals(full.select(t.column_names))
    assert RunLog(run).duckdb().execute("SELECT count(*) FROM events").fetchone() == (6,)


def test_a_damaged_log_is_refused_or_read_around(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "events" / "part-000001.parquet").unlink()
    with pytest.raises(LogError, match=r"1 part\(s\) recorded in parts.jsonl are missing: part-000001.parquet \(2 rows, steps 1-1\) \(2 of 6 rows\)"):
        RunLog(run).table("events")
    with pytest.warns(UserWarning, match="missing"):
        assert RunLog(run, check=False).events["step"].tolist() == [0, 0, 2, 2]
    other = _run(tmp_path / "o")
    pq.write_table(pq.read_table(other / "events" / "part-000000.parquet").slice(0, 1), run / "events" / "part-000001.parquet")
    with pytest.raises(LogError, match="1 rows, but parts.jsonl records part-000001.parquet"):
        RunLog(run).table("events")
    pq.write_table(pq.read_table(other / "events" / "part-000000.parquet"), run / "events" / "part-000007.parquet")
    pq.write_table(pq.read_table(other / "events" / "part-000001.parquet"), run / "events" / "part-000001.parquet")
    with pytest.raises(LogError, match="part-000007.parquet are not recorded"):
        RunLog(run).table("events")
    (run / "events" / "part-000007.parquet").unlink()
    meta = json.loads((run / "run.json").read_text())
    meta["log"]["tables"]["events"] = {"parts": 3, "rows": 7}
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(LogError, match="run.json records 3 parts with 7 rows, parts.jsonl 3 parts with 6 rows"):
        RunLog(run).table("events")


def test_runs_without_a_record_and_missing_columns(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / MANIFEST).unlink()
    with pytest.raises(LogError, match="missing, but run.json says"):
        RunLog(run)
    meta = json.loads((run / "run.json").read_text())
    del meta["log"]
    (run / "run.json").write_text(json.dumps(meta))
    log = RunLog(run)  # written before parts.jsonl: read from a listing, unchecked
    assert log.complete_steps == 3 and log.events["event_id"].tolist() == [0, 1, 2, 3, 4, 5]
    old = run / "events" / "part-000000.parquet"
    t = pq.read_table(old)
    pq.write_table(t.drop(["request_id"]).replace_schema_metadata({b"agentsim.schema_version": b"1.0", b"agentsim.table": b"events"}), old)
    ev = RunLog(run).events
    assert ev.columns.tolist() == TABLES["events"].names and ev["request_id"].isna().all()
    pq.write_table(t.replace_schema_metadata({b"agentsim.schema_version": b"2.0"}), old)
    with pytest.raises(LogError, match="schema version 2.0"):
        RunLog(run).table("events")
    pq.write_table(t.replace_schema_metadata({b"agentsim.schema_version": b"1.9", b"agentsim.table": b"events"}), old)
    with pytest.warns(UserWarning, match="newer"):
        RunLog(run).table("events")
    (run / "run.json").write_text("[1]")
    with pytest.raises(LogError, match="expected a JSON object"):
        RunLog(run)
    (run / "run.json").write_text("{")
    with pytest.raises(LogError, match="not valid JSON"):
        RunLog(run)


def test_finding_runs(tmp_path: Path) -> None:
    a = _run(tmp_path / "x")
    (tmp_path / "x" / "notes").mkdir()
    assert find_runs(a) == [a] and find_runs(tmp_path / "x") == [a]
    with pytest.raises(LogError, match="neither a run directory"):
        find_runs(tmp_path / "x" / "notes")
    with pytest.raises(LogError, match="no such run directory"):
        find_runs(tmp_path / "nope")
    with pytest.raises(LogError, match="not a run directory"):
        RunLog(tmp_path / "x" / "notes")


# -- checkpoints: written and restored in process -------------------------------------------------------------------------
class _StopAfter:
    """A progress display that asks the runtime to stop after a given step (what Ctrl-C does)."""

    def __init__(self, step: int):
        self.step, self.runtime = step, None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __getattr__(self, name):
        return lambda *a, **k: None

    def end_step(self, step: int) -> None:
        if step == self.step:
            self.runtime.stop_requested = True


def _runtime(tmp_path: Path, run_dir: Path, progress=None, resume: bool = False, **overrides):
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import LocalRuntime
    from agentsim.spec.loader import load_scenario

    f = write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", steps=4,
                       **{"world.users.count": 12, "world.seed_posts.count": 4, "runtime.checkpoint_every": 2,
                          "world.time.activity": {"probability": 0.6}, **overrides})
    sc = load_scenario(f, backend="scripted")
    return LocalRuntime(sc, build_backend(sc.spec.models, sc.family.scripted_policy), run_dir, progress=progress, resume=resume)


def test_a_resumed_run_continues_exactly_from_its_checkpoint(tmp_path: Path) -> None:
    whole = _runtime(tmp_path, tmp_path / "whole")
    whole.run()
    stop = _StopAfter(1)
    cut = _runtime(tmp_path, tmp_path / "cut", progress=stop)
    stop.runtime = cut
    assert cut.run().status == "interrupted"
    ck = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    assert ck["next_step"] == 2 and ck["world_arrays"] == "checkpoint-000002.npz" and ck["format"] == 1
    assert ck["parts"] == cut.writer.positions() and ck["next_event_id"] == cut.next_event_id
    assert ck["totals"] == dict(cut.totals) and ck["step_wall"] == cut.step_wall and len(ck["step_wall"]) == 2
    assert ck["tokens_by_model"] == {k: dict(v) for k, v in cut.tokens_by_model.items()}
    assert sorted(p.name for p in (tmp_path / "cut").glob("checkpoint-*.npz")) == ["checkpoint-000002.npz"]
    at_checkpoint = copy.deepcopy(cut.world.get_state())
    # a killed writer got further: step 2's rows are in the log, the world moved on, the checkpoint did not
    asyncio.run(cut._step(2))
    assert RunLog(tmp_path / "cut").complete_steps == 3
    resumed = _runtime(tmp_path, tmp_path / "cut", resume=True)
    assert resumed.start_step == 2 and resumed.next_event_id == ck["next_event_id"]
    assert same_state(resumed.world.get_state(), at_checkpoint)
    assert rng_state(resumed.rng) == ck["rng"] and dict(resumed.totals) == ck["totals"]
    assert RunLog(tmp_path / "cut").complete_steps == 2  # the rows after the checkpoint are gone
    meta = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert meta["status"] == "running" and meta["steps_completed"] == 2 and meta["resumed"][0]["from_step"] == 2
    resumed.run()
    a, b = RunLog(tmp_path / "whole"), RunLog(tmp_path / "cut")
    for name in ("events", "metrics", "agents"):
        assert a.table(name).equals(b.table(name)), name
    assert a.table("llm_calls").drop(["latency_s"]).equals(b.table("llm_calls").drop(["latency_s"]))
    assert same_state(whole.world.get_state(), resumed.world.get_state())


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, tmp_path / "r")
    rt._save_meta()
    rt._write_agents()
    asyncio.run(rt._step(0))  # no checkpoint yet (every 2 steps)
    assert not (tmp_path / "r" / "checkpoint.json").exists()
    again = _runtime(tmp_path, tmp_path / "r", resume=True)
    assert again.start_step == 0 and again.next_event_id == 0 and RunLog(tmp_path / "r").complete_steps == 0
    assert [p.name for p in (tmp_path / "r" / "agents").glob("part-*")] == []


# -- state and seeds ----------------------------------------------------------------------------------------------------
def test_arrays_are_kept_aside_and_put_back() -> None:
    state = {"a": np.arange(3), "b": [np.zeros((2, 2)), {"c": np.array([1.5])}, 4], "d": (np.ones(1),), "e": "x"}
    plain, arrays = split_arrays(state)
    assert plain == {"a": {"__array__": "/a"}, "b": [{"__array__": "/b/0"}, {"c": {"__array__": "/b/1/c"}}, 4],
                     "d": [{"__array__": "/d/0"}], "e": "x"}
    assert sorted(arrays) == ["/a", "/b/0", "/b/1/c", "/d/0"]
    back = join_arrays(json.loads(json.dumps(plain)), arrays)
    assert same_state(back, {**state, "d": [np.ones(1)]})
    assert split_arrays([np.arange(2)], prefix="w")[0] == [{"__array__": "w/0"}]
    assert not same_state({"a": np.arange(3)}, {"a": np.arange(3).astype(np.int32)})
    assert not same_state({"a": np.arange(3)}, {"a": np.arange(1, 4)})
    assert not same_state({"a": np.arange(3)}, {"b": np.arange(3)}) and not same_state({"a": 1}, {"a": 2})
    assert join_arrays({"__array__": "k", "other": 1}, {"k": np.zeros(1)}) == {"__array__": "k", "other": 1}


def test_seeds_by_an_independent_hash() -> None:
    def ref(seed: int, *keys) -> int:
        h = hashlib.blake2b(struct.pack("<Q", seed % 2**64) + b"".join(b"\x00" + str(k).encode() for k in keys), digest_size=8)
        return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF

    for seed, keys in ((0, ()), (7, ("world",)), (-1, ("agent", 3, 0)), (2**70, ("x", "y"))):
        assert derive_seed(seed, *keys) == ref(seed, *keys)
    assert derive_seed(1, "ab") != derive_seed(1, "a", "b")
    rng = make_rng(5, "w")
    assert rng.integers(0, 10**9) == np.random.default_rng(np.random.SeedSequence(ref(5, "w"))).integers(0, 10**9)
    state = rng_state(rng)
    first = rng.random(3)
    restore_rng(rng, json.loads(json.dumps(state)))
    assert rng.random(3).tolist() == first.tolist()


def test_old_array_files_go_and_kept_checkpoints_stay(tmp_path: Path) -> None:
    """A checkpoint replaces the previous one's array file; with keep_checkpoints each is also copied aside as the
    state at the start of its step (checkpoints/step-NNNNNN.json and .npz)."""
    from agentsim.runtime.branch import kept_path, kept_steps

    rt = _runtime(tmp_path, tmp_path / "r", **{"runtime.keep_checkpoints": True})
    rt.run()
    run = tmp_path / "r"
    assert sorted(p.name for p in run.glob("checkpoint-*.npz")) == ["checkpoint-000004.npz"]
    assert kept_steps(run) == [2, 4]
    for step in (2, 4):
        kept = json.loads(kept_path(run, step).read_text())
        assert kept["next_step"] == step and kept["world_arrays"] == f"step-{step:06d}.npz"
        assert (run / "checkpoints" / kept["world_arrays"]).is_file()


def test_a_resumed_run_keeps_its_models_and_says_when_it_resumed(tmp_path: Path) -> None:
    stop = _StopAfter(1)
    cut = _runtime(tmp_path, tmp_path / "cut", progress=stop)
    stop.runtime = cut
    assert cut.run().status == "interrupted"
    before = json.loads((tmp_path / "cut" / "run.json").read_text())
    _runtime(tmp_path, tmp_path / "cut", resume=True)
    after = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert before["models"] and after["models"] == before["models"]
    assert [sorted(r) for r in after["resumed"]] == [["at", "from_step"]] and after["resumed"][0]["from_step"] == 2


def test_what_counts_as_a_run_directory(tmp_path: Path) -> None:
    """A run directory has run.json (a run that wrote nothing yet) or an events folder (a run whose run.json was
    lost); a folder of runs lists the subfolders with run.json. By default a run is read checked."""
    only_meta, only_events = tmp_path / "m", tmp_path / "e"
    only_meta.mkdir()
    (only_meta / "run.json").write_text("{}")
    (only_events / "events").mkdir(parents=True)
    assert find_runs(only_meta) == [only_meta] and find_runs(only_events) == [only_events]
    assert find_runs(tmp_path) == [only_meta]
    run = _run(tmp_path / "x")
    (run / "events" / "part-000001.parquet").unlink()
    with pytest.raises(LogError, match="missing"):
        load_run(run).table("events")


def test_duckdb_reads_a_run_whose_path_has_a_quote(tmp_path: Path) -> None:
    run = _run(tmp_path / "o'brien's runs")
    con = RunLog(run).duckdb()
    assert con.execute("SELECT count(*), max(step) FROM events").fetchone() == (6, 2)
    assert con.execute("SELECT sum(value) FROM metrics").fetchone() == (3.0,)


def test_an_unrecorded_part_of_a_table_without_steps_is_recorded_without_steps(tmp_path: Path) -> None:
    run = tmp_path / "r"
    w = RunLogWriter(run, flush_rows=1)
    w.append("events", [_ev(0, 0)])
    w.end_step(0)
    pq.write_table(pa.table({"agent_id": ["a", "b"]}), run / "agents" / "part-000000.parquet")
    RunLogWriter(run).truncate_to({"events": 1, "agents": 1}, next_step=1)
    assert read_manifest(run / MANIFEST).committed["agents"] == [PartRecord("agents", "part-000000.parquet", 2, None)]


def test_duckdb_views_of_older_parts_and_of_a_damaged_log(tmp_path: Path) -> None:
    """Parts of an older minor schema version (a column missing) are read through the view with NULLs in that
    column, whole, next to current parts; a part whose rows disagree with its record is refused."""
    run = _run(tmp_path)
    old = run / "events" / "part-000000.parquet"
    t = pq.read_table(old)
    pq.write_table(t.drop(["request_id"]).replace_schema_metadata(
        {b"agentsim.schema_version": b"1.0", b"agentsim.table": b"events"}), old)
    con = RunLog(run).duckdb()
    assert con.execute("SELECT count(*), count(request_id), max(step) FROM events").fetchone() == (6, 0, 2)
    assert con.execute("SELECT step FROM events ORDER BY event_id").fetchall() == [(0,), (0,), (1,), (1,), (2,), (2,)]
    pq.write_table(t.slice(0, 1), old)
    with pytest.raises(LogError, match="1 rows, but parts.jsonl records part-000000.parquet"):
        RunLog(run).duckdb()
