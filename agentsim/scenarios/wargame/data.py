"""The study's nations and actions, shipped as package data."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DYNAMIC_VARS = (
    "territory",
    "military capacity",
    "gdp",
    "trade",
    "resources",
    "political stability",
    "population",
    "soft power",
    "cybersecurity",
    "nuclear",
)


class Effect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    variable: Literal[DYNAMIC_VARS]  # type: ignore[valid-type]
    op: Literal["add", "mult"]
    on: Literal["self", "other"]
    delta: float


class ActionDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str
    privacy: Literal["public", "private", "target_dependent"]
    severity: str = ""
    conflict_status: str = ""
    only_in_conflict: bool = False
    time_to_impact: int = 0
    effects: tuple[Effect, ...] = ()


class NationDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(..., pattern=r"^[A-Za-z][A-Za-z0-9 _-]*$")
    static: dict[str, str | float | int]
    dynamic: dict[Literal[DYNAMIC_VARS], float]  # type: ignore[valid-type]


class NationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nations: list[NationDef] = Field(..., min_length=2)


class ActionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[ActionDef] = Field(..., min_length=1)


def _read(path: Path | None, name: str) -> dict:
    text = path.read_text(encoding="utf-8") if path else files(__package__).joinpath("data", name).read_text("utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=8)
def load_nations(path: Path | None = None) -> tuple[NationDef, ...]:
    return tuple(NationsFile.model_validate(_read(path, "nations.yaml")).nations)


@lru_cache(maxsize=8)
def load_actions(path: Path | None = None) -> tuple[ActionDef, ...]:
    return tuple(ActionsFile.model_validate(_read(path, "actions.yaml")).actions)
