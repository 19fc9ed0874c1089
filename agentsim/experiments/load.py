"""Reading an experiment for analysis: the manifest as a DataFrame, and the runs' tables with each cell's parameters
as columns.

>>> exp = agentsim.load_experiment("experiments/escalation-study-20261201-120000")
>>> exp.cells                      # one row per run: cell, base, <varied paths...>, seed, status, run_dir
>>> exp.table("metrics")           # every completed run's metrics, with cell, base, <params>, seed, run_id
>>> exp.table("events").groupby(["base", "models.default.model"]).size()
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agentsim.experiments.manifest import DONE, ManifestError, read_manifest
from agentsim.logs.reader import RunLog

#: Columns every experiment table carries before the run's own columns.
CELL_COLUMNS = ("cell", "base", "seed", "run_id")


@dataclass
class Experiment:
    exp_dir: Path
    manifest: dict[str, Any]
    cells: pd.DataFrame
    #: The varied scenario paths (grid and zip), in the order of the experiment file; `base` too when it varies.
    params: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def conditions(self) -> list[str]:
        """The columns that tell cells apart except the seed: what runs are grouped by when compared."""
        return (["base"] if self.cells["base"].nunique() > 1 else []) + self.params

    def logs(self, status: tuple[str, ...] = (DONE,)) -> list[tuple[pd.Series, RunLog]]:
        """(cell row, RunLog) of the runs with one of these statuses (completed ones by default)."""
        rows = self.cells[self.cells["status"].isin(status)]
        return [(row, RunLog(row["run_dir"])) for _, row in rows.iterrows()]

    def table(self, name: str, columns: list[str] | None = None, status: tuple[str, ...] = (DONE,)) -> pd.DataFrame:
        """Table `name` of every run (completed ones by default), with the cell's parameters as leading columns."""
        frames = []
        lead = list(CELL_COLUMNS[:2]) + self.params + list(CELL_COLUMNS[2:])
        for row, log in self.logs(status):
            df = log.df(name, columns)
            values = {c: row[c] for c in lead if c != "run_id"} | {"run_id": log.run_id}
            frames.append(df.assign(**{c: [values[c]] * len(df) for c in lead})[lead + list(df.columns)])
        if not frames:
            return pd.DataFrame(columns=lead + (columns or []))
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        counts = self.cells["status"].value_counts().to_dict()
        return f"Experiment({str(self.exp_dir)!r}, {len(self.cells)} runs: {counts})"


def _cell_value(v: Any) -> Any:
    """Parameter values as DataFrame cells: lists and mappings as JSON text, so they can be grouped on."""
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v


def load_experiment(path: str | Path) -> Experiment:
    """Open an experiment directory (the folder holding experiment.json). Raises ManifestError naming the file."""
    exp_dir = Path(path)
    manifest = read_manifest(exp_dir)
    params: list[str] = []
    for section in ("grid", "zip"):
        for p in manifest.get("spec", {}).get(section, {}):
            if p not in params:
                params.append(p)
    rows = []
    for c in manifest["cells"]:
        try:
            rows.append({"cell": c["cell"], "base": c["base"], **{p: _cell_value(c["params"].get(p)) for p in params},
                         "seed": c["seed"], "status": c["status"], "steps": c["steps"], "steps_completed": c["steps_completed"],
                         "run_dir": str((exp_dir / c["run_dir"]).resolve()), "error": c.get("error")})
        except KeyError as e:
            raise ManifestError(f"{exp_dir / 'experiment.json'}: cell entry lacks {e}") from None
    return Experiment(exp_dir, manifest, pd.DataFrame(rows), params)
