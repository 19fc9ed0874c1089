"""OASIS's alignment metrics computed its way (agentsim/analysis/alignment.py), `agentsim analyze RUN social
--reference FILE`, a folder of seeds, the Cox exposure of a source post's author, and roles for every user."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from agentsim.analysis.alignment import (
    AlignmentParams,
    alignment_tables,
    growth_minutes,
    nrmse,
    read_reference,
    reference_curve,
)
from agentsim.analysis.cascades import cascade_nodes, compare_growth
from agentsim.analysis.social import exposure_intervals, graph_engine, role_features, social_compare
from agentsim.core.datafile import DataFileError
from agentsim.logs.reader import RunLog

from conftest import SCENARIOS, write_run_log, write_scenario
from test_runs import agentsim_cli, run_ok

X = SCENARIOS / "social" / "x_information_spread.yaml"


def tree() -> tuple[pd.DataFrame, pd.Series]:
    """A posts at minute 0; B reposts it at 2, C reposts B's repost at 5, B quotes the root at 7 (B again), D
    reposts the root at 7 and E reposts D's repost at 200 (after the window)."""
    rows = [(1, None, "create_post", "A", 0), (2, 1, "repost", "B", 2), (3, 2, "repost", "C", 5), (4, 1, "quote_post", "B", 7),
            (5, 1, "repost", "D", 7), (6, 5, "repost", "E", 200)]
    ev = pd.DataFrame(rows, columns=["event_id", "parent_event_id", "action", "agent_id", "minute"])
    ev["parent_event_id"] = ev["parent_event_id"].astype("Int64")
    ev["step"] = 0
    times = pd.Series(1_700_000_000 + ev["minute"].to_numpy() * 60.0 + 13, index=ev["event_id"])
    return cascade_nodes(ev), times


@pytest.mark.parametrize(("scale", "breadth", "expected"), [
    # OASIS: users once (B's quote adds nothing), the source level left out of breadth.
    ("users", "without_root", {0: (1, 0, 0), 1: (1, 0, 0), 2: (2, 1, 1), 5: (3, 2, 1), 7: (4, 2, 2), 149: (4, 2, 2)}),
    ("events", "without_root", {0: (1, 0, 0), 2: (2, 1, 1), 5: (3, 2, 1), 7: (5, 2, 3), 149: (5, 2, 3)}),
    ("users", "with_root", {0: (1, 0, 1), 2: (2, 1, 1), 7: (4, 2, 2)}),
])
def test_growth_by_hand(scale: str, breadth: str, expected: dict) -> None:
    nodes, times = tree()
    g = growth_minutes(nodes, times, 1, AlignmentParams(scale=scale, breadth=breadth)).set_index("minute")
    assert len(g) == 150
    for minute, (s, d, b) in expected.items():
        assert tuple(g.loc[minute, ["scale", "depth", "max_breadth"]]) == (s, d, b), (minute, scale, breadth)


def test_nrmse_normalisations() -> None:
    ref = np.array([0.0, 2.0, 4.0, 4.0])
    sim = ref + 1.0
    assert nrmse(sim, ref, "max") == pytest.approx(1.0 / 4.0)  # OASIS's plot_rmse: / real_arr.max()
    assert nrmse(sim, ref + 2, "max") == pytest.approx(math.sqrt(1.0) / 6.0)
    assert nrmse(sim, ref + 2, "range") == pytest.approx(1.0 / 4.0)
    assert math.isnan(nrmse(sim, np.zeros(4), "max"))


def test_a_cascade_that_never_spread_scores_badly() -> None:
    """compare_growth scored a one-point curve on the one point it had: 0.0 for a cascade that never spread. Both
    it and the OASIS curve now carry the curve to the end of the comparison and score it as badly as it is."""
    ev = pd.DataFrame({"event_id": [1], "parent_event_id": pd.array([None], dtype="Int64"), "action": ["create_post"],
                       "agent_id": ["A"], "step": [0]})
    nodes = cascade_nodes(ev)
    ref = pd.DataFrame({"t": [0, 1, 2, 3], "scale": [1, 10, 40, 60], "depth": [0, 1, 2, 2], "max_breadth": [0, 9, 30, 40]})
    flat = pd.DataFrame({"t": [0], "scale": [1], "depth": [0], "max_breadth": [0]})
    carried = compare_growth(flat, ref).set_index("metric")
    assert (carried["points"] == 4).all()  # was 1 (only t = 0, where both agree), scoring 0.0
    assert carried.loc["scale", "nrmse"] > 0.5
    g = growth_minutes(nodes, pd.Series([0.0], index=[1]), 1, AlignmentParams(window_minutes=4))
    assert g["scale"].tolist() == [1, 1, 1, 1]
    assert nrmse(g["scale"].to_numpy(), ref["scale"].to_numpy()) > 0.5


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


