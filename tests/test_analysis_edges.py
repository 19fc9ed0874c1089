"""Analyses at their edges: degenerate runs (no events, fewest agents, killed before step 1) for every family
with and without --out; statistics that are undefined; interval coverage; tables from outside the platform
(checked, cycles named, against networkx); and how `agentsim analyze` finds an analysis."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from agentsim.analysis import ANALYSES
from agentsim.analysis.cascades import (
    CascadeError,
    cascade_growth,
    cascade_metrics,
    cascade_nodes,
    compare_growth,
)
from agentsim.analysis.ratings import bradley_terry, elo, points, rating_tables
from agentsim.analysis.social import (
    exposure_intervals,
    fit_exposure_hazard,
    herd_from_events,
    power_law_table,
    saturation_test,
)
from agentsim.analysis.stats import bootstrap, diff_of_means, mean_bootstrap, mean_t_interval
from agentsim.analysis.tables import TableError, notes_of, notes_table, why_not_applicable
from agentsim.analysis.tournament import match_log
from agentsim.cli import app
from agentsim.core.family import Analysis, Family
from agentsim.core.registry import find_analysis, registered
from agentsim.logs.reader import RunLog

from conftest import SCENARIOS

FAMILY_ANALYSIS = {"wargame": "escalation", "social": "social", "tournament": "tournament", "drift": "drift"}
#: Figures of one mode only (CSD or live tournaments) and the table that makes a run of that mode.
MODE_PLOTS = {**dict.fromkeys(["tournament_expected_scores.png", "tournament_placements.png", "tournament_sensitivity.png",
                               "tournament_convergence.png"], "expected_scores"),
              **dict.fromkeys(["tournament_standings.png", "tournament_ratings.png", "tournament_rank_agreement.png"], "standings")}
PLOTS = {"escalation": ["escalation_es.png", "escalation_categories.png", "escalation_violent.png", "escalation_nation_day.png",
                        "escalation_targets.png", "escalation_llm_usage.png"],
         "social": ["social_cascade_ccdf.png", "social_adoption.png", "social_network.png", "social_herd.png",
                    "social_herd_trajectory.png", "social_polarization.png", "social_stance.png", "social_llm_usage.png"],
         "tournament": ["tournament_expected_scores.png", "tournament_placements.png", "tournament_sensitivity.png",
                        "tournament_convergence.png", "tournament_standings.png", "tournament_ratings.png",
                        "tournament_rank_agreement.png", "tournament_llm_usage.png"],
         "drift": ["drift_d_mc.png", "drift_d_topk.png", "drift_traces.png", "drift_reminder_effect.png",
                   "drift_satisfaction.png", "drift_constraints.png", "drift_llm_usage.png"]}


@pytest.mark.parametrize(("out", "says"), [
    ("{tmp}/afile", "exists and is not a directory"),
    ("{tmp}/afile/figs", "is inside {tmp}/afile, which is a file"),
    ("/proc/agentsim-figs", "cannot create the tables and figures in /proc: "),  # refuses only when asked
    ("/sys/agentsim-figs", "cannot create the tables and figures in /sys: "),
])
def test_an_out_directory_that_cannot_be_made_is_one_line(degenerate, tmp_path: Path, out: str, says: str) -> None:
    (tmp_path / "afile").write_text("a file")
    out = out.replace("{tmp}", str(tmp_path))
    r = _cli("analyze", str(degenerate("wargame", "no_events")), "escalation", "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"--out {out}: " in r.stderr and says.replace("{tmp}", str(tmp_path)) in r.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentsim", *args], capture_output=True, text=True, timeout=600)


def _analyze(*args: str):
    """`agentsim analyze ...` in this process (the real command; a subprocess per case would spend minutes importing)."""
    return CliRunner().invoke(app, ["analyze", *args])


# -- degenerate runs, built for real -----------------------------------------------------------------------------
class HangingServer:
    """An OpenAI-compatible address on 127.0.0.1 that accepts connections and never answers. A run whose model
    calls it writes run.json and its agents, then waits inside its first step: kill it there and the run
    directory is exactly what a run killed before step 1 leaves."""

    def __enter__(self) -> HangingServer:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def __exit__(self, *exc: object) -> None:
        for c in self.connections:
            c.close()
        self.sock.close()


def _run_scripted(scenario: Path, run_dir: Path, *sets: str, steps: int | None = None, check: bool = True) -> Path:
    args = ["run", str(scenario), "--backend", "scripted", "--run-dir", str(run_dir), "--quiet"]
    args += [a for s in sets for a in ("--set", s)] + (["--steps", str(steps)] if steps else [])
    r = _cli(*args)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return run_dir


def _killed_before_first_step(scenario: Path, run_dir: Path) -> Path:
    with HangingServer() as srv:
        model = f"{{backend: openai, model: m, base_url: 'http://127.0.0.1:{srv.port}/v1', max_retries: 0, timeout_s: 600}}"
        proc = subprocess.Popen([sys.executable, "-m", "agentsim", "run", str(scenario), "--run-dir", str(run_dir), "--quiet",
                                 "--set", f"models.default={model}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 180
        while not srv.connections:  # the first LLM request: run.json and the agents are on disk by now
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"the run never called the model: {proc.communicate()[1].decode()[-2000:]}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["steps_completed"] == 0 and meta["status"] == "running"
    return run_dir


def _two_nations(tmp: Path) -> Path:
    data = yaml.safe_load((Path(__file__).parents[1] / "agentsim/scenarios/wargame/data/nations.yaml").read_text())
    data["nations"] = data["nations"][:2]  # the fewest a wargame takes (NationsFile: min_length=2)
    (tmp / "two_nations.yaml").write_text(yaml.safe_dump(data))
    return tmp / "two_nations.yaml"


WARGAME, SOCIAL = SCENARIOS / "wargame" / "neutral.yaml", SCENARIOS / "social" / "x_information_spread.yaml"
TOURNAMENT_LIVE, TOURNAMENT_CSD = SCENARIOS / "tournament" / "live_ipd.yaml", SCENARIOS / "tournament" / "csd_example.yaml"
DRIFT = SCENARIOS / "drift" / "rewrite.yaml"
FEWEST = {"wargame": ("nation", 2), "social": ("user", 1), "tournament": ("participant", 2), "drift": ("assistant", 1)}
TWO = "world.participants=[{name: a, model: default, skill: 0.9}, {name: b, model: default, skill: 0.1}]"

#: (family, kind) -> how to build it in a folder. "one_agent" is the fewest agents the family takes (one user, one
#: conversation; two nations, two players: one match). A drift run logs a turn per conversation and step, so a
#: drift run "with no events" is the run killed before step 1 (no_steps).
BUILDS: dict[tuple[str, str], Callable[[Path], Path]] = {
    ("wargame", "no_events"): lambda t: _run_scripted(WARGAME, t / "run", "world.max_actions_per_day=0", "world.max_messages_per_day=0",
                                                      "world.world_model.enabled=false", steps=2),
    ("wargame", "one_agent"): lambda t: _run_scripted(WARGAME, t / "run", f"world.nations_file={_two_nations(t)}", steps=2),
    ("wargame", "no_steps"): lambda t: _killed_before_first_step(WARGAME, t / "run"),
    ("social", "no_events"): lambda t: _run_scripted(SOCIAL, t / "run", "world.time.activity.probability=0", "world.seed_posts.count=0",
                                                     "world.interventions=[]", steps=3),
    ("social", "one_agent"): lambda t: _run_scripted(SOCIAL, t / "run", "world.users.count=1", steps=3),
    ("social", "no_steps"): lambda t: _killed_before_first_step(SOCIAL, t / "run"),
    # CSD logs events only in its last step's sensitivity sweep; without a sweep it logs none. (The tournament
    # family fails that last step when the sweep is empty, leaving a run of whole steps with no events: check=False.)
    ("tournament", "no_events"): lambda t: _run_scripted(TOURNAMENT_CSD, t / "run", "world.csd.sensitivity=[]", "world.csd.n_tournaments=500",
                                                         steps=2, check=False),
    ("tournament", "one_agent"): lambda t: _run_scripted(TOURNAMENT_LIVE, t / "run", TWO, steps=1),
    ("tournament", "no_steps"): lambda t: _killed_before_first_step(TOURNAMENT_LIVE, t / "run"),
    ("drift", "one_agent"): lambda t: _run_scripted(DRIFT, t / "run", "world.arms=[{name: none}]", "world.conversations_per_arm=1", steps=3),
    ("drift", "no_steps"): lambda t: _killed_before_first_step(DRIFT, t / "run"),
}


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    built: dict[tuple[str, str], Path] = {}

    def get(family: str, kind: str) -> Path:
        if (family, kind) not in built:
            run = BUILDS[family, kind](tmp_path_factory.mktemp(f"{family}-{kind}"))
            log = RunLog(run)
            if kind == "no_events":
                assert log.events.empty and log.meta["steps_completed"] >= 1
            if kind == "one_agent":
                agent_kind, fewest = FEWEST[family]
                assert (log.agents["kind"] == agent_kind).sum() == fewest
            built[family, kind] = run
        return built[family, kind]

    return get


@pytest.mark.parametrize("with_out", [False, True], ids=["print", "out"])
@pytest.mark.parametrize(("family", "kind"), sorted(BUILDS))
def test_every_analysis_gives_tables_with_notes_on_degenerate_runs(family: str, kind: str, with_out: bool, degenerate, tmp_path: Path) -> None:
    run = degenerate(family, kind)
    name = FAMILY_ANALYSIS[family]
    out = tmp_path / "report"
    r = _analyze(str(run), name, *(["--out", str(out)] if with_out else []))
    assert r.exit_code == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n{r.exception!r}"
    tables = ANALYSES[name](RunLog(run))
    assert tables
    for title, df in tables.items():
        if why := why_not_applicable(df):  # a table that does not apply: hidden, named in one line with why
            assert f"{name}: {title}\n" not in r.stdout and f"{title} ({why})" in r.stdout.split("hidden (do not apply to this run): ")[1]
            continue
        assert f"{name}: {title}" in r.stdout
        assert not {"error", "note"} & set(df.columns), f"{title}: a note belongs in notes, not in a column"
        if df.empty:
            assert notes_of(df), f"{title} is empty and does not say why"
        for n in notes_of(df):
            assert f"note: {n}" in r.stdout
    if kind == "no_steps":
        assert "the run completed 0 of" in r.stdout
    if with_out:
        for title, df in tables.items():
            assert len(pd.read_csv(out / f"{name}_{title}.csv")) == len(df)
        notes = pd.read_csv(out / f"{name}_notes.csv")
        drawn = notes["note"].str.contains(" not drawn: ")
        # the figures add one table of their own, llm_usage (agentsim.analysis.llm_usage), with its CSV and notes
        usage = notes["table"] == "llm_usage"
        assert notes[~drawn & ~usage].to_dict("records") == notes_table(tables).to_dict("records")
        assert notes[usage & ~drawn]["note"].tolist() and (out / f"{name}_llm_usage.csv").exists()
        for png in PLOTS[name]:  # a figure is drawn, or not drawn with a note saying why (never an empty figure)
            if png in MODE_PLOTS and MODE_PLOTS[png] not in tables:  # a live run has no CSD figures, and back
                assert not (out / png).exists(), png
                continue
            skipped = notes[drawn & notes["note"].str.startswith(f"figure {png} not drawn: ")]
            if (out / png).exists():
                assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and skipped.empty, png
            else:
                assert len(skipped) == 1 and skipped["note"].iloc[0] in r.stderr, (png, notes)
    else:
        assert not out.exists()


def test_social_run_whose_users_never_act_draws_no_empty_figure(degenerate, tmp_path: Path) -> None:
    """Issue 15 §4: this crashed in plot_polarization with KeyError: 'group'. Issue 18 §1: a figure with nothing to
    show is not drawn; a note says why."""
    r = _cli("analyze", str(degenerate("social", "no_events")), "social", "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "note: no authored posts by users in this run" in r.stdout
    notes = pd.read_csv(tmp_path / "o" / "social_notes.csv")
    for png, table, why in (("social_polarization.png", "polarization", "no authored posts by users in this run"),
                            ("social_cascade_ccdf.png", "cascades", "no cascades in this run (no reposts)"),
                            ("social_herd.png", "herd", "no herd-effect experiment in this run")):
        assert not (tmp_path / "o" / png).exists(), png
        mine = notes[(notes["table"] == table) & notes["note"].str.startswith(f"figure {png} not drawn: {why}")]
        assert len(mine) == 1, (png, notes.to_dict("records"))
        assert f"figure {png} not drawn: {why}" in r.stderr


def test_one_match_gives_an_undefined_interval_not_a_zero_width_one(degenerate) -> None:
    log = RunLog(degenerate("tournament", "one_agent"))
    t = ANALYSES["tournament"](log)
    assert len(match_log(log.events)) == 1
    assert t["ratings"][["ci_low", "ci_high"]].isna().all().all()
    assert any("strength CI undefined" in n and "1 match" in n for n in notes_of(t["ratings"]))


# -- statistics that are undefined say so ------------------------------------------------------------------------
UNDEFINED = {
    "mean bootstrap, one value": lambda: mean_bootstrap(np.array([3.0])),
    "mean bootstrap, no value": lambda: mean_bootstrap(np.array([])),
    "difference of means, one value on one side": lambda: diff_of_means(np.array([1.0]), np.array([1.0, 2.0, 3.0])),
    "t-interval, one value": lambda: mean_t_interval(np.array([3.0]))[1],
    "t-interval, no value": lambda: mean_t_interval(np.array([np.nan]))[1],
    "vector statistic, one row": lambda: bootstrap((np.arange(1),), lambda i, axis=-1: np.stack([i.mean(axis), i.mean(axis)]), output_shape=(2,)),
}


@pytest.mark.parametrize("case", list(UNDEFINED))
def test_undefined_intervals_are_nan_with_a_note(case: str) -> None:
    ci = UNDEFINED[case]()
    assert np.isnan(ci.low).all() and np.isnan(ci.high).all() and not ci.defined
    assert ci.note.startswith("undefined")


def test_constant_data_give_a_zero_width_interval_that_says_why() -> None:
    ci = mean_bootstrap(np.array([2.0, 2.0, 2.0]))
    assert (ci.low, ci.high) == (2.0, 2.0) and "zero width" in ci.note
    _, t = mean_t_interval(np.array([2.0, 2.0]))
    assert (t.low, t.high) == (2.0, 2.0) and "zero width" in t.note


SELF_MATCH = pd.DataFrame({"a": ["x", "y", "z"], "b": ["y", "y", "x"], "score_a": [1.0, 0.5, 0.0]})


@pytest.mark.parametrize("rate", [elo, bradley_terry, points, rating_tables], ids=lambda f: f.__name__)
def test_a_self_match_is_refused_naming_the_row(rate) -> None:
    with pytest.raises(TableError, match=r"cannot play themself: row 1 \(y vs y\)"):
        rate(SELF_MATCH)


def _separated_intervals() -> pd.DataFrame:
    """Subjects with exposure 2 all adopt, those with exposure 1 never do: complete separation."""
    return pd.DataFrame([{"id": k, "start": 0, "stop": 3 + k % 3, "exposure": 2 if k < 10 else 1, "event": int(k < 10)} for k in range(20)])


@pytest.mark.parametrize(("fit", "expect"), [
    (fit_exposure_hazard, "Cox fit (lifelines): ConvergenceWarning: Column exposure have very low variance"),
    (saturation_test, "saturation test (statsmodels): PerfectSeparationWarning"),
], ids=["cox", "saturation"])
def test_separation_warnings_become_readable_notes(fit, expect: str, capfd: pytest.CaptureFixture[str]) -> None:
    notes = fit(_separated_intervals())["notes"]
    assert any(n.startswith(expect) for n in notes), notes
    assert all(">>>" not in n and "\n" not in n for n in notes)  # readable: no code sample, one line
    assert capfd.readouterr().err == ""  # not raw on stderr


def test_powerlaw_no_data_in_range_is_a_note(capfd: pytest.CaptureFixture[str]) -> None:
    t = power_law_table(pd.DataFrame({"size": [3, 5, 2, 5, 2, 5, 2]}))
    assert t.empty and any("No data points in defined range" in n and "3 distinct" in n for n in notes_of(t)), notes_of(t)
    assert capfd.readouterr().err == ""


# -- interval coverage on synthetic data with a known value ------------------------------------------------------
def _covers(make: Callable[[np.random.Generator, int], tuple[float, float]], truth: float, reps: int = 200) -> float:
    hits = 0
    for seed in range(reps):
        lo, hi = make(np.random.default_rng(seed), seed)
        hits += lo <= truth <= hi
    return hits / reps


def _bt_interval(rng: np.random.Generator, seed: int) -> tuple[float, float]:
    true = np.array([0.8, 0.2, -0.3, -0.7])  # mean 0, as the fitted strengths
    i = rng.integers(0, 4, 150)
    j = (i + rng.integers(1, 4, 150)) % 4
    win = rng.random(150) < 1 / (1 + np.exp(-(true[i] - true[j])))
    m = pd.DataFrame({"a": [f"p{k}" for k in i], "b": [f"p{k}" for k in j], "score_a": win.astype(float)})
    row = bradley_terry(m, bootstrap=200, seed=seed).set_index("player").loc["p0"]
    return row["ci_low"], row["ci_high"]


COVERAGE = {
    # a skewed variable (gamma, mean 1): the bootstrap of a mean
    "mean_bootstrap": (lambda rng, s: (lambda c: (c.low, c.high))(mean_bootstrap(rng.gamma(4, 0.25, 40), n_resamples=1000, seed=s)), 1.0),
    # two independent samples of different sizes: the polarization change
    "diff_of_means": (lambda rng, s: (lambda c: (c.low, c.high))(diff_of_means(rng.normal(0.3, 0.2, 25), rng.normal(0.5, 0.3, 35),
                                                                                 n_resamples=1000, seed=s)), 0.2),
    "mean_t_interval": (lambda rng, s: (lambda c: (c.low, c.high))(mean_t_interval(rng.normal(2, 1, 15))[1]), 2.0),
    # Bradley-Terry strength of the best of four players (true strengths have mean 0: 0.8 - 0 = 0.8)
    "bradley_terry": (_bt_interval, 0.8),
}


@pytest.mark.parametrize("helper", list(COVERAGE))
def test_intervals_cover_the_true_value_about_95_percent_of_the_time(helper: str) -> None:
    make, truth = COVERAGE[helper]
    rate = _covers(make, truth)
    # 200 replications of a 95% interval: the binomial sd is 1.5 points; allow 0.90..0.99
    assert 0.90 <= rate <= 0.99, rate


# -- tables from outside the platform ----------------------------------------------------------------------------
def _events(rows: list[tuple[int, int | None, str]]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [r[0] for r in rows], "parent_event_id": pd.array([r[1] for r in rows], dtype="Int64"),
                         "action": [r[2] for r in rows], "step": 0, "agent_id": "u"})


GOOD_EVENTS = _events([(1, None, "create_post"), (2, 1, "repost"), (3, 2, "quote_post")])


@pytest.mark.parametrize(("rows", "message"), [
    ([(1, None, "create_post"), (2, 2, "repost")], r"own parent: 2\b"),
    ([(1, 3, "repost"), (2, 1, "repost"), (3, 2, "repost")], r"parent cycles: (1 -> 3 -> 2 -> 1|2 -> 1 -> 3 -> 2|3 -> 2 -> 1 -> 3)"),
    ([(5, 6, "repost"), (6, 5, "quote_post"), (7, None, "create_post")], r"parent cycles: (5 -> 6 -> 5|6 -> 5 -> 6)"),
], ids=["self-parent", "three-cycle", "two-cycle"])
def test_parent_cycles_are_an_error_naming_the_events(rows, message: str) -> None:
    """Issue 15 §5: an event that is its own parent made cascade_nodes loop forever."""
    with pytest.raises(CascadeError, match=message):
        cascade_nodes(_events(rows))


def test_missing_parents_become_roots_with_a_note() -> None:
    nodes = cascade_nodes(_events([(1, None, "create_post"), (2, 99, "repost"), (3, 2, "repost")]))
    assert nodes.set_index("event_id")["root"].to_dict() == {1: 1, 2: 2, 3: 2}
    assert notes_of(nodes) == ["1 share(s) whose parent is not a post or share in this table count as roots (event ids 2)"]
    assert notes_of(cascade_metrics(nodes)) == []  # the note stays with the nodes; cascade_table carries it on


def _without(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df.drop(columns=[col])


def _with(df: pd.DataFrame, col: str, i: int, value: object) -> pd.DataFrame:
    df = df.copy().astype({col: object})
    df.loc[df.index[i], col] = value
    return df


MATCHES = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "score_a": [1.0, 0.0]})
ADOPTIONS = pd.DataFrame({"agent_id": ["u1", "u2"], "cascade": [1, 1], "step": [0, 1]})
EDGES = pd.DataFrame({"follower": ["u2"], "followee": ["u1"]})
INTERVALS = _separated_intervals()
HERD = pd.DataFrame({"agent_id": ["ctl", "u1"], "action": ["treatment", "like_post"], "target": ["p1", "p1"],
                     "payload": ['{"treatment": "up"}', None]})
MATCH_EVENTS = pd.DataFrame({"action": ["match"], "agent_id": ["x"], "target": ["y"], "payload": ['{"round": 1, "score_a": 1}']})
REFERENCE = pd.DataFrame({"t": [0, 1], "scale": [1.0, 2.0], "depth": [0, 1], "max_breadth": [1, 1]})
GROWTH = cascade_growth(cascade_nodes(GOOD_EVENTS))

#: reader, a good table, and how to break it -> what the error must name.
FOREIGN: dict[str, tuple[Callable[[pd.DataFrame], object], Callable[[], pd.DataFrame], str]] = {
    "events: missing column": (cascade_nodes, lambda: _without(GOOD_EVENTS, "parent_event_id"), r"events table: missing column\(s\) \['parent_event_id'\]"),
    "events: duplicate id": (cascade_nodes, lambda: _with(GOOD_EVENTS, "event_id", 2, 1), r"event_id must be unique; repeated value\(s\) \[1\]"),
    "events: fractional parent": (cascade_nodes, lambda: _with(GOOD_EVENTS, "parent_event_id", 1, 1.5), r"'parent_event_id' must hold whole numbers; row 1"),
    "events: null id": (cascade_nodes, lambda: _with(GOOD_EVENTS, "event_id", 0, None), r"'event_id' has nulls at row 0"),
    "events: text id": (cascade_nodes, lambda: _with(GOOD_EVENTS, "event_id", 0, "e1"), r"'event_id' must hold whole numbers; row 0 holds 'e1'"),
    "nodes: an events table instead": (cascade_metrics, lambda: GOOD_EVENTS, r"cascade nodes \(from cascade_nodes\): missing column"),
    "growth reference: repeated t": (lambda df: compare_growth(GROWTH, df), lambda: _with(REFERENCE, "t", 1, 0), r"reference growth: t must be unique"),
    "growth reference: text metric": (lambda df: compare_growth(GROWTH, df), lambda: _with(REFERENCE, "scale", 0, "big"), r"'scale' must hold numbers"),
    "matches: missing column": (elo, lambda: _without(MATCHES, "score_a"), r"match log: missing column\(s\) \['score_a'\]"),
    "matches: null player": (bradley_terry, lambda: _with(MATCHES, "b", 1, None), r"match log: column 'b' has nulls at row 1"),
    "matches: text score": (points, lambda: _with(MATCHES, "score_a", 0, "win"), r"'score_a' must hold numbers; row 0 holds 'win'"),
    "adoptions: missing step": (lambda df: exposure_intervals(df, EDGES, 3), lambda: _without(ADOPTIONS, "step"), r"adoptions: missing column"),
    "edges: missing followee": (lambda df: exposure_intervals(ADOPTIONS, df, 3), lambda: _without(EDGES, "followee"), r"follow edges: missing column"),
    "intervals: stop before start": (fit_exposure_hazard, lambda: _with(INTERVALS, "stop", 3, -1), r"exposure intervals: rows \[3\] need start < stop"),
    "intervals: repeated spell": (saturation_test, lambda: _with(INTERVALS, "id", 1, 0), r"id/start must be unique"),
    "herd: payload not JSON": (herd_from_events, lambda: _with(HERD, "payload", 0, "up"), r"'treatment' event at row 0 needs a JSON payload"),
    "herd: post treated twice": (herd_from_events, lambda: pd.concat([HERD, HERD.iloc[:1]], ignore_index=True), r"target must be unique; repeated value\(s\) \['p1'\]"),
    "match events: payload lacks score": (match_log, lambda: _with(MATCH_EVENTS, "payload", 0, '{"round": 1}'), r"'match' event at row 0: payload lacks \['score_a'\]"),
    "match events: no payload column": (match_log, lambda: _without(MATCH_EVENTS, "payload"), r"events table: missing column\(s\) \['payload'\]"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_foreign_tables_are_checked_with_a_clear_error(case: str) -> None:
    read, table, message = FOREIGN[case]
    with pytest.raises(TableError, match=message):
        read(table())


@pytest.mark.parametrize("case", sorted({c.split(":")[0] for c in FOREIGN}))
def test_the_good_tables_pass_their_checks(case: str) -> None:
    read, _, _ = next(v for k, v in FOREIGN.items() if k.startswith(case + ":"))
    good = {"events": GOOD_EVENTS, "nodes": cascade_nodes(GOOD_EVENTS), "growth reference": REFERENCE, "matches": MATCHES,
            "adoptions": ADOPTIONS, "edges": EDGES, "intervals": INTERVALS, "herd": HERD, "match events": MATCH_EVENTS}[case]
    read(good)


@st.composite
def parent_links(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """A random forest of posts and shares (parent before child), then some links rewired anywhere (which may
    close cycles, self-loops included) and some pointed at events not in the table; ids shuffled."""
    n = draw(st.integers(1, 40))
    parent = [-1] + [draw(st.integers(-1, i - 1)) for i in range(1, n)]
    for _ in range(draw(st.integers(0, 3))):
        parent[draw(st.integers(0, n - 1))] = draw(st.integers(-1, n - 1))
    missing = draw(st.sets(st.integers(0, n - 1), max_size=2))
    ids = np.array(draw(st.permutations(range(n)))) * 10 + 7
    rows = []
    for i in range(n):
        p = None if parent[i] < 0 else int(ids[parent[i]])
        if i in missing:
            p = 100_000 + i  # no such event
        rows.append((int(ids[i]), p, "create_post" if p is None else draw(st.sampled_from(["repost", "quote_post"]))))
    return _events(rows), len(missing)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parent_links())
def test_cascade_trees_agree_with_networkx(case: tuple[pd.DataFrame, int]) -> None:
    events, n_missing = case
    ids = set(events["event_id"])
    g = nx.DiGraph()  # child -> parent
    g.add_nodes_from(ids)
    g.add_edges_from((c, int(p)) for c, p in zip(events["event_id"], events["parent_event_id"], strict=True) if pd.notna(p) and int(p) in ids)
    if not nx.is_directed_acyclic_graph(g):
        with pytest.raises(CascadeError) as e:
            cascade_nodes(events)
        expected = {frozenset(c) for c in nx.simple_cycles(g)}
        assert {frozenset(c) for c in e.value.cycles} == expected
        assert set(e.value.self_parents) == {next(iter(c)) for c in expected if len(c) == 1}
        return
    nodes = cascade_nodes(events).set_index("event_id")
    for v in ids:
        up = [v, *(u for _, u in nx.dfs_edges(g, v))]  # a chain: each node has at most one parent
        assert nodes.loc[v, "root"] == up[-1] and nodes.loc[v, "depth"] == len(up) - 1
    orphans = [n for n in notes_of(nodes) if "count as roots" in n]
    assert (orphans[0].startswith(f"{n_missing} share(s)") if n_missing else not orphans)
    sizes = cascade_metrics(cascade_nodes(events)).set_index("root")["size"]
    assert sorted(sizes) == sorted(len(c) for c in nx.weakly_connected_components(g))


def test_cascades_of_ten_thousand_events_still_vectorized() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    parent = np.where(rng.random(n) < 0.2, -1, (rng.random(n) * np.arange(n)).astype(int))
    parent[0] = -1
    ev = _events([(i, None if p < 0 else int(p), "create_post" if p < 0 else "repost") for i, p in enumerate(parent)])
    t0 = time.perf_counter()
    m = cascade_metrics(cascade_nodes(ev))
    assert m["size"].sum() == n and time.perf_counter() - t0 < 5


# -- how `agentsim analyze` finds its analysis -------------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILY_ANALYSIS))
def test_a_family_name_runs_its_default_analysis(family: str, degenerate) -> None:
    """Issue 12 §3.3: `agentsim analyze RUN wargame` was refused."""
    run = degenerate(family, "one_agent")
    by_family, by_name = _analyze(str(run), family), _analyze(str(run), FAMILY_ANALYSIS[family])
    assert by_family.exit_code == 0, by_family.stderr
    assert by_family.stdout == by_name.stdout and f"{FAMILY_ANALYSIS[family]}: " in by_family.stdout


def test_a_folder_of_mixed_families_skips_the_others(degenerate, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(degenerate("wargame", "one_agent"), mixed / "w")
    shutil.copytree(degenerate("social", "one_agent"), mixed / "s")
    r = _analyze(str(mixed), "escalation", "--out", str(tmp_path / "o"))
    assert r.exit_code == 0, r.stderr
    assert "note: skipped s: a social run (the escalation analysis reads wargame runs)" in r.stderr
    assert "escalation: per_day" in r.stdout  # the one wargame run, analysed as one run
    assert "skipped s: a social run" in (tmp_path / "o" / "escalation_notes.csv").read_text()
    r = _analyze(str(mixed), "drift")
    assert r.exit_code == 2 and "no drift runs here (found 1 social, 1 wargame)" in r.stderr
    r = _analyze(str(mixed / "s"), "wargame")
    assert r.exit_code == 2 and "a social run; the escalation analysis reads wargame runs" in r.stderr


@pytest.mark.parametrize("folder", [("no_steps", "one_agent"), ("no_steps", "no_steps")], ids=["killed+played", "all-killed"])
def test_comparing_runs_names_the_runs_that_played_no_day(folder: tuple[str, str], degenerate, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, kind in enumerate(folder):
        shutil.copytree(degenerate("wargame", kind), runs / f"r{i}")
    r = _analyze(str(runs), "escalation", "--out", str(tmp_path / "o"))
    assert r.exit_code == 0, r.stderr
    assert "note: not in this table: r0: no days played; incomplete run: the run completed 0 of 14 steps" in r.stdout
    by_day = pd.read_csv(tmp_path / "o" / "escalation_es_by_day.csv")
    assert len(by_day) == (2 if "one_agent" in folder else 0)
    if "one_agent" in folder:
        assert (tmp_path / "o" / "escalation_es.png").read_bytes()[:4] == b"\x89PNG"
    else:  # no run played a day: nothing to draw, and the notes say so
        assert not (tmp_path / "o" / "escalation_es.png").exists()
        notes = pd.read_csv(tmp_path / "o" / "escalation_notes.csv")
        assert notes["note"].str.startswith("figure escalation_es.png not drawn: ").sum() == 1


def test_unknown_analysis_names_the_known_ones(degenerate) -> None:
    r = _analyze(str(degenerate("social", "one_agent")), "socail")
    assert r.exit_code == 2 and "unknown analysis 'socail'; did you mean 'social'?" in r.stderr
    assert "escalation" in r.stderr and "wargame" in r.stderr


def _counting(log) -> dict[str, pd.DataFrame]:
    return {"counts": log.events.groupby("action").size().rename("n").reset_index()}


def test_a_new_family_registers_its_analysis_without_touching_the_cli(degenerate, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(degenerate("social", "one_agent"), run)
    meta = json.loads((run / "run.json").read_text())
    meta["spec"]["kind"] = "counter"
    (run / "run.json").write_text(json.dumps(meta))
    fam = Family(name="counter", description="test family", config_model=BaseModel, create_world=lambda spec, config: None,
                 scripted_policy=lambda data, rng: "", analyses=(Analysis("counts", _counting),))
    with registered("counter", fam):
        assert find_analysis("counter") == [("counter", fam.analyses[0])] == find_analysis("counts")
        r = _analyze(str(run), "counter")
        assert r.exit_code == 0, r.stderr
        assert "counts: counts" in r.stdout and "create_post" in r.stdout
    assert _analyze(str(run), "counts").exit_code == 2  # unregistered again


def test_imports_keep_their_direction() -> None:
    code = ("import sys, agentsim.analysis.social, agentsim.analysis.tournament, agentsim.analysis.escalation, "
            "agentsim.analysis.drift, agentsim.core.family, agentsim.core.registry; "
            "bad = sorted(m for m in sys.modules if m.startswith(('agentsim.runtime', 'agentsim.scenarios'))); print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# -- --out is checked before anything is computed ----------------------------------------------------------------
@pytest.mark.parametrize("target", ["file", "file/sub"])
def test_out_pointing_at_a_file_is_refused_before_the_analysis(target: str, degenerate, tmp_path: Path) -> None:
    """Issue 12 §2.7: the tables were printed, then writing them crashed."""
    (tmp_path / "file").write_text("keep me")
    r = _cli("analyze", str(degenerate("social", "one_agent")), "social", "--out", str(tmp_path / target))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--out {tmp_path / target}:" in r.stderr and "social:" not in r.stdout
    assert (tmp_path / "file").read_text() == "keep me"


def test_families_lists_their_analyses() -> None:
    r = CliRunner().invoke(app, ["families"])
    assert r.exit_code == 0
    lines = {line.split(":")[0]: line for line in r.stdout.splitlines()}
    for family, analysis in FAMILY_ANALYSIS.items():
        assert lines[family].endswith(f"(analyze: {analysis})"), lines[family]
