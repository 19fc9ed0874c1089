"""`agentsim export --to mlflow`: a real MLflow tracking store (SQLite in a temporary folder), read back by MLflow's
own client."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import agentsim
from agentsim.cli import app
from agentsim.logs.reader import RunLog

mlflow = pytest.importorskip("mlflow", reason="the MLflow exporter's tests need mlflow: pip install 'agentsim[mlflow]'")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunLog:
    out = tmp_path_factory.mktemp("runs")
    return agentsim.run("wargame/neutral.yaml", backend="scripted", steps=3, seed=5, run_dir=out / "r",
                        **{"world.max_actions_per_day": 2})


def _export(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["export", *args])
    return r.exit_code, r.output


def test_a_run_exports_its_params_metrics_and_directory(run: RunLog, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'ml.db'}"
    code, out = _export(str(run.run_dir), "--tracking-uri", uri, "--experiment", "tests")
    assert code == 0, out
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tests")
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.run_name == run.run_id and found.info.status == "FINISHED"
    assert found.data.tags["agentsim.family"] == "wargame" and found.data.tags["agentsim.status"] == "completed"
    p = found.data.params
    assert p["seed"] == "5" and p["steps"] == "3" and p["world.max_actions_per_day"] == "2"
    assert p["models.default.backend"] == "scripted"
    # every per-step metric of the run's metrics table, at agentsim's step
    m = run.df("metrics", ["step", "metric", "value"]).groupby(["metric", "step"])["value"].sum()
    for name in m.index.get_level_values(0).unique()[:5]:
        hist = sorted((h.step, h.value) for h in client.get_metric_history(found.info.run_id, name))
        assert hist == [(int(s), float(v)) for s, v in m[name].items()], name
    calls = run.df("llm_calls", ["step"]).groupby("step").size()
    hist = sorted((h.step, h.value) for h in client.get_metric_history(found.info.run_id, "llm/calls"))
    assert hist == [(int(s), float(n)) for s, n in calls.items()]
    assert found.data.metrics["steps_completed"] == 3 and found.data.metrics["llm/calls_total"] == len(run.llm_calls)
    names = {a.path for a in client.list_artifacts(found.info.run_id, "run")}
    assert "run/run.json" in names and "run/events" in names
    local = Path(client.download_artifacts(found.info.run_id, "run/run.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text())["run_id"] == run.run_id
    # once only, unless forced
    code, out = _export(str(run.run_dir), "--tracking-uri", uri, "--experiment", "tests")
    assert code == 0 and "already exported" in out and len(client.search_runs([exp.experiment_id])) == 1
    code, out = _export(str(run.run_dir), "--tracking-uri", uri, "--experiment", "tests", "--force", "--no-artifacts")
    assert code == 0 and len(client.search_runs([exp.experiment_id])) == 2


@pytest.mark.parametrize("folder", ["study", "O'Brien's study"])  # a quote in the path is in the tag searched for
def test_an_experiment_exports_a_parent_run_with_a_run_per_cell(tmp_path: Path, folder: str) -> None:
    from mlflow.tracking import MlflowClient

    exp = agentsim.sweep("wargame/study.yaml", backend="scripted", repeats=1, steps=1, dir=tmp_path / folder)
    uri = f"sqlite:///{tmp_path / 'ml.db'}"
    code, out = _export(str(exp.exp_dir), "--tracking-uri", uri, "--no-artifacts")
    assert code == 0, out
    client = MlflowClient(uri)
    mexp = client.get_experiment_by_name("escalation-study")
    runs = client.search_runs([mexp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 3
    assert sorted(r.data.params["cell.base"] for r in children) == ["cyberattack", "invasion", "neutral"]
    assert {r.data.params["cell.models.default.model"] for r in children} == {"embedded:smollm2-135m-instruct"}
    # a second export of the experiment adds no second parent (its cells are already there)
    code, out = _export(str(exp.exp_dir), "--tracking-uri", uri, "--no-artifacts")
    assert code == 0 and out.count("already exported") == 3
    assert len(client.search_runs([mexp.experiment_id])) == 4


@pytest.mark.parametrize(("uri", "fragment"), [
    ("bogus://x", "--tracking-uri bogus://x"),
    ("http://127.0.0.1:9", "MLflow at http://127.0.0.1:9"),  # nothing listens there: said, not hung
])
def test_a_tracking_store_that_cannot_be_used_is_one_line(run: RunLog, uri: str, fragment: str) -> None:
    code, out = _export(str(run.run_dir), "--tracking-uri", uri, "--no-artifacts")
    assert code == 2 and fragment in out and "Traceback" not in out


def _folder(name: str, files: dict[str, str]):
    def make(tmp: Path) -> Path:
        (tmp / name).mkdir()
        for f, text in files.items():
            (tmp / name / f).write_text(text)
        return tmp / name
    return make


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: tmp / "nope", "no such run directory"),
    (_folder("empty", {}), "neither a run directory nor a directory of runs"),
    (_folder("e", {"experiment.json": "{"}), "experiment.json"),
    (_folder("r", {"run.json": "[1]"}), "expected a JSON object"),
])
def test_what_is_not_a_run_is_named(tmp_path: Path, make, fragment: str) -> None:
    code, out = _export(str(make(tmp_path)), "--tracking-uri", f"sqlite:///{tmp_path / 'ml.db'}")
    assert code == 2 and fragment in out and "Traceback" not in out


def test_flat_params_cut_long_values_and_index_lists() -> None:
    from agentsim.exporters.mlflow import MAX_PARAM_CHARS, flat_params

    p = flat_params({"a": {"b": [1, {"c": "x" * 7000}]}, "d": None, "e": [], "f": True})
    assert p["a.b.0"] == "1" and len(p["a.b.1.c"]) == MAX_PARAM_CHARS and p["a.b.1.c"].endswith("...")
    assert p["d"] == "null" and p["e"] == "[]" and p["f"] == "true"
    assert pd.Series(list(p)).is_unique
