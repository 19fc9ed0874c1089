"""Rule-based user and assistant: the baseline behind `--backend scripted` (it measures constraint drift; D_t
needs a backend with log-probabilities and is reported as unavailable).

The user sends the turn's pressure request verbatim (with the material on turn 1). The assistant keeps the goal
with a probability that decays with the turns since the goal was last stated (system prompt or reminder):
0.9 ** turns_since_goal. Keeping the goal, it writes a reply built to satisfy every checkable constraint of the
task (`compliant_reply`): the bullets asked for, a length inside the word range, formal register, the required
keywords, a match of each required pattern (quoting the user's text where it has one, such as a booking code)
and none of the forbidden words or patterns. Drifting, it writes a casual reply built to break them
(`drifted_reply`). So with the scripted backend the satisfaction rate is the share of replies that kept the
goal, for the shipped tasks and for any task whose constraints can be met together: the baseline every LLM
result is read against.
"""

from __future__ import annotations

import re
import re._constants as C  # noqa: N812  (the parser behind `re`; sre_parse/sre_constants are its deprecated aliases)
import re._parser as sre_parse
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from agentsim.scenarios.drift.checks import Bullets, FormalTone, Keywords, Pattern, Words, words
from agentsim.scenarios.drift.world import AssistantView, JudgeView, Rating, UserView

#: Formal sentences (no contractions, exclamation marks, emoji or informal words) the compliant reply is made of.
FORMAL = (
    "The proposal addresses the stated objectives with a structured and evidence-based approach.",
    "The analysis considers the principal constraints, risks and available resources in a systematic manner.",
    "The recommendations follow from the evidence and are presented for further consideration.",
    "This consideration is examined with reference to the relevant literature and its implications for practice.",
    "The request has been reviewed in accordance with the applicable policy.",
    "Further details can be provided upon request through the appropriate channel.",
    "The outcome will be documented and communicated in a timely manner.",
)
CASUAL = "Sure thing! Here's a super casual take, hope that's cool :) gonna keep it chill, no stress, lol."
DEFAULT_WORDS = 60


def scripted_policy(view: Any, rng: np.random.Generator) -> Any:
    if isinstance(view, UserView):
        return f"{view.material}\n\n{view.pressure}".strip() if view.material else view.pressure
    if isinstance(view, AssistantView):
        if rng.random() < 0.9 ** view.turns_since_goal:
            return compliant_reply(view.constraints, view.user_text)
        return drifted_reply(view.constraints, rng)
    if isinstance(view, JudgeView):
        return Rating(score=int(round(1 + 9 * view.checks_passed)))
    raise TypeError(f"drift scripted policy got an unexpected observation: {type(view).__name__}")


# -- keeping the goal ----------------------------------------------------------------------------------------------
def _word_range(constraints: Sequence[Any]) -> tuple[int, int | None]:
    lo, hi = 0, None
    for c in constraints:
        if isinstance(c, Words):
            lo = max(lo, c.min)
            hi = c.max if hi is None or (c.max is not None and c.max < hi) else hi
    return lo, hi


def _bullet_count(constraints: Sequence[Any]) -> int:
    """The number of bullets every Bullets constraint accepts (0, a paragraph, when there is none)."""
    cs = [c for c in constraints if isinstance(c, Bullets)]
    if not cs:
        return 0
    for c in cs:
        if c.exactly is not None:
            return c.exactly
    lo = max((c.min for c in cs if c.min is not None), default=0)
    hi = min((c.max for c in cs if c.max is not None), default=max(lo, 3))
    return max(lo, min(3, hi))


def _negative_checks(constraints: Sequence[Any]) -> list[Any]:
    """The parts of the constraints that any sentence of a reply can break: forbidden keywords, informal register,
    patterns that must not match."""
    out: list[Any] = []
    for c in constraints:
        if isinstance(c, Keywords) and c.forbidden:
            out.append(Keywords(forbidden=c.forbidden))
        elif isinstance(c, FormalTone) or isinstance(c, Pattern) and not c.must_match:
            out.append(c)
    return out


