"""Analyses: functions of a RunLog that return DataFrames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from agentsim.analysis.drift import drift_tables
from agentsim.analysis.escalation import compare_runs, escalation_tables
from agentsim.analysis.social import social_tables
from agentsim.analysis.tournament import tournament_tables

ANALYSES: dict[str, Callable[[Any], dict[str, pd.DataFrame]]] = {
    "escalation": escalation_tables,
    "tournament": tournament_tables,
    "drift": drift_tables,
    "social": social_tables,
}

#: Analyses over several runs (a directory of run directories).
COMPARISONS: dict[str, Callable[[list[Any]], dict[str, pd.DataFrame]]] = {
    "escalation": compare_runs,
}
