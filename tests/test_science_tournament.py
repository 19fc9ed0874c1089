"""Tournaments against independent computations: CSD's Monte Carlo against exact enumeration (byes, eliminations,
per-round means), batches combined exactly, Swiss rounds that conserve points and give the bye's point to the
unpaired player, pairing by hand, and ratings and standings by hand. Fast: the mutation run executes these."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentsim.analysis.ratings import bradley_terry, elo, points, rank_agreement, rating_tables, tiebreaks
from agentsim.analysis.tables import TableError, notes_of
from agentsim.analysis.tournament import match_log, standings, tournament_tables
from agentsim.core.seeding import make_rng
from agentsim.core.types import Decision
from agentsim.core.world import StepContext
from agentsim.logs.reader import RunLog
from agentsim.scenarios.tournament import csd
from agentsim.scenarios.tournament.config import CSDSpec, LiveSpec, TournamentConfig
from agentsim.scenarios.tournament.swiss import swiss_pairing
from agentsim.scenarios.tournament.world import JUDGE_ID, Answer, CSDWorld, LiveWorld, Move, Verdict

from conftest import write_run_log


# -- CSD -------------------------------------------------------------------------------------------------------
def _close(mc: csd.CSDResult, exact: np.ndarray, sigmas: float = 4.0) -> bool:
    return bool(np.all(np.abs(mc.expected_score - exact) <= sigmas * np.maximum(mc.std_error, 1e-12) + 1e-9))


@pytest.mark.parametrize("bye", [0.5, 1.0])
@pytest.mark.parametrize("eliminations", [0, [0, 1, 0]])
def test_csd_with_byes_matches_exact_enumeration(bye: float, eliminations) -> None:
    """An odd field over three rounds: the bye goes to the lowest-ranked model still in play, who does not play."""
    scores = np.array([[3.0, 1.0, 2.0], [2.0, 3.0, 1.0], [1.0, 2.0, 3.0]])
    exact = csd.exact_expected_scores(scores, eliminations, "half", bye_points=bye)
    mc = csd.simulate(scores, list("abc"), n_tournaments=40_000, eliminations=eliminations, bye_points=bye, seed=5)
    assert _close(mc, exact), (exact, mc.expected_score)
    five = np.array([[5.0, 1.0], [4.0, 5.0], [3.0, 4.0], [2.0, 3.0], [1.0, 2.0]])
    exact5 = csd.exact_expected_scores(five, 0, "half", bye_points=bye)
    mc5 = csd.simulate(five, list("abcde"), n_tournaments=40_000, bye_points=bye, seed=6)
    assert _close(mc5, exact5), (exact5, mc5.expected_score)


def test_a_csd_bye_is_worth_nothing_unless_configured(tmp_path: Path) -> None:
    """The CSD paper's bye (an odd model out) scores nothing by default; every match hands out exactly one point."""
    (tmp_path / "x.csv").write_text("model,b\na,1\nb,2\n")
    assert CSDSpec(scores_file=tmp_path / "x.csv").bye_points == 0.0
    assert LiveSpec(match="ipd").bye_points == 1.0  # classical Swiss rounds: a bye is a win
    scores = np.array([[3.0, 1.0], [2.0, 3.0], [1.0, 2.0]])
    res = csd.simulate(scores, list("abc"), n_tournaments=2000, seed=1)
    assert res.expected_score.sum() == pytest.approx(2 * 1)  # two rounds, one match each
    assert csd.exact_expected_scores(scores).sum() == pytest.approx(2.0)
    with_bye = csd.simulate(scores, list("abc"), n_tournaments=2000, bye_points=1.0, seed=1)
    assert with_bye.expected_score.sum() == pytest.approx(2 * 2)


@pytest.mark.parametrize("ties", ["half", "coin"])
def test_csd_per_round_means_match_exact_enumeration_of_the_first_rounds(ties: str) -> None:
    scores = np.array([[3.0, 1.0, 2.0], [2.0, 2.0, 1.0], [1.0, 3.0, 3.0], [0.0, 2.0, 2.5]])
    mc = csd.simulate(scores, list("abcd"), n_tournaments=40_000, ties=ties, seed=3)
    for r in range(3):
        exact = csd.exact_expected_scores(scores[:, : r + 1], 0, ties)
        assert np.all(np.abs(mc.round_means[r] - exact) <= 0.03), (r, mc.round_means[r], exact)
    assert mc.round_means[-1] == pytest.approx(mc.expected_score)
    assert mc.round_means.sum(1) == pytest.approx([2.0, 4.0, 6.0])  # two matches a round, one point each


def test_csd_rounds_played_and_top_share() -> None:
    scores = np.array([[9.0, 9.0, 9.0], [5.0, 1.0, 6.0], [4.0, 7.0, 2.0], [1.0, 2.0, 3.0]])
    res = csd.simulate(scores, list("abcd"), n_tournaments=5000, eliminations=[1, 1, 0], seed=2)
    # 4 models play round 1, 3 play round 2, 2 play round 3: 9 model-rounds per tournament
    assert res.rounds_survived.sum() == pytest.approx(9.0)
    assert res.rounds_survived[0] == 3.0 and res.expected_score[0] == 3.0  # "a" beats everyone, never eliminated
    assert res.win_share[0] == 1.0 and res.win_share[1:].sum() == 0.0
    flat = csd.simulate(np.ones((4, 2)), list("abcd"), n_tournaments=500, seed=0)
    assert flat.win_share == pytest.approx(np.ones(4))  # all tie on top: each shares the top score
    assert flat.rounds_survived == pytest.approx(np.full(4, 2.0)) and flat.std_error == pytest.approx(np.zeros(4))
    assert flat.n_tournaments == 500 and flat.models == tuple("abcd")


def test_csd_standard_error_is_that_of_the_mean() -> None:
    """Two models, one benchmark, a tie decided by a coin: S is 0 or 1 with probability 1/2, so SE = 0.5 / sqrt(N)."""
    n = 40_000
    res = csd.simulate(np.array([[1.0], [1.0]]), ["a", "b"], n_tournaments=n, ties="coin", seed=4, chunk=7_000)
    assert res.std_error == pytest.approx(np.full(2, 0.5 / math.sqrt(n)), rel=0.02)
    assert res.expected_score.sum() == 1.0 and abs(res.expected_score[0] - 0.5) < 4 * 0.5 / math.sqrt(n)
    half = csd.simulate(np.array([[1.0], [1.0]]), ["a", "b"], n_tournaments=100, ties="half", seed=4)
    assert half.expected_score.tolist() == [0.5, 0.5] and half.std_error.tolist() == [0.0, 0.0]


def test_csd_result_table_ranks_by_expected_score() -> None:
    res = csd.CSDResult(("x", "y", "z", "w"), np.array([1.0, 3.0, 1.0, 2.0]), np.array([0.1, 0.2, 0.3, 0.4]),
                        np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 0.0, 0.0]), 10, np.zeros((1, 4)))
    t = res.table()
    assert t["model"].tolist() == ["y", "w", "x", "z"] and t["rank"].tolist() == [1, 2, 3, 3]
    assert t.columns.tolist() == ["model", "expected_score", "std_error", "rounds_played", "top_share", "rank"]
    assert t.set_index("model").loc["w"].tolist() == [2.0, 0.4, 4.0, 0.0, 2]


@pytest.mark.parametrize(("eliminations", "rounds", "models", "expected"), [
    (0, 3, 4, [0, 0, 0]), (1, 3, 4, [1, 1, 1]), (2, 3, 4, [2, 1, 0]), ([0, 5, 1], 3, 4, [0, 3, 0]), ([1, 0], 2, 2, [1, 0])])
def test_eliminations_schedule(eliminations, rounds: int, models: int, expected: list[int]) -> None:
    assert csd.eliminations_schedule(eliminations, rounds, models).tolist() == expected


