"""agentsim: large-scale multi-agent LLM simulations.

Public API (stable): run, sweep, interview, load_scenario, parse_scenario, ScenarioSpec, load_run, RunLog, register,
Family, Analysis, load_experiment, Experiment.

`agentsim.run("wargame/neutral.yaml", backend="scripted", steps=3, **{"world.max_actions_per_day": 2})` runs a
scenario as `agentsim run` does (agentsim/runtime/entry.py: run_scenario) and returns its RunLog.
`agentsim.sweep("wargame/study.yaml", backend="scripted", repeats=2, steps=3)` runs an experiment as `agentsim sweep`
does (agentsim/experiments/runner.py: sweep) and returns its Experiment.
`agentsim.interview(run_dir, "Red", "Why?", at=6)` asks a run's agent a question through its own model
(agentsim/interviews.py) and returns the answer.
"""

from typing import TYPE_CHECKING, Any

from agentsim.core.family import Analysis, Family
from agentsim.core.registry import register
from agentsim.logs.reader import RunLog, load_run
from agentsim.spec.loader import Scenario, load_scenario, parse_scenario
from agentsim.spec.models import ScenarioSpec

if TYPE_CHECKING:
    from agentsim.experiments.load import Experiment, load_experiment
    from agentsim.experiments.runner import sweep
    from agentsim.interviews import interview
    from agentsim.runtime.entry import run_scenario as run

__version__ = "0.1.0"
__all__ = ["Analysis", "Experiment", "Family", "RunLog", "Scenario", "ScenarioSpec", "load_experiment", "load_run",
           "interview", "load_scenario", "parse_scenario", "register", "run", "sweep"]


def __getattr__(name: str) -> Any:
    # Experiments sit above the runtime (DESIGN.md): importing agentsim for its analyses must not pull the runtime in.
    if name in ("Experiment", "load_experiment"):
        from agentsim.experiments import load

        return getattr(load, name)
    if name == "run":  # the runtime is imported when a run is asked for, not by `import agentsim`
        from agentsim.runtime.entry import run_scenario

        return run_scenario
    if name == "sweep":
        from agentsim.experiments.runner import sweep

        return sweep
    if name == "interview":  # builds backends when called; `agentsim.interviews` is the module (ask, what_it_saw)
        from agentsim.interviews import interview

        return interview
    raise AttributeError(f"module 'agentsim' has no attribute {name!r}")
