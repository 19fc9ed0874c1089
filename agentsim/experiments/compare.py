"""Across-run analyses of an experiment: each run analysed as usual, then its cells compared, with intervals over the
runs (seeds) of each condition.

A condition is a cell without its seed: the values of the varied paths (and the base scenario when several). Each
function returns tables (name -> DataFrame) whose leading columns are the condition's columns. The escalation
comparison also runs on the study's own 165 logs (`study_escalation_runs`), so the same code draws the published
figure and agentsim's experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from agentsim.experiments.load import Experiment
from agentsim.experiments.manifest import DONE


def _condition(row: pd.Series, conditions: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in conditions) if conditions else "all runs"


def per_run(exp: Experiment, fn: Callable[[Any], pd.DataFrame]) -> pd.DataFrame:
    """`fn(log)` for every completed run, with the cell's columns (cell, base, params, seed, run_id, condition) first."""
    frames = []
    for row, log in exp.logs():
        df = fn(log)
        lead = {c: row[c] for c in ["cell", "base", *exp.params, "seed"]} | {"run_id": log.run_id, "condition": _condition(row, exp.conditions)}
        frames.append(df.assign(**{k: [v] * len(df) for k, v in lead.items()})[list(lead) + list(df.columns)])
    if not frames:
        raise ValueError(f"{exp.exp_dir}: no completed runs to compare")
    return pd.concat(frames, ignore_index=True)


def summarise(df: pd.DataFrame, by: list[str], values: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over runs of each value, per group (t: the runs of a condition are few). Intervals that
    are undefined (one run) or of zero width (equal values) are said in the table's notes, by group and value."""
    from agentsim.analysis.stats import interval_notes, mean_t_interval
    from agentsim.analysis.tables import note

    rows, why = [], []
    for key, g in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True)) | {"runs": g["run_id"].nunique() if "run_id" in g else len(g)}
        for v in values:
            m, ci = mean_t_interval(g[v].to_numpy(dtype=float), confidence)
            row |= {f"{v}_mean": m, f"{v}_low": float(ci.low), f"{v}_high": float(ci.high)}
            if ci.note:
                why.append((f"{v} at {', '.join(map(str, key))}", ci.note))
        rows.append(row)
    return note(pd.DataFrame(rows), *interval_notes(f"{confidence:.0%} t-interval over runs", why))


# -- escalation (Rivera et al.) -------------------------------------------------------------------------------------
def escalation_runs(exp: Experiment) -> pd.DataFrame:
    """One row per run and day: scenario, condition (the line of the figure), seed, day, es, total, nuclear actions."""
    from agentsim.analysis.escalation import escalation_tables, run_label

    def one(log: Any) -> pd.DataFrame:
        t = escalation_tables(log)["per_day"]
        scenario = log.meta.get("world", {}).get("scenario") or log.spec.get("name", "")
        return t.assign(scenario=str(scenario).capitalize(), who=run_label(log))

    df = per_run(exp, one)
    # The line of the figure is who played (backend and model: a scripted run is not the model its spec names) and
    # what else varies; the panel is the scenario.
    line = [c for c in exp.params if c != "world.scenario" and not (c.startswith("models.") and c.endswith((".model", ".backend")))]
    df["line"] = [", ".join([r["who"], *(f"{c}={r[c]}" for c in line)]) for _, r in df.iterrows()]
    return df


