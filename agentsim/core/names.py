"""Names are data: agent ids, participant and nation names, group and arm labels may be any Unicode text.

The one rule (README "Names"), applied wherever a scenario or a data file names something:

- a name is stored NFC-normalised, so "e" + combining acute and "é" are the same name;
- it is not empty and has no white space at either end;
- it holds no control characters (Unicode category Cc: tab, newline, NUL, ...) and no line or paragraph
  separators (Zl, Zp): a name is one line in every prompt and table;
- agent ids are unique within a scenario, compared after NFC;
- agent ids are none of the ids the family uses for its own agents (`Family.reserved_ids`: a judge, the world
  model, ...), compared ignoring case, because a language model told about "judge" and "Judge" cannot tell them apart.

The first three are checked where a name is read (the `Name` type of the pydantic models); the last two need the
whole scenario and are checked once, for every family, by `name_problems` over the `NamedId`s that the family's
`names` hook lists (core/family.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

#: The documented rule, quoted by error messages and the README.
NAME_RULE = (
    "any Unicode text (stored NFC-normalised), not empty, without white space at either end, without control "
    "characters or line/paragraph separators"
)
_FORBIDDEN_CATEGORIES = {"Cc": "a control character", "Cs": "a lone surrogate", "Zl": "a line separator", "Zp": "a paragraph separator"}


def nfc(text: str) -> str:
    """The NFC form of `text` (identity for text that is already NFC, which is almost all text)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


# Every code point of the categories above (they are closed sets in Unicode: Cc is C0, DEL and C1; Zl and Zp one
# character each; Cs the surrogates); one regex search instead of a category lookup per character.
# tests/test_names.py checks this class against unicodedata over all code points.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def name_error(name: str) -> str | None:
    """Why `name` (already NFC) breaks the rule, or None when it keeps it."""
    if not name:
        return "must not be empty"
    if name[0].isspace() or name[-1].isspace():
        return f"{name!r} has white space at its start or end"
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        ch = bad.group()
        return f"{name!r} contains {_FORBIDDEN_CATEGORIES[unicodedata.category(ch)]} (U+{ord(ch):04X}); a name is one line of text"
    return None


def check_name(value: str) -> str:
    """`value` in NFC; ValueError with the reason when it breaks the rule (the validator of `Name`)."""
    value = nfc(value)
    problem = name_error(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_NUMBERS = (int, float)  # bool is an int


def _no_numbers(value: object) -> object:
    # YAML reads `name: 007` as the number 7: a name given as a number has lost its spelling, so say so.
    if isinstance(value, _NUMBERS):
        raise ValueError(f"{value!r} is a number; write a name as text (in YAML, quote it: '{value}')")
    return value


#: A name in a pydantic model: NFC-normalised and checked against the rule on validation.
Name = Annotated[str, BeforeValidator(_no_numbers), AfterValidator(check_name)]


@dataclass(frozen=True, slots=True)
class NamedId:
    """One agent id a scenario defines, and where: a YAML path (`loc`), and for a data file its path and 1-based row.

    `loc` is where a problem is reported in the scenario (the field itself, or the file field for a data file)."""

    id: str
    loc: tuple[str | int, ...]
    file: str | None = None
    row: int | None = None
    field: str | None = None

    def place(self) -> str:
        """'users.csv row 3 (id 'bob'): field user_id' for a file; the YAML path otherwise."""
        if self.file is None:
            return ".".join(str(p) for p in self.loc)
        out = f"{self.file} row {self.row} (id {self.id!r})"
        return out + (f": field {self.field}" if self.field else "")


def name_problems(names: Iterable[NamedId], reserved: Iterable[str], family: str = "") -> list[tuple[list[str | int], str]]:
    """(YAML path, message) for every id that breaks the rule, repeats an earlier one, or is reserved.

    Reserved ids are compared ignoring case (casefold), repeats exactly after NFC."""
    reserved_by_fold = {nfc(r).casefold(): r for r in reserved}
    first: dict[str, NamedId] = {}
    out: list[tuple[list[str | int], str]] = []
    for n in names:
        ident = nfc(n.id)
        prefix = f"{n.place()}: " if n.file is not None else ""
        problem = name_error(ident)
        if problem is not None:
            out.append((list(n.loc), f"{prefix}{problem}"))
            continue
        own = reserved_by_fold.get(ident.casefold())
        if own is not None:
            whose = f"the {family} family" if family else "the family"
            out.append((list(n.loc), f"{prefix}{ident!r} is reserved: {whose} uses {own!r} for its own agent "
                                     f"(reserved ids, ignoring case: {', '.join(sorted(reserved_by_fold.values()))})"))
            continue
        earlier = first.get(ident)
        if earlier is not None:
            out.append((list(n.loc), f"{prefix}{ident!r} is used twice; first at {earlier.place()}"))
            continue
        first[ident] = n
    return out

