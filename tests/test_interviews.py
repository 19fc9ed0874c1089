"""Interviews (agentsim/interviews.py): what an agent saw is rebuilt from the run, the question goes to its own model,
the answer lands in the run's `interviews` table and nowhere else; surveys over an experiment's runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_experiments import SCRIPTED, write_experiment

import agentsim
from agentsim.interviews import InterviewError, ask, what_it_saw
from agentsim.llm.scripted import INTERVIEW_ANSWER
from agentsim.logs.reader import RunLog
from agentsim.logs.schema import INTERVIEWS, SCHEMA_VERSION

from test_runs import agentsim_cli

KEEP_ALL = {"runtime.keep_checkpoints": True, "runtime.checkpoint_every": 1, "logging.record_prompts": True}


def scripted_run(tmp: Path, scenario: str = "wargame/invasion.yaml", steps: int = 3, **overrides: Any) -> RunLog:
    return agentsim.run(scenario, backend="scripted", steps=steps, out=tmp / "runs", **overrides)


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted invasion run that stored its prompts and kept a checkpoint at every step."""
    return scripted_run(tmp_path_factory.mktemp("kept"), **KEEP_ALL).run_dir


def files_of(run_dir: Path) -> dict[str, str]:
    """Every file of the run but its interviews, by relative path -> SHA-256."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.relative_to(run_dir).parts[0] != "interviews"}


# -- what the agent saw ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [
        ("wargame/invasion.yaml", {}),  # the world writes the prompt; the world model asks after the nations' phase
        ("social/x_information_spread.yaml", {"world.users.count": 30}),  # a mind builds it from persona and memory
        ("drift/rewrite.yaml", {}),  # the assistant is asked after the user simulator's phase
        ("tournament/live_ipd.yaml", {}),
    ],
)
def test_the_prompt_rebuilt_from_a_checkpoint_is_the_one_the_run_sent(scenario: str, overrides: dict[str, Any], tmp_path: Path) -> None:
    log = scripted_run(tmp_path, scenario, steps=3, **KEEP_ALL, **overrides)
    calls = log.llm_calls
    assert len(calls), "the scenario made no requests"
    checked = 0
    for (step, agent), rows in calls.groupby(["step", "agent_id"], sort=True):
        stored = what_it_saw(log, agent, int(step), source="llm_calls")
        last = rows.iloc[-1]
        assert (stored.step, stored.request_id) == (step, last["request_id"])
        assert stored.messages == json.loads(last["prompt"]) and stored.answer == last["completion_text"]
        rebuilt = what_it_saw(log, agent, int(step), source="checkpoint")
        assert rebuilt.step == step and rebuilt.verified is True, (agent, step, rebuilt.request_id)
        first = rows[rows["request_id"] == rebuilt.request_id]
        assert rebuilt.messages == json.loads(first["prompt"].iloc[0])
        checked += 1
        if checked >= 24:
            break
    assert checked >= min(len(calls.groupby(["step", "agent_id"])), 24)


def test_without_stored_prompts_the_latest_checkpoint_serves(tmp_path: Path) -> None:
    log = scripted_run(tmp_path, steps=3)  # defaults: no prompts stored, one checkpoint (after the last step)
    assert log.llm_calls["prompt"].isna().all()
    seen = what_it_saw(log, "Red")
    assert (seen.source, seen.step) == ("checkpoint", 3) and seen.verified is None  # the state after the run's last step
    assert "day 4" in json.dumps(seen.messages).lower()  # the wargame calls its step 3 day 4
    assert what_it_saw(log, "Red", 3) == seen  # asked for by its step, the same (not refused as beyond the run)
    first = what_it_saw(log, "Red", 0)  # step 0 is the world the scenario builds
    assert (first.source, first.step, first.verified) == ("checkpoint", 0, True)


# -- asking ----------------------------------------------------------------------------------------------------------
def test_an_interview_changes_nothing_but_its_own_table(kept_run: Path) -> None:
    before = files_of(kept_run)
    r = agentsim_cli("interview", str(kept_run), "Red", "Why did you act as you did?", "--at", "1")
    assert r.returncode == 0, r.stderr
    iv = ask(kept_run, "Orange", "Who is your enemy?", source="checkpoint", at=2)
    assert files_of(kept_run) == before
    log = RunLog(kept_run)
    df = log.interviews
    assert list(df.columns) == INTERVIEWS.names and len(df) == 2
    red, orange = df.iloc[0], df.iloc[1]
    assert r.stdout.strip() == red["answer"]
    assert (red["agent_id"], red["at_step"], red["asked_step"], red["source"], red["backend"]) == ("Red", 1, 1, "llm_calls", "scripted")
    assert (orange["agent_id"], orange["at_step"], orange["source"], orange["verified"]) == ("Orange", 2, "checkpoint", True)
    assert orange["interview_id"] == iv.interview_id and orange["answer"] == iv.answer
    assert json.loads(red["messages"])[-1] == {"role": "user", "content": "Why did you act as you did?"}
    assert red["prompt_tokens"] > 0 and red["completion_tokens"] > 0 and red["run_id"] == log.run_id
    for part in (kept_run / "interviews").glob("*.parquet"):
        md = pq.read_schema(part).metadata
        assert md[b"agentsim.schema_version"] == SCHEMA_VERSION.encode() and md[b"agentsim.table"] == b"interviews"
    assert log.duckdb().execute("SELECT count(*) FROM interviews WHERE agent_id = 'Red'").fetchall() == [(1,)]


def test_a_scripted_agent_says_it_follows_rules_and_repeats_its_answer(kept_run: Path) -> None:
    calls = RunLog(kept_run).llm_calls
    given = calls[(calls["agent_id"] == "Blue") & (calls["step"] == 2)]["completion_text"].iloc[-1]
    answer = agentsim.interview(kept_run, "Blue", "Why?", at=2, save=False)
    assert answer == f"{INTERVIEW_ANSWER} My answer was: {given}"
    assert agentsim.interview(kept_run, "Blue", "Why?", at=2, save=False) == answer  # no randomness


def test_ask_works_inside_a_running_event_loop(kept_run: Path) -> None:
    """The viewer's "ask this agent" box calls `ask` from a callback on a running loop (Tornado's)."""
    async def in_loop() -> str:
        return ask(kept_run, "Pink", "Why?", at=0, save=False).answer

    assert asyncio.run(in_loop()).startswith(INTERVIEW_ANSWER)


def _replayed(kept_run: Path, tmp_path: Path) -> Path:
    r = agentsim_cli("run", "wargame/invasion.yaml", "--backend", "replay", "--replay-from", str(kept_run), "--steps", "3",
                     "--run-dir", str(tmp_path / "replayed"), "--quiet", *[f"--set={k}={v}" for k, v in KEEP_ALL.items()])
    assert r.returncode == 0, r.stderr
    return tmp_path / "replayed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nobody", "Why?"], "no agent 'Nobody' in this run; agents: Blue, Green, Orange"),
        (["Red", "Why?", "--at", "4"], "which holds steps 0..2, and --at 3 asks the agents as they stand after them"),
        (["Red", "Why?", "--at", "-1"], "steps are counted from 0"),
        (["Red", "   "], "the question is empty"),
        (["Red", "Why?", "--backend", "replay"], "a replay backend answers only the requests a run recorded"),
        (["Red", "Why?", "--set", "models.default.sampling.temperature=9"], "temperature"),
        (["Red", "Why?", "--set", "models.default.nosuch=1"], "models.default.nosuch"),
        (["Red", "Why?", "--set", "oops"], "--set"),
        ("replayed", "the replay backend: a replay backend answers only"),
        ("no prompts", "the run stored no prompt texts (logging.record_prompts: false)"),
        ("experiment", "is an experiment: ask every agent of every run with `agentsim survey"),
        ("not a run", "not a run directory"),
    ],
)
def test_bad_interview_inputs_are_one_line_and_exit_2(args: Any, message: str, kept_run: Path, tmp_path: Path) -> None:
    target = kept_run
    if args == "replayed":
        target, args = _replayed(kept_run, tmp_path), ["Red", "Why?"]
    elif args == "no prompts":
        target, args = scripted_run(tmp_path, steps=2).run_dir, ["Red", "Why?", "--source", "llm_calls"]
    elif args == "experiment":
        (tmp_path / "experiment.json").write_text("{}")
        target, args = tmp_path, ["Red", "Why?"]
    elif args == "not a run":
        target, args = tmp_path, ["Red", "Why?"]
    before = files_of(target) if (target / "run.json").exists() else None
    answers = sorted((target / "interviews").glob("*.parquet"))
    r = agentsim_cli("interview", str(target), *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr and r.stdout == ""
    assert r.stderr.strip().startswith("error:")
    if before is not None:
        assert files_of(target) == before and sorted((target / "interviews").glob("*.parquet")) == answers


def test_what_is_missing_is_said_with_how_a_run_keeps_it(tmp_path: Path) -> None:
    log = scripted_run(tmp_path, steps=2, **{"runtime.checkpoint_every": None})  # no prompts, no checkpoint
    with pytest.raises(InterviewError, match=r"no prompt texts.*record_prompts=true.*keep_checkpoints=true"):
        what_it_saw(log, "Red", 1, source="llm_calls")
    seen = what_it_saw(log, "Red", 1)  # at or before step 1: the world the scenario builds is step 0's
    assert (seen.source, seen.step, seen.verified) == ("checkpoint", 0, True)


# -- surveys ---------------------------------------------------------------------------------------------------------
def test_a_survey_asks_every_agent_of_every_run(tmp_path: Path) -> None:
    f = write_experiment(tmp_path, grid={"world.max_actions_per_day": [1, 2]}, repeats=1,
                         set={**SCRIPTED, "steps": 2, "logging.record_prompts": True})
    r = agentsim_cli("sweep", str(f), "--quiet")
    assert r.returncode == 0, r.stderr
    exp_dir = next((tmp_path / "experiments").iterdir())
    runs = agentsim.load_experiment(exp_dir).cells["run_dir"].tolist()
    before = {run: files_of(Path(run)) for run in runs}
    df = agentsim.experiments.survey(exp_dir, "Are you at war?", agents=["Red", "Blue"])
    assert len(df) == 2 * 2 and set(df["agent_id"]) == {"Red", "Blue"}
    assert sorted(df["world.max_actions_per_day"].unique()) == [1, 2]
    assert {"cell", "base", "seed", "run_id", "answer", "at_step", "source"} <= set(df.columns)
    assert (df["at_step"] == 1).all() and (df["source"] == "llm_calls").all()
    for run in runs:
        assert files_of(Path(run)) == before[run]
        assert len(RunLog(run).interviews) == 2
    everyone = agentsim.experiments.survey(exp_dir, "Are you at war?", save=False)
    agents = RunLog(runs[0]).agents
    assert len(everyone) == 2 * int((agents["model"] != "").sum())
    out = tmp_path / "answers.csv"
    r = agentsim_cli("survey", str(exp_dir), "Are you at war?", "--agent", "Red", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) == 1 + 2
    bad = agentsim_cli("survey", str(exp_dir), "Why?", "--agent", "Nobody")
    assert bad.returncode == 2 and "no agent 'Nobody'" in bad.stderr and "Traceback" not in bad.stderr
    not_exp = agentsim_cli("survey", runs[0], "Why?")
    assert not_exp.returncode == 2 and "not an experiment directory" in not_exp.stderr
