"""agentsim: large-scale multi-agent LLM simulations.

Public API (stable): load_scenario, parse_scenario, ScenarioSpec, load_run, RunLog, register, Family,
load_experiment, Experiment.
"""

from agentsim.core.family import Family
from agentsim.core.registry import register
from agentsim.experiments.load import Experiment, load_experiment
from agentsim.logs.reader import RunLog, load_run
from agentsim.spec.loader import Scenario, load_scenario, parse_scenario
from agentsim.spec.models import ScenarioSpec

__version__ = "0.1.0"
__all__ = ["Experiment", "Family", "RunLog", "load_experiment", "Scenario", "ScenarioSpec", "load_run", "load_scenario", "parse_scenario", "register"]
