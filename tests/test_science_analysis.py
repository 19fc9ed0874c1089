"""The analyses' shared helpers against independent computations: bootstrap intervals against scipy called
directly, t-intervals by the formula, notes and table checks by hand, the lexicon scorer by hand. Fast: the
mutation run executes these many times."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from agentsim.analysis import stats
from agentsim.analysis.stance import LexiconStance
from agentsim.analysis.tables import (
    TableError,
    captured_warnings,
    check_table,
    empty,
    note,
    note_empty_tables,
    notes_of,
    notes_table,
    run_progress_note,
)
from agentsim.logs.reader import RunLog

from conftest import write_run_log


# -- intervals ------------------------------------------------------------------------------------------------------
def test_bootstrap_is_scipys_with_the_seed() -> None:
    x = np.array([0.3, 1.2, 0.7, 2.5, 0.1, 0.9, 1.7])
    ci = stats.bootstrap((x,), np.mean, n_resamples=500, seed=3, confidence=0.9)
    ref = sps.bootstrap((x,), np.mean, n_resamples=500, confidence_level=0.9, method="BCa", vectorized=True,
                        batch=500, random_state=np.random.default_rng(3)).confidence_interval
    assert (ci.low, ci.high) == (pytest.approx(ref.low), pytest.approx(ref.high)) and ci.note == "" and ci.defined
    pct = stats.bootstrap((x,), np.mean, n_resamples=500, seed=3, method="percentile")
    ref_p = sps.bootstrap((x,), np.mean, n_resamples=500, method="percentile", random_state=np.random.default_rng(3)).confidence_interval
    assert (pct.low, pct.high) == (pytest.approx(ref_p.low), pytest.approx(ref_p.high))
    assert stats.mean_bootstrap(np.append(x, np.nan), 0.9, 500, 3) == ci  # NaNs dropped
    assert stats.bootstrap_ci(x, 0.9, 500, 3) == (ci.low, ci.high)


def test_bootstrap_switches_to_percentile_above_the_bca_limit(monkeypatch) -> None:
    x = np.random.default_rng(0).normal(size=40)
    monkeypatch.setattr(stats, "BCA_MAX_N", 30)
    big = stats.bootstrap((x,), np.mean, n_resamples=300, seed=1)
    ref = sps.bootstrap((x,), np.mean, n_resamples=300, method="percentile", random_state=np.random.default_rng(1)).confidence_interval
    assert (big.low, big.high) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_two_samples_and_vector_statistics() -> None:
    a, b = np.array([1.0, 2.0, 4.0, 3.5]), np.array([3.0, 5.0, 6.5, 4.0, 7.0])
    ci = stats.diff_of_means(a, b, n_resamples=400, seed=2)
    ref = sps.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), n_resamples=400,
                        vectorized=True, random_state=np.random.default_rng(2)).confidence_interval
    assert (ci.low, ci.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert ci.low < b.mean() - a.mean() < ci.high
    vec = stats.bootstrap((np.arange(6),), lambda i, axis=-1: np.stack([np.mean(i, axis), np.max(i, axis)]), output_shape=(2,),
                          n_resamples=200, method="percentile")
    assert vec.low.shape == (2,) and vec.high[1] == 5.0 and vec.defined
    flat = stats.bootstrap((np.full(5, 2.0),), np.mean, n_resamples=50)
    assert (flat.low, flat.high) == (2.0, 2.0) and flat.note.startswith("zero width")
    part = stats.bootstrap((np.array([0, 1, 2, 3]),), lambda i, axis=-1: np.stack([np.mean(i, axis), np.zeros(i.shape[:-1])]),
                           output_shape=(2,), n_resamples=100)
    assert part.low[1] == part.high[1] == 0.0 and "zero width" in part.note and part.low[0] < part.high[0]


def test_t_intervals_by_the_formula() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m, ci = stats.mean_t_interval(x, 0.9)
    half = sps.t.ppf(0.95, 3) * x.std(ddof=1) / math.sqrt(4)
    assert m == 3.5 and ci.low == pytest.approx(3.5 - half) and ci.high == pytest.approx(3.5 + half) and ci.note == ""
    assert stats.mean_ci(np.append(x, np.nan), 0.9) == (3.5, pytest.approx(3.5 - half), pytest.approx(3.5 + half))
    one = stats.mean_ci(np.array([5.0]))
    assert one[0] == 5.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in stats.mean_ci(np.array([])))
    assert stats.mean_ci(np.array([2.0, 2.0, 2.0])) == (2.0, 2.0, 2.0)


def test_interval_notes_group_places_by_reason() -> None:
    got = stats.interval_notes("CI", [("a", "undefined: x"), ("b", ""), ("c", "undefined: x"), ("d", "zero width")])
    assert got == ["CI undefined: x (a, c)", "CI zero width (d)"]
    many = stats.interval_notes("CI", [(f"p{i}", "why") for i in range(11)])
    assert many == ["CI why (p0, p1, p2, p3, p4, p5, p6, p7 and 3 more)"]
    assert stats.interval_notes("CI", []) == []
    i = stats.Interval(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
    assert not i.defined and stats.Interval(1.0, 2.0).defined and not stats.Interval(1.0, math.inf).defined


# -- notes and checks --------------------------------------------------------------------------------------------------
def test_notes_by_hand() -> None:
    df = pd.DataFrame({"a": [1]})
    assert note(df, "x", "", "y", "x") is df and notes_of(df) == ["x", "y"]
    note(df, "z")
    assert notes_of(df) == ["x", "y", "z"] and notes_of(df.copy()) == ["x", "y", "z"]
    e = empty(["p", "q"], "why")
    assert e.empty and list(e.columns) == ["p", "q"] and notes_of(e) == ["why"]
    t = notes_table({"one": df, "two": pd.DataFrame(), "three": e})
    assert t.to_dict("records") == [{"table": "one", "note": "x"}, {"table": "one", "note": "y"},
                                    {"table": "one", "note": "z"}, {"table": "three", "note": "why"}]
    assert list(notes_table({}).columns) == ["table", "note"]


def test_progress_notes_of_runs(tmp_path: Path) -> None:
    def log(**meta) -> RunLog:
        name = f"r{len(list(tmp_path.iterdir()))}"
        return RunLog(write_run_log(tmp_path / name, steps=0, **meta))

    assert run_progress_note(log(spec={"steps": 14}, steps_completed=3, status="running")) == \
        "the run completed 3 of 14 steps (status 'running': its process was killed, or it is still running)"
    assert run_progress_note(log(spec={"steps": 1}, steps_completed=0, status="failed")) == "the run completed 0 of 1 step (status 'failed')"
    assert run_progress_note(log(spec={}, steps_completed=2, status="completed")) == "the run completed 2 of ? steps"
    bare = tmp_path / "bare"
    write_run_log(bare, events=[{"step": 0, "agent_id": "a", "action": "x"}])
    (bare / "run.json").unlink()
    (bare / "parts.jsonl").unlink()
    assert run_progress_note(RunLog(bare)) == ""
    tables = {"a": pd.DataFrame(), "b": pd.DataFrame({"x": [1]})}
    note_empty_tables(tables, log(spec={"steps": 14}, steps_completed=3, status="running"))
    killed = ("incomplete run: the run completed 3 of 14 steps (status 'running': its process was killed, or it is still "
              "running); its tables cover the first 3 steps only (steps 0 to 2)")
    assert notes_of(tables["a"]) == [killed] and notes_of(tables["b"]) == [killed]
    done = {"a": pd.DataFrame()}
    note_empty_tables(done, log(spec={"steps": 2}, steps_completed=2, status="completed"))
    assert notes_of(done["a"]) == []
    short = {"a": pd.DataFrame()}
    note_empty_tables(short, log(spec={"steps": 3}, steps_completed=2, status="completed"))
    assert notes_of(short["a"]) == ["incomplete run: the run completed 2 of 3 steps; its tables cover the first 2 steps only (steps 0 to 1)"]


def test_captured_warnings_are_readable_lines() -> None:
    with captured_warnings() as out:
        warnings.warn("first   line\n  second line", UserWarning, stacklevel=1)
        warnings.warn("first   line\n  second line", UserWarning, stacklevel=1)
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
        warnings.warn("old api", FutureWarning, stacklevel=1)
        warnings.warn("Bad fit. For example, try the following code:\n>>> fit(x)", RuntimeWarning, stacklevel=1)
        warnings.warn("x" * 400, UserWarning, stacklevel=1)
        np.log(np.array([0.0]))  # numpy errors are silenced inside
    assert out[:2] == ["UserWarning: first line second line", "RuntimeWarning: Bad fit."]
    assert out[2] == "UserWarning: " + "x" * 299 + "…" and len(out) == 3


@pytest.mark.parametrize(("df", "columns", "kw", "message"), [
    ([1], {"a": "int"}, {}, "expected a pandas DataFrame, got list"),
    (pd.DataFrame({"a": [1]}), {"a": "int", "b": "str"}, {}, r"missing column\(s\) \['b'\]"),
    (pd.DataFrame({"a": [1, None]}), {"a": "number"}, {}, "column 'a' has nulls at row 1"),
    (pd.DataFrame({"a": [1.0, 2.5]}), {"a": "int"}, {}, r"column 'a' must hold whole numbers; row 1 holds 2.5 \(float\)"),
    (pd.DataFrame({"a": ["x", 3]}), {"a": "str"}, {}, "must hold strings; row 1 holds 3"),
    (pd.DataFrame({"a": [1, "y"]}), {"a": "number"}, {}, "must hold numbers; row 1 holds 'y'"),
    # whole-column dtypes the fast paths see: text is not numbers, numbers are not text, booleans are neither
    (pd.DataFrame({"a": [True, False]}), {"a": "number"}, {}, r"must hold numbers; rows 0, 1 hold True \(bool\)"),
    (pd.DataFrame({"a": [1, 2]}), {"a": "str"}, {}, r"must hold strings; rows 0, 1 hold 1 \(int\)"),
    (pd.DataFrame({"a": [1.5, "z"]}), {"a": "float"}, {}, "must hold numbers; row 1 holds 'z'"),
    (pd.DataFrame({"a": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]}), {"a": "int"}, {"unique": ["a"]},
     r"repeated value\(s\) \[1, 2, 3, 4, 5\] at rows"),
    # a column of text only (the fast path for strings must not pass it as numbers)
    (pd.DataFrame({"a": ["x", "y"]}), {"a": "number"}, {}, "must hold numbers; rows 0, 1 hold 'x'"),
    (pd.DataFrame({"a": pd.Series(["x", "2"], dtype="string")}), {"a": "int"}, {}, "must hold whole numbers; row 0 holds 'x'"),
    (pd.DataFrame({"a": [True, False]}), {"a": "int"}, {}, r"must hold whole numbers; rows 0, 1 hold True \(bool\)"),
    (pd.DataFrame({"a": [1, 2, 1], "b": [1, 1, 1]}), {"a": "int", "b": "int"}, {"unique": ["a", "b"]},
     r"a/b must be unique; repeated value\(s\) \[\(1, 1\)\] at rows 0, 2"),
    (pd.DataFrame({"a": [3, 3]}), {"a": "int"}, {"unique": ["a"]}, r"repeated value\(s\) \[3\] at rows 0, 1"),
    (pd.DataFrame({"a": list(range(7))}).assign(a=[None] * 7), {"a": "any"}, {}, r"rows 0, 1, 2, 3, 4 \(and 2 more\)"),
])
def test_checks_name_the_column_and_rows(df, columns, kw, message: str) -> None:
    with pytest.raises(TableError, match=message):
        check_table(df, "t", columns, **kw)


def test_good_tables_pass_their_checks() -> None:
    df = pd.DataFrame({"i": [1, 2], "f": [1.5, 2.0], "s": ["a", None], "o": pd.array([1, None], dtype="Int64"),
                       "m": [1, 2.0], "x": [object(), None], "t": pd.Series(["p", "q"], dtype="string")})
    assert check_table(df, "t", {"i": "int", "f": "float", "s": "str", "o": "int", "m": "number", "x": "any", "t": "str"},
                       nullable=["s", "o", "x"], unique=["i"]) is df
    assert check_table(pd.DataFrame({"n": ["1", "2"]}), "t", {"n": "int"}) is not None  # numeric text is whole numbers
    assert check_table(pd.DataFrame({"n": [1.0, 2.0]}).astype(object), "t", {"n": "int"}) is not None
    assert check_table(pd.DataFrame({"e": pd.Series([], dtype=object)}), "t", {"e": "str"}) is not None


# -- the lexicon scorer ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "score"), [
    ("good", 0.5), ("GOOD!", 0.5), ("good bad", 0.0), ("good good bad", 1 / 3 * 0.5), ("very good", 0.75),
    ("very very good", 1.0), ("very very very good", 1.0), ("very bad", -0.75), ("very", 0.0), ("it's good", 0.5),
    ("goodness", 0.0), ("very very good good", 1.0),
])
def test_lexicon_scores_by_hand(text: str, score: float) -> None:
    lex = LexiconStance(["Good"], ["bad"], ["Very"])
    assert lex.score(text) == pytest.approx(score) and lex.score(text) == pytest.approx(score)  # cached the second time
    assert lex.measure(text) == pytest.approx(score)


def test_lexicon_state_and_batch() -> None:
    lex = LexiconStance(["good"], ["bad"], ["very"])
    lex.score("good")
    copy = pickle.loads(pickle.dumps(lex))
    assert copy.polarity == {"good": 1.0, "bad": -1.0} and copy.intensifiers == {"very"} and copy._cache == {}
    assert copy.score("very bad") == -0.75
    out = copy.scores(["good", "...", "bad"])
    assert out[0] == 0.5 and math.isnan(out[1]) and out[2] == -0.5 and out.dtype == np.float64
    both = LexiconStance(["x"], ["x"])  # a word in both lists counts as negative (the later list wins)
    assert both.score("x") == -0.5


def test_the_analyses_by_name() -> None:
    import agentsim.analysis as analysis
    from agentsim.analysis.drift import drift_tables
    from agentsim.analysis.escalation import compare_runs, escalation_tables
    from agentsim.analysis.social import social_compare, social_tables
    from agentsim.analysis.tournament import tournament_tables

    single, many = analysis.ANALYSES, analysis.COMPARISONS
    assert single == {"drift": drift_tables, "social": social_tables, "tournament": tournament_tables, "escalation": escalation_tables}
    assert many == {"escalation": compare_runs, "social": social_compare}
    with pytest.raises(AttributeError, match="no attribute 'NOPE'"):
        _ = analysis.NOPE


@pytest.mark.parametrize(("message", "limit", "expected"), [
    ("one  line\n\tof   prose", 300, "one line of prose"),
    # a code example is dropped with the sentence that introduces it
    ("Fit failed. For example, try the following code: >>> fit(x)", 300, "Fit failed."),
    ("Is it separated? Try this: >>> fit(x, y)", 300, "Is it separated?"),
    ("Separation found. See >>> print(x)", 300, "Separation found. See"),  # no colon: only the code goes
    ("Try: >>> fit(x)", 300, "Try:"),  # nothing before the introducing sentence: it stays
    ("a b. c d. e: >>> x", 300, "a b. c d."),  # the last sentence before the colon goes, not the first
    ("Is it? Really? Try: >>> x", 300, "Is it? Really?"),  # the last question, not the first
    ("Why? : >>> x", 300, "Why?"),  # a sentence ending right before the colon
    ("Done. : >>> x", 300, "Done."),
    ("A. Try: >>> x", 300, "A."),  # a one-letter sentence
    (". Try: >>> x", 300, ". Try:"),  # a stop at the very start is not a sentence
    ("abcdefghij", 10, "abcdefghij"),  # exactly at the limit: kept whole
    ("abcdefghijk", 10, "abcdefghi…"),
    ("abcdefgh jk", 10, "abcdefgh…"),  # cut, then the trailing space removed before the ellipsis
])
def test_warnings_become_one_readable_line(message: str, limit: int, expected: str) -> None:
    from agentsim.analysis.tables import _readable

    assert _readable(message, limit) == expected


@pytest.mark.parametrize(("bad", "expected"), [
    ([3], "row 13"),
    ([0, 4], "rows 10, 14"),
    ([0, 1, 2, 3, 4, 5, 6], "rows 10, 11, 12, 13, 14 (and 2 more)"),
    ([0, 1, 2, 3, 4], "rows 10, 11, 12, 13, 14"),
])
def test_table_errors_name_the_rows_by_label(bad: list[int], expected: str) -> None:
    df = pd.DataFrame({"x": [1.0] * 8}, index=range(10, 18))
    df.loc[[10 + i for i in bad], "x"] = None
    with pytest.raises(TableError) as e:
        check_table(df, "t", {"x": "number"})
    assert str(e.value) == f"t: column 'x' has nulls at {expected}"


def test_interval_defaults_are_the_documented_ones() -> None:
    """Called without options, every interval helper is scipy's 95 % BCa interval over 2000 resamples drawn from
    seed 0 (t-intervals: 95 %), computed here by scipy directly."""
    x = np.array([0.3, 1.2, 0.7, 2.5, 0.1, 0.9, 1.7, 1.1])
    y = np.array([1.3, 2.2, 0.4, 3.5, 2.0])
    ref = sps.bootstrap((x,), np.mean, n_resamples=2000, confidence_level=0.95,
                        random_state=np.random.default_rng(0)).confidence_interval
    for ci in (stats.bootstrap((x,), np.mean), stats.mean_bootstrap(x)):
        assert (ci.low, ci.high) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    assert stats.bootstrap_ci(x) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    d = stats.diff_of_means(x, y)
    ref_d = sps.bootstrap((x, y), lambda a, b, axis=-1: np.mean(b, axis=axis) - np.mean(a, axis=axis), n_resamples=2000,
                          confidence_level=0.95, random_state=np.random.default_rng(0)).confidence_interval
    assert (d.low, d.high) == (pytest.approx(ref_d.low, abs=1e-12), pytest.approx(ref_d.high, abs=1e-12))
    t = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert stats.mean_ci(x) == (pytest.approx(x.mean()), pytest.approx(t[0]), pytest.approx(t[1]))
    # and the confidence asked for is the one used
    narrow = stats.diff_of_means(x, y, confidence=0.5)
    ref_n = sps.bootstrap((x, y), lambda a, b, axis=-1: np.mean(b, axis=axis) - np.mean(a, axis=axis), n_resamples=2000,
                          confidence_level=0.5, random_state=np.random.default_rng(0)).confidence_interval
    assert (narrow.low, narrow.high) == (pytest.approx(ref_n.low, abs=1e-12), pytest.approx(ref_n.high, abs=1e-12))


@pytest.mark.parametrize(("sizes", "defined", "note"), [
    ((), False, "got 0"),
    ((1,), False, "got 1"),
    ((2,), True, ""),
    ((5, 1), False, "got 1"),
    ((2, 3), True, ""),
])
def test_a_bootstrap_needs_two_observations_per_sample(sizes: tuple[int, ...], defined: bool, note: str) -> None:
    samples = tuple(np.arange(n, dtype=float) * (k + 1) for k, n in enumerate(sizes))
    stat = (lambda *s, axis=-1: sum(np.mean(v, axis=axis) for v in s)) if sizes else np.mean
    ci = stats.bootstrap(samples, stat, n_resamples=50, method="percentile")
    assert ci.defined is defined
    assert (note in ci.note) if note else not ci.note.startswith("undefined")
    if not defined:
        assert isinstance(ci.low, float) and math.isnan(ci.low) and math.isnan(ci.high)
        shaped = stats.bootstrap(samples, stat, output_shape=(3,))
        assert shaped.low.shape == shaped.high.shape == (3,) and np.isnan(shaped.low).all()


def test_values_given_as_python_lists_with_none_are_missing_values() -> None:
    """None in a list of values is a missing value (dropped), as NaN is."""
    with_none = [1.0, None, 4.0, 2.0, 7.0]
    clean = np.array([1.0, 4.0, 2.0, 7.0])
    assert stats.mean_ci(with_none) == stats.mean_ci(clean)
    assert stats.mean_t_interval(with_none)[1] == stats.mean_t_interval(clean)[1]
    assert stats.mean_bootstrap(with_none, n_resamples=100) == stats.mean_bootstrap(clean, n_resamples=100)
    assert stats.mean_t_interval([3, 3, 3]) == (3.0, stats.Interval(3.0, 3.0, "zero width: all values are equal"))


@pytest.mark.parametrize(("n", "shown"), [
    (8, "p0, p1, p2, p3, p4, p5, p6, p7"),
    (9, "p0, p1, p2, p3, p4, p5, p6, p7 and 1 more"),
])
def test_interval_notes_list_eight_places_then_count(n: int, shown: str) -> None:
    assert stats.interval_notes("CI", [(f"p{i}", "why") for i in range(n)]) == [f"CI why ({shown})"]


@pytest.mark.parametrize(("text", "score"), [
    # mean polarity (1 + 1 - 1) / 3 times the boost 0.5 + 0.25 x intensifiers, counted up to two
    ("good good bad", 0.5 / 3),
    ("very good good bad", 0.75 / 3),
    ("very very good good bad", 1.0 / 3),
    ("very very very good good bad", 1.0 / 3),
    ("very very very very bad", -1.0),
])
def test_intensifiers_count_up_to_two(text: str, score: float) -> None:
    assert LexiconStance(["good"], ["bad"], ["very"]).score(text) == pytest.approx(score)


def test_a_matrix_statistic_gets_a_matrix_of_intervals() -> None:
    """Outputs of any shape: scipy's interval for each entry, and zero width only where every resample agrees."""
    def stat(i: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([np.stack([np.mean(i, axis), np.zeros(i.shape[:-1])]), np.stack([np.max(i, axis), np.min(i, axis)])])

    x = np.arange(6.0)
    ci = stats.bootstrap((x,), stat, output_shape=(2, 2), n_resamples=200, method="percentile", seed=4)
    ref = sps.bootstrap((x,), stat, n_resamples=200, method="percentile", random_state=np.random.default_rng(4)).confidence_interval
    assert ci.low.shape == ci.high.shape == (2, 2)
    assert ci.low[0, 1] == ci.high[0, 1] == 0.0 and ci.note.startswith("zero width")
    for k in ((0, 0), (1, 0), (1, 1)):
        assert (ci.low[k], ci.high[k]) == (pytest.approx(ref.low[k]), pytest.approx(ref.high[k]))
    undefined = stats.bootstrap((x[:1],), stat, output_shape=(2, 2))
    assert undefined.low.shape == (2, 2) and np.isnan(undefined.high).all()


def test_an_interval_scipy_cannot_compute_is_nan_with_scipys_reason() -> None:
    """BCa of the median of [1, 1, 1, 1, 1, 1, 9]: every jackknife value is 1, so the acceleration is 0/0; scipy
    warns and gives NaN, and the note carries its warning as one readable line."""
    ci = stats.bootstrap((np.array([1.0] * 6 + [9.0]),), np.median, n_resamples=500)
    assert math.isnan(ci.low) and math.isnan(ci.high) and not ci.defined
    assert ci.note.startswith("DegenerateDataWarning: The BCa confidence interval cannot be calculated.")


def test_text_in_a_categorical_column_is_text() -> None:
    """A column whose dtype is not a string dtype is checked value by value (no fast path): text passes as text."""
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", None]), "n": pd.Categorical([1, 2, 2])})
    assert check_table(df, "t", {"c": "str", "n": "int"}, nullable=["c"]) is df
    with pytest.raises(TableError, match="column 'n' must hold strings; rows 0, 1, 2 hold 1"):
        check_table(df, "t", {"n": "str"})


def test_a_paired_bootstrap_resamples_rows_together() -> None:
    """paired: the samples are columns of one table, resampled by row (scipy's paired=True), which for a difference
    of paired means is narrower than resampling each column on its own when the columns move together."""
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    b = a + np.array([0.1, -0.2, 0.15, 0.05, -0.1, 0.2, 0.0, -0.05])

    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y - x, axis=axis)

    paired = stats.bootstrap((a, b), diff, paired=True, n_resamples=300, seed=5)
    ref = sps.bootstrap((a, b), diff, paired=True, n_resamples=300, random_state=np.random.default_rng(5)).confidence_interval
    assert (paired.low, paired.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    apart = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), n_resamples=300, seed=5)
    assert paired.high - paired.low < (apart.high - apart.low) / 5
