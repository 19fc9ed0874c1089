"""Tournament worlds: Monte Carlo CSD over a score table, and live Swiss rounds played through the backends."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agentsim.core.seeding import make_rng
from agentsim.core.types import AgentRecord, Decision, Observation
from agentsim.core.world import StepContext
from agentsim.scenarios.tournament import csd
from agentsim.scenarios.tournament.config import Item, LiveSpec, Participant, TournamentConfig
from agentsim.scenarios.tournament.swiss import swiss_pairing

#: The judge's agent id; reserved (TournamentFamily.reserved_ids), so no participant can take it.
JUDGE_ID = "Judge"


# -- CSD --------------------------------------------------------------------------------------------------------
class CSDWorld:
    """Each step simulates its share of the tournaments; metrics carry the running E[S] and its standard error, and
    the running share of tournaments each model finished in each place (metric `placement/<place>` per model, place
    1 the best, ties sharing places: csd.placements; `placement_tournaments` the tournaments they count).
    The last step also runs the failure-sensitivity sweep."""

    phases = ("simulate",)

    def __init__(self, config: TournamentConfig, steps: int, seed: int):
        assert config.csd is not None
        self.spec = config.csd
        self.steps = steps
        self.seed = seed
        self.models, self.benchmarks, self.scores = csd.read_score_table(str(self.spec.scores_file), self.spec.benchmarks)
        m = len(self.models)
        self.sum = np.zeros(m)
        self.sum_sq = np.zeros(m)
        self.place = np.zeros((m, m))
        self.done = 0

    def agents(self) -> list[AgentRecord]:
        return [AgentRecord(name, "model", "", "", {"benchmarks": dict(zip(self.benchmarks, map(float, row), strict=True))})
                for name, row in zip(self.models, self.scores, strict=True)]

    def sim_time(self, step: int) -> float:
        return float(step)

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]:
        return []

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None:
        n_total = self.spec.n_tournaments
        n = n_total // self.steps + (1 if ctx.step < n_total % self.steps else 0)
        if n:
            res = csd.simulate(self.scores, self.models, n, self.spec.eliminations, self.spec.ties, self.spec.bye_points,
                               seed=int(make_rng(self.seed, "csd", ctx.step).integers(2**63)))
            # Combine batches exactly: keep sums of S and S^2 over all tournaments so far.
            var = res.std_error**2 * n
            self.sum += res.expected_score * n
            self.sum_sq += (var * (n - 1) / n + res.expected_score**2) * n if n > 1 else res.expected_score**2
            self.place += res.place_counts
            self.done += n
        mean = self.sum / max(self.done, 1)
        var = np.maximum(self.sum_sq / max(self.done, 1) - mean**2, 0) * self.done / max(self.done - 1, 1)
        se = np.sqrt(var / max(self.done, 1))
        ctx.metric("tournaments", self.done)
        for name, e, s in zip(self.models, mean, se, strict=True):
            ctx.metric("expected_score", e, agent_id=name)
            ctx.metric("std_error", s, agent_id=name)
        counted = float(self.place[0].sum())  # every row sums to the tournaments counted (a resumed old checkpoint: fewer)
        if counted:
            ctx.metric("placement_tournaments", counted)
            for name, row in zip(self.models, self.place / counted, strict=True):
                for place, p in enumerate(row, start=1):
                    ctx.metric(f"placement/{place}", float(p), agent_id=name)
        if ctx.step == self.steps - 1 and self.spec.sensitivity:
            sweep = csd.failure_sensitivity(self.scores, self.models, self.spec.sensitivity, self.spec.sensitivity_tournaments,
                                            seed=int(make_rng(self.seed, "sensitivity").integers(2**63)), ties=self.spec.ties,
                                            bye_points=self.spec.bye_points)
            for row in sweep.itertuples(index=False):
                ctx.emit(row.model, "sensitivity", None, {"T": int(row.T), "expected_score": float(row.expected_score),
                                                         "std_error": float(row.std_error), "rank": int(row.rank),
                                                         "rank_range": int(row.rank_range), "score_cv": float(row.score_cv)})

    def get_state(self) -> dict[str, Any]:
        return {"sum": self.sum.tolist(), "sum_sq": self.sum_sq.tolist(), "done": self.done, "place": self.place.tolist()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.sum = np.asarray(state["sum"], float)
        self.sum_sq = np.asarray(state["sum_sq"], float)
        self.done = int(state["done"])
        # a checkpoint from before placements were counted: they count from the resumed step on
        self.place = np.asarray(state.get("place", np.zeros_like(self.place)), float).reshape(self.place.shape)


# -- live -------------------------------------------------------------------------------------------------------
class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(..., max_length=400)


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    move: Literal["C", "D"] = Field(..., description="C to cooperate, D to defect.")


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Literal["A", "B", "tie"]


@dataclass(frozen=True, slots=True)
class MatchView:
    """What a rule-based participant or judge reads."""

    kind: str
    me: Participant | None
    item: Item | None = None
    my_moves: tuple[str, ...] = ()
    their_moves: tuple[str, ...] = ()
    answers: tuple[str, str] = ("", "")


def _normalise(text: str) -> str:
    # Letters and digits of every script count (an ASCII-only pattern would reduce "東京" and "大阪" to the same "").
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def score_answer(scorer: str, answer: str, reference: str) -> bool:
    """exact: equal after case-folding, NFKC and dropping punctuation (letters and digits of any script stay);
    contains: the reference appears in the answer; numeric: the first number in the answer equals the reference."""
    if not reference:
        return False
    ref = _normalise(reference)
    if scorer == "exact":
        return bool(ref) and _normalise(answer) == ref
    if scorer == "contains":
        return bool(ref) and ref in _normalise(answer)
    m = re.search(r"-?\d+(?:\.\d+)?", answer.replace(",", ""))
    try:
        return m is not None and abs(float(m.group()) - float(reference)) < 1e-9
    except ValueError:
        return False


def load_items(spec: LiveSpec) -> list[Item]:
    if spec.items or spec.items_file is None:
        return list(spec.items)
    from agentsim.scenarios.tournament.files import read_items

    return read_items(spec.items_file)


class LiveWorld:
    def __init__(self, config: TournamentConfig, steps: int):
        assert config.live is not None
        self.spec = config.live
        self.participants = {p.name: p for p in config.participants}
        self.names = [p.name for p in config.participants]
        self.items = load_items(self.spec)
        kind = self.spec.match
        self.phases = {"benchmark": ("answer",), "judge": ("answer", "judge"),
                       "ipd": tuple(f"move{t + 1}" for t in range(self.spec.ipd_turns))}[kind]
        self.score = dict.fromkeys(self.names, 0.0)
        self.played: set[frozenset[str]] = set()
        self.had_bye: set[str] = set()
        self.results: list[tuple[str, str, float]] = []
        self.pairs: list[tuple[str, str]] = []
        self._answers: dict[str, str] = {}
        self._moves: dict[str, list[str]] = {}

    def agents(self) -> list[AgentRecord]:
        out = [AgentRecord(p.name, "participant", p.model, "", {"system": p.system}) for p in self.participants.values()]
        if self.spec.match == "judge":
            out.append(AgentRecord(JUDGE_ID, "judge", self.spec.judge or "", "", {}))
        return out

    def sim_time(self, step: int) -> float:
        return float(step + 1)  # round number

    def _item(self, step: int) -> Item:
        return self.items[step % len(self.items)]

    def _start_round(self, ctx: StepContext) -> None:
        self.pairs, bye = swiss_pairing(self.score, self.played, self.had_bye, order=self.names)
        self._answers, self._moves = {}, {n: [] for n in self.names}
        if bye is not None:
            self.had_bye.add(bye)
            self.score[bye] += self.spec.bye_points
            ctx.emit(bye, "bye", None, {"points": self.spec.bye_points})

    def _system(self, p: Participant) -> list[dict[str, str]]:
        return [{"role": "system", "content": p.system}] if p.system else []

    def observe(self, ctx: StepContext, phase: str) -> list[Observation]:
        if phase == self.phases[0]:
            self._start_round(ctx)
        item = self._item(ctx.step) if self.items else None
        obs: list[Observation] = []
        if phase == "answer":
            assert item is not None
            for a, b in self.pairs:
                for name in (a, b):
                    p = self.participants[name]
                    prompt = f'{item.question}\n\nReply with JSON: {{"answer": "..."}}'
                    obs.append(Observation(name, p.model, self._system(p) + [{"role": "user", "content": prompt}],
                                           Answer, MatchView(self.spec.match, p, item)))
        elif phase == "judge":
            assert item is not None
            for i, (a, b) in enumerate(self.pairs):
                for order, (x, y) in (("ab", (a, b)), ("ba", (b, a))):
                    ax, ay = self._answers.get(x, ""), self._answers.get(y, "")
                    prompt = (f"Question: {item.question}\n\nAnswer A:\n{ax}\n\nAnswer B:\n{ay}\n\n"
                              'Which answer is better? Reply with JSON: {"winner": "A" | "B" | "tie"}')
                    obs.append(Observation(JUDGE_ID, self.spec.judge or "", [{"role": "user", "content": prompt}], Verdict,
                                           MatchView("judge", None, item, answers=(ax, ay)), tag=f"#{i}{order}"))
        else:
            turn = len(self._moves[self.pairs[0][0]]) if self.pairs else 0
            pay = self.spec.payoffs
            rules = (f"You play an iterated prisoner's dilemma, move {turn + 1} of {self.spec.ipd_turns}. Payoffs: both cooperate "
                     f"{pay.R} each; both defect {pay.P} each; a defector against a cooperator gets {pay.T}, the cooperator {pay.S}.")
            for a, b in self.pairs:
                for me, other in ((a, b), (b, a)):
                    p = self.participants[me]
                    hist = ", ".join(f"you {x}/they {y}" for x, y in zip(self._moves[me], self._moves[other], strict=True)) or "none"
                    prompt = f'{rules}\nHistory: {hist}.\nReply with JSON: {{"move": "C" or "D"}}'
                    obs.append(Observation(me, p.model, self._system(p) + [{"role": "user", "content": prompt}], Move,
                                           MatchView("ipd", p, None, tuple(self._moves[me]), tuple(self._moves[other]))))
        return obs

    def apply(self, ctx: StepContext, phase: str, decisions: list[Decision]) -> None:
        by_agent = {d.agent_id: d for d in decisions if d.agent_id != JUDGE_ID}
        if phase == "answer":
            item = self._item(ctx.step)
            for name, d in by_agent.items():
                text = d.action.answer if d.valid and isinstance(d.action, Answer) else ""
                self._answers[name] = text
                correct = score_answer(self.spec.scorer, text, item.answer)
                ctx.emit(name, "answer", None, {"answer": text, "correct": correct}, request_id=d.request_id)
            if self.spec.match == "benchmark":
                for a, b in self.pairs:
                    ca = score_answer(self.spec.scorer, self._answers.get(a, ""), item.answer)
                    cb = score_answer(self.spec.scorer, self._answers.get(b, ""), item.answer)
                    self._finish(ctx, a, b, 1.0 if ca > cb else 0.0 if cb > ca else 0.5)
        elif phase == "judge":
            verdicts = [d.action.winner if d.valid and isinstance(d.action, Verdict) else "tie" for d in decisions]
            for i, (a, b) in enumerate(self.pairs):
                ab, ba = verdicts[2 * i], verdicts[2 * i + 1]
                # Position bias control: a wins only if preferred in both orders.
                a_wins = ab == "A" and ba == "B"
                b_wins = ab == "B" and ba == "A"
                ctx.emit(JUDGE_ID, "verdict", a, {"opponent": b, "a_first": ab, "b_first": ba})
                self._finish(ctx, a, b, 1.0 if a_wins else 0.0 if b_wins else 0.5)
        else:
            for a, b in self.pairs:
                ma = by_agent[a].action.move if by_agent[a].valid else "C"
                mb = by_agent[b].action.move if by_agent[b].valid else "C"
                self._moves[a].append(ma)
                self._moves[b].append(mb)
                ctx.emit(a, "move", b, {"move": ma}, request_id=by_agent[a].request_id)
                ctx.emit(b, "move", a, {"move": mb}, request_id=by_agent[b].request_id)
            if phase == self.phases[-1]:
                pay = self.spec.payoffs
                table = {("C", "C"): (pay.R, pay.R), ("C", "D"): (pay.S, pay.T),
                         ("D", "C"): (pay.T, pay.S), ("D", "D"): (pay.P, pay.P)}
                for a, b in self.pairs:
                    pa = sum(table[x, y][0] for x, y in zip(self._moves[a], self._moves[b], strict=True))
                    pb = sum(table[x, y][1] for x, y in zip(self._moves[a], self._moves[b], strict=True))
                    self._finish(ctx, a, b, 1.0 if pa > pb else 0.0 if pb > pa else 0.5, {"payoff_a": pa, "payoff_b": pb})
        if phase == self.phases[-1]:
            ctx.metric("matches", len(self.pairs))
            for name in self.names:
                ctx.metric("points", self.score[name], agent_id=name)

    def _finish(self, ctx: StepContext, a: str, b: str, score_a: float, extra: dict[str, Any] | None = None) -> None:
        self.score[a] += score_a
        self.score[b] += 1.0 - score_a
        self.played.add(frozenset((a, b)))
        self.results.append((a, b, score_a))
        ctx.emit(a, "match", b, {"score_a": score_a, "round": ctx.step + 1, **(extra or {})})

    def get_state(self) -> dict[str, Any]:
        return {"score": dict(self.score), "played": sorted(sorted(p) for p in self.played), "had_bye": sorted(self.had_bye),
                "results": [list(r) for r in self.results]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.score = dict(state["score"])
        self.played = {frozenset(p) for p in state["played"]}
        self.had_bye = set(state["had_bye"])
        self.results = [tuple(r) for r in state["results"]]  # type: ignore[misc]
