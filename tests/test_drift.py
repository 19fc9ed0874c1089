"""Drift family: constraint checkers, KL estimators against a hand computation, recurrence recovery, runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from scipy.stats import entropy

from agentsim.analysis.drift import (
    compare_arms,
    curves,
    fit_recurrence,
    measurement,
    transitions,
    turns_table,
)
from agentsim.core.check import _drive, check_world
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
    kl, mass, shared = topk_kl(q, p)
    assert kl == pytest.approx(exact) and mass == pytest.approx(1.0) and shared == pytest.approx(1.0)
    # token 3 is outside p's top k: it goes into the rest bucket with q_rest = 0.1 and p_rest = 1 - 0.6
    kl2, mass2, shared2 = topk_kl([{1: np.log(0.9), 3: np.log(0.1)}], [{1: np.log(0.6), 2: np.log(0.3)}])
    assert kl2 == pytest.approx(float(rel_entr([0.9, 0.1], [0.6, 0.4]).sum()))
    assert mass2 == pytest.approx(1.0) and shared2 == pytest.approx(0.9)
    with pytest.raises(ValueError, match="different"):
        mc_kl([0.0], [0.0, 1.0])


# The example of the issue: the plain top-k sum overstates the KL at k = 3, and the old floor substitution made it
# negative at k = 1. Top-k dicts as the scorer returns them (p's tie at 0.1 broken towards token 0).
Q4 = np.array([0.5, 0.3, 0.15, 0.05])
P4 = np.array([0.1, 0.6, 0.2, 0.1])


def _top(dist: np.ndarray, k: int) -> dict[int, float]:
    order = sorted(range(len(dist)), key=lambda t: (-dist[t], t))[:k]
    return {t: float(np.log(dist[t])) for t in order}


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_topk_is_a_lower_bound_on_known_distributions(k: int) -> None:
    exact = float(entropy(Q4, P4))
    assert exact == pytest.approx(0.519, abs=5e-4)
    qd, pd_ = _top(Q4, k), _top(P4, k)
    shared = [t for t in qd if t in pd_]
    lumped_q = np.append(Q4[shared], 1 - Q4[shared].sum())
    lumped_p = np.append(P4[shared], 1 - P4[shared].sum())
    expected = float(rel_entr(lumped_q, lumped_p).sum())  # KL of the lumped distributions, computed by scipy
    kl, q_mass, shared_mass = topk_kl([qd], [pd_])
    assert kl == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= kl <= exact + 1e-12
    assert q_mass == pytest.approx(Q4[list(qd)].sum()) and shared_mass == pytest.approx(Q4[shared].sum())
    if k == 4:
        assert kl == pytest.approx(exact)


def test_the_plain_truncated_sum_is_no_bound() -> None:
    """What the docstring used to claim: the plain top-3 sum over-states the KL; it is not what topk_kl computes."""
    top3 = float(rel_entr(Q4[:3], P4[:3]).sum())
    assert top3 == pytest.approx(0.554, abs=5e-4) and top3 > float(entropy(Q4, P4))
    assert topk_kl([_top(Q4, 3)], [_top(P4, 3)]).kl <= float(entropy(Q4, P4))


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 12).flatmap(lambda v: st.tuples(
    st.lists(st.floats(0.01, 1.0), min_size=v, max_size=v), st.lists(st.floats(0.01, 1.0), min_size=v, max_size=v),
    st.integers(1, v))))
def test_topk_bound_property(case) -> None:
    """For any pair of distributions and any k: 0 <= top-k estimate <= exact KL, exact at k = vocabulary size."""
    qw, pw, k = case
    q, p = np.array(qw) / sum(qw), np.array(pw) / sum(pw)
    exact = float(entropy(q, p))
    kl, q_mass, shared_mass = topk_kl([_top(q, k)], [_top(p, k)])
    assert -1e-12 <= kl <= exact + 1e-9
    assert shared_mass <= q_mass + 1e-12 <= 1 + 1e-9
    full, *_ = topk_kl([_top(q, len(q))], [_top(p, len(p))])
    assert full == pytest.approx(exact, abs=1e-9)


def test_a_reply_without_tokens_is_no_measurement() -> None:
    assert np.isnan(mc_kl([], [])) and all(np.isnan(v) for v in topk_kl([], []))
    d = drift(TokenScores([], [], []), TokenScores([], [], []))
    assert not d.measured and np.isnan(d.mc) and np.isnan(d.topk) and d.note == "the reply has no tokens: no measurement"


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


RECORDING = SCENARIOS / "drift" / "recordings" / "rewrite-smollm2"


def test_the_shipped_smollm2_recording_is_a_real_llm_run_and_replays_to_its_own_log(tmp_path: Path) -> None:
    """The recording the drift notebook and the README replay (`agentsim run drift/rewrite.yaml` through vLLM with
    SmolLM2-135M-Instruct): every reply answered and scored by the model, D_t measured on every turn, and a replay
    by its shipped name, from another folder, gives its log back exactly."""
    rec = RunLog(RECORDING)
    assert rec.meta["status"] == "completed" and rec.complete_steps == 8
    calls = rec.llm_calls
    assert set(calls["backend"]) == {"vllm"} and set(calls["model"]) == {"embedded:smollm2-135m-instruct"}
    assert (calls.loc[calls["phase"] == "score", "finish_reason"] == "scored").all()
    turns = turns_table(rec.events)
    assert len(turns) == 8 * 12 and turns["d_mc"].notna().mean() > 0.9 and turns["d_topk"].notna().mean() > 0.9
    r = agentsim_cli("run", "drift/rewrite.yaml", "--backend", "replay", "--replay-from", "drift/recordings/rewrite-smollm2",
                     "--run-dir", str(tmp_path / "replayed"), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_same_log(RECORDING, tmp_path / "replayed", ignore={"llm_calls": ["backend"]})
    assert RunLog(tmp_path / "replayed").meta["replay_from"] == str(RECORDING.resolve())


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


# -- one turn event per conversation and turn, whatever the switches ---------------------------------------------
def _run_in_process(tmp_path: Path, name: str, base: Path = DRIFT / "rewrite.yaml", **changes) -> RunLog:
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import LocalRuntime

    f = write_scenario(tmp_path, base, **changes)
    sc = load_scenario(f, backend="scripted")
    LocalRuntime(sc, build_backend(sc.spec.models, sc.family.scripted_policy, log=lambda m: None), tmp_path / name).run()
    return RunLog(tmp_path / name)


ARMS = {
    "no reminders": [{"name": "none"}],
    "reminders": [{"name": "none"}, {"name": "t2", "reminders": [2]}, {"name": "every2", "every": 2}],
}


@pytest.mark.parametrize("arms", list(ARMS))
@pytest.mark.parametrize("judge", [False, True])
@pytest.mark.parametrize("measure_kl", [True, False])
def test_exactly_one_turn_event_per_conversation_turn(tmp_path: Path, measure_kl: bool, judge: bool, arms: str) -> None:
    changes = {"steps": 3, "world.conversations_per_arm": 2, "world.measure_kl": measure_kl, "world.arms": ARMS[arms]}
    if judge:
        changes["world.judge"] = {"model": "default"}
    log = _run_in_process(tmp_path, "r", **changes)
    ev = log.events
    turns = ev[ev["action"] == "turn"]
    n_conv = 2 * len(ARMS[arms])
    assert len(turns) == 3 * n_conv
    assert turns.groupby(["target", "step"]).size().eq(1).all()
    payloads = [json.loads(p) for p in turns["payload"]]
    assert all(p["reply"] for p in payloads)  # no empty replies
    assert all(p["turn"] == s + 1 for p, s in zip(payloads, turns["step"], strict=True))
    if judge:
        assert all(p["judge_score"] is not None for p in payloads)
    # the history holds each reply once: user, [reminder], assistant per turn
    from agentsim.scenarios.drift.world import DriftWorld

    sc = load_scenario(write_scenario(tmp_path, DRIFT / "rewrite.yaml", **changes), backend="scripted")
    world = DriftWorld(sc.world, sc.spec.steps, sc.spec.population.model)
    assert world.phases[-1] == ("score" if measure_kl else "judge" if judge else "assistant")


def test_satisfaction_is_the_same_with_and_without_kl_measurement(tmp_path: Path) -> None:
    """The issue's case: with measure_kl false every turn got a second event with an empty reply and satisfaction
    halved; the measurement switch must not change what the conversations are."""
    a = turns_table(_run_in_process(tmp_path, "kl").events)
    b = turns_table(_run_in_process(tmp_path, "nokl", **{"world.measure_kl": False}).events)
    assert len(a) == len(b) == 8 * 12
    assert a["satisfied"].tolist() == b["satisfied"].tolist()
    assert a["satisfied"].mean() == b["satisfied"].mean() > 0.5


def test_history_holds_each_reply_once(tmp_path: Path) -> None:
    from agentsim.scenarios.drift.world import DriftWorld

    f = write_scenario(tmp_path, DRIFT / "rewrite.yaml", steps=3, **{"world.measure_kl": False, "world.conversations_per_arm": 1})
    sc = load_scenario(f, backend="scripted")
    world, _, _ = _drive(sc, 3)
    assert isinstance(world, DriftWorld)
    for c in world.conversations:
        roles = [m["role"] for m in c.messages]
        assert roles.count("assistant") == 3 and roles.count("user") == 3
        assert all(m["content"] for m in c.messages)


# -- no measurement is not a zero ---------------------------------------------------------------------------------
def _world_turn(replies: dict[int, str | None], scores: dict[int, tuple[TokenScores, TokenScores]] | None = None):
    """Drive one turn of a two-conversation world by hand: a valid reply, or None for an invalid answer."""
    from agentsim.core.seeding import make_rng
    from agentsim.core.types import Decision
    from agentsim.core.world import StepContext
    from agentsim.scenarios.drift.world import DriftWorld

    sc = load_scenario(DRIFT / "rewrite.yaml", backend="scripted", **{"world.conversations_per_arm": 2, "world.arms": [{"name": "none"}]})
    w = DriftWorld(sc.world, 4, "default")
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    for phase in w.phases:
        ctx.phase = phase
        obs = w.observe(ctx, phase)
        if phase == "user":
            ds = [Decision(o.agent_id, "Please rewrite.", "", True, "r", 1) for o in obs]
        elif phase == "assistant":
            ds = [Decision(o.agent_id, replies[i], replies[i] or "", replies[i] is not None, "r", 2,
                           None if replies[i] is not None else "empty answer") for i, o in enumerate(obs)]
        else:
            ds = []
            for o in obs:
                i = int(o.agent_id.split("/")[0].rsplit("-", 1)[1])
                ds.append(Decision(o.agent_id, scores[i][0 if o.tag == "#q" else 1], "", True, "r", 1))
        w.apply(ctx, phase, ds)
    return w, obs, [json.loads(e.payload) for e in ctx.events if e.action == "turn"]


def test_an_invalid_reply_is_not_measured_and_stays_out_of_the_history() -> None:
    q = TokenScores([5, 6], [-1.0, -2.0], [{5: -1.0}, {6: -2.0}])
    p = TokenScores([5, 6], [-1.5, -2.5], [{5: -1.5}, {6: -2.5}])
    w, score_obs, turns = _world_turn({0: ACADEMIC, 1: None}, {0: (q, p)})
    assert [o.agent_id for o in score_obs] == ["none-0000/assistant"] * 2  # the missing reply is not scored
    ok, missing = turns
    assert ok["d_mc"] == pytest.approx(0.5) and ok["satisfied"] is not None and ok["reply_error"] is None
    assert missing["d_mc"] is None and missing["d_topk"] is None and missing["satisfied"] is None
    assert missing["checks"] == {} and missing["kl_error"] == "no reply: empty answer" and missing["reply_error"] == "empty answer"
    assert [m["role"] for m in w.conversations[1].messages] == ["user"]  # no empty assistant message


def _turn_event(cid: str, arm: str, turn: int, d: float | None, tokens: int | None, reply: str = "text", **extra) -> dict:
    payload = {"arm": arm, "turn": turn, "reminder": False, "reply": reply, "checks": {}, "satisfied": True,
               "d_mc": d, "d_topk": d, "tokens": tokens, "q_mass": 1.0, "kl_error": None, "judge_score": 7, **extra}
    return {"action": "turn", "target": cid, "payload": json.dumps(payload)}


@pytest.mark.parametrize("log_format", ["earlier version (0.0 for no tokens)", "this version (null with a reason)"])
def test_a_turn_without_tokens_is_left_out_of_the_curve(log_format: str) -> None:
    """The issue's numbers: turn 2 of arm `none` was 0.000505 with n = 2 instead of 0.00101 with n = 1."""
    if log_format.startswith("earlier"):
        empty = _turn_event("none-1", "none", 2, 0.0, 0, reply="")
    else:
        empty = _turn_event("none-1", "none", 2, None, None, reply="", reply_error="empty answer", kl_error="no reply: empty answer")
    events = pd.DataFrame([_turn_event("none-0", "none", 1, 0.0008, 12), _turn_event("none-1", "none", 1, 0.0009, 9),
                           _turn_event("none-0", "none", 2, 0.00101, 14), empty])
    turns = turns_table(events)
    row = curves(turns).set_index(["arm", "turn"]).loc[("none", 2)]
    assert row["d_mc_mean"] == pytest.approx(0.00101) and row["n"] == 1 and row["n_missing"] == 1
    gone = turns[(turns["conversation"] == "none-1") & (turns["turn"] == 2)].iloc[0]
    assert np.isnan(gone["d_mc"]) and pd.isna(gone["satisfied"]) and np.isnan(gone["judge_score"])
    m = measurement(turns).set_index("arm").loc["none"]
    assert m["turns"] == 4 and m["measured"] == 3 and m["not_measured"] == 1 and m["replies"] == 3
    assert len(transitions(turns)) == 1  # none-0's 1 -> 2; none-1 has no D_2, so no transition enters the fit


