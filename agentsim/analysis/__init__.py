"""Analyses: functions of a RunLog that return DataFrames (notes on a table in `df.attrs["notes"]`, see tables.py).

Which analysis reads which family's runs is part of each family's registration (`Family.analyses`); `ANALYSES`
and `COMPARISONS` are views of it by analysis name, built on first use from the registry (core), so this package
never imports a family or the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["ANALYSES", "COMPARISONS"]


def _views() -> tuple[dict[str, Callable[[Any], dict[str, pd.DataFrame]]], dict[str, Callable[[list[Any]], dict[str, pd.DataFrame]]]]:
    from agentsim.core.family import resolve
    from agentsim.core.registry import families, get_family

    single, many = {}, {}
    for fam in families():
        for a in get_family(fam).analyses:
            single.setdefault(a.name, resolve(a.tables))
            if a.compare is not None:
                many.setdefault(a.name, resolve(a.compare))
    return single, many


def __getattr__(name: str) -> Any:
    if name == "ANALYSES":
        return _views()[0]
    if name == "COMPARISONS":
        return _views()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
