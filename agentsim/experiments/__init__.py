"""Experiments: grids of runs over seeds, models and conditions, run concurrently on shared engines.

An experiment sits above the runtime: it drives several runs at once and owns the engines they share
(DESIGN.md, "Where the next layers sit"). Nothing below it imports it.
"""

from __future__ import annotations

from typing import Any

from agentsim.experiments.load import Experiment, load_experiment
from agentsim.experiments.plan import Cell, Plan, is_experiment_file, plan_experiment

__all__ = ["Cell", "Experiment", "ExperimentResult", "Plan", "is_experiment_file", "load_experiment", "plan_experiment",
           "run_experiment", "survey"]


def __getattr__(name: str) -> Any:  # the runner pulls in the runtime and backends: import it only when running
    if name in ("run_experiment", "ExperimentResult"):
        from agentsim.experiments import runner

        return getattr(runner, name)
    if name == "survey":  # interviews build backends: imported when a survey is asked for
        from agentsim.experiments.surveys import survey

        return survey
    raise AttributeError(name)
