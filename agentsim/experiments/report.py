"""The end-of-experiment summary: one row per cell, and where everything is."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Console

from agentsim.experiments.runner import ExperimentResult
from agentsim.runtime.summary import df_table


def played_by(run_dir: Path) -> str:
    """Who answered a cell's requests, from its run.json `models` (`scripted baseline`, `<model> via vLLM`, ...):
    a grid over `models.default.model` run with `--backend scripted` was not played by the models it names.
    "" when the run has not written run.json yet."""
    from agentsim.analysis.labels import backend_model_label

    try:
        models = json.loads((run_dir / "run.json").read_text()).get("models") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    return " + ".join(sorted({backend_model_label(m) for m in models.values() if isinstance(m, dict)}))


def cells_frame(manifest: dict, exp_dir: Path | None = None) -> pd.DataFrame:
    """One row per cell: its base, grid parameters, seed, status, steps done, error, and (with `exp_dir`) who
    played it (`played_by`)."""
    rows = []
    for c in manifest["cells"]:
        rows.append({"cell": c["cell"], "base": c["base"],
                     **{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in c["params"].items()},
                     **({"played by": played_by(exp_dir / c["run_dir"])} if exp_dir is not None and c.get("run_dir") else {}),
                     "seed": c["seed"], "status": c["status"], "steps": f"{c['steps_completed']}/{c['steps']}",
                     "error": (c.get("error") or "")[:80]})
    return pd.DataFrame(rows)


def print_experiment(console: Console, result: ExperimentResult) -> None:
    m = result.manifest
    df = cells_frame(m, Path(result.exp_dir))
    if not df["error"].astype(bool).any():
        df = df.drop(columns="error")
    console.print(df_table(df, f"Experiment {m['name']}: {len(df)} runs", max_rows=60))
    for key, s in result.engines.items():
        per = (f"{s['mean_runs_per_batch']:.2f} runs per batch" if s.get("mean_runs_per_batch") is not None
               else f"{s['mean_calls_per_batch']:.2f} shard calls per batch")
        console.print(f"engine {key}: {s['calls']} calls in {s['batches']} batches ({per})")
    counts = df["status"].value_counts().to_dict()
    console.print(f"[bold]{result.status}[/bold]{' (resumed)' if result.resumed else ''}: "
                  + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {result.wall_s:.1f} s")
    console.print(f"Experiment: [cyan]{result.exp_dir}[/cyan]  (agentsim.load_experiment({str(result.exp_dir)!r}))", soft_wrap=True)
