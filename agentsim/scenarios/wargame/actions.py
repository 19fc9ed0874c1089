"""Typed answers of a nation: built per world (and, under target rules, per nation), so action names and targets
are enums in the JSON schema and vLLM's structured decoding can only produce legal names, targets and at most the
allowed number of actions.

Targets. Every action takes one of three kinds of target (`target_kind`):

- `other` — another nation, never the actor itself. Every action with an effect on the target (a `_other` column
  in the study's actions_v8.csv: attacks, trade restrictions, visits, ...) is one, and so are the study's actions
  whose description names a counterpart although the CSV gives them effects on the actor only (`COUNTERPART`:
  alliances, peace negotiations, arbitration, defence agreements, surveillance drones).
- `any` — self-directed: the effects (if any) fall on the actor (Wait, disarmament, building capacities, acquiring
  a nuclear option). The study asks nations to "Choose yourself for Wait actions" (EscalAItion prompts.py,
  get_nation_system_prompt) but applies a self-directed action with another nation as target all the same:
  World.update_state (EscalAItion world.py) applies each `_self` column to `action.self` and each `_other` column
  to `action.other`, so the named nation is touched by nothing; it is only the addressee written in the history
  line ("Red -> Blue : Increase military capacities"), and it sees the line even when the action is private. We
  keep that reading: yourself or another nation.
- `message` — another nation, or World for a public message.

Under `target_rules: enforce` (the default) a nation naming itself as the target of an `other` action or of a
message is refused like any invalid answer: the per-nation schema leaves itself out of those enums, and a model
validator (for backends without structured decoding, and replays) says why, so the policy re-asks and finally
logs an `invalid` event with the reason. `target_rules: study` restores the study, which checked only that the
target is a known nation (World.update_state): a nation could nuke itself, and the `_other` effects landed on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, model_validator

from agentsim.scenarios.wargame.data import MESSAGE, WORLD, ActionDef  # noqa: F401 - MESSAGE, WORLD: imported from here

TargetKind = Literal["other", "any", "message"]

#: The study's actions with effects on the actor only in actions_v8.csv whose descriptions nonetheless name a
#: counterpart ("member nations", "target nation", "the other nation", "both nations"): they need another nation.
COUNTERPART = frozenset({
    "Form an alliance",
    "Start formal peace negotiations",
    "Engage in international arbitration",
    "Establish agreements on defense and security cooperation",
    "Send surveillance drone",
})

TARGET_HINT = {"other": "another nation", "any": "yourself (or a nation it is addressed to)", "message": "another nation or World"}


def target_kind(action: ActionDef) -> TargetKind:
    """Which targets an action may take (see the module docstring)."""
    if action.name == MESSAGE:
        return "message"
    if action.name in COUNTERPART or any(e.on == "other" for e in action.effects):
        return "other"
    return "any"


def target_kinds(actions: Iterable[ActionDef]) -> dict[str, TargetKind]:
    return {a.name: target_kind(a) for a in actions}


def target_problem(actor: str, action: str, target: str, kind: TargetKind) -> str | None:
    """Why `actor` may not aim `action` at `target` (None when it may). Names outside the enums are the schema's job."""
    if target != actor or kind == "any":
        return None
    if kind == "message":
        return f"{actor} cannot send a message to itself; choose another nation or World"
    why = "it needs a counterpart" if action in COUNTERPART else f"its effects on the target would fall on {actor}"
    return f"{actor} cannot aim {action!r} at itself: {why}; choose another nation"


