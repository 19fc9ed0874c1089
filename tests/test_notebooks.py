"""Every analysis notebook executes end to end (nbclient), on a small run of its shipped scenario."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, SCENARIOS, tiny_models, write_scenario
from test_runs import run_ok

NOTEBOOKS = REPO / "analysis"


def execute(name: str, run: Path | None, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    if run is None:
        monkeypatch.delenv("AGENTSIM_RUN", raising=False)
    else:
        monkeypatch.setenv("AGENTSIM_RUN", str(run))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")))
            assert out.get("output_type") != "error", out
    return "\n".join(parts)


def test_all_notebooks_are_tested() -> None:
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == {"wargame_escalation", "tournament", "drift", "social", "experiment_escalation"}


def test_wargame_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("wargame_escalation", None, monkeypatch)
    text = outputs(nb)
    assert "es" in text and "n_nuclear" in text
    # Issue 18: the ES figure (an agentsim Figure) and, after it, the category chart (pyplot, inline): a plot function
    # that switched the backend to Agg made every later inline figure disappear
    images = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2 and "escalation_figure" in nb.cells[images[0]].source and "dist.plot.bar" in nb.cells[images[1]].source, images
    assert not any("subprocess" in c.source for c in nb.cells)  # runs through agentsim.run, not the CLI


def test_experiment_notebook_draws_the_study_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTSIM_EXPERIMENT", raising=False)
    nb = execute("experiment_escalation", None, monkeypatch)
    text = outputs(nb)
    assert "run_score_mean" in text and "nuclear_total" in text and "Neutral" in text and "Cyberattack" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    from agentsim.data import DataNotFound, locate

    try:
        locate("escalaition")
        have_study = True
    except DataNotFound:
        have_study = False
    assert images == 1 + have_study  # the experiment's figure, and the study's when its data is here


def test_tournament_notebook_on_csd_and_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("tournament", None, monkeypatch)
    text = outputs(nb)
    assert "expected_scores" in text and "rank_range" in text
    assert _images(nb) == 4  # E[S] with its spread, placements, rank against T, convergence (analysis/tournament.py)
    f = write_scenario(tmp_path, SCENARIOS / "tournament" / "live_judge.yaml")
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "live"), "--quiet")
    nb = execute("tournament", tmp_path / "live", monkeypatch)
    text = outputs(nb)
    assert "buchholz" in text and "kendall_tau" in text
    assert _images(nb) == 3  # standings, ratings forest plot, rank agreement


def _images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.vllm
def test_drift_notebook_on_a_vllm_run(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write_scenario(tmp_path, SCENARIOS / "drift" / "rewrite.yaml", steps=3, models=tiny_models(tiny_model, max_tokens=24),
                       **{"world.conversations_per_arm": 2})
    run_ok(str(f), "--run-dir", str(tmp_path / "d"), "--quiet")
    text = outputs(execute("drift", tmp_path / "d", monkeypatch))
    assert "kappa" in text and "reduction_pct" in text
    text = outputs(execute("drift", None, monkeypatch))
    assert "D_t unavailable" in text


os.environ.setdefault("MPLBACKEND", "Agg")


def test_social_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("social", None, monkeypatch)
    text = outputs(nb)
    for needle in ("structural_virality", "R_vs_lognormal", "hazard_ratio", "mean_others", "extremity_last", "silhouette"):
        assert needle in text, needle
    assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])) >= 4
