"""The study's nations and actions, shipped as package data."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentsim.spec.errors import LineIndex, SpecError, problems_from
from agentsim.spec.yamlio import YamlDocument, parse_yaml, read_yaml

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


def _read(path: Path | None, name: str) -> tuple[YamlDocument, str]:
    """A user's file through the shared safe loader (agentsim/spec/yamlio.py), or the shipped one."""
    if path is not None:
        return read_yaml(path), str(path)
    source = f"agentsim/scenarios/wargame/data/{name}"
    return parse_yaml(files(__package__).joinpath("data", name).read_text("utf-8"), source), source


def _validate(model: type[BaseModel], path: Path | None, name: str) -> BaseModel:
    """The file as `model`; its problems as a SpecError naming the file, the field path and the line."""
    doc, source = _read(path, name)
    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        raise SpecError(source, problems_from(e, model, (), LineIndex.from_node(doc.root))) from None


@lru_cache(maxsize=8)
def load_nations(path: Path | None = None) -> tuple[NationDef, ...]:
    return tuple(_validate(NationsFile, path, "nations.yaml").nations)  # type: ignore[attr-defined]


@lru_cache(maxsize=8)
def load_actions(path: Path | None = None) -> tuple[ActionDef, ...]:
    return tuple(_validate(ActionsFile, path, "actions.yaml").actions)  # type: ignore[attr-defined]
