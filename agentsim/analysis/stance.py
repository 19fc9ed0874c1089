"""A lexicon stance scorer: cheap, deterministic, and the same in the scripted policy and the analysis."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z']+")


class LexiconStance:
    """score = clip(mean polarity of lexicon words x (0.5 + 0.25 x intensifiers), -1, 1); 0 with no lexicon word.
    extremity = |score|.

    Two readings of a text without words (empty, or only punctuation and emoji): `score` gives 0, neutral, which is
    how a simulated reader takes it (the scripted social policy); `measure` and `scores`, the analysis side, give
    NaN, since a text without words carries no stance to measure. A text with words but none from the lexicon is
    measured as 0 (neutral or unrelated, the judge's 0 too)."""

    def __init__(self, positive: Iterable[str], negative: Iterable[str], intensifiers: Iterable[str] = ()):
        self.polarity = {w.lower(): 1.0 for w in positive} | {w.lower(): -1.0 for w in negative}
        self.intensifiers = {w.lower() for w in intensifiers}
        self._cache: dict[str, float] = {}  # a post is scored by every user whose feed shows it

    def score(self, text: str) -> float:
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        words = _WORD.findall(text.lower())
        pol = [self.polarity[w] for w in words if w in self.polarity]
        value = 0.0
        if pol:
            boost = 0.5 + 0.25 * min(sum(1 for w in words if w in self.intensifiers), 2)
            value = max(-1.0, min(1.0, sum(pol) / len(pol) * boost))
        if len(self._cache) > 1_000_000:
            self._cache.clear()
        self._cache[text] = value
        return value

    def __getstate__(self) -> dict:
        return {"polarity": self.polarity, "intensifiers": self.intensifiers}  # the cache stays behind

    def __setstate__(self, state: dict) -> None:
        self.polarity, self.intensifiers, self._cache = state["polarity"], state["intensifiers"], {}

    def measure(self, text: str) -> float:
        """The stance of a text as a measurement: NaN for a text without words, else `score`."""
        return self.score(text) if any(ch.isalpha() for ch in text) else float("nan")

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """`measure` of each text (NaN where a text has no words)."""
        return np.array([self.measure(t) for t in texts], np.float64)