def test_csd_input_errors() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        csd.eliminations_schedule([1, -1], 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        csd.simulate(np.ones(3), list("abc"))
    with pytest.raises(ValueError, match="2 model names for 3 rows"):
        csd.simulate(np.ones((3, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="at least 2 models"):
        csd.simulate(np.ones((1, 2)), ["a"])
    with pytest.raises(ValueError, match=r"missing scores \(model, benchmark index\): \[\('b', 1\)\]"):
        csd.simulate(np.array([[1.0, 2.0], [1.0, np.nan]]), ["a", "b"])
    with pytest.raises(ValueError, match="ties"):
        csd.simulate(np.ones((2, 2)), ["a", "b"], ties="draw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 6"):
        csd.exact_expected_scores(np.ones((7, 1)))


def test_failure_sensitivity_by_hand() -> None:
    scores = np.array([[9.0, 9.0, 1.0], [5.0, 5.0, 5.0], [1.0, 1.0, 9.0]])
    df = csd.failure_sensitivity(scores, ["spec", "gen", "late"], [0, 1], n_tournaments=3000, seed=0)
    assert len(df) == 6 and set(df["T"]) == {0, 1}
    cv = df.drop_duplicates("model").set_index("model")["score_cv"]
    assert cv["gen"] == 0.0 and cv["spec"] == pytest.approx(np.std([9, 9, 1]) / np.mean([9, 9, 1]))
    for model, g in df.groupby("model"):
        base = g[g["T"] == 0]["expected_score"].item()
        assert g["es_change"].tolist() == pytest.approx((g["expected_score"] - base).tolist())
        assert g["rank_range"].nunique() == 1 and g["rank_range"].iloc[0] == g["rank"].max() - g["rank"].min(), model
    direct = csd.simulate(scores, ["spec", "gen", "late"], 3000, eliminations=1, seed=0).expected_score
    assert df[df["T"] == 1].set_index("model").loc[["spec", "gen", "late"], "expected_score"].tolist() == pytest.approx(direct.tolist())


def _csd_world(tmp_path: Path, n: int, steps: int, **spec) -> CSDWorld:
    table = tmp_path / "scores.csv"
    table.write_text("model,x,y\na,3,1\nb,2,3\nc,1,2\n")
    cfg = TournamentConfig(mode="csd", csd={"scores_file": table, "n_tournaments": n, "sensitivity": [], **spec})
    return CSDWorld(cfg, steps=steps, seed=11)


def test_csd_world_combines_its_batches_exactly(tmp_path: Path) -> None:
    w = _csd_world(tmp_path, n=10, steps=3, ties="coin", bye_points=0.5)
    sizes, means, ses = [], [], []
    for step in range(3):
        ctx = StepContext(step, float(step), make_rng(0, "w"), 0)
        w.apply(ctx, "simulate", [])
        n = 10 // 3 + (1 if step < 10 % 3 else 0)
        r = csd.simulate(w.scores, w.models, n, 0, "coin", 0.5, seed=int(make_rng(11, "csd", step).integers(2**63)))
        sizes.append(n), means.append(r.expected_score), ses.append(r.std_error)
        m = {(x.metric, x.agent_id): x.value for x in ctx.metrics}
        assert m[("tournaments", None)] == sum(sizes)
    assert sizes == [4, 3, 3]
    # pooled mean and unbiased variance of all 10 tournaments from the batches' means and SEs
    n_all = sum(sizes)
    total = sum(k * mu for k, mu in zip(sizes, means, strict=True))
    sq = sum((se**2 * k) * (k - 1) + k * mu**2 for k, mu, se in zip(sizes, means, ses, strict=True))
    mean = total / n_all
    var = (sq - n_all * mean**2) / (n_all - 1)
    assert [m[("expected_score", x)] for x in w.models] == pytest.approx(mean.tolist())
    assert [m[("std_error", x)] for x in w.models] == pytest.approx(np.sqrt(np.maximum(var, 0) / n_all).tolist())
    state = json.loads(json.dumps(w.get_state()))
    w2 = _csd_world(tmp_path, n=10, steps=3)
    w2.set_state(state)
    assert w2.done == 10 and w2.sum.tolist() == w.sum.tolist() and w2.sum_sq.tolist() == w.sum_sq.tolist()
    assert [a.agent_id for a in w.agents()] == ["a", "b", "c"] and w.agents()[1].persona == {"benchmarks": {"x": 2.0, "y": 3.0}}


def test_csd_world_runs_the_sweep_on_its_last_step(tmp_path: Path) -> None:
    w = _csd_world(tmp_path, n=200, steps=2, ties="coin", bye_points=0.5)
    w.spec = w.spec.model_copy(update={"sensitivity": [0, 1], "sensitivity_tournaments": 300})
    first = StepContext(0, 0.0, make_rng(0, "w"), 0)
    w.apply(first, "simulate", [])
    assert first.events == []
    last = StepContext(1, 1.0, make_rng(0, "w"), 0)
    w.apply(last, "simulate", [])
    rows = [(e.agent_id, e.action, json.loads(e.payload)) for e in last.events]
    assert len(rows) == 6 and {r[1] for r in rows} == {"sensitivity"}
    sweep = csd.failure_sensitivity(w.scores, w.models, [0, 1], 300, seed=int(make_rng(11, "sensitivity").integers(2**63)),
                                    ties="coin", bye_points=0.5)
    got = {(a, p["T"]): p["expected_score"] for a, _, p in rows}
    assert got == {(r.model, int(r.T)): pytest.approx(float(r.expected_score)) for r in sweep.itertuples()}
    assert set(rows[0][2]) == {"T", "expected_score", "std_error", "rank", "rank_range", "score_cv"}


# -- Swiss pairing by hand ---------------------------------------------------------------------------------------------
def test_pairing_by_hand() -> None:
    score = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0, "e": 0.0}
    assert swiss_pairing(score, set(), set()) == ([("a", "b"), ("c", "d")], "e")
    # equal scores: `order` decides the ranking, pairs listed top first, each higher-ranked player first
    flat = dict.fromkeys("abcd", 1.0)
    assert swiss_pairing(flat, set(), set(), order=list("dcba")) == ([("d", "c"), ("b", "a")], None)
    assert swiss_pairing(flat, set(), set()) == ([("a", "b"), ("c", "d")], None)
    # the bye goes to the lowest-ranked player who has not had one
    three = {"x": 1.0, "y": 0.5, "z": 0.0}
    assert swiss_pairing(three, set(), {"z"}) == ([("x", "z")], "y")  # not the leader, though x-z is a wider pairing
    assert swiss_pairing(three, set(), {"x", "y", "z"})[1] == "z"  # everyone had one: the lowest again
    assert swiss_pairing({"solo": 0.0}, set(), set()) == ([], "solo") and swiss_pairing({}, set(), set()) == ([], None)
    # a rematch only when no pairing avoids it
    two = {"a": 1.0, "b": 0.0}
    assert swiss_pairing(two, {frozenset("ab")}, set()) == ([("a", "b")], None)


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]), min_size=2, max_size=8), data=st.data())
def test_pairs_are_in_ranking_order_and_the_bye_goes_to_the_lowest_eligible(scores: list[float], data) -> None:
    names = [f"p{i}" for i in range(len(scores))]
    score = dict(zip(names, scores, strict=True))
    had_bye = set(data.draw(st.lists(st.sampled_from(names), unique=True)))
    rank = {p: i for i, p in enumerate(sorted(names, key=lambda p: (-score[p], names.index(p))))}
    pairs, bye = swiss_pairing(score, set(), had_bye, order=names)
    assert all(rank[a] < rank[b] for a, b in pairs)
    assert [rank[a] for a, _ in pairs] == sorted(rank[a] for a, _ in pairs)
    eligible = [p for p in names if p not in had_bye] or names
    if bye is not None:
        assert bye in eligible and score[bye] == min(score[p] for p in eligible)
    # with equal scores everywhere the ranking decides: neighbours pair, the last eligible one has the bye
    if len(set(scores)) == 1 and not had_bye:
        assert pairs == [(names[i], names[i + 1]) for i in range(0, len(names) - 1, 2)]
        assert bye == (names[-1] if len(names) % 2 else None)


