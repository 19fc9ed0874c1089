"""Issue 18 §1 and §4: figures a reviewer would accept, and `agentsim.run`.

- no plotting function touches the global matplotlib backend (a notebook's inline figures keep appearing);
- every line names backend and model; titles give scenario, number of runs and partial runs;
- honest uncertainty: n per point, "n=1, no CI" instead of a zero-width band, no line across a step without data,
  the interval method named;
- a figure with nothing to show is not drawn, and says why;
- the scripted wargame baseline reacts to its scenario, and stays deterministic for a seed;
- `agentsim.run(...)` runs a scenario through the CLI's own path.

Figures are checked by their content (lines, labels, titles, bands), not only by a file being written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import agentsim
from agentsim.analysis import plots
from agentsim.analysis.cascades import plot_ccdf
from agentsim.analysis.drift import plot_curves, plot_satisfaction
from agentsim.analysis.escalation import (
    compare_runs,
    escalation_figure,
    escalation_tables,
    plot_es,
    plot_es_panels,
)
from agentsim.analysis.labels import backend_model_label, run_label, runs_title
from agentsim.analysis.plots import NothingToShow, band_plot
from agentsim.analysis.social import plot_growth, plot_herd
from agentsim.analysis.tables import notes_of
from agentsim.experiments.compare import plot_escalation
from agentsim.logs.reader import RunLog
from agentsim.spec.errors import SpecError

from conftest import REPO, SCENARIOS
from test_runs import agentsim_cli, assert_same_log, run_ok

WARGAME = ("neutral", "invasion", "cyberattack")


# -- the global backend ---------------------------------------------------------------------------------------------
BACKEND_SCRIPT = textwrap.dedent('''
    import sys, tempfile
    from pathlib import Path
    import matplotlib
    import numpy as np
    import pandas as pd

    before = matplotlib.get_backend()
    assert before != "agg", before
    out = Path(tempfile.mkdtemp())
    from agentsim.analysis.cascades import plot_ccdf
    from agentsim.analysis.drift import plot_curves, plot_satisfaction
    from agentsim.analysis.escalation import plot_es
    from agentsim.analysis.plots import band_plot
    from agentsim.analysis.social import plot_growth, plot_herd
    from agentsim.bench.social_scale import _roles_figure
    from agentsim.experiments.compare import plot_escalation

    days = pd.DataFrame({"label": ["a"] * 3, "day": [1, 2, 3], "runs": [2, 2, 2], "es_mean": [1.0, 2.0, 3.0],
                         "ci_low": [0.0, 1.0, 2.0], "ci_high": [2.0, 3.0, 4.0]})
    exp = days.rename(columns={"label": "line", "ci_low": "es_low", "ci_high": "es_high"}).assign(scenario="Neutral")
    curve = pd.DataFrame({"arm": ["none"] * 3, "turn": [1, 2, 3], "n": [2, 2, 2], "d_mc_mean": [0.1, 0.2, 0.3],
                          "ci_low": [0.0, 0.1, 0.2], "ci_high": [0.2, 0.3, 0.4]})
    sat = pd.DataFrame({"arm": ["none"] * 2, "turn": [1, 2], "rate": [1.0, 0.5], "n": [2, 2]})
    herd = pd.DataFrame({"treatment": ["up", "down"], "posts": [3, 3], "mean_score": [1.0, -1.0], "low": [0.0, -2.0],
                         "high": [2.0, 0.0], "mean_others": [1.0, -1.0], "low_others": [0.0, -2.0], "high_others": [2.0, 0.0]})
    growth = pd.DataFrame({"minute": [0, 1], "runs": [2, 2], **{f"{m}{s}": [1.0, 2.0] for m in ("scale", "depth", "max_breadth")
                                                                 for s in ("", "_low", "_high")}})
    calls = {
        "band_plot": lambda: band_plot(days, "day", "es_mean", "label", out / "b.png", n="runs"),
        "plot_es": lambda: plot_es(days, out / "es.png", group="label"),
        "plot_curves": lambda: plot_curves(curve, out / "c.png"),
        "plot_satisfaction": lambda: plot_satisfaction(sat, out / "s.png"),
        "plot_ccdf": lambda: plot_ccdf(np.array([1, 1, 2, 3, 5, 8, 13.0]), out / "ccdf.png"),
        "plot_herd": lambda: plot_herd(herd, out / "h.png"),
        "plot_growth": lambda: plot_growth(growth, out / "g.png"),
        "plot_escalation": lambda: plot_escalation(exp, out / "e.png"),
        "_roles_figure": lambda: _roles_figure([{"engine": "networkx", "users": 10, "seconds": 0.1}], out / "r.png"),
    }
    for name, call in calls.items():
        call()
        now = matplotlib.get_backend()
        assert now == before, f"{name} switched the backend from {before} to {now}"
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt
            assert not plt.get_fignums(), f"{name} left figures in pyplot: {plt.get_fignums()}"
    print("drawn:", sorted(p.name for p in out.iterdir()))
''')


def test_no_plot_function_switches_the_notebook_backend() -> None:
    """In a notebook the inline backend is active; `matplotlib.use("Agg")` in a plot function silently removed every
    later inline figure. Every public plot function runs here under the inline backend, which must survive."""
    pytest.importorskip("matplotlib_inline")
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "drawn: ['b.png', 'c.png', 'ccdf.png', 'e.png', 'es.png', 'g.png', 'h.png', 'r.png', 's.png']" in r.stdout


def test_no_module_selects_a_backend_or_uses_pyplot() -> None:
    """The class of fault, at its root: no agentsim module calls matplotlib.use or imports pyplot."""
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "agentsim").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if ("matplotlib.use(" in line or "import matplotlib.pyplot" in line or "from matplotlib import pyplot" in line)]
    assert offenders == []


# -- honest uncertainty --------------------------------------------------------------------------------------------
def _days(runs: list[int], days: list[int] | None = None, group: str = "g") -> pd.DataFrame:
    days = days or list(range(1, len(runs) + 1))
    mean = np.arange(len(runs), dtype=float) + 1
    half = np.where(np.array(runs) >= 2, 0.5, np.nan)
    return pd.DataFrame({"label": group, "day": days, "runs": runs, "es_mean": mean, "ci_low": mean - half, "ci_high": mean + half})


def _bands(ax) -> list:
    from matplotlib.collections import FillBetweenPolyCollection, PolyCollection

    return [c for c in ax.collections if isinstance(c, FillBetweenPolyCollection | PolyCollection)]


@pytest.mark.parametrize(("runs", "label", "bands", "marked"), [
    ([1, 1, 1], "g (n=1, no CI)", 0, []),              # no zero-width band where one run is all there is
    ([3, 3, 3], "g (n=3)", 1, []),
    ([3, 3, 1, 3, 3], "g (n=1-3 per point)", 2, ["n=1"]),  # no band over the day of one run; that point is marked
    ([2, 1, 2], "g (n=1-2 per point)", 0, ["n=1"]),     # lone points with n >= 2: error bars, not zero-width bands
    ([4, 4, 2, 4], "g (n=2-4 per point)", 1, ["n=2"]),  # a point on half the runs of the others is marked
    ([4, 3, 4], "g (n=3-4 per point)", 1, []),          # ... one on nearly as many is not
    ([1, 1, 4, 1, 2, 2], "g (n=1-4 per point)", 1, ["n=1", "n=1", "n=2"]),  # once per run of the same n, not at each point
])
def test_each_line_says_its_n_and_bands_only_where_an_interval_exists(runs, label, bands, marked) -> None:
    fig = plot_es(_days(runs), group="label")
    (ax,) = fig.axes
    (line,) = [x for x in ax.get_lines() if not x.get_label().startswith("_")]
    assert line.get_label() == label
    assert len(_bands(ax)) == bands
    assert [t.get_text() for t in ax.texts] == marked
    title = ax.get_legend().get_title().get_text()
    assert title == ("no interval bands" if max(runs) < 2 else "bands: 95% bootstrap CI (BCa) over runs")
    if runs == [2, 1, 2]:
        assert len([c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]) == 2


def test_no_line_is_drawn_across_a_step_without_data() -> None:
    fig = plot_es(_days([2, 2, 2, 2], days=[1, 2, 5, 6]), group="label")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5, 6]
    y = np.asarray(line.get_ydata(), float)
    assert np.isnan(y[2:4]).all() and not np.isnan(y[[0, 1, 4, 5]]).any()
    assert len(_bands(fig.axes[0])) == 2  # one band per stretch with data, none across the gap


@pytest.mark.parametrize(("draw", "method"), [
    (lambda: plot_curves(pd.DataFrame({"arm": ["a", "a"], "turn": [1, 2], "n": [4, 4], "d_mc_mean": [0.1, 0.2],
                                       "ci_low": [0.0, 0.1], "ci_high": [0.2, 0.3]})), "95% t-interval over conversations"),
    (lambda: plot_es(_days([2, 2]), group="label"), "95% bootstrap CI (BCa) over runs"),
    (lambda: plot_escalation(_days([2, 2]).rename(columns={"label": "line", "ci_low": "es_low", "ci_high": "es_high"})
                             .assign(scenario="Neutral")), "95% t-interval over runs"),
])
def test_the_interval_method_is_named(draw, method: str) -> None:
    fig = draw()
    assert any(ax.get_legend() and ax.get_legend().get_title().get_text() == f"bands: {method}" for ax in fig.axes)


# -- nothing to show ----------------------------------------------------------------------------------------------
EMPTY = {
    "band_plot": lambda p: band_plot(pd.DataFrame(), "day", "es_mean", "label", p),
    "plot_es, no scored day": lambda p: plot_es(_days([1, 1]).assign(es_mean=np.nan), p, group="label"),
    "plot_ccdf": lambda p: plot_ccdf(np.array([]), p),
    "plot_herd": lambda p: plot_herd(pd.DataFrame(columns=["treatment", "posts", "mean_score"]), p),
    "plot_growth": lambda p: plot_growth(pd.DataFrame(), p),
    "plot_curves": lambda p: plot_curves(pd.DataFrame(columns=["arm", "turn", "d_mc_mean"]), p),
    "plot_satisfaction": lambda p: plot_satisfaction(pd.DataFrame(columns=["arm", "turn", "rate"]), p),
    "plot_escalation": lambda p: plot_escalation(pd.DataFrame(columns=["scenario", "line", "day", "runs", "es_mean"]), p),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_a_figure_with_nothing_to_show_is_not_drawn(name: str, tmp_path: Path) -> None:
    with pytest.raises(NothingToShow):
        EMPTY[name](tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


# -- the scripted wargame baseline reacts to its scenario ------------------------------------------------------------
def _es(log: RunLog) -> list[float]:
    return escalation_tables(log)["per_day"]["es"].round(6).tolist()


@pytest.fixture(scope="module")
def wargame_runs(tmp_path_factory) -> dict[tuple[str, int], RunLog]:
    tmp = tmp_path_factory.mktemp("wargame")
    return {(s, seed): agentsim.run(f"wargame/{s}.yaml", backend="scripted", steps=5, seed=seed, run_dir=tmp / f"{s}-{seed}")
            for s in WARGAME for seed in (0, 7)}


@pytest.mark.parametrize("seed", [0, 7])
def test_the_scripted_baseline_escalates_differently_per_scenario(wargame_runs, seed: int) -> None:
    per_day = {s: _es(wargame_runs[s, seed]) for s in WARGAME}
    assert len({tuple(v) for v in per_day.values()}) == 3, per_day
    # day 1 answers the day-0 incident: the victim answers its aggressor, and in neutral nobody does
    for scenario, (aggressor, victim) in {"invasion": ("Orange", "Purple"), "cyberattack": ("Green", "Blue")}.items():
        ev = wargame_runs[scenario, seed].events
        day1 = ev[(ev["step"] == 0) & (ev["agent_id"] == victim) & (ev["action"] != "Message")]
        assert aggressor in set(day1["target"]), day1[["action", "target"]]
    neutral = wargame_runs["neutral", seed].events
    assert not neutral[(neutral["step"] == 0) & (neutral["agent_id"] == "Purple")]["target"].eq("Orange").any()


def test_the_scripted_baseline_is_deterministic_for_a_seed(wargame_runs, tmp_path: Path) -> None:
    again = agentsim.run("wargame/invasion.yaml", backend="scripted", steps=5, seed=7, run_dir=tmp_path / "again")
    assert _es(again) == _es(wargame_runs["invasion", 7])
    assert_same_log(again.run_dir, wargame_runs["invasion", 7].run_dir)


@pytest.mark.parametrize(("hit", "least"), [
    ([], None),                                                          # unprovoked: no retaliation
    (["Publicly criticise a nation's actions"], 0),                      # 12 points: from the mildest answer up
    (["Execute full on invasion"], 1),                                   # violent (28): one level up
    (["Execute tactical nuclear strike"], 2),                            # nuclear (60): two levels up
    (["Execute full on invasion", "Execute targeted attack"], 2),       # two violent acts: two levels up
])
def test_the_answer_grows_with_the_hostility_met(hit: list[str], least: int | None) -> None:
    from agentsim.scenarios.wargame.actions import make_turn_model, target_kinds
    from agentsim.scenarios.wargame.data import load_actions
    from agentsim.scenarios.wargame.scripted import RETALIATION, nation_turn
    from agentsim.scenarios.wargame.world import NationView, TakenAction

    actions = load_actions(None)
    nations = ("Purple", "Orange", "Blue")
    model = make_turn_model([a.name for a in actions], list(nations), 3, 2, 500, 200)
    for seed in range(20):
        view = NationView("Purple", 1, nations, {"aggression": 0, "willingness to use force": 10}, {},
                          tuple(TakenAction(0, "Orange", "Purple", name) for name in hit), (), 3, 2, model, target_kinds(actions))
        turn = nation_turn(view, np.random.default_rng(seed))
        against = [a.action_name for a in turn.actions if a.target_nation == "Orange"]
        if least is None:
            assert not set(against) & set(RETALIATION)
        else:  # force 10: always retaliates; aggression 0: at exactly the level the hostility sets
            assert against and RETALIATION.index(against[0]) == least, (seed, against)


@pytest.mark.parametrize(("event", "where", "message"), [
    ({"actor": "Mauve", "target": "Purple", "action": "Execute full on invasion"}, "world.day0_events.0.actor", "unknown nation 'Mauve'"),
    ({"actor": "Orange", "target": "Purple", "action": "Invade"}, "world.day0_events.0.action", "unknown action 'Invade'"),
    ({"actor": "Orange", "target": "Orange", "action": "Execute full on invasion"}, "world.day0_events.0.target", "acts on itself"),
    ({"actor": "Orange", "target": "Purple"}, "world.day0_events.0.action", "missing"),
])
def test_bad_day0_events_are_named(event: dict, where: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        agentsim.run("wargame/invasion.yaml", backend="scripted", **{"world.day0_events": [event]})
    assert where in e.value.render() and message in e.value.render()
    r = agentsim_cli("validate", str(SCENARIOS / "wargame" / "invasion.yaml"), "--set", f"world.day0_events=[{json.dumps(event)}]")
    assert r.returncode == 2 and where in r.stderr and message in r.stderr


# -- labels and titles -------------------------------------------------------------------------------------------
def _ours(ax) -> list:
    """Our lines on an ES panel: labelled, not the study's overlay (gid `study:<model>`)."""
    return [x for x in ax.get_lines() if not x.get_label().startswith("_") and not str(x.get_gid() or "").startswith("study:")]


