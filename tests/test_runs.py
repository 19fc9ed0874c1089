"""Whole runs through the CLI: determinism of scripted and replay runs, the run log, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import agentsim
from agentsim.analysis import ANALYSES
from agentsim.llm.scripted import NO_LOGPROBS
from agentsim.logs.reader import LogError, RunLog
from agentsim.logs.schema import DETERMINISTIC_TABLES, SCHEMA_VERSION

from conftest import SCENARIOS, write_scenario


def agentsim_cli(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentsim", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def run_ok(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    r = agentsim_cli("run", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def assert_same_log(a: Path, b: Path, ignore: dict[str, list[str]] | None = None) -> None:
    la, lb = RunLog(a), RunLog(b)
    for name in DETERMINISTIC_TABLES:
        ta, tb = la.table(name), lb.table(name)
        drop = (ignore or {}).get(name, [])
        if drop:
            ta, tb = ta.drop(drop), tb.drop(drop)
        assert ta.num_rows > 0 or name == "llm_calls", name
        assert ta.equals(tb), f"{name} differs between {a} and {b}"


def wait_for_steps(run_dir: Path, steps: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        meta = run_dir / "run.json"
        if meta.exists() and json.loads(meta.read_text()).get("steps_completed", 0) >= steps:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run_dir} did not reach {steps} steps in {timeout} s")


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("scripted")
    f = write_scenario(tmp)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp / "a"), "--quiet")
    return tmp / "a"


def test_scripted_run_log_contents(scripted_run: Path) -> None:
    log = agentsim.load_run(scripted_run)
    assert log.meta["status"] == "completed" and log.meta["steps_completed"] == 14
    assert log.meta["seed"] == 0 and log.meta["spec"]["kind"] == "wargame"
    assert log.meta["schema_version"] == SCHEMA_VERSION and "numpy" in log.meta["versions"]
    ev = log.events
    assert set(ev["step"]) == set(range(14)) and ev["event_id"].tolist() == list(range(len(ev)))
    assert set(ev["phase"]) == {"nations", "world_model"}
    assert (ev[ev["action"] == "Consequences"].groupby("step").size() == 1).all()
    assert len(log.agents) == 9 and set(log.agents["kind"]) == {"nation", "world_model"}
    calls = log.llm_calls
    assert len(calls) == 14 * 9 and calls["valid"].all() and (calls["backend"] == "scripted").all()
    m = log.metrics
    assert set(m[m["metric"] == "escalation_score"]["step"]) == set(range(14))
    # schema version is stored in every file
    part = next((scripted_run / "events").glob("part-*.parquet"))
    assert pq.read_schema(part).metadata[b"agentsim.schema_version"] == SCHEMA_VERSION.encode()
    con = log.duckdb()
    n = con.execute("SELECT count(*) FROM events WHERE action <> 'Consequences'").fetchone()[0]
    assert n == int((ev["action"] != "Consequences").sum())


def test_scripted_runs_are_identical(scripted_run: Path, tmp_path: Path) -> None:
    f = write_scenario(tmp_path)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "b"), "--quiet")
    assert_same_log(scripted_run, tmp_path / "b")
    other = write_scenario(tmp_path, seed=1)
    run_ok(str(other), "--backend", "scripted", "--run-dir", str(tmp_path / "c"), "--quiet")
    assert not RunLog(scripted_run).table("events").equals(RunLog(tmp_path / "c").table("events"))


def test_replay_reproduces_the_recorded_run(scripted_run: Path, tmp_path: Path) -> None:
    f = write_scenario(tmp_path)
    run_ok(str(f), "--backend", "replay", "--replay-from", str(scripted_run), "--run-dir", str(tmp_path / "r1"), "--quiet")
    run_ok(str(f), "--backend", "replay", "--replay-from", str(scripted_run), "--run-dir", str(tmp_path / "r2"), "--quiet")
    assert_same_log(scripted_run, tmp_path / "r1", ignore={"llm_calls": ["backend"]})
    assert_same_log(tmp_path / "r1", tmp_path / "r2")


@pytest.mark.parametrize(("scenario", "sets"), [
    ("drift/rewrite.yaml", {"world.conversations_per_arm": 1}),  # measure_kl: every scoring request fails on a scripted backend
    ("tournament/live_judge.yaml", {}),
    ("social/reddit_herd_effect.yaml", {"world.users.count": 60}),
], ids=["drift-with-scoring", "tournament-judge", "social"])
def test_replay_reproduces_a_scripted_run_of_every_family(tmp_path: Path, scenario: str, sets: dict[str, Any]) -> None:
    """The replay answers as recorded, failures included: a scripted drift run's scoring errors come back as the same
    errors (not as answers without scores, which would log another kl_error), and nothing is asked again that the
    recorded run did not ask again."""
    args = ["--steps", "2", "--quiet", *[f"--set={k}={v}" for k, v in sets.items()]]
    run_ok(scenario, "--backend", "scripted", "--run-dir", str(tmp_path / "rec"), *args)
    run_ok(scenario, "--backend", "replay", "--replay-from", str(tmp_path / "rec"), "--run-dir", str(tmp_path / "rep"), *args)
    assert_same_log(tmp_path / "rec", tmp_path / "rep", ignore={"llm_calls": ["backend"]})
    if scenario.startswith("drift"):
        turns = RunLog(tmp_path / "rep").events.query("action == 'turn'")["payload"].map(json.loads)
        assert {t["kl_error"] for t in turns} == {NO_LOGPROBS}


def test_replay_of_a_different_scenario_stops_with_a_clear_error_not_a_crash(scripted_run: Path, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, **{"world.day0": "Something else happened.", "steps": 2})
    r = agentsim_cli("run", str(f), "--backend", "replay", "--replay-from", str(scripted_run), "--run-dir", str(tmp_path / "x"))
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "no recorded answer" in r.stderr and "world.day0" in r.stderr
    meta = RunLog(tmp_path / "x").meta
    assert meta["status"] == "backend_unavailable" and meta["error"]["outage"] == "unrecorded"


@pytest.mark.parametrize(("overrides", "named", "code"), [
    # more steps than the source holds: refused before the first step, by validate too
    ({"steps": 16}, "the recorded run holds 14 steps and this run asks for 16: a replay can run at most as many steps", 2),
    ({"steps": 3}, "differs in steps", 3),           # the wargame's prompt names the number of days
    ({"world.max_actions_per_day": 2}, "differs in world.max_actions_per_day", 3),
])
def test_a_replay_that_asks_other_questions_names_what_differs(scripted_run: Path, tmp_path: Path, overrides: dict,
                                                               named: str, code: int) -> None:
    f = write_scenario(tmp_path, **overrides)
    r = agentsim_cli("run", str(f), "--backend", "replay", "--replay-from", str(scripted_run), "--run-dir", str(tmp_path / "x"))
    assert r.returncode == code and "Traceback" not in r.stderr
    assert named in r.stderr and "agentsim resume" not in r.stderr  # a resume would ask the same unrecorded question
    v = agentsim_cli("validate", str(f), "--backend", "replay", "--replay-from", str(scripted_run))
    if code == 2:
        assert v.returncode == 2 and named in v.stderr
    else:  # validate cannot know which requests change; it says which fields differ
        assert v.returncode == 0 and f"note: the recorded run {named}" in v.stdout


def test_a_replay_missing_some_answers_of_a_phase_stops_instead_of_completing(tmp_path: Path) -> None:
    """One more conversation per arm than the recording: most of the phase's requests are recorded, the new ones
    are not. The replay stops at once (exit 3), instead of logging invalid answers the recorded run never gave and
    calling itself completed."""
    args = ["--steps", "2", "--quiet"]
    run_ok("drift/rewrite.yaml", "--backend", "scripted", "--run-dir", str(tmp_path / "rec"), *args, "--set", "world.conversations_per_arm=1")
    r = agentsim_cli("run", "drift/rewrite.yaml", "--backend", "replay", "--replay-from", str(tmp_path / "rec"),
                     "--run-dir", str(tmp_path / "rep"), *args, "--set", "world.conversations_per_arm=2")
    assert r.returncode == 3, r.stderr
    assert "3 of the 6 requests of step 0, phase 'user' could be served (unrecorded)" in r.stderr
    assert RunLog(tmp_path / "rep").meta["status"] == "backend_unavailable"


def test_a_replay_past_its_source_says_so(scripted_run: Path) -> None:
    import asyncio

    from agentsim.llm.replay import ReplayBackend
    from agentsim.llm.types import LLMRequest
    from agentsim.spec.models import SamplingSpec

    backend = ReplayBackend(scripted_run)
    assert backend.last_step == 13
    req = lambda step: LLMRequest("r", "Blue", "default", "m", [{"role": "user", "content": "x"}], SamplingSpec(), 1, step=step)  # noqa: E731
    past, last = asyncio.run(backend.generate([req(14), req(13)]))
    assert past.outage == last.outage == "unrecorded"
    assert "step 14 is past the recorded run's last answered step (13)" in past.error
    assert "past the recorded run" not in last.error


def test_bad_replay_source_is_a_clear_error(tmp_path: Path) -> None:
    f = write_scenario(tmp_path)
    r = agentsim_cli("run", str(f), "--backend", "replay", "--replay-from", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such run directory" in r.stderr and "Traceback" not in r.stderr
    r = agentsim_cli("run", str(f), "--backend", "replay")
    assert r.returncode == 2 and "--replay-from" in r.stderr


def test_analyze_cli(scripted_run: Path, tmp_path: Path) -> None:
    r = agentsim_cli("analyze", str(scripted_run), "escalation", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "per_day" in r.stdout
    per_day = (tmp_path / "out" / "escalation_per_day.csv").read_text().splitlines()
    assert len(per_day) == 15
    assert (tmp_path / "out" / "escalation_es.png").read_bytes()[:4] == b"\x89PNG"
    tables = ANALYSES["escalation"](RunLog(scripted_run))
    es = RunLog(scripted_run).metrics.query("metric == 'escalation_score'")["value"].to_numpy()
    assert tables["per_day"]["es"].to_numpy() == pytest.approx(es)
    r = agentsim_cli("analyze", str(tmp_path / "missing"), "escalation")
    assert r.returncode == 2 and "no such run directory" in r.stderr


def test_sigkill_mid_run_leaves_readable_complete_steps(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, steps=100_000, **{"world.history_days": 1})
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(f), "--backend", "scripted", "--run-dir", str(run_dir), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_steps(run_dir, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log = RunLog(run_dir)
    done = log.meta["steps_completed"]
    ev = log.events
    assert done >= 20 and log.meta["status"] == "running"
    steps = sorted(set(ev["step"]))
    assert steps == list(range(steps[-1] + 1)) and steps[-1] + 1 >= done  # whole steps, none missing
    assert all(p.name.startswith("part-") for p in log.parts("events"))  # a half-written .tmp is never a part
    for name in DETERMINISTIC_TABLES:
        log.table(name)  # every complete part reads


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_flushes_and_says_so(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C stops after the step; SIGTERM (kill, a scheduler's preemption) at once. Either way run.json says
    `interrupted` (not `running`), the log ends on a whole step, and the run resumes to the end."""
    f = write_scenario(tmp_path, steps=300, **{"world.history_days": 1})
    run_dir = tmp_path / "int"
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(f), "--backend", "scripted", "--run-dir", str(run_dir), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_steps(run_dir, 5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and str(run_dir) in err
    log = RunLog(run_dir)
    assert log.meta["status"] == "interrupted" and log.meta.get("stopped_by") == ("SIGTERM" if sig == signal.SIGTERM else None)
    done = log.meta["steps_completed"]
    assert 5 <= done < 300 and sorted(set(log.events["step"])) == list(range(done))
    r = agentsim_cli("resume", str(run_dir), "--quiet")
    assert r.returncode == 0, r.stderr
    log = RunLog(run_dir)
    assert log.meta["status"] == "completed" and sorted(set(log.events["step"])) == list(range(300))


def test_corrupt_part_is_named(tmp_path: Path, scripted_run: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(scripted_run, copy)
    part = sorted((copy / "events").glob("part-*.parquet"))[-1]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(LogError, match=part.name):
        RunLog(copy).table("events")


def test_existing_run_dir_is_refused(scripted_run: Path, tmp_path: Path) -> None:
    f = write_scenario(tmp_path)
    r = agentsim_cli("run", str(f), "--backend", "scripted", "--run-dir", str(scripted_run))
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    assert os.path.exists(scripted_run / "run.json")


def test_analyze_a_directory_of_runs(scripted_run: Path, tmp_path: Path) -> None:
    import shutil

    parent = tmp_path / "many"
    shutil.copytree(scripted_run, parent / "a")
    f = write_scenario(tmp_path, seed=3)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(parent / "b"), "--quiet")
    r = agentsim_cli("analyze", str(parent), "escalation", "--out", str(tmp_path / "cmp"))
    assert r.returncode == 0, r.stderr
    import pandas as pd

    by_day = pd.read_csv(tmp_path / "cmp" / "escalation_es_by_day.csv")
    assert len(by_day) == 14 and (by_day["runs"] == 2).all()
    per_run = pd.read_csv(tmp_path / "cmp" / "escalation_per_run_day.csv")
    assert by_day["es_mean"].tolist() == pytest.approx(per_run.groupby("day")["es"].mean().tolist())
    assert (tmp_path / "cmp" / "escalation_es.png").exists()
    r = agentsim_cli("analyze", str(tmp_path / "cmp"), "escalation")
    assert r.returncode == 2 and "neither a run directory nor a directory of runs" in r.stderr


def _kill_at_random_step(f: Path, run_dir: Path, steps: int, seed: int, backend: tuple[str, ...] = ("--backend", "scripted")) -> int:
    import random

    kill_after = random.Random(seed).randint(2, steps - 2)
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(f), *backend, "--run-dir", str(run_dir), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_steps(run_dir, kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return kill_after


@pytest.mark.parametrize("checkpoint_every", [1, 3])
def test_sigkill_then_resume_gives_the_uninterrupted_log(tmp_path: Path, checkpoint_every: int) -> None:
    steps = 60
    f = write_scenario(tmp_path, steps=steps, **{"world.history_days": 2, "runtime.checkpoint_every": checkpoint_every})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "whole"), "--quiet")
    killed = tmp_path / "killed"
    _kill_at_random_step(f, killed, steps, seed=checkpoint_every)
    assert json.loads((killed / "run.json").read_text())["status"] == "running"
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Resuming" in r.stderr
    meta = json.loads((killed / "run.json").read_text())
    assert meta["status"] == "completed" and meta["steps_completed"] == steps and meta["resumed"]
    assert_same_log(tmp_path / "whole", killed)
    r = agentsim_cli("resume", str(killed))
    assert r.returncode == 2 and "already completed" in r.stderr


