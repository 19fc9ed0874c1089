"""The run log as a record: parts checked against what the writer recorded, one consistent snapshot per RunLog
(also while the run is written), DuckDB views over mixed schema versions, temporary files, model labels."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentsim.logs.manifest import MANIFEST
from agentsim.logs.reader import LogError, RunLog, load_run
from agentsim.logs.schema import TABLES
from agentsim.logs.writer import RunLogWriter, remove_temp_files
from agentsim.runtime.meta import model_label

from conftest import write_scenario
from test_runs import agentsim_cli, run_ok, wait_for_steps


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two finished scripted wargame runs (14 steps, one part per table and step) with different seeds."""
    tmp = tmp_path_factory.mktemp("runs")
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        run_ok(str(write_scenario(tmp, seed=seed)), "--backend", "scripted", "--run-dir", str(tmp / name), "--quiet")
        out[name] = tmp / name
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _parts(run: Path, table: str = "events") -> list[Path]:
    return sorted((run / table).glob("part-*.parquet"))


def _rows(p: Path) -> int:
    return pq.read_metadata(p).num_rows


# -- 1. parts checked against the writer's record ----------------------------------------------------------------
def _delete(i: int) -> Callable[[Path, Path], str]:
    def damage(run: Path, other: Path) -> str:
        p = _parts(run)[i]
        p.unlink()
        return p.name
    return damage


def _truncate(run: Path, other: Path) -> str:
    p = _parts(run)[5]
    p.write_bytes(p.read_bytes()[:200])
    return p.name


def _replace_with_other_runs(run: Path, other: Path) -> str:
    p = _parts(run)[6]
    donor = next(q for q in _parts(other) if _rows(q) != _rows(p))  # another run's part of the same table
    shutil.copyfile(donor, p)
    return p.name


def _stray(index: int) -> Callable[[Path, Path], str]:
    def damage(run: Path, other: Path) -> str:
        p = run / "events" / f"part-{index:06d}.parquet"
        shutil.copyfile(_parts(other)[3], p)
        return p.name
    return damage


def _other_table(run: Path, other: Path) -> str:
    p = _parts(run)[4]
    shutil.copyfile(_parts(run, "timings")[4], p)
    return "a part of table 'timings'"


def _unknown_table_recorded(run: Path, other: Path) -> str:
    m = run / MANIFEST
    lines = m.read_text().splitlines(keepends=True)
    lines.insert(-1, json.dumps({"table": "evnts", "part": "part-000000.parquet", "rows": 3, "steps": [0, 0]}) + "\n")
    m.write_text("".join(lines))
    return "unknown table.*evnts"


def _record_dropped(run: Path, other: Path) -> str:
    m = run / MANIFEST
    lines = [x for x in m.read_text().splitlines(keepends=True) if '"part-000007.parquet"' not in x or '"events"' not in x]
    m.write_text("".join(lines))
    return "part-000007.parquet"


def _manifest_deleted(run: Path, other: Path) -> str:
    (run / MANIFEST).unlink()
    return f"{MANIFEST}: missing"


DAMAGE = {
    "first part deleted": _delete(0),
    "middle part deleted": _delete(7),
    "last part deleted": _delete(-1),
    "part truncated (unreadable)": _truncate,
    "part replaced by another run's (row count differs)": _replace_with_other_runs,
    "stray part after a gap": _stray(99),
    "stray part next in line (finished run)": _stray(14),
    "part of another table": _other_table,
    "part of an unknown table recorded": _unknown_table_recorded,
    "record of a part dropped from parts.jsonl": _record_dropped,
    "parts.jsonl deleted": _manifest_deleted,
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_log_is_refused_naming_what(case: str, runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["a"], tmp_path / "run")
    what = DAMAGE[case](run, runs["b"])
    with pytest.raises(LogError, match=what):
        load_run(run).table("events")
    with pytest.raises(LogError, match=what):
        load_run(run).duckdb()
    r = agentsim_cli("analyze", str(run), "escalation")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert what.split(".*")[-1] in r.stderr.replace("\n", "")


def test_a_missing_part_is_read_around_with_check_off(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["a"], tmp_path / "run")
    gone = _parts(run)[7]
    lost = _rows(gone)
    gone.unlink()
    with pytest.warns(UserWarning, match=gone.name):
        events = load_run(run, check=False).events
    assert len(events) == load_run(runs["a"]).meta["totals"]["events"] - lost
    assert 7 not in set(events["step"])


def test_runs_written_before_parts_jsonl_read_unchecked(runs: dict[str, Path], tmp_path: Path) -> None:
    """An older run (no parts.jsonl, no `log` in run.json) reads as before: every part found, no check."""
    run = _copy(runs["a"], tmp_path / "old")
    (run / MANIFEST).unlink()
    meta = json.loads((run / "run.json").read_text())
    del meta["log"]
    (run / "run.json").write_text(json.dumps(meta))
    assert load_run(run).table("events").equals(load_run(runs["a"]).table("events"))
    _parts(run)[7].unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_run(run).events) < meta["totals"]["events"]


