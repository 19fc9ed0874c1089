"""The `world:` section of a drift scenario."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from agentsim.core.names import Name
from agentsim.scenarios.drift.checks import Constraint
from agentsim.spec.models import StrictModel


class TaskSpec(StrictModel):
    goal: str = Field(..., min_length=1, description="The goal the assistant must keep to, stated in its system prompt.")
    constraints: list[Constraint] = Field(default_factory=list, description="Checkers scored on every reply.")
    inputs: list[str] = Field(default_factory=list, description="Material for the user to bring (e.g. texts to rewrite), one per conversation, cycling.")


class UserSpec(StrictModel):
    """The user simulator: a persona that pulls the conversation away from the goal, harder each turn."""

    model: str | None = Field(None, description="Model alias of the user simulator (default: population.model).")
    persona: str = Field("A user who keeps asking for changes.", description="Who the simulated user is.")
    pressure: list[str] = Field(..., min_length=1, description="Pressure requests, one per turn (the last repeats), in rising strength.")
    max_words: int = Field(80, ge=5, le=1000, description="User messages are cut to this many words.")


class ArmSpec(StrictModel):
    name: Name = Field(..., description="Arm label (logged as the conversations' group): any Unicode text (README \"Names\").")
    reminders: list[Annotated[int, Field(ge=2)]] = Field(
        default_factory=list, description="Turns (from 2; turn 1 has the goal in the system prompt) before whose reply the goal is restated."
    )
    every: int | None = Field(None, ge=1, description="Alternatively, restate the goal every N turns.")

    def reminded(self, turn: int) -> bool:
        return turn in self.reminders or (self.every is not None and turn > 1 and (turn - 1) % self.every == 0)


class ReferenceSpec(StrictModel):
    model: str | None = Field(None, description="Model alias of the reference (default: the model under test).")
    restatement: str = Field("Remember the goal: {goal}", description="Appended as a system message to form the goal-consistent reference context.")


class JudgeSpec(StrictModel):
    """An optional judge model that rates each reply's adherence to the goal from 1 to 10."""

    model: str = Field(..., description="Model alias of the judge.")
    rubric: str = Field("Rate how well the reply follows the goal and its constraints.", description="What the judge rates.")


class DriftConfig(StrictModel):
    """Multi-turn conversations drifting from a goal; D_t is the KL between the model under test and a
    goal-consistent reference (after "Drift No More? Context Equilibria in Multi-Turn LLM Interactions")."""

    task: TaskSpec
    user: UserSpec
    assistant_model: str | None = Field(None, description="Model alias under test (default: population.model).")
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    arms: list[ArmSpec] = Field(..., min_length=1, description="Reminder schedules to compare (include one without reminders).")
    conversations_per_arm: int = Field(8, ge=1, le=100_000)
    reminder: str = Field("Reminder of your instructions: {goal}", description="Text of a reminder; {goal} is replaced.")
    reminder_role: Literal["system", "user"] = Field("system", description="Role of the injected reminder message.")
    top_k: int = Field(20, ge=1, description="Alternatives per position for the top-k KL estimator.")
    measure_kl: bool = Field(True, description="Score replies under both contexts (needs a backend with logprobs).")
    judge: JudgeSpec | None = Field(None, description="Optional judge model scoring every reply 1-10.")

    @model_validator(mode="after")
    def _unique_arms(self) -> DriftConfig:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique: {names}")
        return self