class _Targeted(BaseModel):
    """Base of a nation's action and message models under target rules: refuses an illegal target with its reason.

    The acting nation comes from the validation context (`{"nation": ...}`, set on each observation) and falls back
    to the nation the model was built for, so validating without a context (the scripted policy) is checked too."""

    model_config = ConfigDict(extra="forbid")
    nation: ClassVar[str | None] = None
    kinds: ClassVar[dict[str, TargetKind]] = {}

    @model_validator(mode="before")
    @classmethod
    def _legal_target(cls, data: Any, info: ValidationInfo) -> Any:
        actor = (info.context or {}).get("nation") or cls.nation
        if actor is None or not isinstance(data, dict):
            return data
        target = data.get("target_nation")
        name = data.get("action_name", MESSAGE)
        kind = cls.kinds.get(name, "message" if name == MESSAGE else None) if isinstance(name, str) else None
        if isinstance(target, str) and kind is not None:
            problem = target_problem(actor, name, target, kind)
            if problem:
                raise ValueError(problem)
        return data


def _any_of(schema: dict[str, Any]) -> None:
    """The branches are disjoint (each has its own action names), so anyOf means the same as pydantic's oneOf, and
    grammar compilers (xgrammar) represent anyOf exactly instead of warning and falling back."""
    for node in _nodes(schema):
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
            node.pop("discriminator", None)


def _nodes(obj: Any) -> Iterable[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _nodes(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _nodes(v)


def make_turn_model(
    action_names: list[str],
    nations: list[str],
    max_actions: int,
    max_messages: int,
    reasoning_max_chars: int,
    message_max_chars: int,
    kinds: dict[str, TargetKind] | None = None,
    nation: str | None = None,
) -> type[BaseModel]:
    """The answer model. Without `kinds`/`nation` (target_rules: study): any listed action at any nation, messages to
    any nation or World. With them: one model for `nation`, whose actions are a union discriminated by action name
    with the targets each kind allows, and whose validators refuse an illegal target with its reason."""
    non_message = tuple(a for a in action_names if a != MESSAGE)
    if kinds is None or nation is None:
        action_field: Any = create_model(
            "NationAction",
            __config__=ConfigDict(extra="forbid"),
            action_name=(Literal[non_message], Field(..., description="One of the listed action names.")),  # type: ignore[valid-type]
            target_nation=(Literal[tuple(nations)], Field(..., description="Nation the action is aimed at; yourself for Wait or self-strengthening actions.")),  # type: ignore[valid-type]
        )
        message_targets: tuple[str, ...] = tuple(nations) + (WORLD,)
        msg_base: dict[str, Any] = {"__config__": ConfigDict(extra="forbid")}
        suffix = ""
    else:
        others = tuple(n for n in nations if n != nation)
        targets = {"other": others, "any": tuple(nations)}
        base = create_model(f"Targeted_{nation}", __base__=_Targeted)
        base.nation, base.kinds = nation, dict(kinds)
        variants = []
        for kind in ("other", "any"):
            names = tuple(a for a in non_message if kinds.get(a, "any") == kind)
            if not names:
                continue
            variants.append(create_model(
                f"NationAction_{kind}_{nation}",
                __base__=base,
                action_name=(Literal[names], Field(..., description="One of the listed action names.")),  # type: ignore[valid-type]
                target_nation=(Literal[targets[kind]], Field(..., description=f"Target: {TARGET_HINT[kind]}.")),  # type: ignore[valid-type]
            ))
        action_field = (
            variants[0] if len(variants) == 1
            else Annotated[Union[tuple(variants)], Field(discriminator="action_name")]  # noqa: UP007
        )
        message_targets = others + (WORLD,)
        msg_base = {"__base__": base}
        suffix = f"_{nation}"
    Message = create_model(
        f"NationMessage{suffix}",
        **msg_base,
        target_nation=(Literal[message_targets], Field(..., description="Recipient nation, or World for a public message.")),  # type: ignore[valid-type]
        content=(str, Field(..., min_length=1, max_length=message_max_chars)),
    )
    return create_model(
        f"NationTurn{suffix}",
        __config__=ConfigDict(extra="forbid", json_schema_extra=_any_of),
        reasoning=(str, Field(..., max_length=reasoning_max_chars, description="Private strategic thoughts.")),
        actions=(list[action_field], Field(..., max_length=max_actions)),  # type: ignore[valid-type]
        messages=(list[Message], Field(default_factory=list, max_length=max_messages)),  # type: ignore[valid-type]
    )