def _study_lines(ax) -> dict[str, object]:
    return {str(x.get_gid()).removeprefix("study:"): x for x in ax.get_lines() if str(x.get_gid() or "").startswith("study:")}


def test_figures_name_backend_model_scenario_runs_and_partial_runs(wargame_runs, tmp_path: Path) -> None:
    logs = [wargame_runs["invasion", 0], wargame_runs["invasion", 7]]
    assert run_label(logs[0]) == "scripted baseline"
    fig = escalation_figure(compare_runs(logs), logs, study=False)
    (ax,) = fig.axes  # one scenario: one panel
    assert fig.get_suptitle() == "ES per day: invasion, 2 runs"
    assert ax.get_title() == "invasion (2 runs per line at most)"
    assert [line.get_label() for line in ax.get_lines()] == ["scripted baseline [steps=5] (n=2)"]
    by_day = compare_runs(logs)["es_by_day"]
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx(by_day["es_mean"].tolist())
    # a run whose process died is partial, and the title says so
    meta = json.loads((logs[1].run_dir / "run.json").read_text())
    partial = tmp_path / "partial"
    shutil.copytree(logs[1].run_dir, partial)
    (partial / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    assert runs_title("ES per day", [logs[0], RunLog(partial)]) == "ES per day: invasion, 2 runs (1 partial)"


def test_the_cli_figure_is_the_one_checked_here(wargame_runs, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for s in WARGAME:
        shutil.copytree(wargame_runs[s, 0].run_dir, runs / s)
    r = agentsim_cli("analyze", str(runs), "escalation", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "o" / "escalation_es.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logs = [RunLog(runs / s) for s in WARGAME]
    fig = escalation_figure(compare_runs(logs), logs, study=False)
    # Rivera et al.'s layout: a panel per scenario in the study's order, a line per backend and model in each
    assert [ax.get_title() for ax in fig.axes] == [f"{s} (1 run per line at most)" for s in WARGAME]
    assert [[line.get_label() for line in _ours(ax)] for ax in fig.axes] == [["scripted baseline [steps=5] (n=1, no CI)"]] * 3
    assert fig.get_suptitle() == "ES per day: " + ", ".join(sorted(WARGAME)) + ", 3 runs"
    by_day = compare_runs(logs)["es_by_day"].set_index(["scenario", "day"])["es_mean"]
    for ax, s in zip(fig.axes, WARGAME, strict=True):
        assert list(_ours(ax)[0].get_ydata()) == pytest.approx(by_day[s].tolist())
    assert len({tuple(_ours(ax)[0].get_ydata()) for ax in fig.axes}) == 3  # three curves, not one


def _study_means(study_data: Path, scenario: str, days: int) -> dict[str, list[float]]:
    """The study's own per-day scores (its evals/json_v6_exponential/*_raw.json: Total / 8 nations), averaged over
    each model's runs of `scenario`: an independent source for the overlaid curves."""
    per: dict[str, list[list[float]]] = {}
    for path in (study_data / "evals" / "json_v6_exponential").glob("*_raw.json"):
        model, sc, _ = path.stem.removesuffix("_raw").rsplit(" ", 2)
        if sc.lower() == scenario:
            per.setdefault(model, []).append([d["Total"] / 8 for d in sorted(json.loads(path.read_text()), key=lambda d: d["Day"])][:days])
    return {m: np.mean(np.array(v), axis=0).tolist() for m, v in per.items()}


def test_the_studys_curves_are_overlaid_where_the_scenario_matches(wargame_runs, study_data: Path, tmp_path: Path) -> None:
    """Each panel of a scenario the study played carries the study's curve of each of its models over the panel's
    days (checked against the study's own scores); a scenario it did not play gets none."""
    other = tmp_path / "other"
    shutil.copytree(wargame_runs["neutral", 0].run_dir, other)
    meta = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**meta, "world": {**meta["world"], "scenario": "blockade"}}))
    logs = [wargame_runs["invasion", 0], wargame_runs["cyberattack", 0], RunLog(other)]
    fig = escalation_figure(compare_runs(logs), logs, data_dir=study_data)
    assert [ax.get_title().split(" ")[0] for ax in fig.axes] == ["invasion", "cyberattack", "blockade"]
    for ax, scenario in zip(fig.axes[:2], ("invasion", "cyberattack"), strict=True):
        expected = _study_means(study_data, scenario, 5)
        lines = _study_lines(ax)
        assert sorted(lines) == sorted(expected) and len(lines) == 6
        for model, line in lines.items():
            assert list(line.get_xdata()) == [1, 2, 3, 4, 5]
            assert list(line.get_ydata()) == pytest.approx(expected[model], abs=1e-9), (scenario, model)
            assert line.get_linestyle() == "--"
    assert _study_lines(fig.axes[2]) == {}
    legend = fig.legends[0]
    assert "Rivera et al. (2024)" in legend.get_title().get_text()
    assert "GPT-4 (n=10 per scenario)" in [t.get_text() for t in legend.get_texts()]
    # our line keeps its palette colour; the study's are greys
    assert _ours(fig.axes[0])[0].get_color() == plots.PALETTE[0]


