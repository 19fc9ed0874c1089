"""Typed answers of a nation: built per world, so action names and targets are enums in the JSON schema and
vLLM's structured decoding can only produce legal names, targets and at most the allowed number of actions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

MESSAGE = "Message"
WORLD = "World"


def make_turn_model(
    action_names: list[str],
    nations: list[str],
    max_actions: int,
    max_messages: int,
    reasoning_max_chars: int,
    message_max_chars: int,
) -> type[BaseModel]:
    non_message = tuple(a for a in action_names if a != MESSAGE)
    Action = create_model(
        "NationAction",
        __config__=ConfigDict(extra="forbid"),
        action_name=(Literal[non_message], Field(..., description="One of the listed action names.")),  # type: ignore[valid-type]
        target_nation=(Literal[tuple(nations)], Field(..., description="Nation the action is aimed at; yourself for Wait or self-strengthening actions.")),  # type: ignore[valid-type]
    )
    Message = create_model(
        "NationMessage",
        __config__=ConfigDict(extra="forbid"),
        target_nation=(Literal[tuple(nations) + (WORLD,)], Field(..., description="Recipient nation, or World for a public message.")),  # type: ignore[valid-type]
        content=(str, Field(..., min_length=1, max_length=message_max_chars)),
    )
    Turn = create_model(
        "NationTurn",
        __config__=ConfigDict(extra="forbid"),
        reasoning=(str, Field(..., max_length=reasoning_max_chars, description="Private strategic thoughts.")),
        actions=(list[Action], Field(..., max_length=max_actions)),  # type: ignore[valid-type]
        messages=(list[Message], Field(default_factory=list, max_length=max_messages)),  # type: ignore[valid-type]
    )
    return Turn
