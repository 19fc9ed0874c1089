"""The lexicon stance scorer: a text without words is no measurement for the analyses, neutral for a reader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentsim.analysis.stance import LexiconStance

LEX = LexiconStance(["good", "support"], ["bad", "oppose"], ["very"])


@pytest.mark.parametrize(("text", "measured"), [
    ("", None),
    ("   \n\t", None),
    ("!!! :) ...", None),
    ("\U0001f600\U0001f44d", None),
    ("123 456", None),
    ("the weather today", 0.0),  # words, none from the lexicon: neutral or unrelated, as the judge's 0
    ("good", 0.5),
    ("very good support", 0.75),
    ("bad", -0.5),
])
def test_measure(text: str, measured: float | None) -> None:
    got = LEX.measure(text)
    if measured is None:
        assert math.isnan(got), text
        assert LEX.score(text) == 0.0  # a simulated reader takes a wordless post as neutral
    else:
        assert got == pytest.approx(measured) and LEX.score(text) == pytest.approx(measured)


def test_scores_are_measurements() -> None:
    out = LEX.scores(["good", "", "bad", "?!"])
    assert out[0] == 0.5 and out[2] == -0.5 and np.isnan(out[[1, 3]]).all()
