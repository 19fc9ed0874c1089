"""Drift family: constraint checkers, KL estimators against a hand computation, recurrence recovery, runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agentsim.analysis.drift import compare_arms, fit_recurrence, turns_table
from agentsim.core.check import check_world
from agentsim.llm.types import LLMRequest, TokenScores
from agentsim.logs.reader import RunLog
from agentsim.scenarios.drift.checks import Bullets, FormalTone, Keywords, Pattern, Words, bullets, words
from agentsim.scenarios.drift.kl import drift, mc_kl, topk_kl
from agentsim.spec.loader import load_scenario
from agentsim.spec.models import ModelSpec, SamplingSpec

from conftest import SCENARIOS, tiny_models, write_scenario
from test_runs import agentsim_cli, assert_same_log, run_ok

DRIFT = SCENARIOS / "drift"
ACADEMIC = """- The intervention reduced completion time across the sampled cohort.
- Participants reported fewer clarification requests during onboarding.
- Further evaluation is required to establish the durability of these effects."""
CASUAL = "Hey! So basically it's gonna be awesome, we're super happy :) lol"


# -- constraint checkers -----------------------------------------------------------------------------------------
def test_checkers_on_fixed_texts() -> None:
    assert bullets(ACADEMIC) == 3 and bullets(CASUAL) == 0 and bullets("1. a\n2) b\n* c\n\u2022 d") == 4
    assert words("It's a well-known fact, isn't it?") == 6
    assert Bullets(exactly=3).check(ACADEMIC) and not Bullets(exactly=3).check(CASUAL)
    assert Bullets(min=1, max=2).check("- a\n- b") and not Bullets(max=2).check(ACADEMIC)
    assert Words(min=20, max=40).check(ACADEMIC) and not Words(min=100).check(ACADEMIC)
    assert FormalTone().check(ACADEMIC)
    for bad in ("We can't do that.", "Great results!", "This is cool.", "Done \U0001f600", "kinda late"):
        assert not FormalTone().check(bad), bad
    assert not FormalTone(extra_informal=["cohort"]).check(ACADEMIC)
    assert Pattern(pattern=r"\b[A-Z0-9]{6}\b").check("Your code QX7PL2 is confirmed")
    assert not Pattern(pattern=r"\b[A-Z0-9]{6}\b").check("no code here")
    assert Pattern(pattern="refund", must_match=False).check("no money back")
    assert Keywords(required=["booking"], forbidden=["full refund"]).check("Your booking is noted.")
    assert not Keywords(forbidden=["full refund"]).check("You get a FULL REFUND.")


# -- KL estimators -----------------------------------------------------------------------------------------------
def test_estimators_by_hand() -> None:
    assert mc_kl([-1.0, -2.0], [-1.5, -2.5]) == pytest.approx(0.5)
    q = [{1: np.log(0.5), 2: np.log(0.5)}]
    p = [{1: np.log(0.25), 2: np.log(0.75)}]
    exact = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    kl, mass = topk_kl(q, p)
    assert kl == pytest.approx(exact) and mass == pytest.approx(1.0)
    # a token outside p's top-k gets p's k-th log-probability (an upper bound), stated as the truncation
    kl2, _ = topk_kl([{1: np.log(0.9), 3: np.log(0.1)}], [{1: np.log(0.6), 2: np.log(0.3)}])
    assert kl2 == pytest.approx(0.9 * np.log(0.9 / 0.6) + 0.1 * np.log(0.1 / 0.3))
    with pytest.raises(ValueError, match="different"):
        mc_kl([0.0], [0.0, 1.0])


@pytest.fixture(scope="module")
def engine(tiny_model: Path):
    from agentsim.llm.vllm_backend import VLLMBackend

    spec = ModelSpec(model=str(tiny_model), max_model_len=2048, kv_cache_gib=0.5,
                     engine_args={"dtype": "float32", "max_logprobs": -1})
    backend = VLLMBackend({"m": spec}, log=lambda m: None)
    yield backend
    backend.close()


def _score(backend, messages, text, k) -> TokenScores:
    req = LLMRequest("r", "a", "m", "m", messages, SamplingSpec(), seed=0, continuation=text, score_top_k=k)
    res = asyncio.run(backend.generate([req]))[0]
    assert res.error is None, res.error
    return TokenScores.from_result(res)


@pytest.mark.vllm
def test_kl_is_zero_for_identical_contexts(engine) -> None:
    ctx = [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "Rewrite this text."}]
    q = _score(engine, ctx, "- The results are significant.", 20)
    p = _score(engine, ctx, "- The results are significant.", 20)
    d = drift(q, p)
    assert d.tokens > 3 and d.mc == 0.0 and d.topk == 0.0


@pytest.mark.vllm
def test_kl_matches_a_hand_computation_with_the_full_distributions(engine, tiny_model: Path) -> None:
    """With k = vocabulary size the top-k estimator is the exact KL; compare both estimators with a direct
    computation from the model's logits in transformers (float32), on the same token ids."""
    import torch
    from transformers import AutoModelForCausalLM

    eng = engine._engine_for_alias["m"]
    vocab = eng.llm.llm_engine.model_config.get_vocab_size()
    test_ctx = [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "Rewrite this text."}]
    ref_ctx = test_ctx + [{"role": "system", "content": "Remember the goal: formal bullets."}]
    reply = "- The results are significant and robust."
    q = _score(engine, test_ctx, reply, vocab)
    p = _score(engine, ref_ctx, reply, vocab)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()

    def logprobs(ctx) -> torch.Tensor:
        ids = eng.prompt_ids(ctx)
        full = torch.tensor([ids + q.token_ids])
        with torch.no_grad():
            logits = model(full).logits[0]
        # position j of the reply is predicted by the logits at len(ids) + j - 1
        return torch.log_softmax(logits[len(ids) - 1 : len(ids) - 1 + len(q.token_ids)], dim=-1)

    lq, lp = logprobs(test_ctx), logprobs(ref_ctx)
    ids = torch.tensor(q.token_ids)
    hand_mc = float((lq[torch.arange(len(ids)), ids] - lp[torch.arange(len(ids)), ids]).mean())
    hand_kl = float((lq.exp() * (lq - lp)).sum(-1).mean())
    d = drift(q, p)
    assert hand_kl > 1e-4  # the contexts really differ
    assert d.mc == pytest.approx(hand_mc, abs=2e-3)
    assert d.topk == pytest.approx(hand_kl, abs=2e-3)
    assert d.q_mass == pytest.approx(1.0, abs=1e-3)


