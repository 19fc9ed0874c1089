"""How numbers and headers of analysis tables are shown in a terminal (never how they are stored: `--out` CSVs keep
every row at full precision, under the column names the code uses).

Cells (`format_number`, `column_formatter`):
- integers (an integer column, or a whole float such as 3.0) are shown as integers, without decimals;
- other floats to `SIG` (4) significant figures, trailing zeros dropped: 0.1234, 12.35, 0.5; magnitudes of 10**SIG
  and above are rounded to an integer (12346, no exponent), below 1e-4 in scientific notation (1.235e-05);
- a value that rounds to zero is "0", never "-0" or "-0.0000";
- a missing value (NaN, None, pd.NA, NaT) is always `MISSING` ("–", an en dash), whatever the column;
- infinities are "inf" / "-inf"; booleans "True" / "False"; anything else `str(v)`.

Headers (`header`): a column whose unit the code knows gets it in parentheses, "d_mc_mean (nats/token)". Units come
from `UNITS` (columns named by the analyses) and from the suffix convention of `SUFFIX_UNITS` (`*_s`: seconds,
`*_pct`: percent). A column not named there has no unit shown (a count, a share, a score).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

SIG = 4
MISSING = "–"

#: Columns of the analyses whose unit is known from the code that computes them.
UNITS: dict[str, str] = {
    # drift (scenarios/drift/kl.py): D_t is a KL divergence averaged over the reply's tokens, natural log.
    **dict.fromkeys(("d_mc", "d_topk", "d_mc_mean", "d_topk_mean", "d_mc_after_reminder", "d_topk_after_reminder"),
                    "nats/token"),
    # escalation (analysis/escalation.py: escalation_by_day): ES_t = weighted total / nations.
    **dict.fromkeys(("es", "es_mean", "run_score"), "points/nation"),
    "tokens/s": "tokens/s",
}

#: Name suffix -> unit: the codebase's naming convention for seconds and percentages.
SUFFIX_UNITS: tuple[tuple[str, str], ...] = (("_pct", "%"), ("_s", "s"))


def unit_of(column: str) -> str:
    """The unit of a column ("" when the code does not know one)."""
    if column in UNITS:
        return UNITS[column]
    for suffix, unit in SUFFIX_UNITS:
        if column.endswith(suffix) and len(column) > len(suffix):
            return unit
    return ""


def header(column: Any) -> str:
    """A column's header for the terminal: its name, and its unit in parentheses when known ("wall_s (s)")."""
    name = str(column)
    unit = unit_of(name)
    return f"{name} ({unit})" if unit and unit != name else name


def is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return isinstance(v, Real | np.floating) and math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def format_number(v: Any, sig: int = SIG) -> str:
    """One cell as text (see the module docstring). `sig` >= 1 significant figures for non-integral floats."""
    if is_missing(v):
        return MISSING
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, Integral | np.integer):
        return str(int(v))
    if not isinstance(v, Real | np.floating):
        return str(v)
    x = float(v)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"  # -0.0 too
    a = abs(x)
    if a >= 10**sig or x.is_integer():
        return str(int(round(x))) if a < 1e16 else f"{x:.{sig - 1}e}"
    if a < 1e-4:
        return f"{x:.{sig - 1}e}"
    decimals = max(0, sig - 1 - math.floor(math.log10(a)))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if float(text) == 0:  # rounding can reach zero only from a tiny value, which went to the branch above
        return "0"
    # 9.99995 rounds up to 10.000 at 4 decimals: re-round at the new magnitude so it stays at `sig` figures.
    if abs(float(text)) >= 10 ** (math.floor(math.log10(a)) + 1):
        return format_number(float(text), sig)
    return text


def column_formatter(s: pd.Series, sig: int = SIG) -> Callable[[Any], str]:
    """The cell formatter of one column: integers as integers (also the nullable Int64 kind, and a float column
    whose values are all whole, e.g. points 3.0), floats to `sig` significant figures, missing as `MISSING`."""
    types = pd.api.types
    if types.is_bool_dtype(s.dtype):
        return lambda v: MISSING if is_missing(v) else str(bool(v))
    if types.is_integer_dtype(s.dtype):
        return lambda v: MISSING if is_missing(v) else str(int(v))
    noise = cancellation_noise(s)
    if noise:
        return lambda v: "0" if not is_missing(v) and isinstance(v, Real | np.floating) and abs(float(v)) < noise else format_number(v, sig)
    return lambda v: format_number(v, sig)


#: Relative size of rounding error left where signed quantities cancel (a centred strength, a symmetric interval):
#: about 10^4 float64 epsilons.
NOISE = 1e-12


def cancellation_noise(s: pd.Series) -> float:
    """The magnitude below which a value of a SIGNED float column is rounding error around zero (`NOISE` times the
    column's largest magnitude), shown as "0"; 0.0 (keep every value) for a column without negative values:
    p-values, rates and sizes are not sums that cancel, and their tiny values are data."""
    if not pd.api.types.is_float_dtype(s.dtype):
        return 0.0
    x = s.to_numpy(dtype=float, na_value=np.nan)
    x = x[np.isfinite(x)]
    if not len(x) or x.min() >= 0:
        return 0.0
    return NOISE * float(np.abs(x).max())