# -- live Swiss rounds ---------------------------------------------------------------------------------------------------
def _live(match: str, n: int, **spec) -> LiveWorld:
    items = [{"question": f"q{i}", "answer": str(i)} for i in range(3)]
    live = {"match": match, "items": items, **({"judge": "j"} if match == "judge" else {}), **spec}
    cfg = TournamentConfig(mode="live", live=live, participants=[{"name": f"p{i}", "model": "m"} for i in range(n)])
    return LiveWorld(cfg, steps=4)


def _round(w: LiveWorld, step: int, answer) -> StepContext:
    """One round; `answer(obs)` gives each observation's decision action."""
    ctx = StepContext(step, float(step + 1), make_rng(0, "w"), 1000 * step)
    for phase in w.phases:
        ctx.phase = phase
        obs = w.observe(ctx, phase)
        w.apply(ctx, phase, [Decision(o.agent_id, answer(o), "", True, f"r{i}", 1) for i, o in enumerate(obs)])
    return ctx


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 7), bye=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 1000))
def test_swiss_rounds_conserve_points_and_the_bye_goes_to_the_unpaired(n: int, bye: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = _live("benchmark", n, bye_points=bye)
    total = 0.0
    for step in range(3):
        before = dict(w.score)
        ctx = _round(w, step, lambda o: Answer(answer=str(o.data.item.answer) if rng.random() < 0.5 else "wrong"))
        paired = [p for ab in w.pairs for p in ab]
        assert len(paired) == len(set(paired)) == n - (n % 2)
        byes = [e for e in ctx.events if e.action == "bye"]
        if n % 2:
            [b] = byes
            assert b.agent_id not in paired and json.loads(b.payload) == {"points": bye} and b.agent_id in w.had_bye
            assert w.score[b.agent_id] - before[b.agent_id] in (bye,)  # the bye's points, and nothing else
        else:
            assert byes == []
        total += len(w.pairs) + bye * len(byes)
        assert sum(w.score.values()) == pytest.approx(total)  # every match hands out exactly one point
        matches = [e for e in ctx.events if e.action == "match"]
        assert len(matches) == len(w.pairs) and all(json.loads(e.payload)["round"] == step + 1 for e in matches)
        m = {(x.metric, x.agent_id): x.value for x in ctx.metrics}
        assert m[("matches", None)] == len(w.pairs) and all(m[("points", p)] == w.score[p] for p in w.names)
    assert len(w.played) == len({frozenset((a, b)) for a, b, _ in w.results}) and len(w.results) == 3 * (n // 2)


def test_a_benchmark_round_by_hand() -> None:
    w = _live("benchmark", 4)
    right = {"p0": True, "p1": False, "p2": True, "p3": True}
    ctx = _round(w, 0, lambda o: Answer(answer=o.data.item.answer if right[o.agent_id] else "nope"))
    assert w.pairs == [("p0", "p1"), ("p2", "p3")]
    assert w.score == {"p0": 1.0, "p1": 0.0, "p2": 0.5, "p3": 0.5}
    answers = {e.agent_id: json.loads(e.payload) for e in ctx.events if e.action == "answer"}
    assert answers["p1"] == {"answer": "nope", "correct": False} and answers["p0"] == {"answer": "0", "correct": True}
    matches = [(e.agent_id, e.target, json.loads(e.payload)) for e in ctx.events if e.action == "match"]
    assert matches == [("p0", "p1", {"score_a": 1.0, "round": 1}), ("p2", "p3", {"score_a": 0.5, "round": 1})]
    # an invalid answer is an empty, wrong one
    w2 = _live("benchmark", 2)
    ctx2 = StepContext(0, 1.0, make_rng(0, "w"), 0)
    obs = w2.observe(ctx2, "answer")
    w2.apply(ctx2, "answer", [Decision(obs[0].agent_id, None, "junk", False, "r", 3, "bad"),
                              Decision(obs[1].agent_id, Answer(answer="0"), "", True, "r", 1)])
    assert w2.score == {"p0": 0.0, "p1": 1.0}


def test_a_prisoners_dilemma_match_by_hand() -> None:
    w = _live("ipd", 2, ipd_turns=3, payoffs={"T": 5, "R": 3, "P": 1, "S": 0})
    moves = {"p0": iter("CDD"), "p1": iter("CCD")}
    ctx = _round(w, 0, lambda o: Move(move=next(moves[o.agent_id])))
    # C/C 3-3, D/C 5-0, D/D 1-1: p0 has 9, p1 has 4
    [m] = [json.loads(e.payload) for e in ctx.events if e.action == "match"]
    assert m == {"score_a": 1.0, "round": 1, "payoff_a": 9.0, "payoff_b": 4.0}
    assert w.score == {"p0": 1.0, "p1": 0.0}
    assert [json.loads(e.payload)["move"] for e in ctx.events if e.action == "move"] == list("CCDCDD")
    draw = _live("ipd", 2, ipd_turns=2)
    _round(draw, 0, lambda o: Move(move="D"))
    assert draw.score == {"p0": 0.5, "p1": 0.5}


@pytest.mark.parametrize(("ab", "ba", "score_a"), [("A", "B", 1.0), ("B", "A", 0.0), ("A", "A", 0.5), ("B", "B", 0.5),
                                                   ("tie", "B", 0.5), ("A", "tie", 0.5)])
def test_a_judged_match_needs_the_same_winner_in_both_orders(ab: str, ba: str, score_a: float) -> None:
    w = _live("judge", 2)
    verdicts = iter([ab, ba])
    ctx = _round(w, 0, lambda o: Verdict(winner=next(verdicts)) if o.agent_id == JUDGE_ID else Answer(answer=o.agent_id))
    assert w.score == {"p0": score_a, "p1": 1.0 - score_a}
    [v] = [json.loads(e.payload) for e in ctx.events if e.action == "verdict"]
    assert v == {"opponent": "p1", "a_first": ab, "b_first": ba}
    judge_obs = [o for o in w.observe(StepContext(1, 2.0, make_rng(0, "w"), 0), "answer")]
    assert len(judge_obs) == 2


def test_live_state_round_trip_continues_the_tournament() -> None:
    w = _live("benchmark", 5)
    _round(w, 0, lambda o: Answer(answer=o.data.item.answer if o.agent_id in ("p0", "p3") else "x"))
    state = json.loads(json.dumps(w.get_state()))
    w2 = _live("benchmark", 5)
    w2.set_state(state)
    assert w2.score == w.score and w2.played == w.played and w2.had_bye == w.had_bye and w2.results == w.results
    a = _round(w, 1, lambda o: Answer(answer="x"))
    b = _round(w2, 1, lambda o: Answer(answer="x"))
    assert w.pairs == w2.pairs and [e.payload for e in a.events] == [e.payload for e in b.events]


# -- ratings and standings by hand -----------------------------------------------------------------------------------
def test_elo_by_hand() -> None:
    m = pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "score_a": [1.0, 0.5]})
    e = elo(m)
    # match 1: both 1500, expected 0.5: x +16, y -16; match 2: y (1484) vs x (1516), draw
    ey = 1 / (1 + 10 ** ((1516 - 1484) / 400))
    assert e["y"] == pytest.approx(1484 + 32 * (0.5 - ey)) and e["x"] == pytest.approx(1516 - 32 * (0.5 - ey))
    assert e.index.tolist() == ["x", "y"] and e.name == "elo"
    custom = elo(m.iloc[:1], k=10, initial=1000, scale=200)
    assert custom.to_dict() == {"x": 1005.0, "y": 995.0}


def test_points_and_tiebreaks_by_hand() -> None:
    m = pd.DataFrame({"a": ["x", "y", "z"], "b": ["y", "z", "x"], "score_a": [1.0, 0.5, 0.0]})
    assert points(m).to_dict() == {"x": 2.0, "y": 0.5, "z": 0.5}
    tb = tiebreaks(list(m.itertuples(index=False, name=None)), {"x": 2.0, "y": 0.5, "z": 0.5, "w": 1.0})
    assert tb["x"] == {"buchholz": 1.0, "sonneborn_berger": 0.5 + 0.5}
    assert tb["y"] == {"buchholz": 2.5, "sonneborn_berger": 0.25}
    assert tb["z"] == {"buchholz": 2.5, "sonneborn_berger": 0.25}
    assert tb["w"] == {"buchholz": 0.0, "sonneborn_berger": 0.0}  # a bye alone counts for nothing
    with pytest.raises(TableError, match="'q'"):
        tiebreaks([("q", "x", 1.0)], {"x": 1.0})


