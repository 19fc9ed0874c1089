"""The `world:` section of a tournament scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, FiniteFloat, NonNegativeInt, field_validator, model_validator

from agentsim.core.names import Name
from agentsim.spec.models import StrictModel, scenario_path


class CSDSpec(StrictModel):
    """Competitive Swiss-System Dynamics on a table of per-benchmark scores."""

    scores_file: Path = Field(..., description="CSV or Parquet: a `model` column plus one column per benchmark, or long format model,benchmark,score (README \"File formats\"). Relative to the scenario file.")
    benchmarks: list[Name] | None = Field(None, min_length=1, description="Benchmarks in round order (default: the table's column order).")
    n_tournaments: int = Field(100_000, ge=1, le=100_000_000, description="Monte Carlo tournaments (spread evenly over the run's steps).")
    eliminations: NonNegativeInt | list[NonNegativeInt] = Field(
        0, description="T_k >= 0: models eliminated after each round (one number for every round, or one per round); at least one model always stays."
    )
    ties: Literal["half", "coin"] = Field("half", description="Equal benchmark scores: a draw worth 1/2 each, or a coin flip.")
    bye_points: float = Field(0.0, ge=0, le=1, description="Points for a bye (an odd model out with no group below).")
    sensitivity: list[NonNegativeInt] = Field(
        default_factory=lambda: [0, 1, 2], description="Uniform T values (>= 0) for the failure-sensitivity sweep at the end of the run; [] skips the sweep."
    )
    sensitivity_tournaments: int = Field(20_000, ge=100, le=100_000_000, description="Tournaments per T in the sweep.")

    _resolve_file = field_validator("scores_file")(scenario_path)


class Participant(StrictModel):
    """A live participant: a model alias plus an agent configuration."""

    name: Name = Field(..., description="Unique name in the standings: any Unicode text (README \"Names\"), not a reserved id.")
    model: str = Field(..., description="Model alias that plays this participant.")
    system: str = Field("", description="System prompt (the agent configuration).")
    skill: float = Field(0.5, ge=0, le=1, description="Scripted baseline only: probability of a correct answer / of cooperating.")


class Item(StrictModel):
    """A benchmark item, or a prompt both participants answer for the judge."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)
    question: str = Field(..., min_length=1, description="The question or task both participants answer.")
    answer: str = Field("", description="The reference answer (match: benchmark needs one; the judge does not see it).")


class Payoffs(StrictModel):
    """Prisoner's-dilemma payoffs per move, for each player."""

    T: FiniteFloat = Field(5, description="Temptation: defecting against a cooperator.")
    R: FiniteFloat = Field(3, description="Reward: both cooperate.")
    P: FiniteFloat = Field(1, description="Punishment: both defect.")
    S: FiniteFloat = Field(0, description="Sucker: cooperating against a defector.")


class LiveSpec(StrictModel):
    """Swiss rounds of live matches played through the LLM backends; all of a round's matches in one batch."""

    match: Literal["benchmark", "ipd", "judge"] = Field(..., description="benchmark item answered by both, iterated prisoner's dilemma, or a judged head-to-head.")
    items: list[Item] = Field(default_factory=list, description="Benchmark items or judge prompts (one per round, cycling).")
    items_file: Path | None = Field(None, description="JSONL or CSV with `question` and `answer` (alternative to items; README \"File formats\"). Relative to the scenario file.")
    scorer: Literal["exact", "contains", "numeric"] = Field("exact", description="How a benchmark answer is scored against the item's answer.")
    ipd_turns: int = Field(5, ge=1, le=200, description="Moves per prisoner's-dilemma match.")
    payoffs: Payoffs = Field(default_factory=Payoffs, description="Temptation, reward, punishment, sucker (each defaults to 5, 3, 1, 0).")
    judge: str | None = Field(None, description="Model alias of the judge (match: judge); the judge's agent id is `Judge`.")
    bye_points: float = Field(1.0, ge=0, le=1, description="Points for a bye (classical Swiss: 1).")

    _resolve_file = field_validator("items_file")(scenario_path)

    @model_validator(mode="after")
    def _needs(self) -> LiveSpec:
        if self.match in ("benchmark", "judge") and not self.items and self.items_file is None:
            raise ValueError(f"match '{self.match}' needs items or items_file")
        if self.match == "judge" and not self.judge:
            raise ValueError("match 'judge' needs a judge model alias")
        return self


class TournamentConfig(StrictModel):
    """Swiss-system tournaments: Competitive Swiss-System Dynamics over score tables, or live matches."""

    mode: Literal["csd", "live"] = Field(..., description="'csd' (Monte Carlo over a score table) or 'live' (matches through LLM backends).")
    csd: CSDSpec | None = Field(None, description="Settings of mode csd.")
    live: LiveSpec | None = Field(None, description="Settings of mode live.")
    participants: list[Participant] = Field(default_factory=list, description="Live participants (mode live).")

    @model_validator(mode="after")
    def _mode_settings(self) -> TournamentConfig:
        if self.mode == "csd" and self.csd is None:
            raise ValueError("mode 'csd' needs a csd: section")
        if self.mode == "live":
            if self.live is None:
                raise ValueError("mode 'live' needs a live: section")
            if len(self.participants) < 2:
                raise ValueError("mode 'live' needs at least 2 participants")
        # Repeated and reserved participant names: Family.problems (core/names.py), with the YAML path of each.
        return self
