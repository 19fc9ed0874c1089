"""Nations and actions: the study's, shipped as package data, or a scenario's own nations and actions files.

The pydantic models here are the file formats (README "File formats"); a bad file is refused with its row, id and
field (core/datafile.py)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from agentsim.core.datafile import validate_yaml_list
from agentsim.core.names import Name
from agentsim.spec.yamlio import parse_yaml, read_text_file

#: The action every message is logged as, and the target of a public message (actions.py builds the answers).
MESSAGE = "Message"
WORLD = "World"

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
    """How an action changes one variable of the acting nation or of its target, effective the next day."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    variable: Literal[DYNAMIC_VARS] = Field(..., description="The dynamic variable changed.")  # type: ignore[valid-type]
    op: Literal["add", "mult"] = Field(..., description="`add`: v + delta; `mult`: v * (1 + delta).")
    on: Literal["self", "other"] = Field(..., description="The acting nation (`self`) or the action's target (`other`).")
    delta: FiniteFloat = Field(..., description="The change.")

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads an unquoted `on:` key as the boolean true; take it as the `on` field it was meant to be.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class ActionDef(BaseModel):
    """One action nations may take (the study's action table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name = Field(..., description="Action name, as nations must write it; unique in the file.")
    description: str = Field(..., description="What the action does, shown to the nations and the world model.")
    privacy: Literal["public", "private", "target_dependent"] = Field(
        ..., description="Who sees it: everyone, only the two nations involved, or (messages) everyone when sent to World."
    )
    severity: str = Field("", description="The study's severity label (kept for reference; unused by the rules).")
    conflict_status: str = Field("", description="The study's conflict-status label (kept for reference; unused by the rules).")
    only_in_conflict: bool = Field(False, description="The study's flag (kept for reference; unused by the rules).")
    time_to_impact: int = Field(0, ge=0, description="The study's delay in days (kept for reference; effects apply the next day).")
    effects: tuple[Effect, ...] = Field((), description="Changes to the nations' dynamic variables.")


class NationDef(BaseModel):
    """One nation: an agent whose id is its name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name = Field(..., description="The nation's name: its agent id and a legal target in every nation's answer; unique in the file.")
    static: dict[str, str | FiniteFloat] = Field(
        ..., description="Constant attributes shown in every prompt, e.g. context, governance, aggression and "
        "`willingness to use force` (ratings out of 10 that the scripted policy reads; 5 when absent)."
    )
    dynamic: dict[Literal[DYNAMIC_VARS], FiniteFloat] = Field(  # type: ignore[valid-type]
        ..., description=f"Starting values of the variables actions change ({', '.join(DYNAMIC_VARS)}); one left out starts at 0."
    )

    @field_validator("static")
    @classmethod
    def _governance_is_text(cls, v: dict[str, str | float]) -> dict[str, str | float]:
        # governance is logged as the nation's group, a text column.
        if "governance" in v and not isinstance(v["governance"], str):
            raise ValueError(f"governance must be text (it is logged as the nation's group), got {v['governance']!r}")
        return v


class NationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nations: list[NationDef] = Field(..., min_length=2)


class ActionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[ActionDef] = Field(..., min_length=1)

    @field_validator("actions")
    @classmethod
    def _usable(cls, actions: list[ActionDef]) -> list[ActionDef]:
        names = [a.name for a in actions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"action names repeat: {dup}")
        if MESSAGE not in names:
            raise ValueError(f"the actions need one named {MESSAGE!r}: every message a nation sends is logged as that action")
        if len(names) < 2:
            raise ValueError(f"the actions need at least one besides {MESSAGE!r}")
        return actions


def _read(path: Path | None, name: str) -> tuple[str, str]:
    """(text, source) of a user's file, or of the shipped one."""
    if path is not None:
        return read_text_file(Path(path), "data file"), str(path)
    return files(__package__).joinpath("data", name).read_text("utf-8"), name


def load_nations(path: Path | None = None) -> tuple[NationDef, ...]:
    """The nations of a nations file (default: the study's 8). Raises DataFileError naming file, row, id and field
    (SpecError for a file that is not readable YAML: agentsim/spec/yamlio.py)."""
    return tuple(_load(NationsFile, "nations.yaml", *_stamp(path)).nations)


def load_actions(path: Path | None = None) -> tuple[ActionDef, ...]:
    """The actions of an actions file (default: the study's 27). Raises DataFileError naming file, row and field."""
    return tuple(_load(ActionsFile, "actions.yaml", *_stamp(path)).actions)


def _stamp(path: Path | None) -> tuple[Path | None, int, int]:
    # The cache key holds the file's mtime and size, so an edited file is read again.
    try:
        st = Path(path).stat() if path is not None else None
    except OSError:
        st = None
    return path, st.st_mtime_ns if st else 0, st.st_size if st else 0


@lru_cache(maxsize=16)
def _load(model: type[NationsFile] | type[ActionsFile], name: str, path: Path | None, _mtime: int, _size: int) -> Any:
    # Read through the bounded YAML loader every user file goes through (aliases, depth, duplicate keys, tags).
    text, source = _read(path, name)
    data = parse_yaml(text, source).data
    return validate_yaml_list(source, data, model, "nations" if model is NationsFile else "actions", "name", text)
