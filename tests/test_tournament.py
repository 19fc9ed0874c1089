"""Tournament family: CSD against exact enumeration and known answers, Swiss pairing, ratings, live runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsim.analysis.ratings import bradley_terry, elo, rank_agreement, tiebreaks
from agentsim.core.check import check_world
from agentsim.logs.reader import RunLog
from agentsim.scenarios.tournament.csd import (
    eliminations_schedule,
    exact_expected_scores,
    failure_sensitivity,
    read_score_table,
    simulate,
)
from agentsim.scenarios.tournament.swiss import swiss_pairing
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_scenario
from test_runs import agentsim_cli, assert_same_log, run_ok

TOURNAMENT = SCENARIOS / "tournament"


# -- CSD ---------------------------------------------------------------------------------------------------------
def test_a_model_that_beats_all_on_every_benchmark_scores_k() -> None:
    rng = np.random.default_rng(0)
    k = 10
    scores = np.vstack([np.full(k, 100.0), rng.uniform(0, 90, (7, k))])
    res = simulate(scores, [f"m{i}" for i in range(8)], n_tournaments=20_000, eliminations=0, seed=1)
    assert res.expected_score[0] == k and res.std_error[0] == 0
    assert res.expected_score.sum() == pytest.approx(k * 8 / 2)  # every round hands out 1 point per match


@pytest.mark.parametrize("ties", ["half", "coin"])
@pytest.mark.parametrize("eliminations", [0, [1, 0, 0], [1, 1, 0]])
def test_monte_carlo_matches_exhaustive_enumeration_for_four_models(ties: str, eliminations) -> None:
    scores = np.array([[3, 1, 2], [2, 2, 2], [1, 3, 1], [0, 2, 3]], dtype=float)  # includes ties
    exact = exact_expected_scores(scores, eliminations, ties)
    mc = simulate(scores, list("abcd"), n_tournaments=100_000, eliminations=eliminations, ties=ties, seed=7)
    se = np.maximum(mc.std_error, 1e-12)
    assert np.all(np.abs(mc.expected_score - exact) <= 3 * se + 1e-9), (exact, mc.expected_score, se)


def test_bye_and_odd_counts() -> None:
    scores = np.array([[1.0], [2.0], [3.0]])
    exact = exact_expected_scores(scores, 0, "half", bye_points=1.0)
    mc = simulate(scores, list("abc"), 60_000, bye_points=1.0, seed=2)
    assert np.all(np.abs(mc.expected_score - exact) <= 3 * np.maximum(mc.std_error, 1e-12))
    assert exact.sum() == pytest.approx(1 + 1)  # one match point plus one bye point


def test_eliminations_schedule_keeps_one_model() -> None:
    assert eliminations_schedule(3, 4, 5).tolist() == [3, 1, 0, 0]
    with pytest.raises(ValueError, match="one per benchmark"):
        eliminations_schedule([1, 2], 3, 5)


def test_failure_sensitivity_separates_specialists() -> None:
    models, _, scores = read_score_table(str(TOURNAMENT / "example_scores.csv"))
    df = failure_sensitivity(scores, models, [0, 2], n_tournaments=4000)
    assert set(df["T"]) == {0, 2} and len(df) == 2 * len(models)
    cv = df.drop_duplicates("model").set_index("model")["score_cv"]
    assert cv[[m for m in models if m.startswith("specialist")]].min() > cv[[m for m in models if m.startswith("generalist")]].max()


def test_read_score_table_long_and_errors(tmp_path: Path) -> None:
    long = tmp_path / "long.csv"
    long.write_text("model,benchmark,score\na,x,1\na,y,2\nb,x,3\nb,y,0\n")
    models, benches, s = read_score_table(str(long))
    assert models == ["a", "b"] and benches == ["x", "y"] and s.tolist() == [[1, 2], [3, 0]]
    bad = tmp_path / "bad.csv"
    bad.write_text("model,x\na,1\nb,oops\n")
    with pytest.raises(ValueError, match=r"bad\.csv row 2 \(id 'b'\): field x: .*not a number|bad\.csv row 2 \(id 'b'\): field x: .*valid number"):
        read_score_table(str(bad))


def test_csd_speed_is_seconds_not_minutes() -> None:
    """Not a timing assertion (see `agentsim bench`), but a guard that the path stays vectorized."""
    import time

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    simulate(rng.random((20, 10)), [str(i) for i in range(20)], n_tournaments=100_000, eliminations=1, seed=0)
    assert time.perf_counter() - t0 < 120


# -- Swiss pairing -----------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 9), rounds=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_pairing_never_repeats_while_a_legal_pairing_exists(n: int, rounds: int, seed: int) -> None:
    import itertools

    rng = np.random.default_rng(seed)
    names = [f"p{i}" for i in range(n)]
    score = dict.fromkeys(names, 0.0)
    played: set[frozenset[str]] = set()
    had_bye: set[str] = set()
    for _ in range(rounds):
        pairs, bye = swiss_pairing(score, played, had_bye)
        paired = [p for ab in pairs for p in ab] + ([bye] if bye else [])
        assert sorted(paired) == sorted(names)  # everyone plays or has the bye, once
        assert (bye is None) == (n % 2 == 0)
        rematches = [frozenset(ab) for ab in pairs if frozenset(ab) in played]
        if rematches:  # allowed only if no legal pairing (no rematch, at most one bye each) exists
            import networkx as nx

            g = nx.Graph([tuple(c) for c in itertools.combinations(names, 2) if frozenset(c) not in played])
            g.add_nodes_from(names)
            if n % 2:
                eligible = [p for p in names if p not in had_bye] or names
                g.add_edges_from(("BYE", p) for p in eligible)
            assert len(nx.max_weight_matching(g, maxcardinality=True)) < (n + 1) // 2
        if bye is not None:
            assert bye not in had_bye or len(had_bye) == n
            had_bye.add(bye)
        for a, b in pairs:
            s = float(rng.choice([0.0, 0.5, 1.0]))
            score[a] += s
            score[b] += 1 - s
            played.add(frozenset((a, b)))


def test_pairing_prefers_equal_scores_and_gives_the_bye_low() -> None:
    score = {"a": 2.0, "b": 2.0, "c": 1.0, "d": 1.0, "e": 0.0}
    pairs, bye = swiss_pairing(score, set(), set())
    assert {frozenset(p) for p in pairs} == {frozenset("ab"), frozenset("cd")} and bye == "e"
    pairs, bye = swiss_pairing(score, {frozenset("ab")}, {"e"})
    assert frozenset("ab") not in {frozenset(p) for p in pairs} and bye != "e"


def test_tiebreaks_by_hand() -> None:
    results = [("a", "b", 1.0), ("c", "d", 0.5), ("a", "c", 0.5), ("b", "d", 0.0)]
    score = {"a": 1.5, "b": 0.0, "c": 1.0, "d": 1.5}
    tb = tiebreaks(results, score)
    assert tb["a"] == {"buchholz": 0.0 + 1.0, "sonneborn_berger": 1.0 * 0.0 + 0.5 * 1.0}
    assert tb["d"] == {"buchholz": 1.0 + 0.0, "sonneborn_berger": 0.5 * 1.0 + 1.0 * 0.0}


# -- ratings -----------------------------------------------------------------------------------------------------
def test_bradley_terry_recovers_known_strengths() -> None:
    rng = np.random.default_rng(3)
    true = np.array([1.5, 0.5, 0.0, -0.7, -1.3])
    true -= true.mean()
    rows = []
    for _ in range(6000):
        i, j = rng.choice(5, 2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        rows.append((f"p{i}", f"p{j}", float(rng.random() < p)))
    m = pd.DataFrame(rows, columns=["a", "b", "score_a"])
    bt = bradley_terry(m, bootstrap=50).set_index("player")
    est = bt.loc[[f"p{i}" for i in range(5)], "strength"].to_numpy()
    assert np.max(np.abs(est - true)) < 0.15
    assert ((bt["ci_low"] <= bt["strength"]) & (bt["strength"] <= bt["ci_high"])).all()
    assert list(bt.index) == [f"p{i}" for i in range(5)]  # ranked in the true order
    e = elo(m)  # online Elo is noisier (recent matches weigh most) but must broadly agree
    agree = rank_agreement({"bt": bt["strength"], "elo": e})
    assert agree["kendall_tau"].item() >= 0.6 and agree["players"].item() == 5


@pytest.mark.parametrize("seed", range(4))
def test_bradley_terry_is_the_penalised_likelihood_maximum(seed: int) -> None:
    """The batched Newton fit (all bootstrap resamples at once) against scipy.optimize on the same objective:
    draws as half wins, a ridge that keeps an unbeaten player finite."""
    from scipy import optimize, special

    rng = np.random.default_rng(seed)
    n, m, ridge = 5, 60, 1e-4
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    s = rng.choice([0.0, 0.5, 1.0], m)
    s[a == 0], s[b == 0] = 1.0, 0.0  # p0 is unbeaten: its strength is finite only through the ridge
    matches = pd.DataFrame({"a": [f"p{i}" for i in a], "b": [f"p{i}" for i in b], "score_a": s})

    def nll(t: np.ndarray) -> float:
        d = t[a] - t[b]
        return float(-(s * special.log_expit(d) + (1 - s) * special.log_expit(-d)).sum() + ridge * t @ t)

    ref = optimize.minimize(nll, np.zeros(n), method="BFGS", options={"gtol": 1e-10}).x
    ref -= ref.mean()
    bt = bradley_terry(matches, ridge=ridge).set_index("player")["strength"]
    assert bt[[f"p{i}" for i in range(n)]].to_numpy() == pytest.approx(ref, abs=2e-4)


def test_ratings_reject_bad_logs() -> None:
    with pytest.raises(ValueError, match="score_a must be 0, 0.5 or 1"):
        elo(pd.DataFrame({"a": ["x"], "b": ["y"], "score_a": [2]}))
    with pytest.raises(ValueError, match="missing column"):
        bradley_terry(pd.DataFrame({"a": ["x"]}))


# -- scenarios and runs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["csd_example", "live_judge", "live_ipd"])
def test_shipped_tournaments_pass_conformance(name: str) -> None:
    check_world(load_scenario(TOURNAMENT / f"{name}.yaml", backend="scripted", steps=2), steps=2)


def test_csd_run_and_analysis(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, TOURNAMENT / "csd_example.yaml", steps=4, **{
        "world.csd.n_tournaments": 8000, "world.csd.sensitivity_tournaments": 1000,
        "world.csd.scores_file": str(TOURNAMENT / "example_scores.csv")})
    run_ok(str(f), "--run-dir", str(tmp_path / "csd"), "--quiet")
    r = agentsim_cli("analyze", str(tmp_path / "csd"), "tournament", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    es = pd.read_csv(tmp_path / "out" / "tournament_expected_scores.csv")
    assert len(es) == 20 and (es["std_error"] > 0).any()
    models, _, scores = read_score_table(str(TOURNAMENT / "example_scores.csv"))
    direct = simulate(scores, models, 8000, eliminations=[0, 1, 1, 1, 1, 1, 1, 1, 1, 0], seed=0)
    merged = es.set_index("model")["expected_score"]
    top = direct.table().iloc[0]["model"]
    assert merged.idxmax() == top
    sens = pd.read_csv(tmp_path / "out" / "tournament_sensitivity.csv")
    assert set(sens["T"]) == {0, 1, 2}


def test_csd_bad_table_is_a_spec_error(tmp_path: Path) -> None:
    bad = tmp_path / "scores.csv"
    bad.write_text("name,x\na,1\n")
    f = write_scenario(tmp_path, TOURNAMENT / "csd_example.yaml", **{"world.csd.scores_file": str(bad)})
    with pytest.raises(SpecError, match="needs a 'model' column"):
        load_scenario(f)
    f = write_scenario(tmp_path, TOURNAMENT / "csd_example.yaml", **{"world.csd.scores_file": str(TOURNAMENT / "example_scores.csv"), "world.csd.eliminations": [1, 1]})
    with pytest.raises(SpecError, match="2 entries for 10 rounds"):
        load_scenario(f)


@pytest.mark.parametrize("name", ["live_judge", "live_ipd"])
def test_live_scripted_runs_are_deterministic_and_rated(name: str, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, TOURNAMENT / f"{name}.yaml")
    for d in ("a", "b"):
        run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / d), "--quiet")
    assert_same_log(tmp_path / "a", tmp_path / "b")
    log = RunLog(tmp_path / "a")
    ev = log.events
    matches = ev[ev["action"] == "match"]
    n = len(log.agents.query("kind == 'participant'"))
    assert len(matches) == (n // 2) * log.meta["steps_completed"]
    pairs = [frozenset((a, b)) for a, b in zip(matches["agent_id"], matches["target"], strict=True)]
    assert len(set(pairs)) == len(pairs)  # no rematches in 3 rounds
    r = agentsim_cli("analyze", str(tmp_path / "a"), "tournament", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    standings = pd.read_csv(tmp_path / "out" / "tournament_standings.csv")
    total = standings["points"].sum()
    byes = ev[ev["action"] == "bye"]
    assert total == pytest.approx(len(matches) + sum(json.loads(p)["points"] for p in byes["payload"]))
    assert {"strength", "elo", "ci_low", "ci_high"} <= set(pd.read_csv(tmp_path / "out" / "tournament_ratings.csv").columns)


def test_vectorized_csd_agrees_with_the_plain_loop() -> None:
    from agentsim.bench.csd_speed import simulate_loop

    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, (6, 5)).astype(float)  # many ties
    for ties, el in (("half", 1), ("coin", [0, 1, 0, 1, 0])):
        vec = simulate(scores, list("abcdef"), 40_000, eliminations=el, ties=ties, seed=1)
        loop = simulate_loop(scores, 8_000, el, ties, seed=2)
        se = np.sqrt(vec.std_error**2 + (vec.std_error * np.sqrt(40_000 / 8_000)) ** 2)
        assert np.all(np.abs(vec.expected_score - loop) <= 4 * np.maximum(se, 1e-9)), (vec.expected_score, loop)


def test_bench_csd_cli() -> None:
    r = agentsim_cli("bench", "csd", "--tournaments", "20000", "--loop-tournaments", "200")
    assert r.returncode == 0, r.stderr
    assert "speed-up vectorized/loop" in r.stdout


def test_benchmark_scorers() -> None:
    from agentsim.scenarios.tournament.world import score_answer

    assert score_answer("exact", "Paris.", "paris") and not score_answer("exact", "It is Paris", "paris")
    assert score_answer("contains", "It is Paris, of course", "paris")
    assert score_answer("numeric", "The answer is 1,024 bytes", "1024") and not score_answer("numeric", "about 1000", "1024")
    assert not score_answer("exact", "anything", "")


def test_benchmark_tournament_scripted(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, TOURNAMENT / "live_ipd.yaml", steps=3, **{
        "world.live": {"match": "benchmark", "scorer": "numeric", "items": [{"question": "2+2?", "answer": "4"}, {"question": "3*3?", "answer": "9"}]}})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "b"), "--quiet")
    ev = RunLog(tmp_path / "b").events
    answers = [json.loads(p) for p in ev[ev["action"] == "answer"]["payload"]]
    assert answers and any(a["correct"] for a in answers) and not all(a["correct"] for a in answers)
    assert (ev["action"] == "match").sum() == 2 * 3


def test_unknown_participant_alias_is_named(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, TOURNAMENT / "live_ipd.yaml", **{"world.participants": [
        {"name": "a", "model": "default"}, {"name": "b", "model": "gpt-5"}]})
    with pytest.raises(SpecError, match=r"world\.participants\.1\.model.*unknown model alias 'gpt-5'"):
        load_scenario(f)


# -- every numeric field has its range; what validate accepts, run runs (issue 12 §2.3, §3.1) ------------------------
CSD_BASE = {"world.csd.scores_file": str(TOURNAMENT / "example_scores.csv"), "world.csd.n_tournaments": 500,
            "world.csd.sensitivity_tournaments": 100, "steps": 2}


@pytest.mark.parametrize(("base", "field", "value"), [
    ("csd_example", "world.csd.eliminations", -1),
    ("csd_example", "world.csd.eliminations", [0, 1, -1, 0, 0, 0, 0, 0, 0, 0]),
    ("csd_example", "world.csd.sensitivity", [0, -2]),
    ("csd_example", "world.csd.n_tournaments", 0),
    ("csd_example", "world.csd.sensitivity_tournaments", 10),
    ("csd_example", "world.csd.bye_points", 1.5),
    ("csd_example", "world.csd.benchmarks", []),
    ("live_ipd", "world.live.ipd_turns", 0),
    ("live_ipd", "world.live.payoffs", {"T": float("inf")}),
    ("live_ipd", "world.live.payoffs", {"R": float("nan")}),
    ("live_ipd", "world.live.payoffs", {"X": 1}),
    ("live_ipd", "world.live.bye_points", -0.5),
    ("live_ipd", "world.participants", [{"name": "a", "model": "default", "skill": 1.5}, {"name": "b", "model": "default"}]),
    ("live_judge", "world.live.items", [{"question": ""}]),
])
def test_out_of_range_numbers_are_refused_by_validate_and_run(base: str, field: str, value, tmp_path: Path) -> None:
    from test_names import cli

    changes = {**(CSD_BASE if base == "csd_example" else {}), field: value}
    f = write_scenario(tmp_path, TOURNAMENT / f"{base}.yaml", **changes)
    for args in (("validate", str(f)), ("run", str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")):
        code, out = cli(*args)
        assert code == 2 and "Traceback" not in out, out
        assert field.split(".")[-1] in out, out


@pytest.mark.parametrize(("base", "changes"), [
    ("live_ipd", {"world.live.payoffs": {"T": 6}}),  # the others keep their defaults
    ("csd_example", {**CSD_BASE, "world.csd.sensitivity": []}),  # no sweep
    ("csd_example", {**CSD_BASE, "world.csd.eliminations": 25}),  # more than there are models: one always stays
])
def test_edge_values_validate_and_run(base: str, changes: dict, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, TOURNAMENT / f"{base}.yaml", **changes)
    run_ok(str(f), "--backend", "scripted", "--steps", "2", "--run-dir", str(tmp_path / "run"), "--quiet")


def test_a_live_tournament_needs_no_default_alias(tmp_path: Path) -> None:
    """Every participant names its model and the judge its alias: population.model ('default') is never used."""
    from test_names import cli

    f = write_scenario(tmp_path, TOURNAMENT / "live_judge.yaml", models={"a": {"backend": "scripted"}, "j": {"backend": "scripted"}},
                       population={}, **{"world.live.judge": "j", "world.participants": [{"name": "x", "model": "a"}, {"name": "y", "model": "a"}]})
    assert cli("validate", str(f))[0] == 0
    run_ok(str(f), "--run-dir", str(tmp_path / "run"), "--quiet")
    # A family whose agents do fall back to population.model still needs it, and says where.
    g = write_scenario(tmp_path, SCENARIOS / "wargame" / "neutral.yaml", models={"a": {"backend": "scripted"}})
    code, out = cli("validate", str(g))
    assert code == 2 and "population.model" in out and "unknown model alias 'default'" in out, out


@pytest.mark.parametrize(("scorer", "answer", "reference", "correct"), [
    ("exact", "大阪", "東京", False),  # an ASCII-only normaliser made every CJK answer equal ("" == "")
    ("exact", "東京。", "東京", True),
    ("exact", "Zürich!", "zürich", True),
    ("exact", "ＰＡＲＩＳ", "paris", True),  # NFKC: full-width letters
    ("contains", "答えは東京です", "東京", True),
    ("contains", "答えは大阪です", "東京", False),
    ("exact", "...", "!!!", False),  # punctuation only: nothing to compare
    ("numeric", "٤٢", "42", True),  # Arabic-Indic digits
])
def test_scorers_compare_letters_and_digits_of_every_script(scorer: str, answer: str, reference: str, correct: bool) -> None:
    from agentsim.scenarios.tournament.world import score_answer

    assert score_answer(scorer, answer, reference) is correct


@pytest.mark.parametrize("names", [["__bye__", "a", "b"], ["a", "BYE", "__bye__", "b", "c"]])
def test_no_player_name_is_taken_for_the_bye(names: list[str]) -> None:
    pairs, bye = swiss_pairing(dict.fromkeys(names, 0.0), set(), set(), order=names)
    seen = [p for ab in pairs for p in ab] + [bye]
    assert sorted(seen) == sorted(names)