def test_negative_estimates_are_counted_or_refused() -> None:
    def event(d_mc: float, d_topk: float) -> dict:
        return {"action": "turn", "target": "a-0", "payload": json.dumps({
            "arm": "a", "turn": 1, "reminder": False, "reply": "x", "checks": {}, "satisfied": True,
            "d_mc": d_mc, "d_topk": d_topk, "tokens": 10, "q_mass": 1.0, "kl_error": None})}

    old = turns_table(pd.DataFrame([event(0.03, -0.091)]))  # a negative top-k value of the old floor estimator
    assert np.isnan(old.loc[0, "d_topk"]) and np.isnan(old.loc[0, "d_mc"]) and "negative top-k" in old.loc[0, "kl_error"]
    assert measurement(old).loc[0, "not_measured"] == 1
    noisy = turns_table(pd.DataFrame([event(-0.02, 0.01)]))
    assert noisy.loc[0, "d_mc"] == -0.02  # a noisy Monte Carlo sample is kept (clipping would bias the mean) ...
    assert measurement(noisy).loc[0, "negative_mc"] == 1  # ... and counted


# -- the scripted assistant follows the task ----------------------------------------------------------------------
CUSTOM = [
    {"kind": "keywords", "required": ["summary", "next steps"], "forbidden": ["guarantee"]},
    {"kind": "words", "min": 20, "max": 40},
    {"kind": "regex", "pattern": "^TL;DR:"},
    {"kind": "regex", "pattern": "\\?", "must_match": False},
]


