"""Experiments: grids of runs over seeds, models and conditions, run concurrently on shared engines.

An experiment sits above the runtime: it drives several runs at once and owns the engines they share
(DESIGN.md, "Where the next layers sit"). Nothing below it imports it.
"""

from agentsim.experiments.plan import Cell, Plan, is_experiment_file, plan_experiment
from agentsim.experiments.runner import ExperimentResult, run_experiment

__all__ = ["Cell", "ExperimentResult", "Plan", "is_experiment_file", "plan_experiment", "run_experiment"]