# -- recurrence --------------------------------------------------------------------------------------------------
def test_recurrence_parameters_are_recovered() -> None:
    rng = np.random.default_rng(0)
    kappa, d_star, delta = 0.3, 2.0, 0.5
    rows = []
    for c in range(300):
        d = rng.uniform(0, 0.5)
        for t in range(1, 13):
            reminder = t > 1 and rng.random() < 0.3
            if t > 1:
                d = d + kappa * (d_star - d) - delta * reminder + rng.uniform(-0.1, 0.1)  # bounded noise
            rows.append({"conversation": f"c{c}", "arm": "a", "turn": t, "reminder": reminder, "d_mc": d,
                         "d_topk": d, "tokens": 10, "q_mass": 1.0, "satisfied": True, "kl_error": None})
    fit = fit_recurrence(pd.DataFrame(rows), bootstrap=100).set_index("parameter")
    assert fit.loc["kappa", "estimate"] == pytest.approx(kappa, abs=0.03)
    assert fit.loc["d_star", "estimate"] == pytest.approx(d_star, abs=0.1)
    assert fit.loc["delta", "estimate"] == pytest.approx(delta, abs=0.03)
    assert fit.loc["noise", "estimate"] == pytest.approx(0.2 / np.sqrt(12), abs=0.01)  # sd of U(-0.1, 0.1)
    for p in ("kappa", "d_star", "delta"):
        assert fit.loc[p, "ci_low"] <= fit.loc[p, "estimate"] <= fit.loc[p, "ci_high"]