def test_rank_agreement_by_hand() -> None:
    a = pd.Series({"p": 3.0, "q": 2.0, "r": 1.0, "s": 0.0})
    b = pd.Series({"p": 1.0, "q": 2.0, "r": 3.0, "s": 4.0, "extra": 9.0})
    c = pd.Series({"p": 1.0, "q": 1.0, "r": 1.0, "s": 1.0})
    t = rank_agreement({"a": a, "b": b, "c": c}).set_index(["method_a", "method_b"])
    assert t.loc[("a", "b")].tolist() == [4, -1.0, -1.0]
    assert t.loc[("a", "c"), "players"] == 4 and math.isnan(t.loc[("a", "c"), "kendall_tau"])
    notes = notes_of(rank_agreement({"a": a, "c": c}))
    assert notes == ["a vs c: undefined (NaN): c rate(s) every player the same"]
    few = rank_agreement({"a": a[["p"]], "b": b})
    assert few["players"].item() == 1 and notes_of(few) == ["a vs b: undefined (NaN): fewer than 2 common players (1)"]
    partial = rank_agreement({"a": a, "d": pd.Series({"p": 0.0, "q": 2.0, "r": 1.0, "s": 3.0})})
    # one concordant pair (q, r) of six: tau = (1 - 5) / 6; rank differences 3, 0, 0, -3: rho = 1 - 6 * 18 / (4 * 15)
    assert partial["kendall_tau"].item() == pytest.approx(-2 / 3) and partial["spearman_rho"].item() == pytest.approx(-0.8)


def test_bradley_terry_notes_and_order() -> None:
    m = pd.DataFrame({"a": ["x", "x", "y", "z"], "b": ["y", "z", "z", "w"], "score_a": [1.0, 1.0, 0.5, 1.0]})
    bt = bradley_terry(m)
    assert bt["player"].iloc[0] == "x" and bt["player"].iloc[-1] == "w" and bt["strength"].is_monotonic_decreasing
    assert bt["strength"].sum() == pytest.approx(0.0, abs=1e-9)
    assert notes_of(bt) == [
        "x won every game: the maximum-likelihood strength is infinite; the value shown is set by the ridge (0.0001), not by the data",
        "w lost every game: the maximum-likelihood strength is infinite; the value shown is set by the ridge (0.0001), not by the data"]
    even = bradley_terry(pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "score_a": [1.0, 1.0]}), bootstrap=100)
    assert even["strength"].tolist() == pytest.approx([0.0, 0.0], abs=1e-9) and notes_of(even) == []
    assert (even["ci_low"] < 0).all() and (even["ci_high"] > 0).all()
    one = bradley_terry(m.iloc[:1], bootstrap=20)
    assert one[["ci_low", "ci_high"]].isna().all().all() and any("undefined" in n for n in notes_of(one))
    # a draw is half a win each way: two players who only drew are equal
    drawn = bradley_terry(pd.DataFrame({"a": ["x", "x"], "b": ["y", "y"], "score_a": [0.5, 0.5]}))
    assert drawn["strength"].tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    # P(x beats y) = sigmoid(tx - ty): 3 wins in 4 gives log(3) apart
    three = bradley_terry(pd.DataFrame({"a": ["x"] * 4, "b": ["y"] * 4, "score_a": [1.0, 1.0, 1.0, 0.0]}), ridge=1e-9)
    s = three.set_index("player")["strength"]
    assert s["x"] - s["y"] == pytest.approx(math.log(3), abs=1e-6)


def test_rating_tables_join_every_method() -> None:
    m = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["y", "z", "x", "z"], "score_a": [1.0, 1.0, 0.5, 0.0]})
    t = rating_tables(m, bootstrap=30)
    r = t["ratings"].set_index("player")
    assert r.columns.tolist() == ["strength", "ci_low", "ci_high", "elo", "match_points"]
    assert r["match_points"].to_dict() == points(m).to_dict() and r["elo"].to_dict() == elo(m).to_dict()
    assert r["strength"].to_dict() == bradley_terry(m).set_index("player")["strength"].to_dict()
    agree = t["rank_agreement"]
    assert list(zip(agree["method_a"], agree["method_b"], strict=True)) == [
        ("bradley_terry", "elo"), ("bradley_terry", "match_points"), ("elo", "match_points")]


def _events(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["action", "agent_id", "target", "payload"])


def test_standings_with_byes_and_tiebreaks_by_hand() -> None:
    ev = _events([
        ("bye", "c", None, json.dumps({"points": 1.0})),
        ("match", "a", "b", json.dumps({"round": 1, "score_a": 1.0})),
        ("answer", "a", None, json.dumps({"answer": "x"})),
        ("match", "c", "a", json.dumps({"round": 2, "score_a": 0.5})),
        ("bye", "b", None, json.dumps({"points": 1.0})),
    ])
    assert match_log(ev).to_dict("records") == [{"round": 1, "a": "a", "b": "b", "score_a": 1.0},
                                               {"round": 2, "a": "c", "b": "a", "score_a": 0.5}]
    s = standings(ev)
    assert s.to_dict("records") == [
        {"place": 1, "player": "a", "points": 1.5, "buchholz": 1.0 + 1.5, "sonneborn_berger": 1.0 * 1.0 + 0.5 * 1.5},
        {"place": 2, "player": "c", "points": 1.5, "buchholz": 1.5, "sonneborn_berger": 0.75},
        {"place": 3, "player": "b", "points": 1.0, "buchholz": 1.5, "sonneborn_berger": 0.0},
    ]
    assert standings(ev.iloc[[2]]).empty and notes_of(standings(ev.iloc[[2]])) == ["no matches or byes"]
    with pytest.raises(TableError, match="row 1: payload lacks"):
        match_log(_events([("answer", "a", None, None), ("match", "a", "b", json.dumps({"round": 1}))]))
    with pytest.raises(TableError, match="score_a must be a number"):
        match_log(_events([("match", "a", "b", json.dumps({"round": 1, "score_a": "x"}))]))


def test_tournament_tables_of_a_csd_run(tmp_path: Path) -> None:
    metrics = [{"step": s, "metric": "expected_score", "value": v, "agent_id": a}
               for s, vals in ((0, {"a": 9.0, "b": 1.0}), (1, {"a": 1.5, "b": 2.5})) for a, v in vals.items()]
    metrics += [{"step": 1, "metric": "std_error", "value": v, "agent_id": a} for a, v in (("a", 0.1), ("b", 0.2))]
    events = [{"step": 1, "agent_id": "b", "action": "sensitivity", "payload": json.dumps({"T": 1, "expected_score": 2.0})}]
    log = RunLog(write_run_log(tmp_path / "r", events=events, metrics=metrics, spec={"world": {"mode": "csd"}}))
    t = tournament_tables(log)
    assert t["expected_scores"].to_dict("records") == [{"model": "b", "expected_score": 2.5, "std_error": 0.2, "rank": 1},
                                                      {"model": "a", "expected_score": 1.5, "std_error": 0.1, "rank": 2}]
    assert t["sensitivity"].to_dict("records") == [{"model": "b", "T": 1, "expected_score": 2.0}]
    assert set(t) == {"expected_scores", "sensitivity"}
    empty = tournament_tables(RunLog(write_run_log(tmp_path / "e", steps=1, spec={"world": {"mode": "csd"}})))
    assert set(empty) == {"expected_scores"} and empty["expected_scores"].empty