BAD_REFERENCES = [
    ("scale,depth\n1,0\n", "needs exactly one time column, minute or step"),
    ("minute,step,scale\n0,0,1\n", "needs exactly one time column, minute or step"),
    ("minute\n0\n", "has none of the columns ['scale', 'depth', 'max_breadth']"),
    ("minute,scale\n0,1\n1.5,3\n", "row 2: field minute: 1.5 is not a whole number"),
    ("minute,scale\n0,1\n1,3\n1,4\n", "rows [2, 3]: field minute: [1] given more than once"),
    ("minute,scale\n3,1\n", "starts at minute 3; it must start at 0"),
    ("minute,scale\n0,-1\n", "row 1: field scale: Input should be greater than or equal to 0"),
    ("minute,scale,likes\n0,1,4\n", "unknown column(s) ['likes']"),
    ("minute,scale\n0,\n", "row 1: field scale: a value is required"),
    ('[{"minute": 0}]', "looks like JSON"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_REFERENCES, ids=[e[:30] for _, e in BAD_REFERENCES])
def test_bad_reference_files_name_row_and_field(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path, "ref.csv", text)
    with pytest.raises(DataFileError) as e:
        read_reference(AlignmentParams(reference=f))
    assert expected in str(e.value) and str(f) in str(e.value), str(e.value)


def test_a_reference_in_steps_is_converted_with_minutes_per_step(tmp_path: Path) -> None:
    f = write(tmp_path, "ref.csv", "step,scale\n0,1\n1,5\n3,9\n")
    unit, table = read_reference(AlignmentParams(reference=f))
    curve = reference_curve(unit, table, 10.0, 40)
    assert curve["scale"].iloc[[0, 9, 10, 29, 30, 39]].tolist() == [1, 1, 5, 5, 9, 9]


def test_oasis_real_cascade_pickles_are_read_and_code_in_a_pickle_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "real_world_prop_data"
    for m, values in (("scale", [1, 3, 7]), ("depth", [0, 1, 2]), ("max_breadth", [0, 2])):
        (root / f"real_data_{m}").mkdir(parents=True)
        (root / f"real_data_{m}" / "True_Business_8.pkl").write_bytes(pickle.dumps(values))
    unit, table = read_reference(AlignmentParams(reference=root, topic="True_Business_8"))
    assert unit == "minute" and table["max_breadth"].tolist() == [0, 2, 2]  # padded with its last value, as OASIS does
    marker = tmp_path / "ran"
    evil = pickle.dumps(type("X", (), {"__reduce__": lambda self: (Path.touch, (marker,))})())
    (root / "real_data_scale" / "True_Business_8.pkl").write_bytes(evil)
    with pytest.raises(DataFileError, match="only plain lists of numbers are read"):
        read_reference(AlignmentParams(reference=root, topic="True_Business_8"))
    assert not marker.exists()
    with pytest.raises(DataFileError, match="give the topic"):
        read_reference(AlignmentParams(reference=root))


# -- from the command line ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Path:
    """Two scripted seeds of a star-shaped OASIS population scored with independent cascade."""
    tmp = tmp_path_factory.mktemp("seeds")
    users = SCENARIOS / "social" / "examples" / "oasis_twitter_users.csv"
    for seed in (0, 1):
        f = write_scenario(tmp, X, steps=6, seed=seed, **{
            "world.users": {"file": str(users), "groups": [{"name": "ic", "scripted": {"policy": "independent_cascade", "p": 0.5}}]},
            "world.interventions": [], "world.seed_posts.count": 0, "world.time.minutes_per_step": 10})
        run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp / "runs" / f"s{seed}"), "--quiet")
    return tmp / "runs"


