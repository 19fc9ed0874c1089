"""Experiment files: a base scenario (or several) and the cells to run, as a grid and/or zipped lists over any
scenario path, times repeats (seeds).

```yaml
kind: experiment
name: escalation-study
base: [../wargame/neutral.yaml, ../wargame/invasion.yaml]   # relative to this file
grid:
  models.default.model: [embedded:smollm2-135m-instruct, /models/llama-3.1-8b]
zip:                                 # lists of equal length, taken together
  models.default.sampling.temperature: [0.3, 0.7]
  policy.max_retries: [0, 1]
repeats: 10                          # seeds: the base seed + 0 .. 9
max_concurrent_runs: 8
```

Cells = bases x grid product x zip rows x seeds. Every path must exist in the base scenario (a field of the
scenario or of the family's `world:` section, or a key under a free-form mapping such as `models` or
`population.overrides`); each cell is then validated as a scenario of its own.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentsim.spec.models import StrictModel

EXPERIMENT_KIND = "experiment"


class ExperimentLogging(StrictModel):
    """Where experiment directories go."""

    dir: Path = Field(
        Path("experiments"),
        description="Parent directory of experiment directories (relative paths: to the working directory, as `logging.dir` of a run).",
    )


class BranchSpec(StrictModel):
    """The parent run of an experiment over counterfactual branches, and the step they start at."""

    run: Path = Field(..., description="The parent run directory (relative to the experiment file); it kept its checkpoints.")
    at: int = Field(..., ge=1, strict=True, description="How many of the parent's steps the branches keep: steps 1..at are the parent's, the changes apply from step at+1.")


class ExperimentSpec(StrictModel):
    """An experiment: runs of one or more base scenarios over a grid / zipped lists of parameter values and seeds."""

    kind: Literal["experiment"] = Field(..., description="Always 'experiment'.")
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Experiment name (file-safe).")
    description: str = Field("", description="Free text, kept in experiment.json.")
    base: list[Path] = Field(
        default_factory=list,
        description="Base scenario file(s), relative to the experiment file. With several, each is a level of the `base` column.",
    )
    branch: BranchSpec | None = Field(
        None,
        description="Instead of base scenarios: every cell is a branch of this run at this step (`agentsim branch`), with the "
                    "cell's values applied from that step on (the parent must have kept its checkpoints).",
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Scenario path -> values; every combination of the values is a cell (cartesian product).",
    )
    zip: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Scenario path -> values, all lists of the same length; the i-th values are taken together.",
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="Scenario path -> value applied to every cell (e.g. steps: 3 for a quick sweep)."
    )
    repeats: int = Field(
        1, ge=1, le=100_000, strict=True,
        description="Runs per cell with seeds base seed + 0 .. repeats-1 (ignored when `seeds` is given).",
    )
    seeds: list[int] | None = Field(None, min_length=1, description="Explicit seeds for every cell (instead of repeats).")
    max_concurrent_runs: int = Field(
        4, ge=1, le=4096, strict=True,
        description="Runs in flight at once; their LLM requests share engines and are merged into the same batches.",
    )
    share_engines: bool = Field(
        True, description="One engine per distinct model for all runs (cross-run batching); false: one per run."
    )
    logging: ExperimentLogging = Field(default_factory=ExperimentLogging, description="Where experiment directories go.")

    @field_validator("base", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str | Path) else v

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            if not values:
                raise ValueError(f"{path}: give at least one value")
        return v

    @field_validator("zip")
    @classmethod
    def _same_lengths(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # A field check, not a model check: pydantic runs model checks only once every field is valid, so a
        # zip of unequal lists would be reported only after the other mistakes were fixed.
        lengths = {len(values) for values in v.values()}
        if len(lengths) > 1:
            raise ValueError(f"every list must have the same length; got {sorted(lengths)}")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if len(set(v)) != len(v):
                raise ValueError("seeds must be distinct")
            if any(isinstance(s, bool) or s < 0 for s in v):
                raise ValueError("seeds must be non-negative integers")
        return v

    @model_validator(mode="after")
    def _base_or_branch(self) -> ExperimentSpec:
        if bool(self.base) == (self.branch is not None):
            raise ValueError("give either base (scenario files) or branch (a run and a step), not both or neither")
        return self

    @model_validator(mode="after")
    def _paths_are_disjoint(self) -> ExperimentSpec:
        seen: dict[str, str] = {}
        for section in ("grid", "zip", "set"):
            for path in getattr(self, section):
                if path in seen:
                    raise ValueError(f"{path} appears in both {seen[path]} and {section}")
                seen[path] = section
        if "seed" in seen and (self.seeds is not None or self.repeats > 1):
            raise ValueError(f"seed is varied in {seen['seed']}: drop repeats/seeds, or drop seed from {seen['seed']}")
        return self

    def parameter_rows(self) -> list[dict[str, Any]]:
        """The cells' parameter values before seeds and bases: grid product x zip rows (one empty row if neither)."""
        grid_keys = list(self.grid)
        grid_rows = [dict(zip(grid_keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())] or [{}]
        n_zip = len(next(iter(self.zip.values()))) if self.zip else 0
        zip_rows = [{k: v[i] for k, v in self.zip.items()} for i in range(n_zip)] or [{}]
        return [{**g, **z} for g in grid_rows for z in zip_rows]