def test_tournament_tables_of_a_live_run(tmp_path: Path) -> None:
    events = [{"step": 0, "agent_id": "x", "action": "match", "target": "y", "payload": json.dumps({"round": 1, "score_a": 1.0})},
              {"step": 1, "agent_id": "y", "action": "match", "target": "x", "payload": json.dumps({"round": 2, "score_a": 0.5})}]
    log = RunLog(write_run_log(tmp_path / "r", events=events, spec={"world": {"mode": "live"}}))
    t = tournament_tables(log, bootstrap=0)
    assert set(t) == {"standings", "ratings", "rank_agreement"}
    assert t["standings"]["player"].tolist() == ["x", "y"] and t["standings"]["points"].tolist() == [1.5, 0.5]
    idle = tournament_tables(RunLog(write_run_log(tmp_path / "i", steps=1, spec={"world": {"mode": "live"}})))
    assert set(idle) == {"standings", "ratings", "rank_agreement"} and all(df.empty for df in idle.values())
    assert all(notes_of(df) == ["no matches in this run"] for df in idle.values())


@pytest.mark.parametrize(("n", "steps"), [(1, 1), (2, 1), (2, 2), (3, 2), (5, 3)])
def test_csd_world_batches_of_one_or_two_tournaments(tmp_path: Path, n: int, steps: int) -> None:
    """Pooled over batches of any size (one tournament has no spread of its own), the world's E[S] and SE are those
    of all its tournaments at once."""
    w = _csd_world(tmp_path, n=n, steps=steps, ties="coin")
    finals = []
    for step in range(steps):
        ctx = StepContext(step, float(step), make_rng(0, "w"), 0)
        w.apply(ctx, "simulate", [])
        k = n // steps + (1 if step < n % steps else 0)
        if k:
            seed = int(make_rng(11, "csd", step).integers(2**63))
            # one simulated tournament at a time, with the batch's generator: the batch's own final scores
            rng = np.random.default_rng(seed)
            t = csd.eliminations_schedule(0, 2, 3)
            final, _, _ = csd._simulate_chunk(w.scores, t, k, "coin", 0.0, rng)
            finals.append(final)
    allf = np.vstack(finals)
    m = {(x.metric, x.agent_id): x.value for x in ctx.metrics}
    mean = allf.mean(0)
    se = allf.std(0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(3)
    assert [m[("expected_score", x)] for x in w.models] == pytest.approx(mean.tolist())
    assert [m[("std_error", x)] for x in w.models] == pytest.approx(se.tolist(), abs=1e-12)


def test_failure_sensitivity_defaults_and_seed() -> None:
    scores = np.array([[0.2, 0.9, 0.1], [0.5, 0.5, 0.5], [0.9, 0.1, 0.4]])
    models = ["a", "b", "c"]
    base = csd.failure_sensitivity(scores, models, [0, 1])
    assert base.index.tolist() == list(range(6))
    direct = csd.simulate(scores, models, 20_000, eliminations=1, seed=0).expected_score
    assert base[base["T"] == 1].set_index("model").loc[models, "expected_score"].tolist() == pytest.approx(direct.tolist())
    other = csd.failure_sensitivity(scores, models, [1], n_tournaments=500, seed=5, ties="coin")
    want = csd.simulate(scores, models, 500, eliminations=1, seed=5, ties="coin").expected_score
    assert other.set_index("model").loc[models, "expected_score"].tolist() == pytest.approx(want.tolist())
    cv = base.drop_duplicates("model").set_index("model")["score_cv"]
    assert cv["a"] == pytest.approx(np.std([0.2, 0.9, 0.1]) / 0.4) and cv["b"] == 0.0  # a mean below 1 is not floored at 1
    zero = csd.failure_sensitivity(np.array([[0.0, 0.0], [1.0, 0.0]]), ["z", "y"], [0], n_tournaments=10)
    assert zero.set_index("model").loc["z", "score_cv"] == 0.0


def test_score_tables_in_a_chosen_round_order(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("model,x,y,z\na,1,2,3\nb,4,5,6\n")
    models, benches, s = csd.read_score_table(str(f), ["z", "x"])
    assert models == ["a", "b"] and benches == ["z", "x"] and s.tolist() == [[3, 1], [6, 4]]
    from agentsim.scenarios.tournament.swiss import BYE

    assert repr(BYE) == "BYE"


# -- CSD: defaults, chunks and byes off the half-point grid --------------------------------------------------------------
def test_csd_defaults_are_the_documented_ones() -> None:
    scores = np.array([[3.0, 1.0], [2.0, 3.0], [1.0, 2.0], [0.0, 0.0]])
    default = csd.simulate(scores, list("abcd"))
    explicit = csd.simulate(scores, list("abcd"), n_tournaments=100_000, eliminations=0, ties="half", bye_points=0.0, seed=0,
                            chunk=50_000)
    assert default.n_tournaments == 100_000 and default.expected_score.tolist() == explicit.expected_score.tolist()
    assert default.win_share.tolist() == explicit.win_share.tolist()
    assert csd.exact_expected_scores(scores).tolist() == csd.exact_expected_scores(scores, 0, "half", 0.0).tolist()
    six = csd.exact_expected_scores(np.arange(6, dtype=float)[:, None])  # six models is still enumerable
    assert six.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_csd_chunks_add_up() -> None:
    """Counts over several chunks are summed, not replaced by the last chunk's."""
    scores = np.array([[9.0, 9.0, 9.0], [5.0, 1.0, 6.0], [4.0, 7.0, 2.0], [1.0, 2.0, 3.0]])
    res = csd.simulate(scores, list("abcd"), n_tournaments=3000, chunk=700, seed=2)
    assert res.rounds_survived.tolist() == [3.0] * 4 and res.win_share[0] == 1.0 and res.expected_score[0] == 3.0
    assert res.round_means[:, 0].tolist() == [1.0, 2.0, 3.0] and res.round_means.sum(1).tolist() == pytest.approx([2.0, 4.0, 6.0])


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 3), m=st.integers(2, 5), seed=st.integers(0, 100), ties=st.sampled_from(["half", "coin"]))
def test_every_tournament_has_a_top_model(k: int, m: int, seed: int, ties: str) -> None:
    scores = np.random.default_rng(seed).integers(0, 3, (m, k)).astype(float)
    res = csd.simulate(scores, [str(i) for i in range(m)], n_tournaments=300, ties=ties, seed=seed)
    assert res.win_share.sum() >= 1.0 - 1e-12 and (res.win_share <= 1.0).all()


@pytest.mark.parametrize("bye", [1 / 3, 0.25, 0.7])
def test_byes_off_the_half_point_grid_match_exact_enumeration(bye: float) -> None:
    scores = np.array([[3.0, 1.0, 2.0], [2.0, 3.0, 1.0], [1.0, 2.0, 3.0]])
    exact = csd.exact_expected_scores(scores, [0, 1, 0], "coin", bye_points=bye)
    mc = csd.simulate(scores, list("abc"), n_tournaments=40_000, eliminations=[0, 1, 0], ties="coin", bye_points=bye, seed=9)
    assert _close(mc, exact), (exact, mc.expected_score)


def test_csd_table_ranks_ties_at_their_best_place() -> None:
    res = csd.CSDResult(("x", "y", "z", "w"), np.array([2.0, 2.0, 2.0, 5.0]), np.zeros(4), np.zeros(4), np.zeros(4), 1, np.zeros((1, 4)))
    t = res.table()
    assert t["rank"].tolist() == [1, 2, 2, 2] and t["rank"].dtype.kind == "i" and t["model"].tolist() == ["w", "x", "y", "z"]
    with pytest.raises(ValueError, match=r"\('m4', 0\)\]$"):  # at most five named
        csd.simulate(np.full((7, 1), np.nan), [f"m{i}" for i in range(7)])


# -- Swiss pairing: rematches -----------------------------------------------------------------------------------------------
def test_a_legal_pairing_is_found_past_a_rematch() -> None:
    # a and b met; a legal pairing (a-c, b-d) exists even though a-b has equal scores
    pairs, bye = swiss_pairing({"a": 2.0, "b": 2.0, "c": 0.0, "d": 0.0}, {frozenset("ab")}, set())
    assert {frozenset(p) for p in pairs} in ({frozenset("ac"), frozenset("bd")}, {frozenset("ad"), frozenset("bc")}) and bye is None