def test_resume_of_a_killed_replay_run(tmp_path: Path) -> None:
    steps = 60
    f = write_scenario(tmp_path, steps=steps, **{"world.history_days": 2, "runtime.checkpoint_every": 4})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "rec"), "--quiet")
    killed = tmp_path / "replay"
    _kill_at_random_step(f, killed, steps, seed=11, backend=("--backend", "replay", "--replay-from", str(tmp_path / "rec")))
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((killed / "run.json").read_text())["replay_from"] == str((tmp_path / "rec").resolve())
    assert_same_log(tmp_path / "rec", killed, ignore={"llm_calls": ["backend"]})


def test_reader_fills_columns_missing_from_older_minor_versions(tmp_path: Path, scripted_run: Path) -> None:
    import shutil

    import pyarrow.parquet as pq

    copy = tmp_path / "old"
    shutil.copytree(scripted_run, copy)
    for part in (copy / "llm_calls").glob("part-*.parquet"):
        t = pq.read_table(part)
        meta = dict(t.schema.metadata)
        meta[b"agentsim.schema_version"] = b"1.0"
        pq.write_table(t.drop(["cached_tokens"]).replace_schema_metadata(meta), part)
    calls = RunLog(copy).table("llm_calls")
    assert "cached_tokens" in calls.column_names and calls.column("cached_tokens").null_count == calls.num_rows


