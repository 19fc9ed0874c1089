"""Wargame family: nations escalating or de-escalating, after Rivera et al. (2024)."""

from __future__ import annotations

from typing import Any

from agentsim.core.family import Analysis, Family
from agentsim.scenarios.wargame.config import WargameConfig


def _create_world(spec: Any, config: WargameConfig) -> Any:
    from agentsim.scenarios.wargame.world import WargameWorld

    return WargameWorld(config, spec.steps, spec.population.model, dict(spec.population.overrides))


def _scripted(data: Any, rng: Any) -> Any:
    from agentsim.scenarios.wargame.scripted import scripted_policy

    return scripted_policy(data, rng)


def _summary(log: Any) -> dict[str, Any]:
    from agentsim.analysis.escalation import escalation_tables

    t = escalation_tables(log)
    per_day = t["per_day"][["day", "es", "total", "n_actions", "n_messages", "n_nuclear"]]
    return {"Escalation score per day (ES_t = weighted total / nations)": per_day}


def _agent_ids(config: WargameConfig) -> list[str]:
    from agentsim.scenarios.wargame.data import load_nations

    return [n.name for n in load_nations(config.nations_file)]


def _check(spec: Any, config: WargameConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    return alias_problems(spec, [(["world", "world_model", "model"], config.world_model.model)])


FAMILY = Family(
    name="wargame",
    description="Nations escalating or de-escalating; escalation scores after Rivera et al. (2024).",
    config_model=WargameConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    agent_ids=_agent_ids,
    check=_check,
    analyses=(Analysis("escalation", "agentsim.analysis.escalation:escalation_tables", compare="agentsim.analysis.escalation:compare_runs",
                       plots="agentsim.analysis.escalation:escalation_plots", description="Escalation scores per day (Rivera et al. 2024)."),),
)