def test_forced_rematches_weigh_half_a_full_pairing() -> None:
    """No legal pairing: every pairing repeats a game. Each repeat costs half the base weight, 10 (n + 1)^2 / 2 =
    125 for four players, against 100 per point of score difference: two repeats between equal scores (250) beat one
    repeat across a point (125 + 200)."""
    score = {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0}
    played = {frozenset("ab"), frozenset("ac"), frozenset("ad"), frozenset("bc")}
    pairs, _ = swiss_pairing(score, played, set())
    assert {frozenset(p) for p in pairs} == {frozenset("ad"), frozenset("bc")}


def test_forced_rematches_are_kept_few() -> None:
    """No legal pairing either: a-b/c-d repeats two games at no score cost (2 x 125), a-c/b-d and a-d/b-c repeat one
    across half a point each (125 + 2 x 50): one repeat is the cheaper."""
    score = {"a": 0.5, "b": 0.5, "c": 0.0, "d": 0.0}
    played = {frozenset("ab"), frozenset("cd"), frozenset("ac"), frozenset("ad")}
    pairs, _ = swiss_pairing(score, played, set())
    assert sum(frozenset(p) in played for p in pairs) == 1


# -- live rounds: invalid answers, missing answers, every event's fields ------------------------------------------------------
def test_live_events_name_who_did_what() -> None:
    w = _live("ipd", 2, ipd_turns=1)
    ctx = _round(w, 0, lambda o: Move(move="D" if o.agent_id == "p0" else "C"))
    moves = [(e.agent_id, e.target, json.loads(e.payload), e.request_id) for e in ctx.events if e.action == "move"]
    assert moves == [("p0", "p1", {"move": "D"}, "r0"), ("p1", "p0", {"move": "C"}, "r1")]
    [m] = [e for e in ctx.events if e.action == "match"]
    assert (m.agent_id, m.target) == ("p0", "p1")
    j = _live("judge", 2)
    verdicts = iter(["A", "B"])
    jctx = _round(j, 0, lambda o: Verdict(winner=next(verdicts)) if o.agent_id == JUDGE_ID else Answer(answer="x"))
    [v] = [e for e in jctx.events if e.action == "verdict"]
    assert (v.agent_id, v.target) == (JUDGE_ID, "p0")
    answers = [(e.agent_id, e.request_id) for e in jctx.events if e.action == "answer"]
    assert answers == [("p0", "r0"), ("p1", "r1")]


def test_invalid_live_answers_count_as_nothing_said() -> None:
    # an invalid move is cooperation; an invalid verdict a tie; an invalid answer an empty one, even if parsed
    w = _live("ipd", 2, ipd_turns=2)
    ctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    for phase in w.phases:
        obs = w.observe(ctx, phase)
        w.apply(ctx, phase, [Decision(o.agent_id, Move(move="D"), "", o.agent_id == "p0", "r", 1) for o in obs])
    assert [json.loads(e.payload)["move"] for e in ctx.events if e.action == "move"] == ["D", "C", "D", "C"]
    assert w.score == {"p0": 1.0, "p1": 0.0}
    j = _live("judge", 4)
    jctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    obs = j.observe(jctx, "answer")
    j.apply(jctx, "answer", [Decision(o.agent_id, Answer(answer="x"), "", True, "r", 1) for o in obs])
    obs = j.observe(jctx, "judge")
    j.apply(jctx, "judge", [Decision(o.agent_id, Verdict(winner="A" if i % 2 == 0 else "B"), "", i >= 2, "r", 1)
                             for i, o in enumerate(obs)])
    assert [json.loads(e.payload)["a_first"] for e in jctx.events if e.action == "verdict"] == ["tie", "A"]
    assert j.score == {"p0": 0.5, "p1": 0.5, "p2": 1.0, "p3": 0.0}
    b = _live("benchmark", 2)
    bctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    obs = b.observe(bctx, "answer")
    b.apply(bctx, "answer", [Decision(obs[0].agent_id, Answer(answer="0"), "", False, "r", 3, "x"),
                             Decision(obs[1].agent_id, Answer(answer="0"), "", True, "r", 1)])
    assert [json.loads(e.payload) for e in bctx.events if e.action == "answer"] == [
        {"answer": "", "correct": False}, {"answer": "0", "correct": True}]


def test_live_scorers_and_missing_answers() -> None:
    w = _live("benchmark", 3, scorer="numeric", items=[{"question": "2+2?", "answer": "4"}])
    ctx = _round(w, 0, lambda o: Answer(answer="It is 4." if o.agent_id == "p0" else "five"))
    assert [json.loads(e.payload)["correct"] for e in ctx.events if e.action == "answer"] == [True, False]
    assert w.score == {"p0": 1.0, "p1": 0.0, "p2": 1.0}  # p2 had the bye (classical: a win)
    c = _live("benchmark", 2, scorer="contains", items=[{"question": "q", "answer": "Paris"}])
    _round(c, 0, lambda o: Answer(answer="The capital is paris." if o.agent_id == "p1" else "Lyon"))
    assert c.score == {"p0": 0.0, "p1": 1.0}
    # a participant who gave no answer at all: nothing said, so wrong, whatever the reference
    x = _live("benchmark", 2, items=[{"question": "q", "answer": "xxxx"}])
    xctx = StepContext(0, 1.0, make_rng(0, "w"), 0)
    obs = x.observe(xctx, "answer")
    x.apply(xctx, "answer", [Decision(obs[1].agent_id, Answer(answer="xxxx"), "", True, "r", 1)])
    assert x.score == {"p0": 0.0, "p1": 1.0}


def test_live_pairing_follows_the_participants_order() -> None:
    cfg = TournamentConfig(mode="live", live={"match": "ipd", "ipd_turns": 1},
                           participants=[{"name": n, "model": "m"} for n in ("zed", "amy", "kim", "bob")])
    w = LiveWorld(cfg, steps=2)
    _round(w, 0, lambda o: Move(move="C"))
    assert w.pairs == [("zed", "amy"), ("kim", "bob")]  # equal scores: the order given, not the alphabet


@pytest.mark.parametrize(("scorer", "answer", "reference", "correct"), [
    ("numeric", "1,000 units", "1000", True), ("numeric", "about 3.14159", "3.14159", True), ("numeric", "3.1416", "3.14159", False),
    ("numeric", "-2", "-2", True), ("numeric", "2", "-2", False), ("numeric", "none", "2", False), ("numeric", "7", "seven", False),
    ("exact", "New  York!", "new york", True), ("exact", "", "", False), ("contains", "anything", "", False),
    ("exact", "!!!", "???", False), ("contains", "a b c", "b c", True),
])
def test_scorers_by_hand(scorer: str, answer: str, reference: str, correct: bool) -> None:
    from agentsim.scenarios.tournament.world import _normalise, score_answer

    assert score_answer(scorer, answer, reference) is correct
    assert _normalise("  New_York,  NY ") == "new york ny"


@pytest.mark.parametrize(("a_moves", "b_moves", "payoffs", "score_a"), [
    ("CDDC", "CCDD", (9.0, 9.0), 0.5),  # every pair of moves once: 3 + 5 + 1 + 0 each
    ("C", "D", (0.0, 5.0), 0.0),  # the sucker's payoff
    ("DD", "CD", (6.0, 1.0), 1.0),
])
def test_prisoners_dilemma_payoffs_by_hand(a_moves: str, b_moves: str, payoffs: tuple, score_a: float) -> None:
    w = _live("ipd", 2, ipd_turns=len(a_moves))
    moves = {"p0": iter(a_moves), "p1": iter(b_moves)}
    ctx = _round(w, 0, lambda o: Move(move=next(moves[o.agent_id])))
    [m] = [json.loads(e.payload) for e in ctx.events if e.action == "match"]
    assert (m["payoff_a"], m["payoff_b"], m["score_a"]) == (*payoffs, score_a)
    assert w.score == {"p0": score_a, "p1": 1.0 - score_a}


