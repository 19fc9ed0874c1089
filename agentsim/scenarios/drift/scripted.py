"""Rule-based user and assistant: the baseline behind `--backend scripted` (it measures constraint drift; D_t
needs a backend with log-probabilities and is reported as unavailable).

The user sends the turn's pressure request verbatim (with the material on turn 1). The assistant keeps the goal
with a probability that decays with the turns since the goal was last stated (system prompt or reminder):
0.9 ** turns_since_goal, and otherwise gives a casual reply that breaks the usual constraints.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentsim.scenarios.drift.world import AssistantView, JudgeView, Rating, UserView

COMPLIANT = [
    "- The proposal addresses the stated objectives with a structured and evidence-based approach.",
    "- The analysis considers the principal constraints, risks and available resources in a systematic manner.",
    "- The recommendations follow from the evidence and are presented for further academic consideration.",
]
FILLER = "This consideration is examined with reference to the relevant literature and its implications for practice."


def scripted_policy(view: Any, rng: np.random.Generator) -> Any:
    if isinstance(view, UserView):
        return f"{view.material}\n\n{view.pressure}".strip() if view.material else view.pressure
    if isinstance(view, AssistantView):
        if rng.random() < 0.9 ** view.turns_since_goal:
            extra = " ".join([FILLER] * 2)
            return "\n".join(f"{line} {extra}" for line in COMPLIANT)
        return "Sure thing! Here's a super casual take, hope that's cool :) " + " ".join(["stuff"] * int(rng.integers(5, 30)))
    if isinstance(view, JudgeView):
        return Rating(score=int(round(1 + 9 * view.checks_passed)))
    raise TypeError(f"drift scripted policy got an unexpected observation: {type(view).__name__}")