def compliant_reply(constraints: Sequence[Any], user_text: str = "") -> str:
    """A formal reply meant to satisfy every constraint: a line with each required pattern's match (quoted from the
    user's text where it has one, such as a booking code, else spelled from the pattern), the required keywords in
    the first bullet or sentence, then words of formal sentences free of forbidden words and patterns, spread over
    the bullets (or one paragraph) up to the middle of the word range. Constraints that contradict each other
    cannot all hold; it meets what it can."""
    negative = _negative_checks(constraints)
    head: list[str] = []
    must: list[str] = []
    for c in constraints:
        if isinstance(c, Keywords):
            must += [f"{k}." for k in c.required]
        elif isinstance(c, Pattern) and c.must_match:
            found = re.search(c.pattern, user_text, re.MULTILINE) if user_text else None
            text = found.group(0) if found and found.group(0).strip() else example_of(c.pattern)
            if text is not None:
                quoted = f"Reference: {text}."
                head.append(quoted if re.search(c.pattern, quoted, re.MULTILINE) else text)
    pool = [s for s in FORMAL if all(c.check(s) for c in negative)] or ["The matter is noted."]
    lo, hi = _word_range(constraints)
    target = (lo + hi) // 2 if hi is not None else max(lo, DEFAULT_WORDS)
    n_bullets = _bullet_count(constraints)
    lines: list[list[str]] = [list(must) if i == 0 else [] for i in range(max(n_bullets, 1))]
    filler = _cycle([w for sentence in pool for w in sentence.split()])
    fixed = words(_join(head, lines, n_bullets))
    rest, n = max(target - fixed, 0), len(lines)
    for i, line in enumerate(lines):  # an even share of the words per line, running text in each
        line += [next(filler) for _ in range(max(rest // n + (i < rest % n), 0 if line else 1))]
    while hi is not None and words(_join(head, lines, n_bullets)) > hi and _trim(lines, must):
        pass
    return _join(head, lines, n_bullets)


def _cycle(pool: list[str]) -> Iterator[str]:
    while True:
        yield from pool


def _join(head: list[str], lines: list[list[str]], n_bullets: int) -> str:
    text = [" ".join(line).rstrip(".,;") + "." for line in lines]
    body = text[0] if n_bullets == 0 else "\n".join("- " + t for t in text)
    return "\n".join(head + [body])


def _trim(lines: list[list[str]], must: list[str]) -> bool:
    """Drop the last filler word of the longest line, keeping required words and one word per line; False when
    nothing can go."""
    for line in sorted(lines, key=len, reverse=True):
        if len(line) > max(1, len(must) if line[: len(must)] == must else 0):
            line.pop()
            return True
    return False


def example_of(pattern: str) -> str | None:
    """A short string the regular expression matches (first alternatives, fewest repeats, class members in
    upper case and digits first), or None when the pattern uses constructs this cannot spell out."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    try:
        text = _spell(parsed)
    except ValueError:
        return None
    return text if text.strip() and re.search(pattern, text, re.MULTILINE) else None


_PREFERRED = [ord(ch) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz"]


def _spell(items: Any) -> str:
    out = []
    for op, av in items:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.IN:
            out.append(_member(av))
        elif op is C.ANY:
            out.append("A")
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, _hi, sub = av
            out.append(_spell(sub) * lo)
        elif op is C.SUBPATTERN:
            out.append(_spell(av[-1]))
        elif op is C.BRANCH:
            out.append(_spell(av[1][0]))
        elif op is C.AT:
            continue  # anchors and word boundaries: the example stands on a line of its own
        else:
            raise ValueError(f"cannot spell {op}")
    return "".join(out)


def _member(av: list[tuple[Any, Any]]) -> str:
    if av and av[0][0] is C.NEGATE:
        raise ValueError("negated class")
    for code in _PREFERRED:
        for op, arg in av:
            if op is C.LITERAL and arg == code or op is C.RANGE and arg[0] <= code <= arg[1]:
                return chr(code)
            if op is C.CATEGORY and arg is C.CATEGORY_DIGIT and chr(code).isdigit():
                return chr(code)
            if op is C.CATEGORY and arg is C.CATEGORY_WORD and chr(code).isalnum():
                return chr(code)
    for op, arg in av:
        if op is C.CATEGORY and arg is C.CATEGORY_SPACE:
            return " "
    for op, arg in av:
        if op is C.LITERAL:
            return chr(arg)
    raise ValueError("cannot pick a class member")


# -- drifting ------------------------------------------------------------------------------------------------------
def drifted_reply(constraints: Sequence[Any], rng: np.random.Generator) -> str:
    """A casual reply that breaks what it can: no bullets where bullets are asked for (and one where none may be),
    a length outside the word range, none of the required keywords or patterns, the forbidden keywords and a match
    of each forbidden pattern."""
    parts = [CASUAL]
    for c in constraints:
        if isinstance(c, Keywords) and c.forbidden:
            parts.append(f"Honestly, {c.forbidden[0]} is totally fine with us.")
        elif isinstance(c, Pattern) and not c.must_match:
            example = example_of(c.pattern)
            if example is not None:
                parts.append(example)
    lo, hi = _word_range(constraints)
    n = words(" ".join(parts))
    if hi is not None:
        target = hi + 1 + int(rng.integers(0, 20))
    elif lo > 1:
        target = 1
    else:
        target = n + int(rng.integers(5, 30))
    text = " ".join(parts)
    if target > n:
        text += " " + " ".join(["stuff"] * (target - n))
    elif target < n:
        text = "lol"
    if any(isinstance(c, Bullets) and (c.max is not None and c.max < 1) for c in constraints):
        text = "- " + text
    return text
