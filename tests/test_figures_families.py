"""Issue 18 §2: the figures each study needs, checked by their content (the numbers behind each artist, labels,
integer axes, legend entries), on short scripted runs and known-answer tables.

- tournament: E[S] with the spread over tournaments, placement heatmap, rank-vs-T bump chart, convergence; live:
  standings, Bradley-Terry/Elo forest plot, rank agreement; unstable-fit notes on few matches;
- drift: reminder turns marked, unit and estimator on the axis, fitted D* and recurrence, reminder-effect bars;
- social: CCDF step plot with the power law and its likelihood-ratio alternatives, P(k) against exposed
  neighbours, the follow network coloured by group (sampled on large runs);
- every run: invalid-answer rate, tokens and latency per step (none for a scripted run, with a note);
- one style: a fixed colour per model across an analysis's figures, 300 dpi, PDF on request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import MaxNLocator

import agentsim
from agentsim.analysis import plots
from agentsim.analysis.drift import (
    drift_tables,
    plot_curves,
    plot_reminder_effect,
    recurrence_path,
    reminder_effect,
    reminder_turns,
    turns_table,
)
from agentsim.analysis.llm_usage import llm_usage_of_runs, llm_usage_table, plot_llm_usage
from agentsim.analysis.plots import NothingToShow, figure_formats, styles
from agentsim.analysis.social import adoption_curve, plot_adoption, plot_network
from agentsim.analysis.tables import notes_of, why_not_applicable
from agentsim.analysis.tournament import (
    MATCHES_PER_PLAYER,
    convergence_table,
    expected_score_spread,
    placement_table,
    plot_convergence,
    plot_expected_scores,
    plot_placements,
    plot_rank_agreement,
    plot_rank_bump,
    plot_ratings,
    plot_standings,
    tournament_tables,
)
from agentsim.logs.reader import RunLog
from agentsim.scenarios.tournament.csd import placements

from conftest import write_run_log
from test_runs import agentsim_cli


# -- shared runs (module scope: each is run once) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, RunLog]:
    tmp = tmp_path_factory.mktemp("runs")
    scores = tmp / "scores.csv"
    # "top" wins every benchmark: with 4 models (no byes) it meets the other unbeaten model in round 2 and finishes
    # first, alone, in every tournament, whatever the pairing
    scores.write_text("model,x,y,z\ntop,9,9,9\nb,5,1,4\nc,2,6,3\nd,4,3,7\n")
    csd = agentsim.run("tournament/csd_example.yaml", backend="scripted", steps=3, run_dir=tmp / "csd", **{
        "world.csd.scores_file": str(scores), "world.csd.eliminations": 0, "world.csd.n_tournaments": 3000,
        "world.csd.sensitivity": [0, 1, 2], "world.csd.sensitivity_tournaments": 300})
    live = agentsim.run("tournament/live_ipd.yaml", backend="scripted", steps=3, run_dir=tmp / "live")
    social = agentsim.run("social/x_information_spread.yaml", backend="scripted", steps=6, run_dir=tmp / "social")
    return {"csd": csd, "live": live, "social": social}


BULLETS, FORMAL = '{"kind":"bullets","exactly":3}', '{"kind":"formal","extra_informal":[]}'


@pytest.fixture(scope="module")
def drift_log(tmp_path_factory) -> RunLog:
    """Three arms x 4 conversations x 6 turns from the recurrence D_{t+1} = D_t + 0.3 (0.8 - D_t) - 0.4 r_t + noise."""
    rng = np.random.default_rng(0)
    events = []
    for arm, rem in (("none", []), ("t3", [3]), ("every2", [3, 5])):
        for c in range(4):
            d = 0.1
            for t in range(1, 7):
                if t > 1:
                    d = d + 0.3 * (0.8 - d) - 0.4 * (t in rem) + rng.normal(0, 0.03)
                # two constraints: bullets pass on even turns, the tone in every conversation but the first
                checks = {BULLETS: t % 2 == 0, FORMAL: c != 0}
                p = {"arm": arm, "turn": t, "reminder": t in rem, "reply": "x", "checks": checks, "satisfied": all(checks.values()),
                     "d_mc": d, "d_topk": max(d - 0.05, 0.0), "tokens": 10, "q_mass": 0.9, "kl_error": None}
                events.append({"step": t - 1, "agent_id": "assistant", "action": "turn", "target": f"{arm}-{c}", "payload": json.dumps(p)})
    return RunLog(write_run_log(tmp_path_factory.mktemp("drift") / "run", events=events, spec={"steps": 6, "name": "drift-known"}))


def _errorbars(ax) -> list[tuple[float, float, float, float]]:
    """(x, y, low end, high end) of each horizontal error bar on `ax` (one point per container)."""
    out = []
    for c in ax.containers:
        if c.__class__.__name__ != "ErrorbarContainer":
            continue
        data, _, bars = c.lines
        x, y = data.get_xdata()[0], data.get_ydata()[0]
        (seg,) = bars[0].get_segments() if bars else [np.array([[x, y], [x, y]])]
        out.append((float(x), float(y), float(seg[0][0]), float(seg[1][0])))
    return out


# -- tournament: CSD --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("final", "expected"), [
    ([[3, 2, 1]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),                               # no ties
    ([[2, 1, 1, 0]], [[1, 0, 0, 0], [0, .5, .5, 0], [0, .5, .5, 0], [0, 0, 0, 1]]),  # two tied for 2nd share 2nd and 3rd
    ([[1, 1, 1]], [[1 / 3] * 3] * 3),                                                # all tied
    ([[3, 2, 1], [1, 2, 3]], [[1, 0, 1], [0, 2, 0], [1, 0, 1]]),                     # two tournaments add up
])
def test_placements_share_tied_places(final, expected) -> None:
    got = placements(np.asarray(final, float))
    assert got == pytest.approx(np.asarray(expected, float))
    assert got.sum(0) == pytest.approx(len(final)) and got.sum(1) == pytest.approx(len(final))


def test_a_csd_run_counts_placements(runs) -> None:
    p = placement_table(runs["csd"])
    wide = p.pivot(index="model", columns="place", values="probability")
    assert set(p["tournaments"]) == {3000}
    assert wide.sum(0).to_numpy() == pytest.approx(1.0) and wide.sum(1).to_numpy() == pytest.approx(1.0)
    assert wide.loc["top"].tolist() == pytest.approx([1, 0, 0, 0])


@pytest.mark.parametrize(("kind", "pngs", "no_llm"), [
    ("csd", {"tournament_expected_scores.png", "tournament_placements.png", "tournament_sensitivity.png", "tournament_convergence.png"},
     "no LLM calls in this run"),  # CSD asks no model
    ("live", {"tournament_standings.png", "tournament_ratings.png", "tournament_rank_agreement.png"},
     "no LLM answered in this run (backend scripted)"),
])
def test_analyze_tournament_draws_its_figures(runs, kind: str, pngs: set[str], no_llm: str, tmp_path: Path) -> None:
    """`analyze tournament` drew nothing; a scripted run has no LLM-usage figure and its notes say why."""
    r = agentsim_cli("analyze", str(runs[kind].run_dir), "tournament", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p.name for p in tmp_path.glob("*.png")} == pngs
    for name in pngs:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    notes = pd.read_csv(tmp_path / "tournament_notes.csv")
    assert f"figure tournament_llm_usage.png not drawn: {no_llm}" in " ".join(notes["note"])
    assert "tournament_llm_usage.png not drawn" in r.stderr


def test_expected_scores_show_the_spread_over_tournaments_not_the_monte_carlo_se(runs) -> None:
    spread = expected_score_spread(runs["csd"])
    fig = plot_expected_scores(spread)
    (ax,) = fig.axes
    bars = {round(y): (x, lo, hi) for x, y, lo, hi in _errorbars(ax)}
    d = spread.sort_values(["expected_score", "model"], ascending=[True, False]).reset_index(drop=True)
    for i, r in d.iterrows():
        x, lo, hi = bars[i]
        assert x == pytest.approx(r["expected_score"])
        assert hi - x == pytest.approx(r["std_error"] * np.sqrt(3000)) and x - lo == pytest.approx(hi - x)
        assert hi - x > 10 * r["std_error"] or r["std_error"] == 0
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "top (#1)"
    assert "1 SD of S over 3,000 tournaments" in ax.get_legend().get_texts()[0].get_text()


def test_placement_heatmap_is_the_placement_table(runs) -> None:
    p = placement_table(runs["csd"])
    order = expected_score_spread(runs["csd"])["model"].tolist()
    fig = plot_placements(p, order=order)
    ax = fig.axes[0]
    (im,) = ax.images
    wide = p.pivot(index="model", columns="place", values="probability").loc[order]
    assert np.asarray(im.get_array()) == pytest.approx(wide.to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == order
    assert "(3,000 tournaments)" in ax.get_title() and len(ax.texts) == 16  # 4 x 4 cells, each written
    assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator) and ax.xaxis.get_major_locator()._integer


def test_rank_bump_chart_has_integer_axes_and_labelled_lines(runs) -> None:
    sens = tournament_tables(runs["csd"])["sensitivity"]
    fig = plot_rank_bump(sens)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for who, g in sens.groupby("model"):
        g = g.sort_values("T")
        assert list(lines[who].get_xdata()) == g["T"].tolist() and list(lines[who].get_ydata()) == g["rank"].tolist()
    assert [float(t) for t in ax.get_xticks()] == [0.0, 1.0, 2.0]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # rank 1 at the top
    assert ax.yaxis.get_major_locator()._integer
    assert sorted(t.get_text() for t in ax.texts) == sorted(list(sens["model"].unique()) * 2)  # each line named at both ends


def test_convergence_is_the_running_mean_over_tournaments(runs) -> None:
    conv = convergence_table(runs["csd"])
    fig = plot_convergence(conv)
    ax = fig.axes[0]
    final = expected_score_spread(runs["csd"]).set_index("model")["expected_score"]
    for line in ax.get_lines():
        assert list(line.get_xdata()) == [1000, 2000, 3000]
        assert line.get_ydata()[-1] == pytest.approx(final[line.get_label()])
    assert ax.get_xlabel() == "tournaments simulated (bands: 95% Monte-Carlo interval, 1.96 SE)"


def test_one_colour_per_model_across_the_figures(runs) -> None:
    spread = expected_score_spread(runs["csd"])
    colors = styles(spread["model"])
    sens = tournament_tables(runs["csd"])["sensitivity"]
    conv = plot_convergence(convergence_table(runs["csd"]), colors=colors).axes[0]
    bump = plot_rank_bump(sens, colors=colors).axes[0]
    by_conv = {line.get_label(): line.get_color() for line in conv.get_lines()}
    by_bump = {line.get_label(): line.get_color() for line in bump.get_lines()}
    assert by_conv == by_bump == {m: colors[m]["color"] for m in spread["model"]}
    assert set(by_conv.values()) <= set(plots.PALETTE)


# -- tournament: live ------------------------------------------------------------------------------------------------
def test_live_figures_show_the_tables(runs) -> None:
    t = tournament_tables(runs["live"], bootstrap=50)
    st = plot_standings(t["standings"]).axes[0]
    widths = [p.get_width() for p in st.patches]
    assert widths == t["standings"].sort_values("place", ascending=False)["points"].tolist()
    assert [x.get_text() for x in st.get_yticklabels()][-1] == f"1. {t['standings']['player'].iloc[0]}"
    bt = plot_ratings(t["ratings"]).axes[0]
    r = t["ratings"].set_index("player")
    labels = [x.get_text() for x in bt.get_yticklabels()]
    for x, y, lo, hi in _errorbars(bt):
        who = labels[round(y)]
        assert (x, lo, hi) == pytest.approx((r.loc[who, "strength"], r.loc[who, "ci_low"], r.loc[who, "ci_high"]))
    assert bt.get_title() == "bars: 95% bootstrap CI over matches"
    agree = t["rank_agreement"]
    (im,) = plot_rank_agreement(agree).axes[0].images
    mat = np.asarray(im.get_array())
    assert np.diag(mat) == pytest.approx(1.0)
    assert mat[0, 1] == pytest.approx(agree.iloc[0]["kendall_tau"], nan_ok=True)


@pytest.mark.parametrize(("rounds", "noted"), [(1, True), (3, True), (4, False)])
def test_ratings_on_few_matches_are_flagged_unstable(rounds: int, noted: bool, tmp_path: Path) -> None:
    """A round robin of 4 players played `rounds` times: 3 matches per player per round robin."""
    pairs = [("a", "b"), ("c", "d"), ("a", "c"), ("b", "d"), ("a", "d"), ("b", "c")]
    ev = [{"step": i, "agent_id": x, "action": "match", "target": y, "payload": json.dumps({"round": i + 1, "score_a": float(i % 3 == 0) if i % 2 else 0.5})}
          for i, (x, y) in enumerate(pairs * rounds)]
    t = tournament_tables(RunLog(write_run_log(tmp_path / "r", events=ev, spec={"world": {"mode": "live"}})), bootstrap=0)
    unstable = [n for n in notes_of(t["ratings"]) if n.startswith("unstable fit")]
    assert bool(unstable) == noted and (3 * rounds < MATCHES_PER_PLAYER) == noted
    if noted:
        assert f"fewer than {MATCHES_PER_PLAYER} matches for 4 of 4 players (a: {3 * rounds}," in unstable[0]


# -- LLM usage ------------------------------------------------------------------------------------------------------
def _calls(rows: list[tuple]) -> pd.DataFrame:
    cols = ["request_id", "step", "alias", "backend", "model", "attempt", "valid", "prompt_tokens", "completion_tokens", "latency_s"]
    return pd.DataFrame(rows, columns=cols)


def test_llm_usage_per_step_by_hand() -> None:
    calls = _calls([
        ("s0-p-a-a0", 0, "m", "vllm", "x/Llama-3", 0, False, 100, 10, 1.0),  # retried, then valid
        ("s0-p-a-a1", 0, "m", "vllm", "x/Llama-3", 1, True, 110, 12, 3.0),
        ("s0-p-b-a0", 0, "m", "vllm", "x/Llama-3", 0, False, 100, 9, 2.0),  # invalid after its retry
        ("s0-p-b-a1", 0, "m", "vllm", "x/Llama-3", 1, False, 110, 8, 4.0),
        ("s2-p-a-a0", 2, "m", "vllm", "x/Llama-3", 0, True, 50, 5, 0.5),
    ])
    u = llm_usage_table(calls)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(1, 2, method="wilson")
    assert u.to_dict("records")[0] == pytest.approx({
        "step": 0, "answerer": "Llama-3 via vLLM", "runs": 1, "answers": 2, "invalid": 1, "invalid_rate": 0.5, "invalid_low": lo, "invalid_high": hi,
        "calls": 4, "prompt_tokens": 420, "completion_tokens": 39, "latency_median_s": 2.5,
        "latency_p10_s": 1.3, "latency_p90_s": 3.7})
    assert u["step"].tolist() == [0, 2]
    fig = plot_llm_usage(u)
    rate, tokens, latency = fig.axes[:3]
    (line,) = [x for x in rate.get_lines() if not x.get_label().startswith("_")]
    assert list(line.get_xdata()) == [0, 1, 2] and np.isnan(line.get_ydata()[1])  # no line across step 1
    assert [x.get_label() for x in tokens.get_lines()] == ["Llama-3 via vLLM: completion", "Llama-3 via vLLM: prompt"]
    assert list(tokens.get_lines()[0].get_ydata()) == [39, 5] and list(latency.get_lines()[0].get_ydata()) == [2.5, 0.5]
    assert all(ax.xaxis.get_major_locator()._integer for ax in (rate, tokens, latency))


def test_llm_usage_pools_the_runs_of_a_folder(tmp_path: Path) -> None:
    """Two runs: answers pooled per step (each run's retries counted within that run), tokens summed, and the figure
    draws tokens per run; a step only one run reached says `runs` 1."""
    a = _calls([("s0-p-a-a0", 0, "m", "vllm", "x/Llama-3", 0, False, 100, 10, 1.0),
                ("s0-p-a-a1", 0, "m", "vllm", "x/Llama-3", 1, True, 100, 10, 3.0),
                ("s1-p-a-a0", 1, "m", "vllm", "x/Llama-3", 0, True, 40, 4, 1.0)])
    # the same request id in the other run is another answer, and it stays invalid
    b = _calls([("s0-p-a-a0", 0, "m", "vllm", "x/Qwen", 0, False, 300, 30, 5.0),
                ("s0-p-b-a0", 0, "m", "vllm", "x/Llama-3", 0, False, 60, 6, 2.0)])
    logs = [RunLog(write_run_log(tmp_path / name, calls=c.to_dict("records"))) for name, c in (("a", a), ("b", b))]
    u = llm_usage_of_runs(logs).set_index(["step", "answerer"])
    llama = u.loc[(0, "Llama-3 via vLLM")]
    assert (llama["runs"], llama["answers"], llama["invalid"], llama["calls"]) == (2, 2, 1, 3)
    assert llama["prompt_tokens"] == 260 and llama["latency_median_s"] == 2.0
    assert u.loc[(0, "Qwen via vLLM")][["runs", "answers", "invalid"]].tolist() == [1, 1, 1]
    assert u.loc[(1, "Llama-3 via vLLM")]["runs"] == 1
    assert any("answers of 2 runs pooled" in n for n in notes_of(u))
    tokens = plot_llm_usage(u.reset_index()).axes[1]
    assert tokens.get_ylabel() == "tokens per step and run (mean over runs)"
    prompt = next(x for x in tokens.get_lines() if x.get_label() == "Llama-3 via vLLM: prompt")
    assert list(prompt.get_ydata()) == [130.0, 40.0]


@pytest.mark.parametrize("backend", ["scripted", "replay"])
def test_no_llm_usage_figure_without_an_llm(backend: str) -> None:
    u = llm_usage_table(_calls([("s0-p-a-a0", 0, "m", backend, "x", 0, True, 10, 1, 0.0)]))
    assert u.empty and why_not_applicable(u) == f"no LLM answered in this run (backend {backend}): no tokens or latency to show"
    with pytest.raises(NothingToShow, match="no LLM answered"):
        plot_llm_usage(u)


# -- drift ------------------------------------------------------------------------------------------------------------
def test_drift_curves_mark_reminders_name_the_estimator_and_overlay_the_fit(drift_log) -> None:
    t = drift_tables(drift_log, bootstrap=50)
    turns = turns_table(drift_log.events)
    rem = reminder_turns(turns)
    assert rem == {"every2": [3, 5], "t3": [3]}
    ax = plot_curves(t["curves_mc"], reminders=rem, recurrence=t["recurrence"]).axes[0]
    assert ax.get_ylabel() == "D_t, Monte-Carlo estimate (nats/token, mean)"
    assert ax.xaxis.get_major_locator()._integer
    lines = {x.get_label(): x for x in ax.get_lines()}
    mc = t["curves_mc"].set_index(["arm", "turn"])["d_mc_mean"]
    marks = lines["every2: reminder before turn 3, 5"]
    assert list(marks.get_xdata()) == [3, 5] and list(marks.get_ydata()) == pytest.approx([mc["every2", 3], mc["every2", 5]])
    assert marks.get_marker() == "v"
    vertical = sorted(x.get_xdata()[0] for x in ax.get_lines() if x.get_label().startswith("_") and len(set(x.get_xdata())) == 1
                      and x.get_linestyle() == ":")
    assert vertical == [2.5, 2.5, 4.5]  # every2 before turns 3 and 5, t3 before turn 3
    d_star = t["recurrence"].set_index("parameter").loc["d_star", "estimate"]
    assert list(lines[f"fitted D* = {d_star:.3g}"].get_ydata()) == pytest.approx([d_star, d_star])
    path = recurrence_path(t["recurrence"], mc["t3", 1], list(range(1, 7)), [3])
    assert list(lines["t3: fitted recurrence"].get_ydata()) == pytest.approx(path["d"].tolist())
    assert d_star == pytest.approx(0.8, abs=0.1)
    topk = plot_curves(t["curves_topk"], value="d_topk", reminders=rem).axes[0]
    assert topk.get_ylabel() == "D_t, top-k lower bound (nats/token, mean)"
    assert not any(x.get_label().startswith("fitted") for x in topk.get_lines())


def test_recurrence_path_by_hand() -> None:
    fit = pd.DataFrame({"parameter": ["kappa", "d_star", "delta"], "estimate": [0.5, 1.0, 0.2]})
    # 0 -> 0 + 0.5 (1 - 0) = 0.5 -> 0.5 + 0.25 - 0.2 (reminder before turn 3) = 0.55 -> 0.55 + 0.225 = 0.775
    assert recurrence_path(fit, 0.0, [1, 2, 3, 4], [3])["d"].tolist() == pytest.approx([0.0, 0.5, 0.55, 0.775])


def test_reminder_effect_bars_by_hand() -> None:
    rows = []
    for arm, convs, rem in (("none", {"n1": [1, 2, 3], "n2": [1, 4, 5]}, []), ("r", {"r1": [1, 1, 1], "r2": [1, 2, 2]}, [2]),
                            ("solo", {"s1": [1, 2, 4]}, [])):
        for cid, values in convs.items():
            for turn, v in enumerate(values, 1):
                rows.append({"conversation": cid, "arm": arm, "turn": turn, "reminder": turn in rem, "d_mc": float(v)})
    eff = reminder_effect(pd.DataFrame(rows)).set_index("arm")
    # from turn 2 on: none 2.5 and 4.5 per conversation -> mean 3.5; r 1 and 2 -> 1.5; solo 3 (one conversation)
    assert eff["mean"].to_dict() == pytest.approx({"none": 3.5, "r": 1.5, "solo": 3.0})
    assert set(eff["from_turn"]) == {2} and eff["n"].to_dict() == {"none": 2, "r": 2, "solo": 1}
    from scipy import stats

    half = stats.t.ppf(0.975, 1) * np.std([2.5, 4.5], ddof=1) / np.sqrt(2)
    assert (eff.loc["none", "ci_low"], eff.loc["none", "ci_high"]) == pytest.approx((3.5 - half, 3.5 + half))
    assert np.isnan(eff.loc["solo", "ci_low"])
    ax = plot_reminder_effect(eff.reset_index()).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([3.5, 1.5, 3.0])
    assert [x.get_text() for x in ax.get_xticklabels()] == ["none\n(n=2)", "r\n(n=2)", "solo\n(n=1, no CI)"]
    assert ax.get_ylabel() == "mean D_t from turn 2 on (nats/token)"
    with pytest.raises(NothingToShow, match="no reminder"):
        plot_reminder_effect(reminder_effect(pd.DataFrame(rows).assign(reminder=False)))


def test_analyze_drift_writes_the_reminder_effect(drift_log, tmp_path: Path) -> None:
    r = agentsim_cli("analyze", str(drift_log.run_dir), "drift", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p.name for p in tmp_path.glob("*.png")} == {"drift_d_mc.png", "drift_d_topk.png", "drift_reminder_effect.png",
                                                         "drift_satisfaction.png", "drift_traces.png", "drift_constraints.png"}
    cons = pd.read_csv(tmp_path / "drift_constraints.csv")
    assert len(cons) == 6 and (cons["replies"] == 24).all()  # 3 arms x 2 constraints, 4 conversations x 6 turns each


def test_satisfaction_per_constraint_by_hand(drift_log) -> None:
    """Bullets pass on turns 2, 4, 6 (12 of 24 replies per arm); the tone in conversations 1-3 (18 of 24)."""
    from statsmodels.stats.proportion import proportion_confint

    from agentsim.analysis.drift import constraint_satisfaction, plot_constraints

    cons = constraint_satisfaction(drift_log.events)
    by = cons.set_index(["arm", "constraint"])
    assert by["passed"].to_dict() == {(a, c): k for a in ("every2", "none", "t3") for c, k in ((BULLETS, 12), (FORMAL, 18))}
    lo, hi = proportion_confint(18, 24, method="wilson")
    assert (by.loc[("none", FORMAL), "ci_low"], by.loc[("none", FORMAL), "ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    ax = plot_constraints(cons).axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [0.5, 0.75] * 3  # per arm: bullets, formal
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bullets (exactly 3)\n(n=24 per arm)", "formal\n(n=24 per arm)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["every2", "none", "t3"]


def test_per_conversation_traces(drift_log) -> None:
    from agentsim.analysis.drift import plot_traces

    turns = turns_table(drift_log.events)
    fig = plot_traces(turns, reminders=reminder_turns(turns))
    assert [ax.get_title() for ax in fig.axes] == ["every2", "none", "t3"]
    t3 = fig.axes[2]
    lines = t3.get_lines()
    mine = turns[turns["arm"] == "t3"]
    traces = [ln for ln in lines if ln.get_alpha() == 0.35]
    assert len(traces) == 4 and [list(ln.get_ydata()) for ln in traces] == [
        mine[mine["conversation"] == f"t3-{c}"]["d_mc"].tolist() for c in range(4)]
    mean = next(ln for ln in lines if ln.get_label() == "mean of 4 conversations")
    assert list(mean.get_ydata()) == pytest.approx(mine.groupby("turn")["d_mc"].mean().tolist())
    assert [ln.get_xdata()[0] for ln in lines if ln.get_linestyle() == ":"] == [2.5]  # the reminder before turn 3
    with pytest.raises(NothingToShow):
        plot_traces(turns.assign(d_mc=np.nan))


# -- social -----------------------------------------------------------------------------------------------------------
def test_ccdf_is_a_step_plot_over_unique_sizes_with_the_alternatives() -> None:
    from agentsim.analysis.cascades import fit_power_law, plot_ccdf

    sizes = np.floor(np.random.default_rng(0).pareto(1.2, 300) + 1)
    ax = plot_ccdf(sizes).axes[0]
    step = ax.get_lines()[0]
    xs = np.unique(sizes)
    assert step.get_drawstyle() == "steps-post" and step.get_label() == f"cascades (n=300, {xs.size} distinct sizes)"
    assert list(step.get_xdata()) == xs.tolist()
    assert list(step.get_ydata()) == pytest.approx([(sizes >= v).mean() for v in xs])
    res, fit = fit_power_law(sizes)
    labels = [x.get_label() for x in ax.get_lines() if not x.get_label().startswith("_")]
    assert labels[1] == f"power law: alpha={res['alpha']:.2f}, xmin={res['xmin']:.0f} (n_tail={res['n_tail']})"
    for name, label in (("lognormal", "lognormal"), ("exponential", "exponential"), ("truncated_power_law", "truncated power law")):
        r, p = fit.distribution_compare("power_law", name, normalized_ratio=True)
        assert f"{label}: R={r:.2f}, p={p:.2g}" in labels
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_figures_of_cascades_that_never_grew_are_not_drawn() -> None:
    """A run in which no post was shared: every cascade has size 1. One point is no CCDF and nothing grows."""
    from agentsim.analysis.cascades import plot_ccdf
    from agentsim.analysis.social import plot_cascade_growth

    with pytest.raises(NothingToShow, match="all 21 cascades have size 1: no distribution to draw"):
        plot_ccdf(np.ones(21))
    growth = pd.DataFrame({"root": [1, 2], "t": [0, 0], "size": [1, 1], "scale": [1, 1], "depth": [0, 0], "max_breadth": [1, 1],
                           "injected": [False, False]})
    with pytest.raises(NothingToShow, match="no post was shared"):
        plot_cascade_growth(growth)
    assert plot_ccdf(np.array([1, 1, 2, 5])).axes[0].get_xlabel() == "cascade size (posts: the root and its shares)"


def test_adoption_curve_by_hand() -> None:
    # pair 0: exposed to 1, then 2, adopts at 2; pair 1: exposed to 1, adopts at 1; pair 2: exposed to 1, never adopts
    intervals = pd.DataFrame({"id": [0, 0, 1, 2], "start": [0, 1, 0, 0], "stop": [1, 3, 1, 5], "exposure": [1, 2, 1, 1],
                              "event": [0, 1, 1, 0]})
    c = adoption_curve(intervals)
    from statsmodels.stats.proportion import proportion_confint

    assert c[["exposed", "users", "adopted"]].to_dict("records") == [{"exposed": 1, "users": 3, "adopted": 1},
                                                                    {"exposed": 2, "users": 1, "adopted": 1}]
    assert c["probability"].tolist() == pytest.approx([1 / 3, 1.0])
    assert (c["ci_low"].iloc[0], c["ci_high"].iloc[0]) == pytest.approx(proportion_confint(1, 3, method="wilson"))
    ax = plot_adoption(c).axes[0]
    (line,) = ax.get_lines()[:1]
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == pytest.approx([1 / 3, 1.0])
    assert [t.get_text() for t in ax.texts] == ["n=3", "n=1"] and ax.xaxis.get_major_locator()._integer
    with pytest.raises(NothingToShow):
        plot_adoption(adoption_curve(intervals.iloc[:0]))


@pytest.mark.parametrize(("max_nodes", "shown"), [(2000, 40), (10, 10)])
def test_network_is_coloured_by_group_and_sampled_on_large_runs(runs, max_nodes: int, shown: int) -> None:
    log = runs["social"]
    ax = plot_network(log, max_nodes=max_nodes).axes[0]
    users = log.agents[log.agents["kind"] == "user"]
    drawn = {c.get_label(): len(c.get_offsets()) for c in ax.collections if c.get_label() and not c.get_label().startswith("_")}
    assert sum(drawn.values()) == shown
    if shown == len(users):
        assert drawn == {f"{g} ({n})": n for g, n in users.groupby("group").size().items()}
        assert "; 40 users," in ax.get_title()
    else:
        assert f"; seeded sample of {shown} of {len(users)} users" in ax.get_title()
    assert ax.get_legend().get_title().get_text() == "colour: group"


def test_analyze_social_draws_adoption_and_network(runs, tmp_path: Path) -> None:
    r = agentsim_cli("analyze", str(runs["social"].run_dir), "social", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {"social_adoption.png", "social_network.png", "social_cascade_ccdf.png", "social_cascade_growth.png"} <= {p.name for p in tmp_path.glob("*.png")}
    assert not (tmp_path / "social_llm_usage.png").exists()


INJECTIONS = {
    "the shipped one": (None, [("u2", 1)]),
    "none": ([], []),
    "two, one by a user": ([{"kind": "inject_post", "step": 0, "author": "mayor", "content": "Cars out of the centre from May."},
                            {"kind": "inject_post", "step": 2, "author": "u3", "content": "I will cycle to work."}],
                           [("mayor", 0), ("u3", 2)]),
    "after the run's end": ([{"kind": "inject_post", "step": 40, "author": "citynews", "content": "Too late."}], []),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_the_injected_posts_cascade_is_highlighted_in_the_growth_figure(case: str, tmp_path: Path) -> None:
    from agentsim.analysis.cascades import cascade_growth, cascade_nodes
    from agentsim.analysis.social import injected_growth, injected_posts, plot_cascade_growth

    interventions, expected = INJECTIONS[case]
    changes = {"world.users.count": 60} | ({"world.interventions": interventions} if interventions is not None else {})
    log = agentsim.run("social/x_information_spread.yaml", backend="scripted", steps=4, run_dir=tmp_path / "r", **changes)
    inj = injected_posts(log)
    assert sorted(zip(inj["author"], inj["step"], strict=True)) == sorted(expected)
    ev = log.events.set_index("event_id")
    for e, author, step in zip(inj["event_id"], inj["author"], inj["step"], strict=True):  # the very posts the platform made
        assert (ev.loc[e, "agent_id"], ev.loc[e, "step"], ev.loc[e, "action"], ev.loc[e, "phase"]) == (author, step, "create_post", "platform")
    growth, inj = injected_growth(log)
    fig = plot_cascade_growth(growth, inj)
    nodes = cascade_nodes(log.df("events", ["event_id", "step", "agent_id", "action", "parent_event_id"]))
    for ax, metric in zip(fig.axes, ("scale", "depth", "max_breadth"), strict=True):
        hot = [x for x in ax.get_lines() if x.get_color() == plots.PALETTE[3]]
        assert len(hot) == len(expected)
        for line, (e, author, step) in zip(hot, zip(inj["event_id"], inj["author"], inj["step"], strict=True), strict=True):
            truth = cascade_growth(nodes, roots=[int(e)])
            assert line.get_label().startswith(f"injected post ({author}, step {step}): size {int(truth['size'].max())}")
            assert list(line.get_ydata()) == truth[metric].tolist()
        grey = [x for x in ax.get_lines() if x.get_color() == "#999999"]
        assert len(grey) == growth.loc[~growth["injected"], "root"].nunique() > 0
        assert ax.xaxis.get_major_locator()._integer
    if not expected:
        assert fig.axes[0].get_title() == "no injected post in this run" and notes_of(inj)


def test_top_k_drift_is_drawn_beside_q_mass(drift_log) -> None:
    from agentsim.analysis.drift import curves, with_q_mass

    turns = turns_table(drift_log.events)
    turns["q_mass"] = 0.5 + 0.05 * turns["turn"] + 0.01 * (turns["conversation"].str[-1].astype(int))  # varies by turn and conversation
    table = with_q_mass(curves(turns, "d_topk"), turns)
    fig = plot_curves(table, value="d_topk")
    topk, q = fig.axes
    assert topk.get_ylabel() == "D_t, top-k lower bound (nats/token, mean)"
    assert q.get_ylabel() == "q's probability mass inside its top k (mean)" and q.get_ylim() == (0, 1.02)
    expected = turns.groupby(["arm", "turn"])["q_mass"].mean()
    lines = {x.get_label().split(" (")[0]: x for x in q.get_lines() if not x.get_label().startswith("_")}
    assert sorted(lines) == ["every2", "none", "t3"]
    for arm, line in lines.items():
        assert list(line.get_ydata()) == pytest.approx(expected[arm].tolist())
        assert line.get_color() == next(x for x in topk.get_lines() if x.get_label().startswith(arm + " (")).get_color()
    assert q.get_legend().get_title().get_text() == "bands: 95% t-interval over conversations"
    # the analysis's own table carries q_mass (and the CLI's top-k figure its panel); a run without it: one panel
    assert "q_mass_mean" in drift_tables(drift_log, bootstrap=20)["curves_topk"]
    assert len(plot_curves(table.drop(columns=[c for c in table if c.startswith("q_mass")]), value="d_topk").axes) == 1


# -- style -----------------------------------------------------------------------------------------------------------
def test_pngs_are_300_dpi_and_pdf_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from agentsim.analysis.plots import new_figure, save

    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    save(fig, tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").info["dpi"] == pytest.approx((300, 300), abs=0.5)
    assert not (tmp_path / "a.pdf").exists()
    with figure_formats("png", "pdf"):
        save(fig, tmp_path / "b.png")
    assert (tmp_path / "b.pdf").read_bytes()[:5] == b"%PDF-"
    monkeypatch.setenv("AGENTSIM_FIGURE_FORMATS", "png,svg")
    save(fig, tmp_path / "c.png")
    assert (tmp_path / "c.svg").exists() and not (tmp_path / "c.pdf").exists()


def test_styles_are_fixed_by_key_and_told_apart_past_the_palette() -> None:
    keys = [f"m{i:02d}" for i in range(10)]
    s = styles(reversed(keys))
    assert [s[k]["color"] for k in keys[:8]] == list(plots.PALETTE)
    assert s["m08"]["color"] == s["m00"]["color"] and s["m08"]["linestyle"] != s["m00"]["linestyle"]
    assert styles(keys) == s  # the order a figure meets its keys in does not matter


@pytest.mark.parametrize("models", [8, 9, 20])
def test_lines_past_the_palette_are_named_at_their_ends_without_overlap(models: int) -> None:
    """CSD fields are often larger than the 8 colours: every line then carries its model's name at its end, in its
    colour, the names at least a line of text apart, even where the lines end on the same value."""
    from agentsim.analysis.tournament import plot_convergence

    rows = [{"model": f"m{i:02d}", "tournaments": t, "expected_score": 1.0 + (i // 3), "std_error": 0.01}
            for i in range(models) for t in (100, 200)]  # three lines end on each value
    conv = pd.DataFrame(rows)
    ax = plot_convergence(conv).axes[0]
    named = {t.get_text(): t for t in ax.texts}
    if models <= len(plots.PALETTE):
        assert not named  # the legend names them, in distinct colours
        assert len(ax.get_legend().get_texts()) == models
        return
    assert sorted(named) == sorted(conv["model"].unique())
    colors = styles(conv["model"])
    assert all(matplotlib.colors.same_color(t.get_color(), colors[m]["color"]) for m, t in named.items())
    ys = sorted(t.xyann[1] for t in named.values())
    lo, hi = ax.get_ylim()
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    assert min(np.diff(ys)) >= (hi - lo) * 6.5 * 1.2 / height_pt  # a line of 6.5 pt text apart
    # each name points at its line's last value
    ends = conv.groupby("model")["expected_score"].last()
    assert all(t.xy[1] == ends[m] for m, t in named.items())


def cut_off(fig: Any) -> list[str]:
    """The titles, labels, legends and annotations of `fig` that reach past its edges (cut off in the saved file)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    edge = fig.bbox
    artists = [*fig.texts, *fig.legends]
    for ax in fig.axes:
        artists += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend() is not None:
            artists.append(ax.get_legend())
    out = []
    for a in artists:
        if not a.get_visible() or (isinstance(a, Text) and not a.get_text()):
            continue
        box = a.get_window_extent(renderer)
        if box.x0 < edge.x0 - 1 or box.x1 > edge.x1 + 1 or box.y0 < edge.y0 - 1 or box.y1 > edge.y1 + 1:
            out.append(a.get_text() if isinstance(a, Text) else type(a).__name__)
    return out


def test_no_text_is_cut_off_in_any_figure_of_any_family(runs, drift_log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure `analyze --out` saves, for every family (the CSD example's 20 models and the study overlay
    included): no title, axis label, legend or annotation reaches past the figure's edge."""
    from typer.testing import CliRunner

    from agentsim.cli import app

    saved: list[tuple[str, Any]] = []
    real = plots.save

    def save(fig: Any, path: Any) -> Any:
        saved.append((Path(path).name if path else "?", fig))
        return real(fig, path)

    monkeypatch.setattr(plots, "save", save)
    war = agentsim.run("wargame/neutral.yaml", backend="scripted", steps=3, run_dir=tmp_path / "war")
    csd20 = agentsim.run("tournament/csd_example.yaml", backend="scripted", steps=2, run_dir=tmp_path / "csd20",
                         **{"world.csd.n_tournaments": 2000, "world.csd.sensitivity_tournaments": 200})
    cases = [(runs["csd"], "tournament"), (csd20, "tournament"), (runs["live"], "tournament"), (runs["social"], "social"),
             (drift_log, "drift"), (war, "escalation")]
    for log, name in cases:
        r = CliRunner().invoke(app, ["analyze", str(log.run_dir), name, "--out", str(tmp_path / f"out-{log.run_dir.name}")])
        assert r.exit_code == 0, r.output[-2000:]
    # the study's curves absent: the suptitle says so on a line that fits
    from agentsim.analysis.escalation import compare_runs, escalation_figure

    escalation_figure(compare_runs([war]), [war], tmp_path / "no-study.png", data_dir=tmp_path / "nowhere")
    assert len(saved) >= 20
    bad = {name: texts for name, fig in saved if (texts := cut_off(fig))}
    assert not bad, bad


# -- wargame ----------------------------------------------------------------------------------------------------------
def _actions(rows: list[tuple]) -> pd.DataFrame:
    from agentsim.analysis.escalation import WEIGHTS

    df = pd.DataFrame(rows, columns=["run", "model", "day", "agent_id", "target", "category"])
    return df.assign(action="x", points=df["category"].map(WEIGHTS))[["run", "model", "day", "agent_id", "target", "action", "category", "points"]]


KNOWN = [("r1", "m", 1, "A", "B", "nuclear"), ("r1", "m", 1, "A", "B", "nuclear"), ("r1", "m", 2, "B", "A", "violent_escalation"),
         ("r1", "m", 2, "B", "B", "violent_escalation"),  # aimed at itself: no arrow
         ("r2", "m", 1, "A", "B", "de_escalation"), ("r2", "m", 2, "C", "A", "posturing"), ("r2", "m", 3, "C", None, "status_quo")]


def test_category_stacks_by_hand() -> None:
    from agentsim.analysis.escalation import plot_categories

    ax = plot_categories(_actions(KNOWN)).axes[0]
    # per category, bars over days 1..3 with the mean count per run (2 runs), stacked in escalation order
    bars: dict[str, list[float]] = {}
    for c in ax.containers:
        bars[c.get_label()] = [p.get_height() for p in c.patches]
    assert bars == {"nuclear": [1.0, 0.0, 0.0], "violent escalation": [0.0, 1.0, 0.0], "posturing": [0.0, 0.5, 0.0],
                    "de-escalation": [0.5, 0.0, 0.0], "status quo": [0.0, 0.0, 0.5]}
    assert list(bars) == ["nuclear", "violent escalation", "posturing", "de-escalation", "status quo"]  # stacked bottom up
    # the legend lists them as the stack shows them, top first
    assert [t.get_text() for t in ax.figure.axes[-1].get_legend().get_texts()] == list(bars)[::-1]
    assert ax.get_title() == "m (n=2 runs)" and ax.xaxis.get_major_locator()._integer


def test_nuclear_and_violent_counts_by_hand() -> None:
    from agentsim.analysis.escalation import plot_violent

    ax = plot_violent(_actions(KNOWN)).axes[0]
    nuclear, violent = ax.containers[1], ax.containers[3]  # (error bars, bars) per category
    assert [p.get_height() for p in nuclear.patches] == [1.0] and [p.get_height() for p in violent.patches] == [1.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m\n(n=2)"]
    assert ax.get_legend().get_title().get_text() == "bars: 95% t-interval over runs"
    calm = [r for r in KNOWN if r[5] not in ("nuclear", "violent_escalation")]
    with pytest.raises(NothingToShow, match="no nuclear or violent action in these 1 run"):  # all bars would be 0
        plot_violent(_actions(calm))


def test_nation_day_heatmap_by_hand() -> None:
    from agentsim.analysis.escalation import plot_nation_day

    ax = plot_nation_day(_actions(KNOWN)).axes[0]
    (im,) = ax.images
    # A: 2 nuclear (120) and one de-escalation (-2) on day 1 over 2 runs; B: 2 violent (56) on day 2; C: posturing 4
    assert np.asarray(im.get_array()) == pytest.approx(np.array([[59, 0, 0], [0, 28, 0], [0, 2, 0]]))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C"]


def test_who_targets_whom_by_hand() -> None:
    from agentsim.analysis.escalation import plot_targets

    ax = plot_targets(_actions(KNOWN)).axes[0]
    labels = {t.get_text() for t in ax.texts}
    assert {"A", "B", "C"} <= labels and {"2", "1"} <= labels  # A->B twice (nuclear), B->A once (violent)
    assert "; 3 actions" in ax.get_title()  # de-escalation, posturing, status quo and B on itself are not hostile
    with pytest.raises(NothingToShow, match="no escalating action aimed at another nation"):
        plot_targets(_actions([r for r in KNOWN if r[5] not in ("nuclear", "violent_escalation")]))


def test_analyze_escalation_draws_the_wargame_figures(tmp_path: Path) -> None:
    from agentsim.analysis.escalation import nation_actions

    for s in ("invasion", "neutral"):
        agentsim.run(f"wargame/{s}.yaml", backend="scripted", steps=3, run_dir=tmp_path / "runs" / s)
    r = agentsim_cli("analyze", str(tmp_path / "runs"), "escalation", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p.name for p in (tmp_path / "o").glob("*.png")} == {
        "escalation_es.png", "escalation_categories.png", "escalation_violent.png", "escalation_nation_day.png", "escalation_targets.png"}
    logs = [RunLog(tmp_path / "runs" / s) for s in ("invasion", "neutral")]
    a = nation_actions(logs)
    ev = logs[0].events
    applied = ev[(ev["phase"] == "nations") & (ev["action"] != "invalid")]
    assert (a["run"] == logs[0].run_id).sum() == len(applied) and set(a["model"]) == {"scripted baseline"}
    assert a["day"].min() == 1 and a["day"].max() == 3


def test_network_of_one_group_is_coloured_by_role(tmp_path: Path) -> None:
    from agentsim.analysis.social import roles_table

    log = agentsim.run("social/x_information_spread.yaml", backend="scripted", steps=2, run_dir=tmp_path / "r",
                       **{"world.users.groups": [{"name": "everyone", "share": 1, "interests": ["news"], "stance": 0.0}]})
    ax = plot_network(log).axes[0]
    assert ax.get_legend().get_title().get_text() == "colour: role"
    roles = roles_table(log)["features"]["role"].value_counts()
    drawn = {c.get_label(): len(c.get_offsets()) for c in ax.collections if c.get_label() and not c.get_label().startswith("_")}
    assert drawn == {f"role {int(r)} ({n})": n for r, n in roles.items()}
