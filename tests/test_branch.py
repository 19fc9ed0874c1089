"""Counterfactual branches: the parent's steps before the branch point, row for row; an unchanged branch is the parent;
a changed one differs only from the branch point on; every family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.logs.reader import RunLog

from conftest import SCENARIOS
from test_runs import agentsim_cli, assert_same_log, run_ok

KEEP = ("--set", "runtime.keep_checkpoints=true", "--set", "runtime.checkpoint_every=1")

FAMILIES = [
    pytest.param(SCENARIOS / "wargame" / "neutral.yaml", 6, 3, id="wargame"),
    pytest.param(SCENARIOS / "social" / "x_information_spread.yaml", 6, 4, id="social"),
    pytest.param(SCENARIOS / "tournament" / "live_ipd.yaml", 3, 2, id="tournament"),
    pytest.param(SCENARIOS / "drift" / "rewrite.yaml", 5, 2, id="drift"),
]


def _parent(scenario: Path, steps: int, tmp: Path) -> Path:
    run_ok(str(scenario), "--backend", "scripted", "--steps", str(steps), *KEEP, "--run-dir", str(tmp / "parent"), "--quiet")
    return tmp / "parent"


def branch(*args: str):
    return agentsim_cli("branch", *args, "--quiet")


@pytest.mark.parametrize(("scenario", "steps", "at"), FAMILIES)
def test_an_unchanged_branch_is_its_parent(scenario: Path, steps: int, at: int, tmp_path: Path) -> None:
    parent = _parent(scenario, steps, tmp_path)
    r = branch(str(parent), "--at", str(at), "--run-dir", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_log(parent, tmp_path / "b")  # world, RNG, memories and counters all came back from the checkpoint
    meta = json.loads((tmp_path / "b" / "run.json").read_text())
    assert meta["branch"]["at_step"] == at and meta["branch"]["parent"] == str(parent.resolve())
    assert meta["status"] == "completed" and meta["steps_completed"] == steps


def test_a_changed_branch_differs_only_from_its_branch_point(tmp_path: Path) -> None:
    parent = _parent(SCENARIOS / "wargame" / "neutral.yaml", 6, tmp_path)
    r = branch(str(parent), "--at", "3", "--set", "world.max_actions_per_day=0", "--run-dir", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-3000:]
    p, b = RunLog(parent).events, RunLog(tmp_path / "b").events
    before = lambda df: df[df["step"] < 3].reset_index(drop=True)  # noqa: E731
    assert before(p).equals(before(b))
    after = b[(b["step"] >= 3) & (b["phase"] == "nations")]
    assert set(after["action"]) == {"Message"}  # no actions at all from day 4 on, only messages
    assert (p[(p["step"] >= 3) & (p["phase"] == "nations")]["action"] != "Message").any()
    meta = json.loads((tmp_path / "b" / "run.json").read_text())
    assert meta["branch"]["overrides"] == {"world.max_actions_per_day": 0}
    assert meta["overrides"]["world.max_actions_per_day"] == 0


def test_a_branch_can_switch_a_nation_to_another_model(tmp_path: Path) -> None:
    parent = _parent(SCENARIOS / "wargame" / "neutral.yaml", 5, tmp_path)
    r = branch(str(parent), "--at", "2", "--set", "models.other={backend: scripted, model: other}", "--set",
               "population.overrides.Red=other", "--run-dir", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-3000:]
    log = RunLog(tmp_path / "b")
    calls = log.llm_calls
    red = calls[calls["agent_id"] == "Red"]
    assert set(red[red["step"] < 2]["model"]) != {"other"} and set(red[red["step"] >= 2]["model"]) == {"other"}
    assert log.agents.set_index("agent_id").loc["Red", "model"] == "other"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--at", "9"), "no checkpoint after step 9; --at values it can branch at (steps kept): 1, 2, 3"),
        (("--at", "2", "--set", "world.nope=1"), "unknown field 'nope'"),
        (("--at", "2", "--set", "kind=social"), "cannot change its kind"),
        (("--at", "4"), "nothing left to run"),
        (("--at", "2", "--backend", "replay"), "cannot replay"),
    ],
)
def test_bad_branches_are_refused_with_the_reason(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    parent = _parent(SCENARIOS / "wargame" / "neutral.yaml", 4, tmp_path)
    r = branch(str(parent), *args, "--run-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_run_without_kept_checkpoints_says_how_to_keep_them(tmp_path: Path) -> None:
    run_ok(str(SCENARIOS / "wargame" / "neutral.yaml"), "--backend", "scripted", "--steps", "3", "--run-dir", str(tmp_path / "p"), "--quiet")
    r = branch(str(tmp_path / "p"), "--at", "1")
    assert r.returncode == 2 and "runtime.keep_checkpoints=true" in r.stderr


def test_an_experiment_grids_over_branches_of_one_parent(tmp_path: Path) -> None:
    import yaml

    from agentsim.experiments.manifest import read_manifest

    parent = _parent(SCENARIOS / "wargame" / "neutral.yaml", 5, tmp_path)
    exp = tmp_path / "what-if.yaml"
    exp.write_text(yaml.safe_dump({
        "kind": "experiment", "name": "what-if", "branch": {"run": "parent", "at": 2},
        "grid": {"world.max_actions_per_day": [0, 3]}, "repeats": 2, "logging": {"dir": "experiments"}}))
    r = agentsim_cli("sweep", str(exp), "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    exp_dir = next((tmp_path / "experiments").iterdir())
    cells = read_manifest(exp_dir)["cells"]
    assert [(c["base"], c["params"]["world.max_actions_per_day"], c["seed"], c["status"]) for c in cells] == [
        ("parent@2", 0, 0, "completed"), ("parent@2", 0, 1, "completed"), ("parent@2", 3, 0, "completed"), ("parent@2", 3, 1, "completed")]
    p = RunLog(parent).events
    for c in cells:
        run = exp_dir / c["run_dir"]
        ev = RunLog(run).events
        assert ev[ev["step"] < 2].reset_index(drop=True).equals(p[p["step"] < 2].reset_index(drop=True))
        meta = json.loads((run / "run.json").read_text())
        assert meta["branch"]["at_step"] == 2 and meta["experiment"]["cell"] == c["cell"]
    # the cell that changes nothing (the parent's own value and seed) is the parent
    assert_same_log(parent, exp_dir / cells[2]["run_dir"])
    assert set(RunLog(exp_dir / cells[0]["run_dir"]).events.query("step >= 2 and phase == 'nations'")["action"]) == {"Message"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"kind": "experiment", "name": "bad", "branch": {"run": "parent", "at": 9}}))
    r = agentsim_cli("sweep", str(bad), "--quiet")
    assert r.returncode == 2 and "no checkpoint after step 9" in r.stderr
