"""Drift family: multi-turn conversations drifting from a goal, and reminder interventions."""

from __future__ import annotations

from typing import Any

from agentsim.core.family import Analysis, Family
from agentsim.scenarios.drift.config import DriftConfig


def _create_world(spec: Any, config: DriftConfig) -> Any:
    from agentsim.scenarios.drift.world import DriftWorld

    return DriftWorld(config, spec.steps, spec.population.model)


def _scripted(data: Any, rng: Any) -> Any:
    from agentsim.scenarios.drift.scripted import scripted_policy

    return scripted_policy(data, rng)


def _summary(log: Any) -> dict[str, Any]:
    from agentsim.analysis.drift import drift_tables

    t = drift_tables(log, bootstrap=200)
    return {f"Drift: {k}": v for k, v in t.items() if k in ("kl", "arms", "recurrence", "measurement")}


def _check(spec: Any, config: DriftConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    return alias_problems(spec, [
        (["world", "user", "model"], config.user.model),
        (["world", "assistant_model"], config.assistant_model),
        (["world", "reference", "model"], config.reference.model),
        (["world", "judge", "model"], config.judge.model if config.judge else None),
    ])


FAMILY = Family(
    name="drift",
    description="Goal drift in multi-turn conversations: per-turn KL to a goal-consistent reference, reminders.",
    config_model=DriftConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    check=_check,
    reserved_ids=frozenset({"Judge"}),  # the judge's agent id (world.py: JUDGE_ID)
    analyses=(Analysis("drift", "agentsim.analysis.drift:drift_tables", plots="agentsim.analysis.drift:drift_plots",
                       description="D_t curves per arm, the restoring-force fit, reminders, satisfaction."),),
    view="agentsim.scenarios.drift.view:build",
)
