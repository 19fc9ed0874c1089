"""On the real engine (the tiny random-weight model): an interview goes through vLLM and records its tokens, and a
run's terminal shows agentsim's own output only, third-party logs going to <run_dir>/third_party.log (-v: both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.logs.reader import RunLog

from conftest import tiny_models, write_scenario
from test_runs import agentsim_cli

pytestmark = pytest.mark.vllm

#: What vLLM, torch and Triton print while an engine starts on this machine (agentsim/runtime/terminal.py).
THIRD_PARTY = ("FutureWarning", "[vllm", "INFO ", "NUMA binding", "Triton is installed", "Loading safetensors")


def test_a_vllm_run_keeps_third_party_logs_off_the_terminal_and_its_agents_answer_interviews(tiny_model: Path, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, steps=1, models=tiny_models(tiny_model, max_tokens=24),
                       **{"world.world_model.enabled": False, "policy.max_retries": 0, "logging.record_prompts": True})
    run_dir = tmp_path / "run"
    r = agentsim_cli("run", str(f), "--run-dir", str(run_dir))
    # 24 tokens keep it short: the noise model's JSON may be cut off in every answer (exit 4, "no valid answer")
    assert r.returncode in (0, 4), r.stderr[-3000:]
    assert "step 1/1" in r.stderr and "Run directory:" in r.stderr and "Logs:" in r.stdout
    for text in THIRD_PARTY:
        assert text not in r.stderr, f"{text!r} reached the terminal:\n{r.stderr[-3000:]}"
    logged = (run_dir / "third_party.log").read_text()
    assert "FutureWarning" in logged and "INFO " in logged and "[vllm" in logged

    # the interview asks the run's own model: the engine answers and its tokens are recorded
    r = agentsim_cli("interview", str(run_dir), "Red", "What do you want?", "--at", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    for text in THIRD_PARTY:
        assert text not in r.stderr, f"{text!r} reached the terminal:\n{r.stderr[-3000:]}"
    log = RunLog(run_dir)
    row = log.interviews.iloc[-1]
    assert (row["backend"], row["model"], row["source"]) == ("vllm", str(tiny_model), "llm_calls")
    assert row["answer"] == r.stdout.strip() and 0 < row["completion_tokens"] <= 24
    sent = log.llm_calls.query("agent_id == 'Red' and step == 0").iloc[-1]
    messages = json.loads(row["messages"])
    assert messages[: len(json.loads(sent["prompt"]))] == json.loads(sent["prompt"])
    assert row["prompt_tokens"] > sent["prompt_tokens"]  # the prompt it was sent, its answer and the question
    assert "FutureWarning" in (run_dir / "interviews" / "third_party.log").read_text()

    # -v: the terminal shows them too, and the file still has them
    r = agentsim_cli("run", str(f), "--run-dir", str(tmp_path / "verbose"), "-v")
    assert r.returncode in (0, 4), r.stderr[-3000:]
    assert "FutureWarning" in r.stderr and "[vllm" in r.stderr and "step 1/1" in r.stderr
    assert "FutureWarning" in (tmp_path / "verbose" / "third_party.log").read_text()