def test_analyze_with_a_reference_prints_and_writes_growth_and_nrmse(seeds: Path, tmp_path: Path) -> None:
    ref = SCENARIOS / "social" / "examples" / "reference_cascade.csv"
    r = agentsim_cli("analyze", str(seeds / "s0"), "social", "--reference", str(ref), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "social: alignment" in r.stdout and "social: growth" in r.stdout and "NRMSE = RMSE / reference max (OASIS)" in r.stdout
    al = pd.read_csv(tmp_path / "out" / "social_alignment.csv").set_index("metric")
    growth = pd.read_csv(tmp_path / "out" / "social_growth.csv")
    assert len(growth) == 150 and (tmp_path / "out" / "social_growth.png").exists()
    want = nrmse(growth["scale"].to_numpy(), growth["scale_reference"].to_numpy())
    assert al.loc["scale", "nrmse_mean_curve"] == pytest.approx(want) and want > 0
    r2 = agentsim_cli("analyze", str(seeds / "s0"), "social", "--reference", str(ref), "--param", "scale=events",
                      "--param", "normalise=range", "--out", str(tmp_path / "out2"))
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "shares + 1 (events)" in r2.stdout and "range (max - min)" in r2.stdout


def test_a_folder_of_seeds_gives_per_run_nrmse_and_intervals(seeds: Path, tmp_path: Path) -> None:
    ref = SCENARIOS / "social" / "examples" / "reference_cascade.csv"
    r = agentsim_cli("analyze", str(seeds), "social", "--reference", str(ref), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-3000:]
    per_run = pd.read_csv(tmp_path / "out" / "social_alignment_runs.csv")
    assert sorted(per_run["run"].unique()) == ["s0", "s1"] and len(per_run) == 6
    al = pd.read_csv(tmp_path / "out" / "social_alignment.csv").set_index("metric")
    for m in ("scale", "depth", "max_breadth"):
        scores = per_run.loc[per_run["metric"] == m, "nrmse"]
        assert al.loc[m, "nrmse_mean"] == pytest.approx(scores.mean()) and al.loc[m, "runs"] == 2
        if scores.nunique() > 1:
            assert al.loc[m, "low"] < al.loc[m, "nrmse_mean"] < al.loc[m, "high"]
    runs = pd.read_csv(tmp_path / "out" / "social_runs.csv")
    assert list(runs["seed"]) == [0, 1]


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "scale=people"], "--param scale: 'people' is not allowed"),
    (["--param", "window_minutes=0"], "--param window_minutes"),
    (["--param", "colour=red"], "--param colour: unknown field"),
    (["--param", "scale"], "expected KEY=VALUE"),
    (["--reference", "/nonexistent/ref.csv"], "no such file or folder"),
])
def test_bad_analysis_parameters_exit_2_naming_them(seeds: Path, args: list[str], message: str) -> None:
    r = agentsim_cli("analyze", str(seeds / "s0"), "social", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_reference_in_steps_needs_one_minutes_per_step(seeds: Path, tmp_path: Path) -> None:
    import json

    meta = json.loads((seeds / "s1" / "run.json").read_text())
    other = tmp_path / "runs"
    import shutil

    shutil.copytree(seeds, other)
    meta["world"]["time"]["minutes_per_step"] = 5
    (other / "s1" / "run.json").write_text(json.dumps(meta))
    f = write(tmp_path, "ref.csv", "step,scale\n0,1\n2,6\n")
    r = agentsim_cli("analyze", str(other), "social", "--reference", str(f))
    assert r.returncode == 2 and "different minutes per step" in r.stderr, r.stderr[-2000:]


def test_an_analysis_without_parameters_refuses_them(tmp_path: Path) -> None:
    from agentsim.core.registry import get_family

    assert get_family("wargame").analyses[0].params is None
    f = write_scenario(tmp_path, SCENARIOS / "wargame" / "neutral.yaml", steps=1)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")
    ref = SCENARIOS / "social" / "examples" / "reference_cascade.csv"
    r = agentsim_cli("analyze", str(tmp_path / "run"), "wargame", "--reference", str(ref))
    assert r.returncode == 2 and "the escalation analysis takes no parameters" in r.stderr, r.stderr[-2000:]


# -- Cox exposure and roles -----------------------------------------------------------------------------------
def test_the_source_author_exposes_its_followers() -> None:
    """A star: a's post (step 0) is followed by u and v; u reposts at step 2, v never. Without the source as an
    exposer nobody was exposed (no followee adopted); with it, u adopts at exposure 1 and v is censored."""
    edges = pd.DataFrame({"follower": ["u", "v"], "followee": ["a", "a"]})
    adoptions = pd.DataFrame({"agent_id": ["u"], "cascade": [1], "step": [2]})
    assert exposure_intervals(adoptions, edges, end_step=5).empty
    sources = pd.DataFrame({"agent_id": ["a"], "cascade": [1], "step": [0]})
    iv = exposure_intervals(adoptions, edges, end_step=5, sources=sources)
    assert sorted(iv[["start", "stop", "exposure", "event"]].values.tolist()) == [[0, 3, 1, 1], [0, 6, 1, 0]]


def test_roles_list_every_user_those_without_edges_too() -> None:
    edges = pd.DataFrame({"follower": ["a", "b", "c"], "followee": ["b", "c", "a"]})
    users = ["a", "b", "c", "lonely", "alone"]
    f = role_features(edges, users=users, engine="networkx").set_index("agent_id")
    assert list(f.index) == users
    assert f.loc[["lonely", "alone"], ["in_degree", "out_degree", "betweenness", "clustering"]].to_numpy().sum() == 0
    assert f["pagerank"].sum() == pytest.approx(1.0)


def test_networkx_on_a_large_graph_takes_a_documented_sample() -> None:
    rng = np.random.default_rng(0)
    edges = pd.DataFrame({"follower": rng.integers(0, 500, 3000), "followee": rng.integers(0, 500, 3000)})
    f = role_features(edges, users=range(600), engine="networkx", max_users=200)
    assert len(f) == 600 and f["pagerank"].notna().sum() == 200
    assert any("seeded sample of 200 of 600 users" in n for n in f.attrs["notes"])
    exact = edges[edges["follower"] != edges["followee"]].drop_duplicates()
    assert f.set_index("agent_id")["in_degree"].sum() == len(exact)  # degrees are exact for everyone


@pytest.mark.skipif(graph_engine() != "igraph", reason="python-igraph is not installed (pip install igraph)")
def test_igraph_gives_networkx_s_features() -> None:
    rng = np.random.default_rng(1)
    edges = pd.DataFrame({"follower": rng.integers(0, 150, 900), "followee": rng.integers(0, 150, 900)})
    users = list(range(160))
    a = role_features(edges, users=users, engine="igraph", betweenness_k=1000).set_index("agent_id")
    b = role_features(edges, users=users, engine="networkx", betweenness_k=1000).set_index("agent_id")
    for col in ("in_degree", "out_degree", "betweenness", "clustering", "pagerank"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=1e-6, err_msg=col)


def test_the_roles_benchmark_times_each_engine_and_draws_a_figure(tmp_path: Path) -> None:
    from agentsim.bench.social_scale import run_roles

    rows = run_roles((300, 600), figure=tmp_path / "roles.png", log=lambda m: None)
    assert [(r["users"], r["engine"]) for r in rows] == [(300, "igraph"), (300, "networkx"), (600, "igraph"), (600, "networkx")]
    nx_rows = [r for r in rows if r["engine"] == "networkx"]
    assert all(r["seconds"] > 0 and r["note"] == "every user" for r in nx_rows)
    if graph_engine() != "igraph":
        assert all("not installed" in r["note"] for r in rows if r["engine"] == "igraph")
    assert (tmp_path / "roles.png").stat().st_size > 1000


def test_a_user_s_share_counts_at_the_end_of_its_step() -> None:
    """The platform posts the source at the start of step 0; users who share it during step 0 have shared it by
    the end of that step (minute 10 with 10-minute steps), not at minute 0."""
    from agentsim.analysis.alignment import event_minutes

    ev = pd.DataFrame({"event_id": [1, 2, 3], "sim_time": [0.0, 0.0, 600.0], "request_id": [None, "r1", "r2"]})
    assert event_minutes(ev, 10.0).tolist() == [0.0, 600.0, 1200.0]
    assert event_minutes(ev, None).tolist() == [0.0, 0.0, 600.0]


def _cascade_run(tmp_path: Path, name: str, shares: list[tuple[int, int, str, int]], minutes_per_step: float = 1.0,
                 alignment: dict | None = None, **meta):
    """A run written by the log writer: u0's source post at step 0 (a platform event, no request: it keeps the
    step's start time), then shares (event_id, parent, agent, step) answered by users (a request: they count at
    the end of their step)."""
    rows = [{"event_id": 0, "step": 0, "sim_time": 0.0, "agent_id": "u0", "action": "create_post", "phase": "platform"}]
    rows += [{"event_id": e, "step": s, "sim_time": 60.0 * minutes_per_step * s, "agent_id": a, "action": "repost",
              "parent_event_id": p, "request_id": f"r{e}", "phase": "users"} for e, p, a, s in shares]
    world = {"time": {"minutes_per_step": minutes_per_step}}
    if alignment:
        world["alignment"] = alignment
    return RunLog(write_run_log(tmp_path / name, events=rows, world=world, **meta))


def test_alignment_tables_of_two_runs_by_hand(tmp_path: Path) -> None:
    """Two runs against a reference in minutes, OASIS's definitions (users, source level out of breadth, / max):
    each run's curve by hand, the mean curve and its t-interval over the runs, the NRMSE of each run, their mean
    with its t-interval, and the NRMSE of the mean curve."""
    # run a: u1 shares at step 0 (minute 1), u2 shares u1's share at step 2 (minute 3): depth 2
    a = _cascade_run(tmp_path, "a", [(1, 0, "u1", 0), (2, 1, "u2", 2)])
    # run b: u1 and u2 share the source at step 1 (minute 2)
    b = _cascade_run(tmp_path, "b", [(1, 0, "u1", 1), (2, 0, "u2", 1)])
    ref_file = tmp_path / "ref.csv"
    ref_file.write_text("minute,scale,depth,max_breadth\n0,1,0,0\n2,3,1,2\n")
    params = AlignmentParams(reference=ref_file, window_minutes=5)
    want = {  # minute: (scale, depth, breadth)
        "a": [(1, 0, 0), (2, 1, 1), (2, 1, 1), (3, 2, 1), (3, 2, 1)],
        "b": [(1, 0, 0), (1, 0, 0), (3, 1, 2), (3, 1, 2), (3, 1, 2)],
    }
    ref = {"scale": [1, 1, 3, 3, 3], "depth": [0, 0, 1, 1, 1], "max_breadth": [0, 0, 2, 2, 2]}
    t = alignment_tables([a, b], params)
    growth = t["growth"]
    assert growth["minute"].tolist() == [0, 1, 2, 3, 4]
    for j, m in enumerate(("scale", "depth", "max_breadth")):
        curves = np.array([[row[j] for row in want[r]] for r in ("a", "b")], float)
        assert growth[m].tolist() == pytest.approx(curves.mean(axis=0).tolist())
        assert growth[f"{m}_reference"].tolist() == ref[m]
        for k in range(5):
            col = curves[:, k]
            if col[0] != col[1]:
                lo, hi = sps.t.interval(0.95, 1, loc=col.mean(), scale=sps.sem(col))
                assert (growth[f"{m}_low"][k], growth[f"{m}_high"][k]) == (pytest.approx(lo), pytest.approx(hi))
            else:
                assert growth[f"{m}_low"][k] == growth[f"{m}_high"][k] == col[0]
        r = np.array(ref[m], float)
        per = [float(np.sqrt(np.mean((c - r) ** 2)) / r.max()) for c in curves]
        runs = t["alignment_runs"][t["alignment_runs"]["metric"] == m]
        assert runs["run"].tolist() == ["a", "b"] and runs["nrmse"].tolist() == pytest.approx(per)
        row = t["alignment"].set_index("metric").loc[m]
        assert row["nrmse_mean"] == pytest.approx(np.mean(per)) and row["runs"] == 2
        assert row["nrmse_mean_curve"] == pytest.approx(float(np.sqrt(np.mean((curves.mean(axis=0) - r) ** 2)) / r.max()))
        lo, hi = sps.t.interval(0.95, 1, loc=np.mean(per), scale=sps.sem(per))
        assert (row["low"], row["high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert list(t["alignment"].columns) == ["metric", "nrmse_mean_curve", "nrmse_mean", "low", "high", "runs"]
    assert list(t["alignment_runs"].columns) == ["run", "metric", "nrmse"]
    # the same through the runs' comparison, with the scenario's alignment settings taken from the run
    c = _cascade_run(tmp_path, "c", [(1, 0, "u1", 0), (2, 1, "u2", 2)], alignment={"reference": str(ref_file), "window_minutes": 5})
    cmp = social_compare([c, c])
    assert cmp["alignment_runs"]["nrmse"].tolist()[:1] == pytest.approx([t["alignment_runs"]["nrmse"].tolist()[0]])
    # the runs' table: cascades, the largest one's size and depth, shares and refusals, per run
    b = _cascade_run(tmp_path, "b2", [(1, 0, "u1", 1), (2, 0, "u2", 1)], seed=3)
    d = _cascade_run(tmp_path, "d", [(1, 0, "u1", 0), (2, 1, "u2", 2), (3, 0, "u3", 1)], seed=7)
    runs = social_compare([b, d], {"window_minutes": 5})["runs"]
    assert runs.to_dict("records") == [
        {"run": "b2", "seed": 3, "cascades": 1, "largest_size": 3, "largest_depth": 1, "reposts": 2, "refused": 0},
        {"run": "d", "seed": 7, "cascades": 1, "largest_size": 4, "largest_depth": 2, "reposts": 3, "refused": 0}]
    # without a reference: the curves, and empty score tables with the reason
    none = alignment_tables([a], AlignmentParams(window_minutes=5))
    assert none["growth"]["scale"].tolist() == [1, 2, 2, 3, 3] and none["alignment"].empty and none["alignment_runs"].empty
    assert list(none["alignment"].columns) == list(t["alignment"].columns)
    assert list(none["alignment_runs"].columns) == list(t["alignment_runs"].columns)


@pytest.mark.parametrize("value", [[], ["1", 2], [1, True], {"a": 1}, 3.0])
def test_a_real_cascade_pickle_must_be_a_non_empty_list_of_numbers(tmp_path: Path, value) -> None:
    root = tmp_path / "real"
    (root / "real_data_scale").mkdir(parents=True)
    (root / "real_data_scale" / "t.pkl").write_bytes(pickle.dumps(value))
    with pytest.raises(DataFileError, match="expected a non-empty list of numbers"):
        read_reference(AlignmentParams(reference=root, topic="t"))


def test_which_cascade_is_scored_and_how_the_run_s_end_is_noted(tmp_path: Path) -> None:
    """cascade: source (the run's first post), largest, or a root event id (any other id is refused, naming the
    roots); a run that ends inside the window is noted as padded; the table notes describe the definitions used."""
    from agentsim.analysis.alignment import choose_root, run_curve
    from agentsim.analysis.tables import TableError

    # two cascades: u0's source post (event 0, one share) and u5's post (event 3, two shares)
    rows = [(1, 0, "u1", 0)]
    log = _cascade_run(tmp_path, "r", rows)
    extra = [{"event_id": 3, "step": 1, "sim_time": 60.0, "agent_id": "u5", "action": "create_post", "request_id": "q3"},
             {"event_id": 4, "step": 1, "sim_time": 60.0, "agent_id": "u6", "action": "repost", "parent_event_id": 3, "request_id": "q4"},
             {"event_id": 5, "step": 2, "sim_time": 120.0, "agent_id": "u7", "action": "repost", "parent_event_id": 3, "request_id": "q5"}]
    ev = log.df("events", ["event_id", "step", "sim_time", "agent_id", "action", "parent_event_id", "request_id"])
    ev = pd.concat([ev, pd.DataFrame(extra)], ignore_index=True)
    nodes = cascade_nodes(ev)
    assert (choose_root(nodes, "source"), choose_root(nodes, "largest"), choose_root(nodes, 3)) == (0, 3, 3)
    with pytest.raises(TableError, match=r"cascade 4: not a root event id of this run \(roots: \[0, 3\]"):
        choose_root(nodes, 4)
    assert choose_root(nodes.iloc[0:0], "source") is None
    curve, notes = run_curve(log, AlignmentParams(window_minutes=10))
    assert curve["scale"].tolist()[:3] == [1, 2, 2] and len(curve) == 10
    assert notes == ["r: cascade of event 0 (source), 2 node(s)",
                     "r: the run ends 1 minutes after the source post; its curves are carried at their last values to minute 9, "
                     "as OASIS pads them"]
    assert run_curve(log, AlignmentParams(window_minutes=2))[1] == ["r: cascade of event 0 (source), 2 node(s)"]
    oasis, other = AlignmentParams().describe(), AlignmentParams(scale="events", breadth="with_root", normalise="range").describe()
    assert "unique users, source author included (OASIS)" in oasis and "source level excluded (OASIS)" in oasis
    assert "reference max (OASIS)" in oasis and "minutes 0..149" in oasis
    assert "shares + 1 (events)" in other and "source level included" in other and "range (max - min)" in other