def test_empty_tournament_tables_have_the_columns_of_full_ones(tmp_path: Path) -> None:
    """A run killed before its first result gives the tables a complete run gives, with the same columns in the
    same order (a reader concatenating runs must not get misnamed columns), each with a note saying why it is empty."""
    metrics = [{"step": 0, "metric": m, "value": v, "agent_id": a} for a, es, se in (("a", 2.0, 0.1), ("b", 1.0, 0.2))
               for m, v in (("expected_score", es), ("std_error", se))]
    csd_full = tournament_tables(RunLog(write_run_log(tmp_path / "cf", metrics=metrics, spec={"world": {"mode": "csd"}})))
    csd_empty = tournament_tables(RunLog(write_run_log(tmp_path / "ce", steps=1, spec={"world": {"mode": "csd"}})))
    match = [{"step": 0, "agent_id": x, "action": "match", "target": y, "payload": json.dumps({"round": r, "score_a": s})}
             for x, y, r, s in (("x", "y", 1, 1.0), ("y", "z", 2, 0.0), ("z", "x", 3, 0.5))]
    live = RunLog(write_run_log(tmp_path / "lf", events=match, spec={"world": {"mode": "live"}}))
    live_full = tournament_tables(live, bootstrap=50)
    live_empty = tournament_tables(RunLog(write_run_log(tmp_path / "le", steps=1, spec={"world": {"mode": "live"}})))
    for full, empty, why in ((csd_full, csd_empty, "no expected scores in this run"),
                             (live_full, live_empty, "no matches in this run")):
        assert set(empty) == set(full)
        for name in empty:
            assert list(empty[name].columns) == list(full[name].columns), name
            assert empty[name].empty and notes_of(empty[name]) == [why], name
    # the resamples asked for are the ones drawn; ranks are whole numbers
    pd.testing.assert_frame_equal(live_full["ratings"], rating_tables(match_log(live.events), bootstrap=50)["ratings"])
    pd.testing.assert_frame_equal(tournament_tables(live)["ratings"], rating_tables(match_log(live.events))["ratings"])
    assert live_full["ratings"][["ci_low", "ci_high"]].notna().all().all()
    assert csd_full["expected_scores"]["rank"].dtype.kind == "i"


def test_expected_score_ranks_share_the_best_place_on_ties_and_other_metrics_make_no_csd_table(tmp_path: Path) -> None:
    """Ranks by expected score, ties sharing the best place ("min": 1, 1, 3), and only expected_score metrics make
    the expected_scores table: a live run with other metrics has none."""
    metrics = [{"step": 0, "metric": "expected_score", "value": v, "agent_id": a}
               for a, v in (("a", 2.0), ("b", 2.0), ("c", 2.0), ("d", 1.0))]
    t = tournament_tables(RunLog(write_run_log(tmp_path / "c", metrics=metrics, spec={"world": {"mode": "csd"}})))
    assert dict(zip(t["expected_scores"]["model"], t["expected_scores"]["rank"], strict=True)) == {"a": 1, "b": 1, "c": 1, "d": 4}
    other = [{"step": 0, "metric": "answers", "value": 3.0, "agent_id": "x"}]
    live = tournament_tables(RunLog(write_run_log(tmp_path / "l", metrics=other, steps=1, spec={"world": {"mode": "live"}})))
    assert set(live) == {"standings", "ratings", "rank_agreement"}


def _bt_reference(a: list[str], b: list[str], score_a: list[float], players: list[str], ridge: float) -> np.ndarray:
    """Bradley-Terry by a general-purpose optimiser, one match at a time: maximise
    sum over matches of s log sigmoid(ta - tb) + (1 - s) log sigmoid(tb - ta) - ridge |t|^2, centred."""
    from scipy import optimize, special

    idx = {p: i for i, p in enumerate(players)}
    ia, ib, s = np.array([idx[x] for x in a]), np.array([idx[x] for x in b]), np.asarray(score_a, float)

    def minus_loglik(t: np.ndarray) -> float:
        d = t[ia] - t[ib]
        return -float(np.sum(s * special.log_expit(d) + (1 - s) * special.log_expit(-d))) + ridge * float(t @ t)

    t = optimize.minimize(minus_loglik, np.zeros(len(players)), method="BFGS", options={"gtol": 1e-10}).x
    return t - t.mean()


BT_FIELDS = [
    # (a, b, score_a): mixed results; an unbeaten and a winless player (finite only through the ridge); draws
    (["x", "y", "z", "x", "y"], ["y", "z", "x", "z", "x"], [1.0, 1.0, 0.5, 0.0, 0.5]),
    (["x", "x", "z", "y"], ["y", "z", "w", "w"], [1.0, 1.0, 0.5, 1.0]),
    (["p", "q", "r", "p", "s", "q"], ["q", "r", "s", "s", "r", "p"], [0.5, 1.0, 0.0, 1.0, 0.5, 0.0]),
]


@pytest.mark.parametrize("ridge", [1e-4, 0.3])
@pytest.mark.parametrize("field", BT_FIELDS)
def test_bradley_terry_agrees_with_a_general_optimiser(field, ridge: float) -> None:
    """Strengths against scipy's BFGS on the written-out likelihood (Newton's steps, its stopping rule and the
    ridge are the code's; the optimum is not)."""
    a, b, s = field
    players = sorted(set(a) | set(b))
    bt = bradley_terry(pd.DataFrame({"a": a, "b": b, "score_a": s}), ridge=ridge).set_index("player")["strength"]
    assert bt[players].to_numpy() == pytest.approx(_bt_reference(a, b, s, players, ridge), abs=2e-4)


@pytest.mark.parametrize(("confidence", "seed"), [(0.9, 3), (0.5, 11)])
def test_bradley_terry_intervals_agree_with_scipy_fitting_each_resample_alone(confidence: float, seed: int) -> None:
    """The interval against scipy.stats.bootstrap fitting each resample alone by the general optimiser: checks the
    batched fit of all resamples at once, and the resamples, confidence and seed handed to scipy. Twelve matches:
    a resample equal to the whole field (a tie with the estimate, where BCa turns on the last bit) is unlikely."""
    from scipy import stats as sps

    a = ["x", "y", "z", "w", "x", "y", "x", "z", "w", "y", "z", "w"]
    b = ["y", "z", "w", "x", "z", "w", "w", "x", "y", "x", "y", "z"]
    s = [1.0, 0.5, 1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 0.5, 0.0]
    players = sorted(set(a))

    def fit(rows: np.ndarray) -> np.ndarray:
        rows = rows.astype(int)
        return _bt_reference([a[i] for i in rows], [b[i] for i in rows], [s[i] for i in rows], players, 0.05)

    got = bradley_terry(pd.DataFrame({"a": a, "b": b, "score_a": s}), bootstrap=40, confidence=confidence, seed=seed,
                        ridge=0.05).set_index("player")
    want = sps.bootstrap((np.arange(len(s)),), fit, confidence_level=confidence, n_resamples=40, vectorized=False,
                         method="BCa", random_state=np.random.default_rng(seed)).confidence_interval
    assert got.loc[players, "ci_low"].to_numpy() == pytest.approx(want.low, abs=1e-4)
    assert got.loc[players, "ci_high"].to_numpy() == pytest.approx(want.high, abs=1e-4)


_RESULTS = st.lists(st.tuples(st.sampled_from("pqrst"), st.sampled_from("pqrst"), st.sampled_from([0.0, 0.5, 1.0])),
                    max_size=12).map(lambda rs: [r for r in rs if r[0] != r[1]])
_BYES = st.lists(st.tuples(st.sampled_from("pqrstu"), st.sampled_from([0.5, 1.0])), max_size=4)


