"""Registry of scenario families, after Gymnasium's: lazy entry points, third-party plug-ins, helpful typos.

Families are found under the `agentsim.families` entry-point group, so another package adds one with
`[project.entry-points."agentsim.families"] mygame = "mypkg.mygame:FAMILY"`; `register()` adds one at run time.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentsim.core.family import Analysis, Family

ENTRY_POINT_GROUP = "agentsim.families"

_entry_points: dict[str, str] = {}
_loaded: dict[str, Family] = {}
_discovered = False


class UnknownAnalysisError(KeyError):
    def __init__(self, name: str, known: list[str]):
        hint = difflib.get_close_matches(name, known, n=1)
        self.message = f"unknown analysis {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "") + \
            f" Analyses (or a family's name for its default): {', '.join(known) or '(none registered)'}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class UnknownFamilyError(KeyError):
    def __init__(self, name: str, known: list[str]):
        hint = difflib.get_close_matches(name, known, n=1)
        msg = f"unknown scenario kind {name!r}"
        if hint:
            msg += f"; did you mean {hint[0]!r}?"
        msg += f" Known kinds: {', '.join(known) or '(none installed)'}"
        self.message = msg
        super().__init__(msg)

    def __str__(self) -> str:
        return self.message


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _entry_points.setdefault(ep.name, ep.value)
    _discovered = True


def register(name: str, entry_point: str | Family) -> None:
    """Register a family under `name`: either a `"module:attribute"` string (imported on first use) or the object."""
    if isinstance(entry_point, str):
        _entry_points[name] = entry_point
        _loaded.pop(name, None)
    else:
        _loaded[name] = entry_point


@contextmanager
def registered(name: str, entry_point: str | Family) -> Iterator[None]:
    """Register a family for the duration of a block only (a benchmark's private family must not show up in
    `agentsim families` or the scenario schema of the process afterwards)."""
    _discover()
    saved = dict(_entry_points), dict(_loaded)
    register(name, entry_point)
    try:
        yield
    finally:
        _entry_points.clear()
        _entry_points.update(saved[0])
        _loaded.clear()
        _loaded.update(saved[1])


def families() -> list[str]:
    _discover()
    return sorted(set(_entry_points) | set(_loaded))


def get_family(name: str) -> Family:
    _discover()
    if name in _loaded:
        return _loaded[name]
    if name not in _entry_points:
        raise UnknownFamilyError(name, families())
    module_name, _, attr = _entry_points[name].partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    _loaded[name] = obj
    return obj


def analyses() -> dict[str, list[tuple[str, Analysis]]]:
    """Every name `agentsim analyze` accepts -> the (family, analysis) pairs it stands for: each registered
    analysis under its own name, and each family's name for its default (first) analysis. A name two families
    share stands for both; the run's kind decides."""
    out: dict[str, list[tuple[str, Analysis]]] = {}
    for fam in families():
        regs = get_family(fam).analyses
        for a in regs:
            out.setdefault(a.name, []).append((fam, a))
        if regs and (fam, regs[0]) not in out.setdefault(fam, []):
            out[fam].append((fam, regs[0]))
    return out


def find_analysis(name: str) -> list[tuple[str, Analysis]]:
    """The (family, analysis) pairs `name` stands for (see `analyses`); UnknownAnalysisError with the known names."""
    known = analyses()
    if name not in known:
        raise UnknownAnalysisError(name, sorted(known))
    return known[name]