#: Temporary files a writer killed mid-write leaves, one of each kind (see agentsim.logs.writer.remove_temp_files).
STALE_TEMP_FILES = (".checkpoint.json.k3j2h1", ".checkpoint-000004.npz.a8b7c6", ".run.json.x9y8z7", ".parts.jsonl.q1w2e3",
                    "events/.part-000002.parquet.tmp", "metrics/.part-000001.parquet.tmp")


@pytest.mark.parametrize("seed", [5, 17])
def test_resume_removes_temp_files_of_the_killed_writer(tmp_path: Path, seed: int) -> None:
    steps = 40
    f = write_scenario(tmp_path, steps=steps, **{"world.history_days": 2, "runtime.checkpoint_every": 3})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "whole"), "--quiet")
    killed = tmp_path / "killed"
    _kill_at_random_step(f, killed, steps, seed=seed)
    for name in STALE_TEMP_FILES:  # what a kill inside an atomic write leaves (planted: the kill rarely lands there)
        (killed / name).write_bytes(b"half written")
    log = RunLog(killed)  # readers never take them for parts
    assert log.complete_steps >= 2 and sorted(set(log.events["step"])) == list(range(log.complete_steps))
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr
    left = [p.relative_to(killed).as_posix() for p in killed.rglob(".*")]
    assert left == [], left
    assert_same_log(tmp_path / "whole", killed)


