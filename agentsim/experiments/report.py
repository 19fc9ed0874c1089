"""The end-of-experiment summary: one row per cell, and where everything is."""

from __future__ import annotations

import json

import pandas as pd
from rich.console import Console

from agentsim.experiments.runner import ExperimentResult
from agentsim.runtime.summary import df_table


def cells_frame(manifest: dict) -> pd.DataFrame:
    rows = []
    for c in manifest["cells"]:
        rows.append({"cell": c["cell"], "base": c["base"],
                     **{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in c["params"].items()},
                     "seed": c["seed"], "status": c["status"], "steps": f"{c['steps_completed']}/{c['steps']}",
                     "error": (c.get("error") or "")[:80]})
    return pd.DataFrame(rows)


def print_experiment(console: Console, result: ExperimentResult) -> None:
    m = result.manifest
    df = cells_frame(m)
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