@pytest.mark.parametrize("tail, ok", [
    ('{"table": "events", "part": "part-0000', True),  # torn by a kill: no newline yet, not read
    ('{"through_step": "3"}\n', False),
    ("not json\n", False),
    ('{"table": "events", "part": "x.parquet", "rows": 1}\n', False),
    ('{"table": "events", "part": "part-000020.parquet", "rows": -1}\n', False),
    ('{"something": 1}\n', False),
])
def test_parts_jsonl_lines(tail: str, ok: bool, runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["a"], tmp_path / "run")
    n = len((run / MANIFEST).read_text().splitlines())
    with open(run / MANIFEST, "a") as f:
        f.write(tail)
    if ok:
        assert load_run(run).table("events").equals(load_run(runs["a"]).table("events"))
    else:
        with pytest.raises(LogError, match=rf"{MANIFEST}, line {n + 1}"):
            load_run(run)


# -- 2. one snapshot per RunLog, also while the run is written -------------------------------------------------
@pytest.mark.parametrize("logging", [
    {},  # the default: every table flushed at the end of each step
    {"logging.flush_every_step": False, "logging.flush_rows": 50},  # tables flushed at different steps
], ids=["flush-every-step", "flush-by-rows"])
def test_reads_while_written_agree_on_the_last_complete_step(logging: dict, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, steps=100_000, **{"world.history_days": 1, "runtime.checkpoint_every": 1000}, **logging)
    run = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(f), "--backend", "scripted", "--run-dir", str(run), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    snapshots = []
    try:
        wait_for_steps(run, 2)
        deadline = time.time() + 25  # the writer does some 20 steps a second; each read takes longer as parts pile up
        while len(snapshots) < 100 and time.time() < deadline:
            log = RunLog(run)
            tables = {t: log.table(t) for t in ("events", "metrics", "llm_calls", "timings")}
            last = {t: max(tab.column("step").to_pylist(), default=None) for t, tab in tables.items()}
            assert len(set(last.values())) == 1, f"tables end at different steps: {last}"
            assert last["events"] == (log.complete_steps - 1 if log.complete_steps else None)
            con = log.duckdb()
            for t, tab in tables.items():  # the DuckDB views read the same snapshot
                assert con.execute(f"SELECT count(*), max(step) FROM {t}").fetchone() == (tab.num_rows, last[t])
            snapshots.append((log.complete_steps, tables))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(snapshots) >= 5 and snapshots[-1][0] > snapshots[0][0]
    final = RunLog(run)  # killed: whatever the kill cut off is not read either
    whole = {t: final.table(t) for t in ("events", "metrics", "llm_calls", "timings")}
    for steps, tables in snapshots:  # never a partial step: each snapshot is a prefix of the final log
        assert steps <= final.complete_steps
        for t, tab in tables.items():
            assert tab.equals(whole[t].filter(pa.compute.less(whole[t].column("step"), steps))), (t, steps)


def test_a_runlog_keeps_its_snapshot_until_refresh(tmp_path: Path) -> None:
    """Parts written after a RunLog was opened are not read by it, in any table, until refresh()."""
    w = RunLogWriter(tmp_path / "r")
    w.append_table("agents", pa.table({"agent_id": ["a"], "kind": ["k"], "model": ["m"], "group": ["g"], "persona": [None]}))
    w.flush()

    def step(s: int) -> None:
        w.append("events", [{"event_id": s, "step": s, "sim_time": float(s), "phase": "p", "agent_id": "a", "action": "x"}])
        w.append("metrics", [{"step": s, "metric": "m", "value": 1.0}])
        w.end_step(s, flush=True)

    step(0)
    log = RunLog(tmp_path / "r")
    step(1)
    assert log.complete_steps == 1 and log.events["step"].tolist() == [0] and log.metrics["step"].tolist() == [0]
    assert log.duckdb().execute("SELECT max(step) FROM metrics").fetchone() == (0,)
    assert log.refresh().complete_steps == 2 and log.events["step"].tolist() == [0, 1]


def test_rows_of_an_unfinished_step_are_not_read(tmp_path: Path) -> None:
    """A part holding rows of a step not yet ended (a flush mid-step, or the last flush of an interrupted run)."""
    w = RunLogWriter(tmp_path / "r", flush_rows=2)
    ev = lambda s, i: {"event_id": i, "step": s, "sim_time": 0.0, "phase": "p", "agent_id": "a", "action": "x"}  # noqa: E731
    w.append("events", [ev(0, 0)])
    w.append("metrics", [{"step": 0, "metric": "m", "value": 1.0}])
    w.end_step(0)
    w.append("events", [ev(1, 1), ev(1, 2)])  # reaches flush_rows: a part with step 0 and step 1 rows
    w.flush()  # as run() does when it stops mid-step
    log = RunLog(tmp_path / "r")
    assert log.complete_steps == 1
    assert log.events["step"].tolist() == [0]
    assert log.duckdb().execute("SELECT list(step) FROM events").fetchone() == ([0],)