def test_without_the_studys_data_the_overlay_is_skipped_with_a_note(wargame_runs, tmp_path: Path) -> None:
    from agentsim.analysis.escalation import escalation_plots

    logs = [wargame_runs["invasion", 0]]
    fig = escalation_figure(compare_runs(logs), logs, data_dir=tmp_path / "nowhere")
    assert _study_lines(fig.axes[0]) == {} and not fig.legends
    assert "Rivera et al. (2024)'s curves not overlaid" in fig.get_suptitle()
    tables = compare_runs(logs)
    paths = escalation_plots(tables, logs, tmp_path / "out", data_dir=tmp_path / "nowhere")
    assert tmp_path / "out" / "escalation_es.png" in paths
    assert any("curves not overlaid" in n and "agentsim data fetch escalaition" in n for n in notes_of(tables["es_by_day"]))


def _two_models(scenarios: tuple[str, ...], line: str = "line", low: str = "ci_low", high: str = "ci_high") -> pd.DataFrame:
    rows = []
    for i, sc in enumerate(scenarios):
        for j, model in enumerate(("zeta via vLLM", "alpha via vLLM")[: 1 + (i % 2 == 0)]):  # panel 2 lacks "alpha"
            for day in (1, 2, 3):
                rows.append({"scenario": sc, line: model, "day": day, "runs": 3, "es_mean": float(day + j),
                             low: day + j - 0.5, high: day + j + 0.5})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("draw", [
    lambda: plot_es_panels(_two_models(("Neutral", "Invasion", "Cyberattack"))),
    lambda: plot_escalation(_two_models(("Neutral", "Invasion", "Cyberattack"), low="es_low", high="es_high")),
], ids=["plot_es_panels", "plot_escalation"])
def test_a_model_has_one_colour_in_every_panel(draw) -> None:
    """A panel lacking a model must not shift the colours of the others (each panel's styles of its own lines did)."""
    fig = draw()
    colours: dict[str, set] = {}
    for ax in fig.axes:
        for line in _ours(ax):
            colours.setdefault(line.get_label().split(" (")[0], set()).add(line.get_color())
    assert colours == {"alpha via vLLM": {plots.PALETTE[0]}, "zeta via vLLM": {plots.PALETTE[1]}}


