"""Rule-based participants and judge: the baseline behind `--backend scripted`.

A participant answers a benchmark item correctly with probability `skill`; plays tit-for-tat in the prisoner's
dilemma, defecting spontaneously with probability (1 - skill) / 5; writes answers whose length grows with
`skill`. The judge prefers the longer answer and calls equal lengths a tie.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentsim.scenarios.tournament.world import Answer, MatchView, Move, Verdict


def scripted_policy(view: Any, rng: np.random.Generator) -> Any:
    if not isinstance(view, MatchView):
        raise TypeError(f"tournament scripted policy got an unexpected observation: {type(view).__name__}")
    if view.kind == "judge" and view.me is None:
        a, b = (len(x) for x in view.answers)
        return Verdict(winner="A" if a > b else "B" if b > a else "tie")
    skill = view.me.skill if view.me else 0.5
    if view.kind == "ipd":
        if rng.random() < (1 - skill) / 5:
            return Move(move="D")
        return Move(move=view.their_moves[-1] if view.their_moves else "C")
    assert view.item is not None
    if view.kind == "benchmark":
        return Answer(answer=view.item.answer if rng.random() < skill else "I do not know")
    words = max(1, int(round(40 * skill * rng.uniform(0.5, 1.0))))
    return Answer(answer=" ".join(["point"] * words))