# -- 3. DuckDB over parts of mixed schema versions ---------------------------------------------------------------
def _downgrade(part: Path) -> int:
    """Rewrite a llm_calls part as schema 1.0 wrote it: no cached_tokens column."""
    t = pq.read_table(part)
    meta = dict(t.schema.metadata)
    meta[b"agentsim.schema_version"] = b"1.0"
    pq.write_table(t.drop(["cached_tokens"]).replace_schema_metadata(meta), part)
    return t.num_rows


@pytest.mark.parametrize("which", ["first half", "all", "last one"])
def test_duckdb_reads_parts_of_older_minor_versions(which: str, runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["a"], tmp_path / "run")
    parts = _parts(run, "llm_calls")
    chosen = {"first half": parts[: len(parts) // 2], "all": parts, "last one": parts[-1:]}[which]
    old_rows = sum(_downgrade(p) for p in chosen)
    log = load_run(run)
    con = log.duckdb()
    assert [d[0] for d in con.execute("SELECT * FROM llm_calls LIMIT 0").description] == TABLES["llm_calls"].names
    n, cached = con.execute("SELECT count(*), count(cached_tokens) FROM llm_calls").fetchone()
    calls = log.llm_calls
    assert n == len(calls) and cached == n - old_rows == calls["cached_tokens"].notna().sum()


# -- 4. temporary files of a killed writer -----------------------------------------------------------------------
TEMP_NAMES = [
    (".checkpoint.json.k3j2h1", True),
    (".checkpoint-000005.npz.a8b7c6", True),
    (".run.json.x9y8z7", True),
    (f".{MANIFEST}.q1w2e3", True),
    ("events/.part-000003.parquet.tmp", True),
    ("llm_calls/.part-000000.parquet.tmp", True),
    ("checkpoint.json", False),
    ("events/part-000003.parquet", False),
    ("notes.txt", False),
    (".gitignore", False),
    ("events/.keep", False),
]


@pytest.mark.parametrize("name, temporary", TEMP_NAMES)
def test_temp_files_are_ignored_by_readers_and_removed_on_resume(name: str, temporary: bool, runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["a"], tmp_path / "run")
    planted = run / name
    existed = planted.exists()
    if not existed:
        planted.write_bytes(b"half written")
    assert load_run(run).table("events").equals(load_run(runs["a"]).table("events"))
    removed = remove_temp_files(run)
    assert (planted in removed) == temporary and planted.exists() != temporary


# -- 5. what run.json says about the models -----------------------------------------------------------------------
def test_run_json_labels_scripted_and_replay_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    entry = load_run(runs["a"]).meta["models"]["default"]
    assert entry == {"backend": "scripted", "model": "embedded:smollm2-135m-instruct", "path": None, "label": "scripted:wargame"}
    f = write_scenario(tmp_path, seed=0)  # the recorded run's scenario: its prompts (which name the days) must match
    run_ok(str(f), "--backend", "replay", "--replay-from", str(runs["a"]), "--run-dir", str(tmp_path / "r"), "--quiet")
    entry = load_run(tmp_path / "r").meta["models"]["default"]
    assert entry["backend"] == "replay" and entry["label"] == "replay:scripted:wargame" and entry["recorded_backend"] == "scripted"
    # a replay of the replay still knows who answered first
    run_ok(str(f), "--backend", "replay", "--replay-from", str(tmp_path / "r"), "--run-dir", str(tmp_path / "rr"), "--quiet")
    entry = load_run(tmp_path / "rr").meta["models"]["default"]
    assert entry["label"] == "replay:replay:scripted:wargame" and entry["recorded_backend"] == "scripted"


def _recorded(tmp_path: Path, models: dict | None, kind: str = "wargame") -> str:
    d = tmp_path / "rec"
    d.mkdir()
    if models is not None:
        (d / "run.json").write_text(json.dumps({"spec": {"kind": kind}, "models": models}))
    return str(d)


@pytest.mark.parametrize("backend, recorded, label", [
    ("vllm", None, "meta-llama/Llama-3.1-8B-Instruct"),
    ("openai", None, "meta-llama/Llama-3.1-8B-Instruct"),
    ("scripted", None, "scripted:social"),
    ("replay", {"m": {"backend": "vllm", "model": "Qwen/Qwen2.5-7B", "label": "Qwen/Qwen2.5-7B"}}, "replay:Qwen/Qwen2.5-7B"),
    ("replay", {"m": {"backend": "scripted", "model": "embedded:x"}}, "replay:scripted:drift"),  # recorded before labels
    ("replay", {"other": {"backend": "vllm", "model": "x"}}, "replay:rec"),  # the alias is not in the recorded run
    ("replay", None, "replay:rec"),  # no run.json there
])
def test_model_label(backend: str, recorded: dict | None, label: str, tmp_path: Path) -> None:
    replay_from = _recorded(tmp_path, recorded, kind="drift") if backend == "replay" else None
    family = "social" if backend == "scripted" else "drift"
    assert model_label("m", backend, "meta-llama/Llama-3.1-8B-Instruct", family, replay_from) == label