def test_resume_of_a_run_written_before_parts_jsonl(tmp_path: Path) -> None:
    """A killed run of an older version (no parts.jsonl, no `log` in run.json) resumes; the parts it had are
    recorded from their footers, so the finished log is checked like a new one."""
    steps = 40
    f = write_scenario(tmp_path, steps=steps, **{"world.history_days": 2, "runtime.checkpoint_every": 4})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "whole"), "--quiet")
    killed = tmp_path / "old"
    _kill_at_random_step(f, killed, steps, seed=3)
    (killed / "parts.jsonl").unlink()
    meta = json.loads((killed / "run.json").read_text())
    del meta["log"]
    (killed / "run.json").write_text(json.dumps(meta))
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr
    assert_same_log(tmp_path / "whole", killed)
    log = RunLog(killed)
    assert log.meta["log"]["tables"]["events"]["rows"] == log.meta["totals"]["events"] == len(log.events)
    next(iter(sorted((killed / "events").glob("part-*.parquet")))).unlink()
    with pytest.raises(LogError, match="part-000000.parquet"):
        RunLog(killed).table("events")


def test_a_run_or_experiment_being_written_is_not_written_by_a_second_process(tmp_path: Path) -> None:
    """Two processes writing one run (a resume started twice, or while the run goes on) interleaved their parts and
    commits and left a log that no longer reads; the second one is now refused, and the directory is untouched."""
    from agentsim.logs.writer import lock_directory

    held = tmp_path / "busy"
    held.mkdir()
    lock = lock_directory(held)  # this process plays the one still writing
    try:
        r = agentsim_cli("run", "wargame/neutral.yaml", "--backend", "scripted", "--steps", "1", "--run-dir", str(held), "--quiet")
        assert r.returncode == 2 and "another agentsim process is writing this run" in r.stderr, r.stderr[-2000:]
        assert "Traceback" not in r.stderr and list(held.iterdir()) == []
        exp = tmp_path / "exp.yaml"
        exp.write_text(yaml.safe_dump({"kind": "experiment", "name": "e", "base": [str(SCENARIOS / "wargame" / "neutral.yaml")],
                                       "set": {"steps": 1, "models.default.backend": "scripted"}}))
        r = agentsim_cli("sweep", str(exp), "--dir", str(held), "--quiet")
        assert r.returncode == 2 and "another agentsim process is writing this experiment" in r.stderr, r.stderr[-2000:]
        assert list(held.iterdir()) == []
    finally:
        lock.close()
    run_ok("wargame/neutral.yaml", "--backend", "scripted", "--steps", "1", "--run-dir", str(held), "--quiet")
    assert (held / "run.json").exists()