def test_reminder_reduction_by_hand() -> None:
    rows = []
    for arm, values, rem in (("none", [1, 2, 3, 4], []), ("r3", [1, 2, 1.5, 2], [3])):
        for t, v in enumerate(values, 1):
            rows.append({"conversation": arm, "arm": arm, "turn": t, "reminder": t in rem, "d_mc": v, "satisfied": t < 3})
    arms = compare_arms(pd.DataFrame(rows)).set_index("arm")
    assert arms.loc["r3", "reduction_pct"] == pytest.approx(100 * (1 - 1.75 / 3.5))
    assert arms.loc["none", "satisfaction_rate"] == 0.5


# -- runs --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rewrite", "customer_service"])
def test_shipped_drift_scenarios_pass_conformance(name: str) -> None:
    check_world(load_scenario(DRIFT / f"{name}.yaml", backend="scripted", steps=3), steps=3)


def test_scripted_drift_says_kl_is_unavailable(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, DRIFT / "rewrite.yaml")
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "s"), "--quiet")
    r = agentsim_cli("analyze", str(tmp_path / "s"), "drift", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "D_t unavailable: the scripted backend has no token probabilities" in r.stdout
    turns = turns_table(RunLog(tmp_path / "s").events)
    assert turns["d_mc"].isna().all() and len(turns) == 8 * 12
    assert (tmp_path / "out" / "drift_satisfaction.png").exists()


@pytest.mark.vllm
def test_drift_run_on_vllm_measures_and_replays(tiny_model: Path, tmp_path: Path) -> None:
    models = tiny_models(tiny_model, max_tokens=40)
    f = write_scenario(tmp_path, DRIFT / "rewrite.yaml", steps=4, models=models, **{"world.conversations_per_arm": 3})
    run_ok(str(f), "--run-dir", str(tmp_path / "v"), "--quiet")
    log = RunLog(tmp_path / "v")
    turns = turns_table(log.events)
    assert len(turns) == 4 * 9 and turns["d_mc"].notna().all() and turns["d_topk"].notna().all()
    assert np.isfinite(turns[["d_mc", "d_topk"]].to_numpy()).all()
    assert ((turns["q_mass"] > 0) & (turns["q_mass"] <= 1 + 1e-6)).all()  # the truncation is reported
    assert turns.loc[turns["reminder"], "arm"].isin(["t4-t7", "every2"]).all()
    calls = log.llm_calls
    assert (calls[calls["phase"] == "score"]["finish_reason"] == "scored").all()
    run_ok(str(f), "--backend", "replay", "--replay-from", str(tmp_path / "v"), "--run-dir", str(tmp_path / "r"), "--quiet")
    assert_same_log(tmp_path / "v", tmp_path / "r", ignore={"llm_calls": ["backend"]})
    r = agentsim_cli("analyze", str(tmp_path / "v"), "drift", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    for png in ("drift_d_mc.png", "drift_d_topk.png", "drift_satisfaction.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"
    rec = pd.read_csv(tmp_path / "out" / "drift_recurrence.csv")
    assert set(rec["parameter"]) == {"kappa", "d_star", "delta", "noise"}
    payload = json.loads(log.events[log.events["action"] == "turn"]["payload"].iloc[0])
    assert set(payload["checks"]) and payload["reply"] is not None


def test_judge_rates_every_reply(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, DRIFT / "rewrite.yaml", steps=3, **{"world.judge": {"model": "default"}})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "j"), "--quiet")
    turns = turns_table(RunLog(tmp_path / "j").events)
    assert turns["judge_score"].between(1, 10).all() and len(turns) == 3 * 12
    # the scripted judge follows the constraint checks: satisfied replies get 10
    assert (turns.loc[turns["satisfied"] == True, "judge_score"] == 10).all()  # noqa: E712
    r = agentsim_cli("analyze", str(tmp_path / "j"), "drift", "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "judge_mean" in pd.read_csv(tmp_path / "o" / "drift_satisfaction.csv").columns
    bad = write_scenario(tmp_path, DRIFT / "rewrite.yaml", **{"world.judge": {"model": "gpt-judge"}})
    from agentsim.spec.errors import SpecError

    with pytest.raises(SpecError, match="world.judge.model.*unknown model alias 'gpt-judge'"):
        load_scenario(bad)
