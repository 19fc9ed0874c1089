"""The wargame world: nations act simultaneously each day; a world model narrates the consequences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsim.analysis.escalation import ESCALATING, category_of, weight_of
from agentsim.core.types import AgentRecord, Decision, Observation
from agentsim.core.world import StepContext
from agentsim.scenarios.wargame import prompts
from agentsim.scenarios.wargame.actions import MESSAGE, WORLD, TargetKind, make_turn_model, target_kinds
from agentsim.scenarios.wargame.config import WargameConfig
from agentsim.scenarios.wargame.data import DYNAMIC_VARS, ActionDef, NationDef, load_actions, load_nations

WORLD_MODEL_ID = "WorldModel"
NUCLEAR = DYNAMIC_VARS.index("nuclear")


@dataclass(frozen=True, slots=True)
class TakenAction:
    day: int
    actor: str
    target: str
    name: str
    content: str = ""

    def line(self) -> str:
        s = f"{self.actor} -> {self.target} : {self.name}"
        return s + (f' "{self.content}"' if self.content else "")


@dataclass(frozen=True, slots=True)
class NationView:
    """What a rule-based nation policy reads (the LLM reads the same facts as text)."""

    name: str
    day: int
    nations: tuple[str, ...]
    static: dict[str, Any]
    state: dict[str, float]
    hostile_last_day: tuple[TakenAction, ...]
    friendly_last_day: tuple[TakenAction, ...]
    max_actions: int
    max_messages: int
    turn_model: Any
    #: Which targets each action may take ("other", "any", "message"; see actions.py).
    target_kinds: dict[str, TargetKind]


@dataclass(frozen=True, slots=True)
class WorldModelView:
    day: int
    actions: tuple[TakenAction, ...]
    max_words: int


def resolve_effects(
    start: np.ndarray, actions: list[TakenAction], index: dict[str, int], defs: dict[str, ActionDef]
) -> np.ndarray:
    """Simultaneous resolution: every effect is computed from the start-of-day state, then summed.

    v' = v + sum(add deltas) + v * sum(mult deltas), floored at 0, nuclear clamped to [0, 10]. Order-independent,
    so no nation's action is applied "first".
    """
    add = np.zeros_like(start)
    mult = np.zeros_like(start)
    for a in actions:
        d = defs[a.name]
        for e in d.effects:
            who = index[a.actor] if e.on == "self" else index.get(a.target)
            if who is None:  # e.g. a target of "World"
                continue
            var = DYNAMIC_VARS.index(e.variable)
            if e.op == "add":
                add[who, var] += e.delta
            else:
                mult[who, var] += e.delta
    out = start + add + start * mult
    np.maximum(out, 0.0, out=out)
    out[:, NUCLEAR] = np.clip(out[:, NUCLEAR], 0.0, 10.0)
    return out


class WargameWorld:
    def __init__(self, config: WargameConfig, steps: int, default_model: str, model_for: dict[str, str]):
        self.config = config
        self.max_days = steps
        self.nations: tuple[NationDef, ...] = load_nations(config.nations_file)
        self.actions: tuple[ActionDef, ...] = load_actions(config.actions_file)
        self.defs = {a.name: a for a in self.actions}
        self.names = [n.name for n in self.nations]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.state = np.array([[n.dynamic.get(v, 0.0) for v in DYNAMIC_VARS] for n in self.nations], dtype=np.float64)
        self.prev_state = self.state.copy()
        self.history: list[list[TakenAction]] = []
        self.consequences: list[str] = []
        self.model_for = {n: model_for.get(n, default_model) for n in self.names}
        self.world_model_alias = config.world_model.model or default_model
        self.target_kinds = target_kinds(self.actions)
        caps = (config.max_actions_per_day, config.max_messages_per_day, config.reasoning_max_chars, config.message_max_chars)
        action_names = [a.name for a in self.actions]
        #: Any listed action at any nation: the study's model, and the answer model under `target_rules: study`.
        self.turn_model = make_turn_model(action_names, self.names, *caps)
        enforce = config.target_rules == "enforce"
        #: Each nation's answer model: under `enforce`, one per nation with its own illegal targets left out.
        self.turn_models = {
            n: make_turn_model(action_names, self.names, *caps, kinds=self.target_kinds, nation=n) if enforce else self.turn_model
            for n in self.names
        }
        self.phases = ("nations", "world_model") if config.world_model.enabled else ("nations",)
        self._static_text = prompts.nation_descriptions(self.nations)
        self._system = prompts.nation_system_prompt(
            self.names, self.actions, self._static_text, steps, config.max_actions_per_day, config.max_messages_per_day,
            self.target_kinds if enforce else None,
        )

    # -- protocol -------------------------------------------------------------------------------------------------
    def agents(self) -> list[AgentRecord]:
        out = [
            AgentRecord(n.name, "nation", self.model_for[n.name], n.static.get("governance", ""), dict(n.static))
            for n in self.nations
        ]
        if self.config.world_model.enabled:
            out.append(AgentRecord(WORLD_MODEL_ID, "world_model", self.world_model_alias, "", {}))
        return out

    def sim_time(self, step: int) -> float:
        return float(step + 1)  # days 1..N

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]:
        day = ctx.step + 1
        if phase == "nations":
            states = prompts.nation_states(self.names, DYNAMIC_VARS, self.state.tolist())
            return [self._observe_nation(n, day, states) for n in self.names]
        diffs = self._diffs()
        history = self._history_text(None)
        return [
            Observation(
                agent_id=WORLD_MODEL_ID,
                model=self.world_model_alias,
                messages=[
                    {"role": "system", "content": prompts.world_model_system_prompt(self.actions, day, self.max_days, self.config.world_model.max_words)},
                    {"role": "user", "content": prompts.world_model_user_prompt(self._static_text, history, diffs, day, self.max_days)},
                ],
                action_model=None,
                data=WorldModelView(day, tuple(self.history[-1]) if self.history else (), self.config.world_model.max_words),
                max_words=self.config.world_model.max_words,
            )
        ]

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None:
        if phase == "nations":
            self._apply_nations(ctx, decisions)
        else:
            self._apply_world_model(ctx, decisions)

    def get_state(self) -> dict[str, Any]:
        return {
            "state": self.state.tolist(),
            "prev_state": self.prev_state.tolist(),
            "history": [[[a.day, a.actor, a.target, a.name, a.content] for a in day] for day in self.history],
            "consequences": list(self.consequences),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = np.array(state["state"], dtype=np.float64)
        self.prev_state = np.array(state["prev_state"], dtype=np.float64)
        self.history = [[TakenAction(*a) for a in day] for day in state["history"]]
        self.consequences = list(state["consequences"])

    # -- internals ------------------------------------------------------------------------------------------------
    def _visible(self, a: TakenAction, viewer: str | None) -> bool:
        """Privacy as in the study: private actions, and messages not sent to World, are seen only by the two
        nations involved; the world model (viewer None) sees everything."""
        if viewer is None:
            return True
        privacy = self.defs[a.name].privacy if a.name in self.defs else "public"
        public = privacy == "public" or (privacy == "target_dependent" and a.target == WORLD)
        return public or viewer in (a.actor, a.target)

    def _history_text(self, viewer: str | None) -> str:
        parts = []
        if self.config.day0.strip():
            parts.append(f"### Day 0 ###\n#### Consequences:\n{self.config.day0.strip()}")
        first = 0
        if self.config.history_days is not None:
            first = max(0, len(self.history) - self.config.history_days)
        for d in range(first, len(self.history)):
            lines = [a.line() for a in self.history[d] if self._visible(a, viewer)]
            block = f"### Day {d + 1} ###\n#### Actions:\n" + ("\n".join(lines) if lines else "(none)")
            if d < len(self.consequences) and self.consequences[d]:
                block += f"\n#### Consequences:\n{self.consequences[d]}"
            parts.append(block)
        return "\n\n".join(parts)

    def _day0_acts(self) -> list[TakenAction]:
        """world.day0_events as acts of day 0 (for the scripted baseline; LLMs read the day-0 text)."""
        return [TakenAction(0, e.actor, e.target, e.action) for e in self.config.day0_events]

    def _observe_nation(self, name: str, day: int, states: str) -> Observation:
        last = self.history[-1] if self.history else self._day0_acts()
        hostile = tuple(a for a in last if a.target == name and a.actor != name and category_of(a.name) in ESCALATING)
        friendly = tuple(a for a in last if a.target == name and a.actor != name and a not in hostile)
        i = self.index[name]
        view = NationView(
            name=name,
            day=day,
            nations=tuple(self.names),
            static=dict(self.nations[i].static),
            state={v: float(self.state[i, k]) for k, v in enumerate(DYNAMIC_VARS)},
            hostile_last_day=hostile,
            friendly_last_day=friendly,
            max_actions=self.config.max_actions_per_day,
            max_messages=self.config.max_messages_per_day,
            turn_model=self.turn_models[name],
            target_kinds=self.target_kinds,
        )
        user = prompts.nation_user_prompt(name, self._history_text(name), states, day, self.max_days)
        return Observation(
            agent_id=name,
            model=self.model_for[name],
            messages=[{"role": "system", "content": self._system}, {"role": "user", "content": user}],
            action_model=self.turn_models[name],
            data=view,
            validation_context={"nation": name} if self.config.target_rules == "enforce" else None,
        )

    def _apply_nations(self, ctx: StepContext, decisions: list[Decision]) -> None:
        day = ctx.step + 1
        taken: list[TakenAction] = []
        answered = 0
        for d in decisions:
            if not d.valid or d.action is None:
                continue
            answered += 1
            turn: Any = d.action
            for act in turn.actions:
                a = TakenAction(day, d.agent_id, act.target_nation, act.action_name)
                taken.append(a)
                ctx.emit(d.agent_id, a.name, a.target, {"privacy": self.defs[a.name].privacy}, request_id=d.request_id)
            for msg in turn.messages:
                a = TakenAction(day, d.agent_id, msg.target_nation, MESSAGE, msg.content)
                taken.append(a)
                privacy = "public" if msg.target_nation == WORLD else "private"
                ctx.emit(d.agent_id, MESSAGE, a.target, {"privacy": privacy, "content": msg.content}, request_id=d.request_id)
        self.prev_state = self.state.copy()
        self.state = resolve_effects(self.state, taken, self.index, self.defs)
        self.history.append(taken)
        if len(self.consequences) < len(self.history) - 1:
            self.consequences.append("")
        es_total = sum(weight_of(category_of(a.name)) for a in taken)
        ctx.metric("valid_answers", answered)
        if answered:  # a day on which no nation's answer was valid has no escalation score (not 0)
            ctx.metric("escalation_score", es_total / len(self.names))
        ctx.metric("actions", sum(1 for a in taken if a.name != MESSAGE))
        ctx.metric("messages", sum(1 for a in taken if a.name == MESSAGE))
        ctx.metric("nuclear_actions", sum(1 for a in taken if category_of(a.name) == "nuclear"))
        for i, n in enumerate(self.names):
            for k, v in enumerate(DYNAMIC_VARS):
                ctx.metric(f"state/{v}", self.state[i, k], agent_id=n)

    def _apply_world_model(self, ctx: StepContext, decisions: list[Decision]) -> None:
        text = ""
        for d in decisions:
            if d.valid and isinstance(d.action, str):
                text = d.action
                ctx.emit(WORLD_MODEL_ID, "Consequences", None, {"text": text}, request_id=d.request_id)
        self.consequences.append(text)

    def _diffs(self) -> str:
        lines = []
        for i, n in enumerate(self.names):
            ch = [
                f"- {v.title()}: {prompts.fmt_number(self.prev_state[i, k])} -> {prompts.fmt_number(self.state[i, k])}"
                for k, v in enumerate(DYNAMIC_VARS)
                if self.prev_state[i, k] != self.state[i, k]
            ]
            if ch:
                lines.append(n + ":\n" + "\n".join(ch))
        return "\n\n".join(lines)