def test_a_study_table_is_overlaid_on_its_scenario_whatever_the_case() -> None:
    study = pd.DataFrame({"scenario": ["Invasion"] * 4 + ["Neutral"] * 4, "model": ["GPT-4", "GPT-4", "Llama", "Llama"] * 2,
                          "day": [1, 2] * 4, "runs": [10, 10, 5, 5] * 2, "es_mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    fig = plot_escalation(_two_models(("invasion", "taiwan"), low="es_low", high="es_high"), study=study)
    lines = _study_lines(fig.axes[0])
    assert {m: list(x.get_ydata()) for m, x in lines.items()} == {"GPT-4": [1.0, 2.0], "Llama": [3.0, 4.0]}
    assert _study_lines(fig.axes[1]) == {}


def test_growth_and_herd_say_n_and_the_interval() -> None:
    growth = pd.DataFrame({"minute": [0, 1], "runs": [1, 1], **{f"{m}{s}": [1.0, np.nan if s else 2.0] for m in ("scale", "depth", "max_breadth")
                                                                   for s in ("", "_low", "_high")}})
    fig = plot_growth(growth, title="Cascade growth: x, 1 run")
    assert fig.axes[0].get_lines()[0].get_label() == "simulated (n=1, no CI)" and not _bands(fig.axes[0])
    herd = pd.DataFrame({"treatment": ["up", "control"], "posts": [4, 1], "mean_score": [2.0, 0.0], "low": [1.0, np.nan],
                         "high": [3.0, np.nan], "mean_others": [1.0, 0.0], "low_others": [0.5, np.nan], "high_others": [1.5, np.nan]})
    ax = plot_herd(herd).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["up\n(n=4)", "control\n(n=1, no CI)"]
    assert ax.get_legend().get_title().get_text() == "bars: 95% t-interval over posts"


def test_agents_without_a_model_are_not_in_the_label(tmp_path: Path) -> None:
    from conftest import write_run_log

    run = write_run_log(tmp_path / "r", agents=[{"agent_id": "a", "model": "x"}, {"agent_id": "voter", "model": ""}], steps=1,
                        models={"x": {"backend": "scripted", "model": "embedded:smollm2-135m-instruct", "label": "scripted:social"}})
    assert run_label(RunLog(run)) == "scripted baseline"


@pytest.mark.parametrize(("entry", "label"), [
    ({"backend": "scripted", "model": "embedded:smollm2-135m-instruct", "label": "scripted:social"}, "scripted baseline"),
    ({"backend": "vllm", "model": "embedded:smollm2-135m-instruct", "label": "embedded:smollm2-135m-instruct"}, "SmolLM2-135M-Instruct via vLLM"),
    ({"backend": "vllm", "model": "embedded:tiny-random-llama"}, "tiny random-weight Llama via vLLM"),
    ({"backend": "openai", "model": "gpt-4o-mini"}, "gpt-4o-mini via OpenAI API"),
    ({"backend": "replay", "model": "x", "label": "replay:scripted:drift"}, "replay of scripted baseline"),
    ({"backend": "replay", "model": "x", "label": "replay:scripted:drift", "recorded_backend": "scripted"}, "replay of scripted baseline"),
    ({"backend": "replay", "model": "x", "label": "replay:embedded:smollm2-135m-instruct", "recorded_backend": "vllm"},
     "replay of SmolLM2-135M-Instruct via vLLM"),
    ({"backend": "replay", "model": "x", "label": "replay:gpt-4o-mini", "recorded_backend": "openai"}, "replay of gpt-4o-mini via OpenAI API"),
    ({"backend": "replay", "model": "x", "label": "replay:gpt-4o-mini"}, "replay of gpt-4o-mini"),  # recorded before recorded_backend
])
def test_every_family_labels_backend_and_model(entry: dict, label: str) -> None:
    assert backend_model_label(entry) == label


# -- agentsim.run --------------------------------------------------------------------------------------------------
def test_agentsim_run_is_the_cli_run(tmp_path: Path) -> None:
    """Same scenario, flags and overrides: the API and `agentsim run` write the same log and record the same
    overrides (one path: agentsim/runtime/entry.py)."""
    log = agentsim.run("wargame/cyberattack.yaml", backend="scripted", steps=3, seed=4, run_dir=tmp_path / "api",
                       **{"world.max_actions_per_day": 2, "world.world_model.enabled": False})
    assert isinstance(log, RunLog) and log.meta["status"] == "completed" and log.complete_steps == 3
    run_ok(str(SCENARIOS / "wargame" / "cyberattack.yaml"), "--backend", "scripted", "--steps", "3", "--seed", "4",
           "--set", "world.max_actions_per_day=2", "--set", "world.world_model.enabled=false", "--run-dir", str(tmp_path / "cli"), "--quiet")
    assert_same_log(log.run_dir, tmp_path / "cli")
    cli = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert log.meta["overrides"] == cli["overrides"] == {"models.default.backend": "scripted", "seed": 4, "steps": 3,
                                                         "world.max_actions_per_day": 2, "world.world_model.enabled": False}
    ev = log.events
    assert ev[ev["action"] != "Message"].groupby(["step", "agent_id"]).size().max() <= 2


def test_agentsim_run_writes_under_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = agentsim.run(SCENARIOS / "wargame" / "neutral.yaml", backend="scripted", steps=1, out="here")
    assert log.run_dir.parent == tmp_path / "here" and log.run_dir.name.startswith("neutral-") and log.run_dir.name.endswith("-s0")


@pytest.mark.parametrize(("args", "kwargs", "needle"), [
    (("wargame/neutral.yaml",), {"backend": "scripted", "world.max_actions_per_dya": 2}, "did you mean 'max_actions_per_day'"),
    (("wargame/neutral.yaml",), {"backend": "scripted", "steps": 0}, "steps"),
    (("wargame/neutral.yaml",), {"backend": "nonsense"}, "backend"),
    (("wargame/neutral.yaml",), {"backend": "replay"}, "needs replay_from"),
    (("wargame/no-such.yaml",), {}, "scenario file not found"),
    (("wargame/neutral.yaml",), {"backend": "scripted", "world..x": 1}, "not a dotted path"),
])
def test_agentsim_run_raises_the_clis_spec_errors(args, kwargs, needle: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        agentsim.run(*args, run_dir=tmp_path / "r", **kwargs)
    assert needle in e.value.render()
    assert not (tmp_path / "r").exists()


def test_agentsim_run_takes_a_loaded_scenario_as_it_is(tmp_path: Path) -> None:
    sc = agentsim.load_scenario(SCENARIOS / "wargame" / "neutral.yaml", backend="scripted", steps=2)
    log = agentsim.run(sc, run_dir=tmp_path / "r")
    assert log.complete_steps == 2
    with pytest.raises(TypeError, match="need a scenario file or name"):
        agentsim.run(sc, steps=3)


def test_agentsim_run_refuses_a_used_run_dir(tmp_path: Path) -> None:
    from agentsim.runtime.entry import RunError

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("")
    with pytest.raises((RunError, SpecError), match="not empty|exists"):
        agentsim.run("wargame/neutral.yaml", backend="scripted", steps=1, run_dir=tmp_path / "r")


def test_agentsim_run_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A Jupyter kernel runs an event loop; asyncio.run refused to start in it, so notebooks shelled out to the CLI.
    agentsim.run inside a running loop writes the same log as outside one."""
    import asyncio

    async def in_a_cell() -> RunLog:
        return agentsim.run("wargame/invasion.yaml", backend="scripted", steps=2, run_dir=tmp_path / "inside")

    inside = asyncio.run(in_a_cell())
    outside = agentsim.run("wargame/invasion.yaml", backend="scripted", steps=2, run_dir=tmp_path / "outside")
    assert inside.meta["status"] == "completed" and inside.complete_steps == 2
    assert_same_log(inside.run_dir, outside.run_dir)


def test_the_readme_shows_one_figure_per_family() -> None:
    """README's figures: one committed PNG per family under docs/figures (made by scripts/readme_figures.py),
    small (150 dpi), each with a one-line caption under it."""
    import re

    from PIL import Image

    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((docs/figures/[^)]+\.png)\)\n\*([^\n]+)", readme)
    assert sorted(Path(p).stem for p, _ in shown) == ["drift", "social", "tournament", "wargame"]
    for path, caption in shown:
        png = REPO / path
        assert png.is_file() and png.stat().st_size < 400 * 1024, path
        assert round(Image.open(png).info["dpi"][0]) == 150, path
        assert caption.startswith(f"{Path(path).stem.capitalize()}: "), caption