@settings(max_examples=60, deadline=None)
@given(results=_RESULTS, byes=_BYES)
# q and s tie on points and Buchholz and are split by Sonneborn-Berger against their names' order; u only sat out
@example(results=[("p", "q", 0.0), ("p", "r", 0.0), ("q", "s", 0.0)], byes=[("u", 1.0), ("r", 0.5)])
def test_standings_agree_with_a_plain_python_reference(results, byes) -> None:
    """Points are conserved (a match hands out one point, a bye its points to the player who sat out, also to one
    who never played), Buchholz and Sonneborn-Berger as written in FIDE's handbook (byes count for neither), and
    the order: points, then Buchholz, then Sonneborn-Berger, all descending, then the name."""
    rows = [("match", a, b, json.dumps({"round": i, "score_a": s})) for i, (a, b, s) in enumerate(results)]
    rows += [("bye", who, None, json.dumps({"points": p})) for who, p in byes]
    got = standings(_events(rows))
    pts: dict[str, float] = {}
    for a, b, s in results:
        pts[a], pts[b] = pts.get(a, 0.0) + s, pts.get(b, 0.0) + (1 - s)
    for who, p in byes:
        pts[who] = pts.get(who, 0.0) + p
    if not pts:
        assert got.empty and list(got.columns) == ["place", "player", "points", "buchholz", "sonneborn_berger"]
        return
    buchholz = {p: sum(pts[b] for a, b, _ in results if a == p) + sum(pts[a] for a, b, _ in results if b == p) for p in pts}
    sb = {p: sum(s * pts[b] for a, b, s in results if a == p) + sum((1 - s) * pts[a] for a, b, s in results if b == p)
          for p in pts}
    order = sorted(pts, key=lambda p: (-pts[p], -buchholz[p], -sb[p], p))
    assert list(got.columns) == ["place", "player", "points", "buchholz", "sonneborn_berger"]
    assert got["player"].tolist() == order and got["place"].tolist() == list(range(1, len(order) + 1))
    assert got["points"].tolist() == [pts[p] for p in order]
    assert got["buchholz"].tolist() == pytest.approx([buchholz[p] for p in order])
    assert got["sonneborn_berger"].tolist() == pytest.approx([sb[p] for p in order])
    assert got["points"].sum() == pytest.approx(len(results) + sum(p for _, p in byes))


@pytest.mark.parametrize(("x", "y", "tau"), [
    # two players are enough to rank: they agree (+1) or disagree (-1); a flat rating or one common player is NaN
    ({"p": 1.0, "q": 2.0}, {"p": 5.0, "q": 7.0}, 1.0),
    ({"p": 1.0, "q": 2.0}, {"p": 7.0, "q": 5.0}, -1.0),
    # tau-b with a tie in x: 2 concordant pairs of 3, over sqrt((3 - 1) * 3)
    ({"p": 1.0, "q": 1.0, "r": 2.0}, {"p": 1.0, "q": 2.0, "r": 3.0}, 2 / math.sqrt(6)),
    ({"p": 3.0, "q": 3.0}, {"p": 1.0, "q": 2.0}, math.nan),
    ({"p": 1.0, "q": 2.0}, {"p": 4.0, "q": 4.0}, math.nan),
    ({"p": 1.0, "q": 2.0}, {"q": 4.0, "r": 1.0}, math.nan),
])
def test_rank_agreement_of_two_players_and_of_flat_ratings(x: dict, y: dict, tau: float) -> None:
    t = rank_agreement({"x": pd.Series(x), "y": pd.Series(y)})
    got_tau, got_rho = t["kendall_tau"].item(), t["spearman_rho"].item()
    assert isinstance(got_tau, float) and isinstance(got_rho, float)
    if math.isnan(tau):
        assert math.isnan(got_tau) and math.isnan(got_rho) and notes_of(t)
    else:
        assert got_tau == pytest.approx(tau) and not notes_of(t)


@pytest.mark.parametrize(("scores", "pairs", "message"), [
    ([1.0, 0.5, 2.0, 0.0], None, "row 12 has 2.0"),
    ([1.0, 0.5, 0.0, 0.25], None, "row 13 has 0.25"),
    (None, [("x", "y"), ("y", "y"), ("x", "z"), ("z", "z")], "row 11 (y vs y), row 13 (z vs z)"),
    (None, [("x", "x")] * 7, "row 10 (x vs x), row 11 (x vs x), row 12 (x vs x), row 13 (x vs x), row 14 (x vs x) and 2 more"),
])
def test_bad_match_logs_name_the_rows(scores, pairs, message: str) -> None:
    """The error names the first bad row by its index label (not its position), and at most five self-play rows."""
    pairs = pairs or [("x", "y")] * len(scores)
    scores = scores or [1.0] * len(pairs)
    m = pd.DataFrame({"a": [a for a, _ in pairs], "b": [b for _, b in pairs], "score_a": scores},
                     index=range(10, 10 + len(pairs)))
    with pytest.raises(TableError) as e:
        bradley_terry(m)
    assert message in str(e.value) and str(e.value).startswith("match log: ")


@pytest.mark.parametrize(("rows", "message"), [
    ([("match", "a", "b", json.dumps({"round": 1, "score_a": 1.0})), ("match", "a", "b", json.dumps({"round": 2, "score_a": "x"}))],
     "events table: 'match' event at row 1: score_a must be a number"),
    ([("match", "a", "b", json.dumps({"round": 1, "score_a": 1.0})), ("match", "a", None, json.dumps({"round": 2, "score_a": 1}))],
     "events table ('match' events): column 'target' has nulls at row 1"),
    ([("match", "a", "b", json.dumps({"round": 1, "score_a": 1.0})), ("bye", "c", None, json.dumps({"pts": 1}))],
     "events table: 'bye' event at row 1: payload lacks ['points']"),
    ([("bye", "c", None, "{not json")], "events table: 'bye' event at row 0: payload is not JSON"),
])
def test_bad_events_are_named_by_kind_and_row(rows, message: str) -> None:
    with pytest.raises(TableError) as e:
        standings(_events(rows))
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(("scores", "note"), [
    ([1.0], "strength CI undefined: a bootstrap needs at least 2 observations per sample; got 1 (1 match)"),
    ([0.5, 0.5, 0.5], "strength CI zero width: every resample gives the same value (the observations do not vary) (3 matches)"),
    ([0.5, 0.5], "strength CI zero width: every resample gives the same value (the observations do not vary) (2 matches)"),
])
def test_bradley_terry_interval_notes_say_how_many_matches(scores: list[float], note: str) -> None:
    m = pd.DataFrame({"a": ["x"] * len(scores), "b": ["y"] * len(scores), "score_a": scores})
    assert notes_of(bradley_terry(m, bootstrap=20))[0] == note


def test_player_ids_of_mixed_types_are_rated() -> None:
    """Match logs take any hashable player id (a table column of kind "any"): ids of mixed types sort by their text."""
    m = pd.DataFrame({"a": [1, "x", 1, 2], "b": ["x", 2, 2, "x"], "score_a": [1.0, 0.5, 0.0, 1.0]})
    t = rating_tables(m, bootstrap=20)
    assert set(t["ratings"]["player"]) == {1, 2, "x"} and t["rank_agreement"]["players"].tolist() == [3, 3, 3]
    tb = tiebreaks(list(m.itertuples(index=False, name=None)), {1: 1.0, 2: 2.5, "x": 0.5})
    assert tb[1]["buchholz"] == 0.5 + 2.5 and tb["x"]["sonneborn_berger"] == 0.5 * 2.5
    with pytest.raises(TableError, match=r"player\(s\) \[3, 'y'\]"):
        tiebreaks([(3, "y", 1.0), (1, 2, 0.5)], {1: 1.0, 2: 1.0})


def test_ratings_with_their_default_resamples_and_seed() -> None:
    """The defaults are part of a published number: 200 resamples from seed 0 (rating_tables, tournament_tables)
    and seed 0 for a bootstrap asked of bradley_terry."""
    m = pd.DataFrame({"a": ["x", "y", "z", "x", "y", "z"], "b": ["y", "z", "x", "z", "x", "y"],
                      "score_a": [1.0, 0.5, 0.0, 1.0, 1.0, 0.5]})
    pd.testing.assert_frame_equal(rating_tables(m)["ratings"], rating_tables(m, bootstrap=200, seed=0)["ratings"])
    pd.testing.assert_frame_equal(bradley_terry(m, bootstrap=30), bradley_terry(m, bootstrap=30, seed=0))
    assert not bradley_terry(m, bootstrap=30).equals(bradley_terry(m, bootstrap=30, seed=1))

