"""A lexicon stance scorer: cheap, deterministic, and the same in the scripted policy and the analysis."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z']+")


class LexiconStance:
    """score = clip(mean polarity of lexicon words x (0.5 + 0.25 x intensifiers), -1, 1); 0 with no lexicon word.
    extremity = |score|."""

    def __init__(self, positive: Iterable[str], negative: Iterable[str], intensifiers: Iterable[str] = ()):
        self.polarity = {w.lower(): 1.0 for w in positive} | {w.lower(): -1.0 for w in negative}
        self.intensifiers = {w.lower() for w in intensifiers}

    def score(self, text: str) -> float:
        words = _WORD.findall(text.lower())
        pol = [self.polarity[w] for w in words if w in self.polarity]
        if not pol:
            return 0.0
        boost = 0.5 + 0.25 * min(sum(1 for w in words if w in self.intensifiers), 2)
        return float(np.clip(np.mean(pol) * boost, -1.0, 1.0))

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.score(t) for t in texts], np.float64)
