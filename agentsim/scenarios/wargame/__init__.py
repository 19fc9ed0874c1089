"""Wargame family: nations escalating or de-escalating, after Rivera et al. (2024)."""

from __future__ import annotations

from typing import Any

from agentsim.core.datafile import FileFormat
from agentsim.core.family import Analysis, Family
from agentsim.core.names import NamedId
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
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.wargame.data import load_nations

    try:
        return [n.name for n in load_nations(config.nations_file)]
    except DataFileError:
        return []  # the file's problems are reported by _names


def _names(spec: Any, config: WargameConfig) -> list[NamedId]:
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.wargame.data import load_actions, load_nations

    loc = ("world", "nations_file") if config.nations_file else ("world",)
    try:
        nations = load_nations(config.nations_file)
    except DataFileError as e:
        raise e.at(*loc) from None
    try:
        load_actions(config.actions_file)
    except DataFileError as e:
        raise e.at("world", "actions_file") from None
    file = str(config.nations_file) if config.nations_file else None
    return [NamedId(n.name, loc, file, i + 1 if file else None, "name") for i, n in enumerate(nations)]


def _uses_population_model(spec: Any, config: WargameConfig) -> bool:
    """Nations without an override and a world model without its own alias play on population.model."""
    wm = config.world_model
    return (wm.enabled and wm.model is None) or set(_agent_ids(config)) - set(spec.population.overrides) != set()


def _check(spec: Any, config: WargameConfig) -> list[tuple[list[str | int], str]]:
    from agentsim.spec.loader import alias_problems

    return alias_problems(spec, [(["world", "world_model", "model"], config.world_model.model)]) + _day0_problems(config)


def _day0_problems(config: WargameConfig) -> list[tuple[list[str | int], str]]:
    """world.day0_events name nations and actions of the scenario's files (their own problems are _names')."""
    from agentsim.core.datafile import DataFileError
    from agentsim.scenarios.wargame.data import load_actions, load_nations

    if not config.day0_events:
        return []
    try:
        nations = [n.name for n in load_nations(config.nations_file)]
        actions = [a.name for a in load_actions(config.actions_file)]
    except DataFileError:
        return []
    out: list[tuple[list[str | int], str]] = []
    for i, ev in enumerate(config.day0_events):
        loc: list[str | int] = ["world", "day0_events", i]
        for field in ("actor", "target"):
            if getattr(ev, field) not in nations:
                out.append((loc + [field], f"unknown nation {getattr(ev, field)!r}; nations: {', '.join(nations)}"))
        if ev.action not in actions:
            out.append((loc + ["action"], f"unknown action {ev.action!r}; see the actions file (world.actions_file)"))
        elif ev.actor == ev.target:
            out.append((loc + ["target"], f"{ev.actor} acts on itself; a day-0 incident is one nation acting on another"))
    return out


def _file_formats() -> tuple[FileFormat, ...]:
    from agentsim.scenarios.wargame.data import ActionDef, Effect, NationDef, load_actions, load_nations

    return (
        FileFormat("Nations file", "wargame", ("world.nations_file",), "yaml", NationDef, "scenarios/wargame/examples/nations.yaml",
                   "The nations of a wargame (default: the study's 8 nations). At least 2 nations; names are unique and "
                   f"none is a reserved id ({', '.join(sorted(RESERVED_IDS))}).", read=load_nations, list_key="nations"),
        FileFormat("Actions file", "wargame", ("world.actions_file",), "yaml", ActionDef, "scenarios/wargame/examples/actions.yaml",
                   "The actions nations may take (default: the study's 27). Names are unique; one action must be named "
                   "`Message` (every message is logged as it) and at least one other must exist.",
                   read=load_actions, list_key="actions", models=(Effect,)),
    )


#: The world model's agent id and the public-message target (world.WORLD_MODEL_ID, actions.WORLD).
RESERVED_IDS = frozenset({"WorldModel", "World"})
FAMILY = Family(
    name="wargame",
    description="Nations escalating or de-escalating; escalation scores after Rivera et al. (2024).",
    config_model=WargameConfig,
    create_world=_create_world,
    scripted_policy=_scripted,
    summary=_summary,
    agent_ids=_agent_ids,
    check=_check,
    reserved_ids=RESERVED_IDS,
    names=_names,
    uses_population_model=_uses_population_model,
    file_formats=_file_formats(),
    analyses=(Analysis("escalation", "agentsim.analysis.escalation:escalation_tables", compare="agentsim.analysis.escalation:compare_runs",
                       plots="agentsim.analysis.escalation:escalation_plots", description="Escalation scores per day (Rivera et al. 2024)."),),
    view="agentsim.scenarios.wargame.view:build",
)
