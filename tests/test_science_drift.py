"""Drift against independent computations: the KL's direction (from the test context to the goal-restated
reference) through a scorer that answers by the context it is given, the turn's record and reminders by hand, and
the analyses (curves, arms, the recurrence on noise-free data, measurement counts) by hand. Fast: the mutation run
executes these many times."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import rel_entr

from agentsim.analysis.drift import (
    NEGATIVE_TOPK,
    NO_REPLY,
    NO_TOKENS,
    _ols,
    compare_arms,
    curves,
    drift_tables,
    fit_recurrence,
    kl_available,
    measurement,
    satisfaction,
    transitions,
    turns_table,
)
from agentsim.analysis.tables import notes_of
from agentsim.core.seeding import make_rng
from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.llm.types import TokenScores
from agentsim.logs.reader import RunLog
from agentsim.scenarios.drift.kl import drift, lumped_kl, mc_kl, topk_kl
from agentsim.scenarios.drift.world import JUDGE_ID, DriftWorld, Rating
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_run_log

RESTATE = "Remember the goal: {goal}"
Q_LP, P_LP = [-1.0, -3.0, -0.5], [-2.0, -1.0, -0.25]  # the reply's token log-probabilities in each context
Q_TOP = [{1: -1.0, 2: -0.7}, {3: -3.0, 4: -0.1}, {5: -0.5}]
P_TOP = [{1: -2.0, 2: -0.2}, {3: -1.0, 9: -0.5}, {5: -0.25, 6: -2.0}]


def _world(**world) -> DriftWorld:
    base = {"world.conversations_per_arm": 2, "world.arms": [{"name": "none"}, {"name": "r2", "reminders": [2]}],
            "world.reference": {"model": "refm", "restatement": RESTATE}, "world.top_k": 7,
            "models.refm": {"backend": "scripted", "model": "ref"}, "models.judge": {"backend": "scripted", "model": "j"}}
    sc = load_scenario(SCENARIOS / "drift" / "rewrite.yaml", backend="scripted", **{**base, **world})
    return DriftWorld(sc.world, 4, "default")


def scorer(obs, reply: str) -> TokenScores:
    """A deterministic scorer: the goal-restated reference context gets P's numbers, any other context Q's; both
    score the same three tokens of the reply."""
    restated = obs.messages[-1]["role"] == "system" and obs.messages[-1]["content"].startswith("Remember the goal:")
    lp, top = (P_LP, P_TOP) if restated else (Q_LP, Q_TOP)
    assert obs.continuation == reply
    return TokenScores([1, 3, 5], list(lp), [dict(d) for d in top])


def _turn(w: DriftWorld, step: int, replies: dict[str, str | None], users: dict[str, str | None] | None = None,
          score=scorer, ratings: dict[str, int] | None = None) -> tuple[StepContext, dict[str, list]]:
    ctx = StepContext(step, float(step + 1), make_rng(0, "w"), 0)
    seen: dict[str, list] = {}
    for phase in w.phases:
        ctx.phase = phase
        obs = w.observe(ctx, phase)
        seen[phase] = obs
        ds = []
        for o in obs:
            cid = o.agent_id.split("/")[0] if o.agent_id != JUDGE_ID else o.tag[1:]
            if phase == "user":
                text = (users or {}).get(cid, f"user says {step}")
                ds.append(Decision(o.agent_id, text, text or "", text is not None, "u", 1, None if text is not None else "bad"))
            elif phase == "assistant":
                r = replies.get(cid)
                ds.append(Decision(o.agent_id, r, r or "", r is not None, "a", 1, None if r is not None else "refused"))
            elif phase == "judge":
                ds.append(Decision(o.agent_id, Rating(score=(ratings or {}).get(cid, 5)), "", True, "j", 1))
            else:
                ds.append(Decision(o.agent_id, score(o, replies[cid]), "", True, "s", 1))
        w.apply(ctx, phase, ds)
    return ctx, seen


def _turns(ctx: StepContext) -> dict[str, dict]:
    return {e.target: json.loads(e.payload) for e in ctx.events if e.action == "turn"}


def test_the_score_phase_asks_for_both_contexts() -> None:
    w = _world()
    replies = {c.cid: f"reply of {c.cid}" for c in w.conversations}
    _, seen = _turn(w, 0, replies)
    score = seen["score"]
    assert [(o.agent_id, o.tag) for o in score] == [(f"{c.cid}/assistant", side) for c in w.conversations for side in ("#q", "#p")]
    for q, p in zip(score[::2], score[1::2], strict=True):
        c = next(c for c in w.conversations if q.agent_id == f"{c.cid}/assistant")
        test_ctx = [{"role": "system", "content": w.system}] + [m for m in c.messages if m["role"] != "assistant"]
        assert q.model == "default" and q.messages == test_ctx  # the test context: the conversation as the model saw it
        assert p.model == "refm" and p.messages == test_ctx + [{"role": "system", "content": RESTATE.format(goal=w.config.task.goal)}]
        assert q.continuation == p.continuation == replies[c.cid] and q.score_top_k == p.score_top_k == 7
        assert q.action_model is None and p.action_model is None


def test_the_kl_is_taken_from_the_test_context_to_the_reference() -> None:
    w = _world()
    ctx, _ = _turn(w, 0, {c.cid: "a reply" for c in w.conversations})
    want_mc = float(np.mean(np.array(Q_LP) - np.array(P_LP)))  # KL(q || p): E_q[log q - log p]
    per_pos = []
    for qd, pd_ in zip(Q_TOP, P_TOP, strict=True):
        shared = [t for t in qd if t in pd_]
        qs, ps = np.exp([qd[t] for t in shared]), np.exp([pd_[t] for t in shared])
        qr, pr = max(0.0, 1 - qs.sum()), max(0.0, 1 - ps.sum())
        per_pos.append(float(rel_entr(qs, ps).sum() + (rel_entr(qr, pr) if qr > 1e-12 else 0.0)))
    turns = _turns(ctx)
    for c in w.conversations:
        t = turns[c.cid]
        assert t["d_mc"] == pytest.approx(want_mc) and t["d_mc"] < 0  # the reference is surer of this reply
        assert t["d_topk"] == pytest.approx(np.mean(per_pos)) and t["tokens"] == 3
        assert t["q_mass"] == pytest.approx(np.mean([np.exp(list(d.values())).sum() for d in Q_TOP]))
        assert t["kl_error"] is None
    metrics = {m.metric: m.value for m in ctx.metrics}
    assert metrics == {"d_mc/none": pytest.approx(want_mc), "d_mc/r2": pytest.approx(want_mc)}


def test_a_turn_by_hand_with_reminders_checks_and_a_judge() -> None:
    w = _world(**{"world.judge": {"model": "judge"}})
    assert w.phases == ("user", "assistant", "judge", "score")
    good = "- Results improved.\n- Costs fell.\n- Risks remain."
    c0, c1, c2, c3 = (c.cid for c in w.conversations)
    _turn(w, 0, {c0: good, c1: "hey!", c2: good, c3: good}, ratings={c0: 9, c1: 2})
    ctx, seen = _turn(w, 1, {c0: good, c1: None, c2: good, c3: good}, users={c2: None}, ratings={c0: 8})
    turns = _turns(ctx)
    assert turns[c0]["reminder"] is False and turns[c2]["reminder"] is True  # arm r2 restates the goal before reply 2
    assert turns[c0]["judge_score"] == 8 and turns[c0]["turn"] == 2 and turns[c0]["arm"] == "none"
    assert turns[c0]["checks"] == {'{"kind":"bullets","exactly":3}': True, '{"kind":"words","min":100,"max":200}': False,
                                   '{"kind":"formal","extra_informal":[]}': True} and turns[c0]["satisfied"] is False
    missing = turns[c1]
    assert missing["reply"] == "" and missing["reply_error"] == "refused" and missing["d_mc"] is None
    assert missing["kl_error"] == "no reply: refused" and missing["judge_score"] is None and missing["checks"] == {}
    assert [o.tag for o in seen["judge"]] == [f"#{c0}", f"#{c2}", f"#{c3}"]  # the missing reply is not judged
    judge = seen["judge"][0]
    assert judge.data.checks_passed == pytest.approx(2 / 3) and good in judge.messages[0]["content"]
    r2 = w.conversations[2]
    reminder = {"role": "system", "content": w.config.reminder.format(goal=w.config.task.goal)}
    assert r2.reminders == [2] and r2.messages[-3:] == [
        {"role": "user", "content": w._pressure(2)}, reminder, {"role": "assistant", "content": good}]  # invalid user: the pressure
    assert [m["role"] for m in w.conversations[1].messages] == ["user", "assistant", "user"]
    a = seen["assistant"][2].data
    assert a.turn == 2 and a.turns_since_goal == 0 and a.last_user == reminder["content"]
    assert seen["assistant"][0].data.turns_since_goal == 2


def test_user_turns_by_hand() -> None:
    w = _world(**{"world.measure_kl": False})
    c0 = w.conversations[0]
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    obs = w.observe(ctx, "user")
    u = obs[0]
    assert u.agent_id == f"{c0.cid}/user" and u.max_words == w.config.user.max_words
    assert u.data.turn == 1 and u.data.pressure == w.config.user.pressure[0] and u.data.material == w.config.task.inputs[0]
    assert obs[1].data.material == w.config.task.inputs[1] and u.data.last_reply == ""
    assert "Start by giving the assistant this text to work on:\n" + w.config.task.inputs[0] in u.messages[0]["content"]
    w.apply(ctx, "user", [Decision(o.agent_id, None, "", False, "u", 1, "bad") for o in obs])
    assert c0.messages == [{"role": "user", "content": f"{w.config.task.inputs[0]}\n\n{w.config.user.pressure[0]}"}]
    assert [json.loads(e.payload) for e in ctx.events][0] == {"text": c0.messages[0]["content"], "arm": "none"}
    assert w._pressure(99) == w.config.user.pressure[-1] and w._pressure(2) == w.config.user.pressure[1]
    assert w.conversations[3].index == 1 and w._material(w.conversations[3]) == w.config.task.inputs[1]  # per arm
    assert [a.agent_id for a in w.agents()][:2] == [f"{c0.cid}/user", f"{c0.cid}/assistant"] and w.sim_time(2) == 3.0


def test_scoring_failures_are_no_measurement() -> None:
    w = _world()
    c0, c1, c2, c3 = (c.cid for c in w.conversations)

    def broken(obs, reply):
        cid = obs.agent_id.split("/")[0]
        if cid == c0:
            return TokenScores([1, 2], [-1.0, -1.0], [{}, {}]) if obs.tag == "#q" else TokenScores([1, 3], [-1.0, -1.0], [{}, {}])
        if cid == c1:
            return TokenScores([], [], [])
        return scorer(obs, reply)

    ctx, _ = _turn(w, 0, {c: "r" for c in (c0, c1, c2, c3)}, score=broken)
    t = _turns(ctx)
    assert t[c0]["kl_error"] == "the reply was tokenized differently under the two scorings" and t[c0]["d_mc"] is None
    assert t[c1]["kl_error"] == NO_TOKENS and t[c1]["tokens"] == 0 and t[c1]["d_mc"] is None
    assert {m.metric for m in ctx.metrics} == {"d_mc/r2"}  # arm none had no measurement


def test_the_estimators_by_hand() -> None:
    assert mc_kl([-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]) == pytest.approx(-1.0)
    # the whole vocabulary: exact KL; q's rest below 1e-12: no bucket; p's rest 0: floored, finite
    q, p = {0: math.log(0.5), 1: math.log(0.5)}, {0: math.log(0.9), 1: math.log(0.1)}
    assert lumped_kl(q, p) == pytest.approx((float(rel_entr([0.5, 0.5], [0.9, 0.1]).sum()), 1.0, 1.0))
    kl, mass, shared = lumped_kl({0: math.log(0.6)}, {0: 0.0})  # p puts all its mass on the shared token
    assert kl == pytest.approx(0.6 * math.log(0.6) + 0.4 * (math.log(0.4) - math.log(1e-300)), rel=1e-12)
    assert mass == pytest.approx(0.6) and shared == pytest.approx(0.6)
    same = lumped_kl({0: math.log(0.6)}, {0: math.log(0.6), 1: math.log(0.4)})  # equal rests: no divergence
    assert same == (pytest.approx(0.0, abs=1e-15), pytest.approx(0.6), pytest.approx(0.6))
    assert lumped_kl({5: math.log(0.3)}, {6: math.log(0.3)}) == (0.0, pytest.approx(0.3), 0.0)
    with pytest.raises(ValueError, match="different positions"):
        topk_kl([{}], [])
    d = drift(TokenScores([1, 2], [-1.0, -2.0], Q_TOP[:2]), TokenScores([1, 2], [-2.0, -2.0], P_TOP[:2]))
    assert d.measured and d.tokens == 2 and d.mc == pytest.approx(0.5) and d.note is None
    t = topk_kl(Q_TOP[:2], P_TOP[:2])
    assert (d.topk, d.q_mass, d.shared_mass) == (t.kl, t.q_mass, t.shared_mass)


# -- the analyses by hand ------------------------------------------------------------------------------------------
def _event(cid: str, arm: str, turn: int, d: float | None, **extra) -> dict:
    payload = {"arm": arm, "turn": turn, "reminder": False, "reply": "text", "checks": {}, "satisfied": True, "d_mc": d,
               "d_topk": None if d is None else abs(d), "tokens": 5, "q_mass": 0.9, "shared_mass": 0.8, "kl_error": None,
               "judge_score": 6, **extra}
    return {"action": "turn", "target": cid, "payload": json.dumps(payload)}


def test_turns_table_by_hand() -> None:
    events = pd.DataFrame([
        _event("b-1", "b", 2, 0.5, reminder=True, satisfied=False),
        _event("a-1", "a", 1, 0.2),
        {"action": "message", "target": "a-1", "payload": "{}"},
        _event("a-1", "a", 2, None, reply="", reply_error="refused", kl_error="no reply: refused", satisfied=None),
        _event("b-1", "b", 1, 0.1, reply=""),  # an earlier version's empty reply
        _event("b-2", "b", 1, 0.3, tokens=0),  # an earlier version's 0 for no tokens
        _event("b-3", "b", 1, 0.3, d_topk=-0.1),
    ])
    t = turns_table(events)
    assert t[["conversation", "turn"]].to_numpy().tolist() == [["a-1", 1], ["a-1", 2], ["b-1", 1], ["b-1", 2], ["b-2", 1], ["b-3", 1]]
    assert t["d_mc"].tolist()[0] == 0.2 and t["d_mc"].isna().tolist() == [False, True, True, False, True, True]
    assert t["reply_error"].tolist() == [None, "refused", NO_REPLY, None, None, None]
    assert t["kl_error"].tolist() == [None, "no reply: refused", None, None, NO_TOKENS, NEGATIVE_TOPK]
    assert t["satisfied"].tolist() == [True, None, None, False, True, True]
    assert t["judge_score"].tolist()[:3] == [6, None, None] or np.isnan(t["judge_score"].iloc[1])
    assert t["reminder"].tolist() == [False, False, False, True, False, False]
    assert t.columns.tolist() == ["conversation", "arm", "turn", "reminder", "d_mc", "d_topk", "tokens", "q_mass",
                                  "shared_mass", "satisfied", "kl_error", "reply_error", "judge_score"]
    m = measurement(t).set_index("arm")
    assert m.loc["a"].tolist() == [2, 1, 1, 1, "no reply: refused: 1", 0]
    assert m.loc["b", "reasons"] == f"not measured: 1; {NO_TOKENS}: 1; {NEGATIVE_TOPK}: 1"
    with pytest.raises(KeyError, match="no 'turn' events"):
        turns_table(events[events["action"] == "message"])
    assert kl_available(t) == (True, "")
    none = t.assign(d_mc=np.nan)
    assert kl_available(none) == (False, "no reply: refused")
    assert kl_available(none.assign(kl_error=None)) == (False, "D_t was not measured (measure_kl: false)")


def test_curves_by_hand() -> None:
    t = pd.DataFrame({"arm": ["a"] * 4 + ["b"], "turn": [1, 1, 1, 2, 1], "d_mc": [1.0, 3.0, np.nan, 2.0, 4.0]})
    c = curves(t).set_index(["arm", "turn"])
    lo, hi = stats.t.interval(0.95, 1, loc=2.0, scale=stats.sem([1.0, 3.0]))
    assert c.loc[("a", 1)].tolist() == [2, 1, 2.0, pytest.approx(lo), pytest.approx(hi)]
    assert c.loc[("a", 2), "n"] == 1 and math.isnan(c.loc[("a", 2), "ci_low"])
    assert any("needs at least 2 values" in n for n in notes_of(curves(t)))
    narrow = curves(t, confidence=0.5).set_index(["arm", "turn"])
    assert narrow.loc[("a", 1), "ci_high"] < hi


def test_the_recurrence_on_noise_free_data() -> None:
    """D_{t+1} = D_t + kappa (D* - D_t) - delta r_t exactly: OLS recovers every parameter, the noise is 0."""
    kappa, d_star, delta = 0.4, 1.5, 0.3
    rows = []
    for c, d0 in enumerate([0.0, 0.5, 2.5, 3.0]):
        d = d0
        for t in range(1, 7):
            r = t in (3, 5) and c % 2 == 0
            if t > 1:
                d = d + kappa * (d_star - d) - delta * r
            rows.append({"conversation": f"c{c}", "arm": "a", "turn": t, "reminder": r, "d_mc": d})
    turns = pd.DataFrame(rows)
    fit = fit_recurrence(turns, bootstrap=50).set_index("parameter")
    assert fit.loc["kappa", "estimate"] == pytest.approx(kappa) and fit.loc["d_star", "estimate"] == pytest.approx(d_star)
    assert fit.loc["delta", "estimate"] == pytest.approx(delta) and fit.loc["noise", "estimate"] == pytest.approx(0.0, abs=1e-9)
    assert (fit["transitions"] == 20).all()
    assert fit.loc["kappa", "ci_low"] == pytest.approx(kappa) and fit.loc["kappa", "ci_high"] == pytest.approx(kappa)
    no_ci = fit_recurrence(turns, bootstrap=0)
    assert no_ci["ci_low"].isna().all()
    plain = _ols(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.5, 1.0, 1.5, 2.0]), np.zeros(4))
    assert (plain.kappa, plain.d_star, plain.delta, plain.n) == (pytest.approx(0.5), pytest.approx(1.0), 0.0, 4)
    assert math.isnan(_ols(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.zeros(2)).noise)
    flat = _ols(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), np.zeros(3))
    assert flat.kappa == pytest.approx(0.0, abs=1e-12) and math.isnan(flat.d_star) or abs(flat.kappa) < 1e-9
    with pytest.raises(ValueError, match="too few consecutive turns"):
        fit_recurrence(turns[turns["turn"] <= 2].iloc[:6])


def test_transitions_are_consecutive_measured_turns() -> None:
    t = pd.DataFrame({"conversation": ["x"] * 4 + ["y"] * 2, "turn": [1, 2, 4, 5, 1, 2],
                      "reminder": [False, True, False, True, False, False], "d_mc": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0]})
    tr = transitions(t)
    assert tr[["conversation", "d", "d_next", "r"]].to_numpy().tolist() == [["x", 1.0, 2.0, 1.0], ["y", 5.0, 6.0, 0.0]]


def test_compare_arms_and_satisfaction_by_hand() -> None:
    rows = []
    for arm, values, rem, sat in (("none", [4, 2, 6, 8], [], [1, 1, 0, 0]), ("r3", [4, 2, 3, 1], [3], [1, 1, 1, 0])):
        for t, v in enumerate(values, 1):
            rows.append({"conversation": arm, "arm": arm, "turn": t, "reminder": t in rem, "d_mc": float(v),
                         "satisfied": bool(sat[t - 1]), "judge_score": float(t)})
    t = pd.DataFrame(rows)
    a = compare_arms(t).set_index("arm")
    assert pd.isna(a.loc["none", "first_reminder"]) and math.isnan(a.loc["none", "reduction_pct"])
    assert a.loc["none"].drop(["first_reminder", "reduction_pct"]).tolist() == [5.0, 5.0, 0.5]
    assert a.loc["r3"].tolist() == [3, 2.5, 2.0, 0.75, pytest.approx(100 * (1 - 2.0 / 7.0))]
    assert str(a["first_reminder"].dtype) == "Int64"  # numeric in the CSV: an empty cell, not "-", where none was given
    s = satisfaction(t).set_index(["arm", "turn"])
    assert s.loc[("r3", 3)].tolist() == [1.0, 1, 3.0] and s.loc[("none", 3)].tolist() == [0.0, 1, 3.0]  # rate, n, judge_mean
    assert "judge_mean" not in satisfaction(t.drop(columns="judge_score"))
    partial = satisfaction(t.assign(satisfied=[True, None, None, None] * 2))
    assert partial[["arm", "turn", "rate"]].dropna().to_numpy().tolist() == [["none", 1, 1.0], ["r3", 1, 1.0]]


def test_drift_tables_of_runs(tmp_path: Path) -> None:
    events = [{"step": t - 1, "agent_id": f"{c}/assistant", **_event(c, c.split("-")[0], t, 0.1 * t)}
              for c in ("none-0", "none-1", "r2-0") for t in (1, 2, 3, 4)]
    events[5]["payload"] = json.dumps({**json.loads(events[5]["payload"]), "reminder": True})
    log = RunLog(write_run_log(tmp_path / "r", events=events))
    t = drift_tables(log, bootstrap=0)
    assert set(t) == {"satisfaction", "constraints", "measurement", "curves_mc", "curves_topk", "arms", "recurrence"}
    assert t["curves_mc"].set_index(["arm", "turn"]).loc[("none", 2), "d_mc_mean"] == pytest.approx(0.2)
    unmeasured = [{**e, "payload": json.dumps({**json.loads(e["payload"]), "d_mc": None, "kl_error": "scripted: no logprobs"})}
                  for e in events]
    u = drift_tables(RunLog(write_run_log(tmp_path / "u", events=unmeasured)), bootstrap=0)
    assert set(u) == {"satisfaction", "constraints", "measurement", "kl", "arms"} and notes_of(u["kl"]) == ["D_t unavailable: scripted: no logprobs"]
    assert "d_mc_mean" not in u["arms"] and "satisfaction_rate" in u["arms"]
    idle = drift_tables(RunLog(write_run_log(tmp_path / "i", steps=0, status="running", spec={"steps": 4})))
    assert set(idle) == {"satisfaction", "constraints", "arms"} and notes_of(idle["arms"])[0] == "no turns in this run"


# -- more of the analyses by hand: edges of the measurement and the fit --------------------------------------------
def test_measurement_edges() -> None:
    events = pd.DataFrame([
        _event("a-0", "a", 1, 0.0, d_topk=0.0, shared_mass=0.4, judge_score=9),  # a zero bound is a measurement
        _event("a-0", "a", 2, -0.1, d_topk=0.2),  # a negative Monte Carlo sample is kept and counted
        _event("a-1", "a", 1, 0.2, tokens="?"),  # an unreadable number is no number
    ])
    t = turns_table(events)
    assert t["d_topk"].tolist()[:2] == [0.0, 0.2] and t["d_mc"].tolist()[:2] == [0.0, -0.1]
    assert t["shared_mass"].tolist()[0] == 0.4 and t["judge_score"].tolist()[0] == 9 and math.isnan(t["tokens"].iloc[2])
    assert measurement(t).loc[0, "negative_mc"] == 1
    assert measurement(t).columns.tolist() == ["arm", "turns", "replies", "measured", "not_measured", "reasons", "negative_mc"]


def _noisy_turns(seed: int = 0, reminders: bool = False, conversations: int = 6, turns: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(conversations):
        d = rng.uniform(0, 1)
        for t in range(1, turns + 1):
            r = reminders and t in (3, 5)
            if t > 1:
                d = d + 0.3 * (1.0 - d) - 0.2 * r + rng.normal(0, 0.05)
            rows.append({"conversation": f"c{c}", "arm": "a", "turn": t, "reminder": r, "d_mc": d, "d_topk": d / 2})
    return pd.DataFrame(rows)


def test_the_fit_without_reminders_and_its_noise_by_hand() -> None:
    turns = _noisy_turns()
    tr = transitions(turns)
    y = tr["d_next"].to_numpy() - tr["d"].to_numpy()
    slope, intercept = np.polyfit(tr["d"].to_numpy(), y, 1)
    resid = y - (intercept + slope * tr["d"].to_numpy())
    fit = fit_recurrence(turns, bootstrap=0).set_index("parameter")["estimate"]
    assert fit["kappa"] == pytest.approx(-slope) and fit["d_star"] == pytest.approx(intercept / -slope) and fit["delta"] == 0.0
    assert fit["noise"] == pytest.approx(resid.std(ddof=2))  # two parameters fitted, not three
    topk = fit_recurrence(turns, value="d_topk", bootstrap=0).set_index("parameter")["estimate"]
    assert topk["d_star"] == pytest.approx(fit["d_star"] / 2)
    # exactly as many transitions as parameters: no spread left to estimate the noise from
    three = _ols(np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5, 1.0]), np.array([0.0, 1.0, 0.0]))
    assert math.isnan(three.noise)


def test_the_fit_needs_four_transitions_and_resamples_conversations() -> None:
    turns = _noisy_turns(reminders=True)
    four = turns[turns["conversation"].isin(["c0"]) & (turns["turn"] <= 5)]
    assert fit_recurrence(four, bootstrap=0)["transitions"].iloc[0] == 4
    one_conversation = fit_recurrence(_noisy_turns(reminders=True, conversations=1), bootstrap=50)
    assert one_conversation["ci_low"].isna().all()  # a bootstrap over one conversation is undefined
    assert any("undefined" in n for n in notes_of(one_conversation))
    a = fit_recurrence(turns, bootstrap=60, seed=3, confidence=0.8).set_index("parameter")
    b = fit_recurrence(turns, bootstrap=60, seed=3, confidence=0.8).set_index("parameter")
    pd.testing.assert_frame_equal(a, b)  # seeded
    # the cluster bootstrap by hand: whole conversations resampled with scipy, percentile intervals
    tr = transitions(turns)
    groups = [g for _, g in tr.groupby("conversation")]

    def refit(idx: np.ndarray) -> np.ndarray:
        pick = pd.concat([groups[int(i)] for i in idx])
        f = _ols(pick["d"].to_numpy(), pick["d_next"].to_numpy(), pick["r"].to_numpy())
        return np.array([f.kappa, f.d_star, f.delta, f.noise])

    ref = stats.bootstrap((np.arange(len(groups)),), refit, confidence_level=0.8, n_resamples=60, vectorized=False,
                          method="percentile", random_state=np.random.default_rng(3)).confidence_interval
    assert a["ci_low"].tolist() == pytest.approx(list(ref.low)) and a["ci_high"].tolist() == pytest.approx(list(ref.high))
    default = fit_recurrence(turns).set_index("parameter")
    explicit = fit_recurrence(turns, "d_mc", 500, 0.95, 0).set_index("parameter")
    pd.testing.assert_frame_equal(default, explicit)


def test_arms_and_satisfaction_edges() -> None:
    rows = [{"conversation": f"{arm}-0", "arm": arm, "turn": t, "reminder": t == 2, "d_mc": 0.0, "satisfied": None,
             "judge_score": float(t)} for arm in ("r1", "r2") for t in (1, 2)]
    t = pd.DataFrame(rows)
    arms = compare_arms(t)
    assert arms.columns.tolist() == ["arm", "first_reminder", "d_mc_mean", "d_mc_after_reminder", "satisfaction_rate"]
    assert arms["first_reminder"].tolist() == [2, 2] and arms["satisfaction_rate"].isna().all()  # no arm without reminders
    with_base = pd.concat([t, pd.DataFrame([{"conversation": "n-0", "arm": "none", "turn": 2, "reminder": False, "d_mc": 0.0,
                                             "satisfied": True, "judge_score": 5.0}])])
    assert compare_arms(with_base).set_index("arm")["reduction_pct"].dropna().tolist() == []  # the base drifts 0: no %
    s = satisfaction(with_base)
    assert s.columns.tolist() == ["arm", "turn", "rate", "n", "judge_mean"]
    assert s.set_index(["arm", "turn"]).loc[("r1", 2), "judge_mean"] == 2.0 and math.isnan(s.set_index(["arm", "turn"]).loc[("r1", 2), "rate"])
    assert s.set_index(["arm", "turn"]).loc[("r1", 2), "n"] == 0 and s.set_index(["arm", "turn"]).loc[("none", 2), "n"] == 1


def test_drift_tables_columns_and_defaults(tmp_path: Path) -> None:
    idle = drift_tables(RunLog(write_run_log(tmp_path / "i", steps=0, status="running", spec={"steps": 4})))
    assert idle["satisfaction"].columns.tolist() == ["arm", "turn", "rate", "n"]
    assert idle["arms"].columns.tolist() == ["arm", "first_reminder", "satisfaction_rate"]
    assert notes_of(idle["satisfaction"])[0] == "no turns in this run"
    events = [{"step": t - 1, "agent_id": f"{c}/assistant", **_event(c, "none", t, 0.1 * t + 0.01 * i, kl_error="x" if i else None)}
              for i, c in enumerate(("none-0", "none-1", "none-2")) for t in (1, 2, 3)]
    log = RunLog(write_run_log(tmp_path / "r", events=events))
    t = drift_tables(log)
    assert isinstance(t["curves_topk"], pd.DataFrame) and t["curves_topk"]["d_topk_mean"].notna().all()
    pd.testing.assert_frame_equal(t["recurrence"], drift_tables(log, bootstrap=500)["recurrence"])
    unmeasured = [{**e, "payload": json.dumps({**json.loads(e["payload"]), "d_mc": None})} for e in events]
    u = drift_tables(RunLog(write_run_log(tmp_path / "u", events=unmeasured)))
    assert u["kl"].columns.tolist() == ["d_mc", "d_topk"] and "d_mc_after_reminder" not in u["arms"] and "reduction_pct" not in u["arms"]


def test_turn_records_when_scoring_fails_on_one_side() -> None:
    w = _world()
    c0, c1, c2, c3 = (c.cid for c in w.conversations)
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    for phase in w.phases:
        ctx.phase = phase
        obs = w.observe(ctx, phase)
        if phase == "user":
            ds = [Decision(o.agent_id, "hi", "hi", True, "u", 1) for o in obs]
        elif phase == "assistant":
            ds = [Decision(o.agent_id, None if i == 0 else "a reply", "", i != 0, "a", 1, None if i else "refused")
                  for i, o in enumerate(obs)]
        else:
            ds = []
            for o in obs:
                cid = o.agent_id.split("/")[0]
                if cid == c1 and o.tag == "#p":
                    ds.append(Decision(o.agent_id, None, "", False, "s", 2, "no logprobs"))
                else:
                    ds.append(Decision(o.agent_id, scorer(o, "a reply"), "", True, "s", 1))
        w.apply(ctx, phase, ds)
    t = _turns(ctx)
    assert t[c0] == {"arm": "none", "turn": 1, "reminder": False, "reply": "", "reply_error": "refused", "checks": {},
                     "satisfied": None, "d_mc": None, "d_topk": None, "tokens": None, "q_mass": None, "shared_mass": None,
                     "kl_error": "no reply: refused", "judge_score": None}
    assert t[c1]["kl_error"] == "no logprobs" and t[c1]["d_mc"] is None and t[c1]["tokens"] is None
    for c in (c2, c3):  # scored although an earlier conversation had no reply
        assert t[c]["d_mc"] == pytest.approx(float(np.mean(np.array(Q_LP) - np.array(P_LP))))
        assert t[c]["shared_mass"] == pytest.approx(float(np.mean([sum(np.exp(d[k]) for k in d if k in p) for d, p in zip(Q_TOP, P_TOP, strict=True)])))
    assert {e.agent_id for e in ctx.events if e.action == "turn"} == {f"{c}/assistant" for c in (c0, c1, c2, c3)}


def test_a_task_without_constraints_has_no_satisfaction() -> None:
    w = _world(**{"world.task.constraints": []})
    ctx, _ = _turn(w, 0, {c.cid: "anything" for c in w.conversations})
    assert all(t["satisfied"] is None and t["checks"] == {} for t in _turns(ctx).values())


def test_drift_tables_when_the_recurrence_cannot_be_fitted(tmp_path: Path) -> None:
    events = [{"step": t - 1, "agent_id": "none-0/assistant", **_event("none-0", "none", t, 0.1 * t)} for t in (1, 2)]
    t = drift_tables(RunLog(write_run_log(tmp_path / "r", events=events)))
    rec = t["recurrence"]
    assert rec.empty and rec.columns.tolist() == ["parameter", "estimate", "ci_low", "ci_high", "transitions"]
    assert notes_of(rec) == ["too few consecutive turns with d_mc to fit the recurrence (1)"]
    assert isinstance(t["arms"], pd.DataFrame) and t["arms"]["arm"].tolist() == ["none"]
