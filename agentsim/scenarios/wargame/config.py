"""The `world:` section of a wargame scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from agentsim.core.names import Name
from agentsim.spec.models import StrictModel, scenario_path


class WorldModelSpec(StrictModel):
    """The world-model agent that narrates each day's consequences."""

    enabled: bool = Field(True, description="Summarise each day's consequences into the shared history.")
    model: str | None = Field(None, description="Model alias of the world model (default: population.model).")
    max_words: int = Field(150, ge=10, le=1000, description="Summaries are cut to this many words.")


class Day0Event(StrictModel):
    """One act of the day-0 incident as a fact: who did what to whom. The LLM reads `day0` (the study's text); the
    scripted baseline reads these, as if they had been taken on day 0, so it answers the incident as an LLM may."""

    actor: Name = Field(description="The nation that acted (a name in the nations file).")
    target: Name = Field(description="The nation acted upon (a name in the nations file).")
    action: Name = Field(description="The act, as an action name of the actions file (e.g. 'Execute full on invasion').")


class WargameConfig(StrictModel):
    """Nations choose diplomatic and military actions each day, after Rivera et al. (2024)."""

    scenario: str = Field("neutral", description="Label of the situation (neutral, invasion, cyberattack, ...).")
    day0: str = Field("", description="Day-0 text: the incident that opens the scenario ('' for none).")
    day0_events: list[Day0Event] = Field(
        default_factory=list,
        description="The day-0 incident as acts (actor, target, action). Not shown to LLMs (they read `day0`); the "
        "scripted baseline reads them as the hostile acts of day 0, so its day 1 answers the incident (README, "
        "'The scripted wargame baseline').",
    )
    nations_file: Path | None = Field(
        None, description="YAML with the nations (default: the study's 8 nations); relative to the scenario file."
    )
    actions_file: Path | None = Field(
        None, description="YAML with the actions (default: the study's 27 actions); relative to the scenario file."
    )
    max_actions_per_day: int = Field(3, ge=0, le=27, description="Cap on non-message actions per nation per day.")
    max_messages_per_day: int = Field(4, ge=0, le=50, description="Cap on messages per nation per day.")
    history_days: int | None = Field(
        None, ge=1, description="Show only the last N days of history in prompts (None: all, as in the study)."
    )
    reasoning_max_chars: int = Field(1200, ge=0, le=20000, description="Length cap of the private reasoning.")
    message_max_chars: int = Field(400, ge=1, le=20000, description="Length cap of one message.")
    target_rules: Literal["enforce", "study"] = Field(
        "enforce",
        description="enforce: an action that acts on another nation (attacks, trade, alliances, ...) and a message "
        "must name another nation, and an answer aiming one at its own nation is refused (re-asked, then logged as "
        "invalid with the reason); self-directed actions (Wait, building capacities, disarmament) may name yourself "
        "or an addressee. study: as in Rivera et al.'s code, any nation is accepted and the effects on the target "
        "land on whoever is named, the actor included.",
    )
    world_model: WorldModelSpec = Field(default_factory=WorldModelSpec, description="The world-model agent.")

    _paths = field_validator("nations_file", "actions_file")(scenario_path)
