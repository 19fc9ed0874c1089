"""Intervals shared by the analyses: every bootstrap goes through `bootstrap` (scipy.stats.bootstrap), every
t-interval through `mean_t_interval` (`mean_ci`); both say when an interval is undefined instead of returning a zero-width one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from agentsim.analysis.tables import captured_warnings

BCA_MAX_N = 5000
_BATCH_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A confidence interval; `low`/`high` are floats, or arrays for a statistic with several outputs. NaN bounds
    come with a `note` saying why (too few observations, a degenerate resampling distribution)."""

    low: float | np.ndarray
    high: float | np.ndarray
    note: str = ""

    @property
    def defined(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))


def _nan_like(shape: tuple[int, ...]) -> float | np.ndarray:
    return np.full(shape, np.nan) if shape else float("nan")


def bootstrap(
    samples: Sequence[np.ndarray], statistic: Callable[..., float | np.ndarray], *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0, paired: bool = False, vectorized: bool = True, method: str = "BCa",
    output_shape: tuple[int, ...] = (), batch: int | None = None,
) -> Interval:
    """Bootstrap confidence interval of `statistic(*samples)` with scipy.stats.bootstrap.

    - `samples`: one array per sample, resampled independently (two samples: a difference of means), or together
      when `paired` (rows of one table given as several columns; pass indices to resample whole rows of anything).
    - `statistic`: with `vectorized`, called with an `axis` keyword on stacked resamples (numpy reductions do this);
      otherwise once per resample. It may return an array (all outputs get intervals at once).
    - `method`: "BCa" (scipy's default; best coverage for skewed statistics), or "percentile" where the jackknife
      behind BCa would refit a costly statistic once per observation. BCa's jackknife costs O(n^2) for a mean, so
      above `BCA_MAX_N` observations the percentile interval is used (at that size the two agree).
    - `output_shape`: the statistic's output shape, so an undefined interval has the right shape of NaNs.
    - `batch`: resamples per call of a vectorized statistic (default: as many as fit in a few tens of MB of
      resampled data; give a smaller one when the statistic itself needs more memory per resample).

    Undefined (NaN bounds and a note) when a sample has fewer than 2 observations. When every resample gives the
    same value (all observations equal) the interval is that value, with a note saying it has zero width because
    the data do not vary."""
    samples = tuple(np.asarray(s) for s in samples)
    sizes = [len(s) for s in samples]
    if min(sizes, default=0) < 2:
        nan = _nan_like(output_shape)
        return Interval(nan, nan, f"undefined: a bootstrap needs at least 2 observations per sample; got {min(sizes, default=0)}")
    if method == "BCa" and max(sizes) > BCA_MAX_N:
        method = "percentile"
    # Memory is O(batch x n): cap it at a few tens of MB however large the sample.
    if batch is None and vectorized:
        batch = max(1, min(n_resamples, _BATCH_CELLS // max(sizes)))
    with captured_warnings() as warned:
        res = stats.bootstrap(samples, statistic, confidence_level=confidence, n_resamples=n_resamples, method=method,
                              paired=paired, vectorized=vectorized, batch=batch, random_state=np.random.default_rng(seed))
    lo, hi = np.asarray(res.confidence_interval.low, float), np.asarray(res.confidence_interval.high, float)
    dist = np.asarray(res.bootstrap_distribution, float)
    flat = dist.reshape(-1, dist.shape[-1]) if dist.ndim > 1 else dist[None, :]
    constant = np.all(flat == flat[:, :1], axis=1).reshape(lo.shape)
    note = ""
    if constant.any():
        # BCa cannot be computed then (scipy says DegenerateDataWarning); every resample agrees, so say so.
        value = flat[:, 0].reshape(lo.shape)
        lo, hi = np.where(constant, value, lo), np.where(constant, value, hi)
        note = "zero width: every resample gives the same value (the observations do not vary)"
    elif warned or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        note = "; ".join(warned) or "the bootstrap gave no finite interval"
    if lo.ndim == 0:
        return Interval(float(lo), float(hi), note)
    return Interval(lo, hi, note)


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of the mean of `values` (NaNs dropped); (nan, nan) for fewer than 2 values. See `bootstrap`."""
    ci = mean_bootstrap(values, confidence, n_resamples, seed)
    return float(ci.low), float(ci.high)


def mean_bootstrap(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """`bootstrap_ci` with its note."""
    v = np.asarray(values, dtype=float)
    return bootstrap((v[~np.isnan(v)],), np.mean, confidence=confidence, n_resamples=n_resamples, seed=seed)


def diff_of_means(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """Bootstrap CI of mean(b) - mean(a) for two independent samples (each resampled at its own size)."""
    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y, axis=axis) - np.mean(x, axis=axis)

    return bootstrap((np.asarray(a, float), np.asarray(b, float)), diff, confidence=confidence, n_resamples=n_resamples, seed=seed)


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval (scipy), NaNs dropped: (nan, nan, nan) with no values; the mean and a NaN
    interval with one value (a spread needs two); the mean twice when all values are equal (no spread)."""
    m, ci = mean_t_interval(values, confidence)
    return m, float(ci.low), float(ci.high)


def mean_t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, Interval]:
    """`mean_ci` with its note."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), Interval(float("nan"), float("nan"), "undefined: no values")
    m = float(v.mean())
    if len(v) < 2:
        return m, Interval(float("nan"), float("nan"), "undefined: a t-interval needs at least 2 values; got 1")
    if np.all(v == v[0]):
        return m, Interval(m, m, "zero width: all values are equal")
    lo, hi = stats.t.interval(confidence, len(v) - 1, loc=m, scale=stats.sem(v))
    return m, Interval(float(lo), float(hi))


#: Events (or observations) per estimated parameter below which a regression fit is flagged as unstable: the rule of
#: thumb of 10 events per variable (Peduzzi et al. 1995, "Importance of events per independent variable in
#: proportional hazards regression analysis II", J Clin Epidemiol 48(12):1503-1510; for logistic regression Peduzzi
#: et al. 1996, J Clin Epidemiol 49(12):1373-1379; for linear models Harrell, Regression Modeling Strategies, 2nd ed.
#: 2015, section 4.4, 10-20 observations per parameter): with fewer, estimates are biased and intervals unreliable.
EVENTS_PER_COVARIATE = 10


def few_events_note(what: str, events: int, covariates: int, unit: str = "event") -> str:
    """The unstable-fit warning for a fit of `covariates` parameters on fewer than EVENTS_PER_COVARIATE `unit`s per
    parameter ("" otherwise): "unstable fit: the Cox model (...) rests on 4 events for 1 parameter, fewer than ..."."""
    need = EVENTS_PER_COVARIATE * covariates
    if events >= need:
        return ""
    return (f"unstable fit: {what} rests on {events} {unit}{'s' if events != 1 else ''} for {covariates} parameter"
            f"{'s' if covariates != 1 else ''}, fewer than the {EVENTS_PER_COVARIATE} {unit}s per parameter ({need}) a stable "
            "fit needs by the usual rule of thumb (Peduzzi et al. 1995); read its estimates and intervals as rough")


def interval_notes(what: str, notes: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct reason, listing where it applied: [(where, note), ...] -> ["<what> <note> (<where>, ...)"]."""
    by: dict[str, list[str]] = {}
    for where, n in notes:
        if n:
            by.setdefault(n, []).append(where)
    out = []
    for n, wheres in by.items():
        shown = ", ".join(wheres[:8]) + (f" and {len(wheres) - 8} more" if len(wheres) > 8 else "")
        out.append(f"{what} {n} ({shown})")
    return out