def study_escalation_runs(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The study's 165 logs (5 models x 3 scenarios x seeds) in the shape of `escalation_runs`, scored the study's
    way (agentsim.analysis.escalation.study_runs): the published figure from the same comparison code."""
    from agentsim.analysis.escalation import study_runs

    return study_runs(data_dir)


def compare_escalation(runs: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """ES per day per scenario and line (mean over runs, t-interval), and per scenario and line the mean over runs
    of each run's mean ES over its days, with nuclear actions per run."""
    by_day = summarise(runs, ["scenario", "line", "day"], ["es"], confidence)
    per_run = runs.groupby(["scenario", "line", "run_id"], as_index=False).agg(
        run_score=("es", "mean"), nuclear=("n_nuclear", "sum"), days=("es", lambda s: int(s.notna().sum())))
    summary = summarise(per_run, ["scenario", "line"], ["run_score", "nuclear"], confidence)
    summary["nuclear_total"] = per_run.groupby(["scenario", "line"])["nuclear"].sum().to_numpy()
    return {"es_by_day": by_day, "summary": summary, "per_run": per_run}


def plot_escalation(es_by_day: pd.DataFrame, path: str | Path | None = None, title: str = "Escalation score per day", *,
                    study: pd.DataFrame | bool = False, data_dir: str | Path | None = None) -> Any:
    """One panel per scenario, one line per model / condition, with its t-interval band over runs where a day rests
    on 2 or more runs (Rivera et al.'s figure; agentsim.analysis.escalation.plot_es_panels: the palette's colour of
    a line is the same in every panel); legend entries give n, a line of single runs says "n=1, no CI".
    `study`: True overlays the study's curves on the scenarios it played (`study_curves`; the suptitle says when
    its data is absent), a `study_curves` table draws those, False none.
    Returns the Figure (saved to `path` when given); raises NothingToShow when no day has a score."""
    from agentsim.analysis.escalation import plot_es_panels, study_overlay
    from agentsim.analysis.plots import NothingToShow

    if es_by_day.empty or "scenario" not in es_by_day or not es_by_day["es_mean"].notna().any():
        raise NothingToShow("no day with an escalation score in these runs")
    missing = None
    if study is True:
        study, missing = study_overlay(es_by_day["scenario"], data_dir)
    return plot_es_panels(es_by_day, path, line="line", low="es_low", high="es_high", interval="95% t-interval over runs",
                          title=title, study=study if isinstance(study, pd.DataFrame) else None, study_missing=missing)


# -- tournament -----------------------------------------------------------------------------------------------------
def compare_tournament(exp: Experiment, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Per condition and player: score (E[S] of CSD, or points of a live tournament) and rank, with spread over
    seeds; and the agreement of the conditions' rankings (Kendall's tau between every pair)."""
    from agentsim.analysis.tournament import tournament_tables

    def one(log: Any) -> pd.DataFrame:
        t = tournament_tables(log)
        if "expected_scores" in t:
            d = t["expected_scores"]
            return pd.DataFrame({"player": d["model"], "score": d["expected_score"], "rank": d["rank"]})
        d = t["standings"]
        return pd.DataFrame({"player": d["player"], "score": d["points"], "rank": d["place"]})

    runs = per_run(exp, one)
    summary = summarise(runs, ["condition", "player"], ["score", "rank"], confidence)
    summary["rank_sd"] = runs.groupby(["condition", "player"])["rank"].std(ddof=1).to_numpy()
    conds = list(dict.fromkeys(summary["condition"]))
    rows = []
    for i, a in enumerate(conds):
        for b in conds[i + 1:]:
            sa = summary[summary["condition"] == a].set_index("player")["score_mean"]
            sb = summary[summary["condition"] == b].set_index("player")["score_mean"]
            common = sa.index.intersection(sb.index)
            tau, p = stats.kendalltau(sa[common], sb[common]) if len(common) >= 2 else (np.nan, np.nan)
            rows.append({"condition_a": a, "condition_b": b, "players": len(common), "kendall_tau": tau, "p_value": p})
    return {"per_run": runs, "summary": summary, "rank_agreement": pd.DataFrame(rows)}


# -- drift ----------------------------------------------------------------------------------------------------------
def compare_drift(exp: Experiment, bootstrap: int = 500, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Per condition, the runs' conversations pooled: the recurrence fit (kappa, D*, delta with bootstrap CIs over
    conversations) and per arm the mean D_t and the % reduction after reminders."""
    from agentsim.analysis.drift import compare_arms, fit_recurrence, kl_available, turns_table

    turns = per_run(exp, lambda log: turns_table(log.events))
    turns["conversation"] = turns["run_id"] + "/" + turns["conversation"].astype(str)
    fits, arms = [], []
    for cond, g in turns.groupby("condition", sort=True):
        runs = g["run_id"].nunique()
        ok, why = kl_available(g)
        if ok:
            try:
                fits.append(fit_recurrence(g, "d_mc", bootstrap=bootstrap, confidence=confidence).assign(condition=cond, runs=runs))
            except ValueError as e:
                fits.append(pd.DataFrame([{"condition": cond, "runs": runs, "note": str(e)}]))
        else:
            fits.append(pd.DataFrame([{"condition": cond, "runs": runs, "note": f"D_t unavailable: {why}"}]))
        arms.append(compare_arms(g).assign(condition=cond, runs=runs))
    lead = lambda df: df[["condition", "runs"] + [c for c in df.columns if c not in ("condition", "runs")]]  # noqa: E731
    return {"recurrence": lead(pd.concat(fits, ignore_index=True)), "arms": lead(pd.concat(arms, ignore_index=True))}


# -- social ---------------------------------------------------------------------------------------------------------
def compare_social(exp: Experiment, confidence: float = 0.95, params: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Per condition, over runs: cascade size / depth / structural virality, the power-law exponent, and the herd
    effect per arm (mean final score of treated posts from others' votes); and per condition OASIS's growth curves
    with t-intervals over runs and, with a reference (`params["reference"]`, or the scenario's
    world.alignment.reference), the NRMSE per run and its mean with a t-interval (agentsim.analysis.alignment).
    `params`: the alignment parameters (AlignmentParams fields), as `agentsim analyze RUN social --param`."""
    from agentsim.analysis.social import cascade_table, herd_table, power_law_table

    def one(log: Any) -> pd.DataFrame:
        c = cascade_table(log)
        row: dict[str, Any] = {"cascades": len(c)}
        for col in ("size", "depth", "structural_virality"):
            row[f"mean_{col}"] = float(c[col].mean()) if len(c) and col in c else np.nan
        row["max_size"] = float(c["size"].max()) if len(c) else np.nan
        pl = power_law_table(c) if len(c) else pd.DataFrame()
        row["alpha"] = float(pl["alpha"].iloc[0]) if "alpha" in pl and len(pl) else np.nan
        return pd.DataFrame([row])

    runs = per_run(exp, one)
    values = ["cascades", "mean_size", "max_size", "mean_depth", "mean_structural_virality", "alpha"]
    out = {"per_run": runs, "cascades": summarise(runs, ["condition"], values, confidence)}
    herd = per_run(exp, lambda log: herd_table(log)[["treatment", "mean_others"]])
    if len(herd):
        out["herd"] = summarise(herd, ["condition", "treatment"], ["mean_others"], confidence)
    return out | alignment_by_condition(exp, params)


def alignment_by_condition(exp: Experiment, params: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """agentsim.analysis.alignment.alignment_tables over the runs of each condition, stacked with the condition
    first (tables growth, alignment, alignment_runs); each table's notes are kept, prefixed by their condition
    where conditions differ."""
    from agentsim.analysis.alignment import alignment_tables, params_from
    from agentsim.analysis.tables import note, notes_of

    by: dict[str, list[Any]] = {}
    for row, log in exp.logs():
        by.setdefault(_condition(row, exp.conditions), []).append(log)
    parts: dict[str, list[pd.DataFrame]] = {}
    notes: dict[str, list[str]] = {}
    for cond, logs in by.items():
        for title, df in alignment_tables(logs, params_from(logs[0], params)).items():
            parts.setdefault(title, []).append(df.assign(condition=cond)[["condition", *df.columns]])
            prefix = f"{cond}: " if len(by) > 1 else ""
            notes.setdefault(title, []).extend(f"{prefix}{n}" for n in notes_of(df) if f"{prefix}{n}" not in notes.get(title, []))
    return {title: note(pd.concat(frames, ignore_index=True), *notes[title]) for title, frames in parts.items()}


COMPARISONS: dict[str, Callable[..., dict[str, pd.DataFrame]]] = {
    "escalation": lambda exp: compare_escalation(escalation_runs(exp)),
    "tournament": compare_tournament,
    "drift": compare_drift,
    "social": compare_social,
}


def per_run_tables(exp: Experiment, analysis: str) -> dict[str, pd.DataFrame]:
    """For an analysis without an across-run comparison (a third-party family's): each of its tables for every
    completed run, stacked, with the cell's columns first."""
    from agentsim.core.family import resolve
    from agentsim.core.registry import find_analysis

    (_, a), *_ = find_analysis(analysis)
    per: dict[str, list[pd.DataFrame]] = {}
    for row, log in exp.logs():
        lead = {c: row[c] for c in ["cell", "base", *exp.params, "seed"]} | {"run_id": log.run_id}
        for title, df in resolve(a.tables)(log).items():
            per.setdefault(title, []).append(df.assign(**{k: [v] * len(df) for k, v in lead.items()})[list(lead) + list(df.columns)])
    if not per:
        raise ValueError(f"{exp.exp_dir}: no completed runs to compare")
    return {title: pd.concat(frames, ignore_index=True) for title, frames in per.items()}


def compare_experiment(exp: Experiment, analysis: str, params: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """The across-run tables of `analysis` for an experiment, the cells table first: the comparison of cells where
    the analysis has one (COMPARISONS), else every run's tables stacked with the cells' columns. `params`: the
    analysis's parameters (`--reference`, `--param`), for the comparisons that take them (social)."""
    cells = exp.cells.drop(columns=["run_dir"]).assign(error=lambda d: d["error"].fillna(""))
    if analysis not in COMPARISONS:
        tables = per_run_tables(exp, analysis)
    elif params:
        tables = COMPARISONS[analysis](exp, params=params)
    else:
        tables = COMPARISONS[analysis](exp)
    from agentsim.analysis.tables import note

    unfinished = exp.cells[exp.cells["status"] != DONE] if "status" in exp.cells else exp.cells.iloc[:0]
    if len(unfinished):
        counts = unfinished["status"].value_counts()
        line = (f"incomplete experiment: {len(unfinished)} of {len(exp.cells)} runs are not completed "
                f"({', '.join(f'{n} {s}' for s, n in counts.items())}); these tables cover the completed runs only")
        for df in tables.values():
            note(df, line)
    return {"cells": cells, **tables}


def plot_experiment(analysis: str, tables: dict[str, pd.DataFrame], exp: Experiment, out: Path) -> list[Path]:
    """The figures of `agentsim analyze EXPERIMENT_DIR ANALYSIS --out DIR`, drawn by the analyses' plotting
    functions (one palette and style, agentsim.analysis.plots): escalation, Rivera et al.'s figure with the study's
    curves overlaid where its data is here (a note on escalation_es_by_day says when not); social, the growth curves."""
    from agentsim.analysis.plots import draw

    paths: list[Path] = []
    done = exp.cells["status"].eq("completed").sum() if "status" in exp.cells else len(exp.cells)
    runs = f"{done} of {len(exp.cells)} runs completed" if done != len(exp.cells) else f"{done} runs"
    if analysis == "escalation":
        from agentsim.analysis.escalation import STUDY_LABEL, study_overlay
        from agentsim.analysis.tables import note

        by_day = tables["es_by_day"]
        _, missing = study_overlay(by_day.get("scenario", []))
        if missing:
            note(by_day, f"figure escalation_es.png: {STUDY_LABEL}'s curves not overlaid: {missing}")
        draw(lambda: plot_escalation(by_day, out / "escalation_es.png", title=f"{exp.name}: escalation score per day ({runs})",
                                     study=True), out / "escalation_es.png", by_day, paths)
    if analysis == "social" and "growth" in tables:
        from agentsim.analysis.labels import run_label
        from agentsim.analysis.social import plot_growth

        who = " + ".join(sorted({run_label(log) for _, log in exp.logs()}))  # conditions name params, not who played
        draw(lambda: plot_growth(tables["growth"], out / "social_growth.png", title=f"{exp.name}: cascade growth ({runs}; {who})"),
             out / "social_growth.png", tables["growth"], paths)
    return paths