@pytest.mark.parametrize("name", ["rewrite", "customer_service", "custom"])
def test_the_scripted_assistant_keeps_or_breaks_every_constraint(name: str) -> None:
    from agentsim.scenarios.drift.scripted import compliant_reply, drifted_reply

    base = DRIFT / ("rewrite" if name == "custom" else name) / ""
    extra = {"world.task.constraints": CUSTOM} if name == "custom" else {}
    sc = load_scenario(str(base).rstrip("/") + ".yaml", backend="scripted", **extra)
    cons = sc.world.task.constraints
    for material in sc.world.task.inputs + [""]:
        reply = compliant_reply(cons, material)
        assert all(c.check(reply) for c in cons), (reply, [c.check(reply) for c in cons])
    for seed in range(20):
        reply = drifted_reply(cons, np.random.default_rng(seed))
        assert not any(c.check(reply) for c in cons), reply


def test_a_shipped_code_is_quoted_from_the_users_text() -> None:
    from agentsim.scenarios.drift.scripted import compliant_reply

    assert "QX7PL2" in compliant_reply([Pattern(pattern=r"\b[A-Z0-9]{6}\b")], "My booking code is QX7PL2. Help!")


@pytest.mark.parametrize("name", ["customer_service", "custom"])
def test_scripted_satisfaction_is_the_share_of_replies_that_kept_the_goal(tmp_path: Path, name: str) -> None:
    """The canned text scored 0 % on any task but the rewrite one; now each run's satisfaction is the share of
    replies that kept the goal (0.9 ** turns since the goal), well above 0."""
    base = DRIFT / ("rewrite.yaml" if name == "custom" else f"{name}.yaml")
    extra = {"world.task.constraints": CUSTOM} if name == "custom" else {}
    log = _run_in_process(tmp_path, name, base, **{"world.measure_kl": False, **extra})
    turns = turns_table(log.events)
    ev = log.events[log.events["action"] == "turn"]
    kept = {(cid, json.loads(p)["turn"]): not json.loads(p)["reply"].startswith("Sure thing!") for cid, p in zip(ev["target"], ev["payload"], strict=True)}
    assert turns["satisfied"].astype(bool).tolist() == [kept[(c, t)] for c, t in zip(turns["conversation"], turns["turn"], strict=True)]
    assert 0.5 < turns["satisfied"].astype(float).mean() < 1.0


@settings(max_examples=60, deadline=None)
@given(lo=st.integers(0, 150), span=st.integers(0, 150), n_bullets=st.sampled_from([None, 0, 1, 3, 5]),
       formal=st.booleans(), keywords=st.lists(st.sampled_from(["policy", "booking", "evidence", "Section 4"]), max_size=2),
       forbidden=st.lists(st.sampled_from(["refund", "guarantee", "approach"]), max_size=2))
def test_compliant_replies_meet_any_satisfiable_constraints(lo, span, n_bullets, formal, keywords, forbidden) -> None:
    from agentsim.scenarios.drift.scripted import compliant_reply

    cons = [Words(min=lo, max=max(lo + span, 1) + 20), Keywords(required=keywords, forbidden=[f for f in forbidden if f not in " ".join(keywords).lower()])]
    if n_bullets is not None:
        cons.append(Bullets(exactly=n_bullets))
    if formal:
        cons.append(FormalTone())
    reply = compliant_reply(cons)
    assert all(c.check(reply) for c in cons), (reply, [type(c).__name__ for c in cons if not c.check(reply)])