@pytest.mark.parametrize(("calls", "llm_calls", "tokens", "seconds", "want"), [
    (18, 0, 0, 1.0, "no LLM (scripted/replay)"),      # scripted or replay only: no tokens/s at all
    (0, 0, 0, 1.0, "0.0 tokens/s"),                    # nothing answered yet
    (10, 10, 250, 2.0, "125.0 tokens/s"),
    (10, 4, 100, 1.0, "100.0 tokens/s"),               # mixed: the LLM's tokens only (the caller counts them)
])
def test_progress_rate_is_llm_tokens_or_says_no_llm(calls: int, llm_calls: int, tokens: int, seconds: float, want: str) -> None:
    from agentsim.runtime.progress import rate_text

    assert rate_text(calls, llm_calls, tokens, seconds) == want


def test_a_scripted_runs_progress_bar_reports_no_llm(tmp_path: Path) -> None:
    import os

    r = subprocess.run([sys.executable, "-m", "agentsim", "run", "wargame/neutral.yaml", "--backend", "scripted", "--steps", "2",
                        "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no LLM (scripted/replay)" in r.stderr and "tok/s" not in r.stderr and "tokens/s" not in r.stderr


def test_every_backend_without_an_llm_has_its_summary_sentence() -> None:
    from agentsim.runtime.summary import NO_LLM
    from agentsim.spec.models import NON_LLM_BACKENDS

    assert set(NO_LLM) == NON_LLM_BACKENDS
