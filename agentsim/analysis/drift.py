"""Drift analyses (after "Drift No More? Context Equilibria in Multi-Turn LLM Interactions"): the D_t curve per
arm, a fit of the restoring-force recurrence, the effect of reminders, and constraint satisfaction per turn.

The recurrence is D_{t+1} = D_t + kappa (D* - D_t) - delta r_t + eta_t, where r_t = 1 when a reminder is given
before reply t+1. It is linear in its parameters: Delta D = kappa D* - kappa D_t - delta r_t + eta, so ordinary least
squares gives kappa, D* and delta, the residual spread gives the noise scale, and resampling whole
conversations gives the confidence intervals.

No measurement is not a zero. A turn without a reply (the assistant's answer was invalid), a reply without tokens,
or a reply that could not be scored has D_t = NaN with its reason in `kl_error`; it is left out of the curves, the
arm means and the fit, and counted per arm in the `measurement` table. Constraint checks and judge scores of a turn
without a reply are NaN too. Negative values: the Monte Carlo estimate of one reply can be negative (it is an
unbiased but noisy estimate); those are kept, since dropping or clipping them would bias every mean upwards, and
counted (`negative_mc`). The top-k estimate is a lower bound that is never negative (see scenarios/drift/kl.py);
a negative one can only come from a log written before that estimator and is marked as no measurement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentsim.analysis import stats
from agentsim.analysis.labels import run_label, runs_title
from agentsim.analysis.plots import NothingToShow, band_plot, draw
from agentsim.analysis.stats import few_events_note, interval_notes, mean_t_interval
from agentsim.analysis.tables import empty, not_applicable, note, note_empty_tables, notes_of

NO_TOKENS = "the reply has no tokens: no measurement"
NO_REPLY = "no reply"
NEGATIVE_TOPK = "negative top-k estimate (a log from before the lumped top-k bound): no measurement"


def turns_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation and turn from the `turn` events.

    Columns: conversation, arm, turn, reminder, d_mc, d_topk, tokens, q_mass, shared_mass, satisfied, kl_error,
    reply_error, judge_score. D_t is NaN, with the reason in `kl_error`, wherever nothing was measured (see the
    module docstring); logs of earlier versions, which wrote 0.0 for a reply without tokens and checked an empty
    reply against the constraints, are read the same way."""
    t = events[events["action"] == "turn"]
    if t.empty:
        raise KeyError("no 'turn' events (is this a drift run?)")
    rows = []
    for cid, payload in zip(t["target"], t["payload"], strict=True):
        p = json.loads(payload)
        reply_error = p.get("reply_error")
        if reply_error is None and not p.get("reply"):
            reply_error = NO_REPLY  # an earlier version's empty reply
        rows.append({"conversation": cid, "arm": p["arm"], "turn": p["turn"], "reminder": bool(p["reminder"]),
                     "d_mc": p["d_mc"], "d_topk": p["d_topk"], "tokens": p["tokens"], "q_mass": p["q_mass"],
                     "shared_mass": p.get("shared_mass"), "satisfied": None if reply_error else p["satisfied"],
                     "kl_error": p["kl_error"], "reply_error": reply_error, "judge_score": None if reply_error else p.get("judge_score")})
    df = pd.DataFrame(rows)
    for c in ("d_mc", "d_topk", "tokens", "q_mass", "shared_mass", "judge_score"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    none = (df["tokens"] == 0) | df["reply_error"].notna()
    df.loc[none, ["d_mc", "d_topk", "q_mass", "shared_mass"]] = np.nan
    df.loc[(df["tokens"] == 0) & df["kl_error"].isna(), "kl_error"] = NO_TOKENS
    negative = df["d_topk"] < 0
    df.loc[negative, ["d_mc", "d_topk"]] = np.nan
    df.loc[negative, "kl_error"] = NEGATIVE_TOPK
    return df.sort_values(["arm", "conversation", "turn"]).reset_index(drop=True)


def kl_available(turns: pd.DataFrame) -> tuple[bool, str]:
    if turns["d_mc"].notna().any():
        return True, ""
    reasons = turns["kl_error"].dropna()
    return False, (reasons.iloc[0] if len(reasons) else "D_t was not measured (measure_kl: false)")


def measurement(turns: pd.DataFrame) -> pd.DataFrame:
    """Per arm: turns, replies, turns with a D_t, turns without one and why (reason: count; ...), and the replies
    whose Monte Carlo estimate is negative (kept; see the module docstring)."""
    rows = []
    for arm, g in turns.groupby("arm"):
        missing = g[g["d_mc"].isna()]
        # a replay's miss names its request (hash, seed): the same reason for every turn once those are left out
        reasons = missing["kl_error"].fillna("not measured").str.replace(r" \(hash [0-9a-f]+, seed \d+\)", "", regex=True).value_counts()
        rows.append({"arm": arm, "turns": len(g), "replies": int(g["reply_error"].isna().sum()),
                     "measured": int(g["d_mc"].notna().sum()), "not_measured": len(missing),
                     "reasons": "; ".join(f"{r}: {n}" for r, n in reasons.items()),
                     "negative_mc": int((g["d_mc"] < 0).sum())})
    return pd.DataFrame(rows)


def curves(turns: pd.DataFrame, value: str = "d_mc", confidence: float = 0.95) -> pd.DataFrame:
    """Mean of `value` per arm and turn with a t-interval over the conversations that have a measurement (`n`);
    `n_missing` counts those that do not."""
    rows, why = [], []
    for (arm, turn), g in turns.groupby(["arm", "turn"]):
        m, ci = mean_t_interval(g[value].to_numpy(dtype=float), confidence)
        why.append((f"{arm} turn {turn}", ci.note))
        n = int(g[value].notna().sum())
        rows.append({"arm": arm, "turn": turn, "n": n, "n_missing": len(g) - n, f"{value}_mean": m, "ci_low": ci.low, "ci_high": ci.high})
    return note(pd.DataFrame(rows), *interval_notes(f"{value} CI", why))


def with_q_mass(topk: pd.DataFrame, turns: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """`topk` (curves of d_topk) with q_mass_mean, q_mass_low, q_mass_high and q_mass_n per arm and turn: the mean
    share of q's probability inside its top k (scenarios/drift/kl.py), which says how tight the top-k lower bound
    is (1: exact). Unchanged when the turns carry no q_mass."""
    if "q_mass" not in turns or turns["q_mass"].isna().all() or topk.empty:
        return topk
    q = curves(turns, "q_mass", confidence).rename(columns={"n": "q_mass_n", "ci_low": "q_mass_low", "ci_high": "q_mass_high"})
    merged = topk.merge(q[["arm", "turn", "q_mass_n", "q_mass_mean", "q_mass_low", "q_mass_high"]], on=["arm", "turn"], how="left")
    merged.attrs = dict(topk.attrs)  # the table's notes, and those of the q_mass intervals
    return note(merged, *(f"q_mass: {n}" for n in notes_of(q)))


@dataclass(frozen=True)
class RecurrenceFit:
    kappa: float
    d_star: float
    delta: float
    noise: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"kappa": self.kappa, "d_star": self.d_star, "delta": self.delta, "noise": self.noise}


def _ols(d: np.ndarray, d_next: np.ndarray, r: np.ndarray) -> RecurrenceFit:
    y = d_next - d
    has_r = bool(r.any())
    x = np.column_stack([np.ones_like(d), d] + ([r] if has_r else []))
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    a, b = coef[0], coef[1]
    c = coef[2] if has_r else 0.0
    kappa = -b
    resid = y - x @ coef
    return RecurrenceFit(float(kappa), float(a / kappa) if kappa != 0 else float("nan"), float(-c),
                         float(resid.std(ddof=x.shape[1])) if len(y) > x.shape[1] else float("nan"), len(y))


def transitions(turns: pd.DataFrame, value: str = "d_mc") -> pd.DataFrame:
    """(conversation, D_t, D_{t+1}, r_t) where r_t marks a reminder given before reply t+1."""
    df = turns.sort_values(["conversation", "turn"])
    nxt = df.groupby("conversation").shift(-1)
    out = pd.DataFrame({"conversation": df["conversation"], "d": df[value], "d_next": nxt[value],
                        "r": nxt["reminder"].astype(float), "consecutive": (nxt["turn"] - df["turn"]) == 1})
    return out[out["consecutive"] & out["d"].notna() & out["d_next"].notna()].drop(columns="consecutive")


def fit_recurrence(turns: pd.DataFrame, value: str = "d_mc", bootstrap: int = 500, confidence: float = 0.95,
                   seed: int = 0) -> pd.DataFrame:
    """kappa, D*, delta and the noise scale with bootstrap CIs over conversations (`bootstrap` resamples; 0: no
    CIs)."""
    tr = transitions(turns, value)
    if len(tr) < 4:
        raise ValueError(f"too few consecutive turns with {value} to fit the recurrence ({len(tr)})")
    fit = _ols(tr["d"].to_numpy(), tr["d_next"].to_numpy(), tr["r"].to_numpy())
    # A cluster bootstrap: whole conversations are resampled (their turns are not independent), through the one
    # bootstrap helper of the analyses; percentile, since BCa's jackknife would refit once per conversation.
    groups = [(g["d"].to_numpy(), g["d_next"].to_numpy(), g["r"].to_numpy()) for _, g in tr.groupby("conversation")]
    keys = list(fit.as_dict())

    def refit(idx: np.ndarray) -> np.ndarray:
        pick = [groups[int(i)] for i in idx]
        f = _ols(*(np.concatenate([g[k] for g in pick]) for k in range(3)))
        return np.array([f.as_dict()[k] for k in keys], dtype=float)

    ci = (stats.bootstrap((np.arange(len(groups)),), refit, confidence=confidence, n_resamples=bootstrap, seed=seed,
                          vectorized=False, method="percentile", output_shape=(len(keys),)) if bootstrap else None)
    rows = []
    for j, (k, v) in enumerate(fit.as_dict().items()):
        lo, hi = (float(ci.low[j]), float(ci.high[j])) if ci is not None else (np.nan, np.nan)
        rows.append({"parameter": k, "estimate": v, "ci_low": lo, "ci_high": hi})
    out = pd.DataFrame(rows).assign(transitions=fit.n)
    if ci is not None and ci.note:
        note(out, f"CIs over conversations: {ci.note}")
    # Least squares of Delta D on 1, D_t (and r_t when a reminder was given): 2 or 3 coefficients.
    coefficients = 3 if tr["r"].any() else 2
    few = few_events_note(f"the recurrence (least squares; {coefficients} coefficients)", fit.n, coefficients, unit="transition")
    return note(out, few) if few else out


def compare_arms(turns: pd.DataFrame, value: str = "d_mc") -> pd.DataFrame:
    """Per arm: mean D_t over all turns and over the turns from its first reminder on, the % reduction of the
    latter against the no-reminder arm over the same turns, and the constraint-satisfaction rate."""
    first = turns[turns["reminder"]].groupby("arm")["turn"].min()
    base_arms = [a for a in turns["arm"].unique() if a not in first.index]
    base = turns[turns["arm"] == base_arms[0]] if base_arms else None
    rows = []
    for arm, g in turns.groupby("arm"):
        start = int(first.get(arm, 1))
        after = g[g["turn"] >= start][value].mean()
        row = {"arm": arm, "first_reminder": int(first[arm]) if arm in first.index else pd.NA,
               f"{value}_mean": g[value].mean(), f"{value}_after_reminder": after,
               "satisfaction_rate": g["satisfied"].astype(float).mean() if g["satisfied"].notna().any() else np.nan}
        if base is not None and arm in first.index:
            ref = base[base["turn"] >= start][value].mean()
            row["reduction_pct"] = 100.0 * (1.0 - after / ref) if ref and not np.isnan(ref) else np.nan
        rows.append(row)
    # The turn of the first reminder is an integer, missing (not "-") for an arm without reminders: the CSV keeps
    # it numeric and the terminal shows a missing value as "–" (analysis/display.py).
    out = pd.DataFrame(rows).astype({"first_reminder": "Int64"})
    if "reduction_pct" in out:
        over = out[out["reduction_pct"] > 100]
        if len(over):
            # A reduction above 100 % means the arm's mean is below zero: the Monte Carlo estimate of one reply can be
            # negative (module docstring), a KL divergence cannot. It is noise around a small D_t, not "more than none".
            note(out, "reduction over 100 % for " + ", ".join(f"{a} ({r:.0f} %)" for a, r in zip(over["arm"], over["reduction_pct"], strict=True))
                 + f": the arm's mean {value} after its first reminder is negative, which a KL divergence cannot be (noisy "
                 "Monte Carlo estimates); read it as a reduction to about zero, not beyond")
    return out


def satisfaction(turns: pd.DataFrame) -> pd.DataFrame:
    """Constraint-satisfaction rate (and mean judge score, when a judge rated the replies) per arm and turn, with `n`
    the conversations rated at that turn."""
    t = turns[turns["satisfied"].notna()]
    g = t.groupby(["arm", "turn"])["satisfied"]
    out = g.agg(lambda s: float(np.mean(s.astype(float)))).rename("rate").reset_index()
    out["n"] = g.size().to_numpy()  # conversations rated at this turn
    if "judge_score" in turns and turns["judge_score"].notna().any():
        judge = turns.groupby(["arm", "turn"])["judge_score"].mean().rename("judge_mean").reset_index()
        out = out.merge(judge, on=["arm", "turn"], how="outer")
        out["n"] = out["n"].fillna(0).astype(int)  # a turn the judge rated but no constraint check did
    return out


CONSTRAINT_COLUMNS = ["arm", "constraint", "replies", "passed", "rate", "ci_low", "ci_high"]


def constraint_checks(events: pd.DataFrame) -> pd.DataFrame:
    """One row per reply and constraint from the `turn` events' `checks` ({constraint: passed}): conversation, arm,
    turn, constraint, passed. A turn without a reply checked nothing and has no rows."""
    t = events[events["action"] == "turn"]
    rows = []
    for cid, payload in zip(t["target"], t["payload"], strict=True):
        p = json.loads(payload)
        if p.get("reply_error") or not p.get("reply"):
            continue
        for constraint, passed in (p.get("checks") or {}).items():
            rows.append({"conversation": cid, "arm": p["arm"], "turn": p["turn"], "constraint": constraint, "passed": bool(passed)})
    return pd.DataFrame(rows, columns=["conversation", "arm", "turn", "constraint", "passed"])


def constraint_satisfaction(events: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per arm and constraint: the replies checked, those that passed, and the pass rate with its Wilson interval
    (statsmodels' proportion_confint) over the replies of all turns. Which part of the goal drifts: the format
    (bullets), the length, or the tone. Empty, with a note, for a task without constraints."""
    from statsmodels.stats.proportion import proportion_confint

    checks = constraint_checks(events)
    if checks.empty:
        return empty(CONSTRAINT_COLUMNS, "no constraint was checked (the task has none, or no reply was given)")
    rows = []
    for (arm, constraint), g in checks.groupby(["arm", "constraint"], sort=True):
        n, k = len(g), int(g["passed"].sum())
        lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
        rows.append({"arm": arm, "constraint": constraint, "replies": n, "passed": k, "rate": k / n, "ci_low": lo, "ci_high": hi})
    return note(pd.DataFrame(rows, columns=CONSTRAINT_COLUMNS),
                f"ci_low/ci_high: {confidence:.0%} Wilson interval over the arm's replies (all turns)")


def drift_tables(log, bootstrap: int = 500) -> dict[str, pd.DataFrame]:
    events = log.events
    if not (events["action"] == "turn").any():  # nothing played yet (killed before its first turn)
        out = {"satisfaction": empty(["arm", "turn", "rate", "n"], "no turns in this run"),
               "constraints": empty(CONSTRAINT_COLUMNS, "no turns in this run"),
               "arms": empty(["arm", "first_reminder", "satisfaction_rate"], "no turns in this run")}
        return note_empty_tables(out, log)
    turns = turns_table(events)
    ok, why = kl_available(turns)
    out: dict[str, pd.DataFrame] = {"satisfaction": satisfaction(turns), "constraints": constraint_satisfaction(events),
                                    "measurement": measurement(turns)}
    if not ok:
        out["kl"] = not_applicable(empty(["d_mc", "d_topk"]), f"D_t unavailable: {why}")
        out["arms"] = compare_arms(turns).drop(columns=[c for c in ("d_mc_mean", "d_mc_after_reminder", "reduction_pct") if c in compare_arms(turns)])
        return note_empty_tables(out, log)
    out["curves_mc"] = curves(turns, "d_mc")
    out["curves_topk"] = with_q_mass(curves(turns, "d_topk"), turns)
    if turns["d_topk"].isna().all():
        not_applicable(out["curves_topk"], "no top-k D_t was measured in this run (the Monte Carlo D_t is in curves_mc)")
    out["arms"] = compare_arms(turns)
    try:
        out["recurrence"] = fit_recurrence(turns, "d_mc", bootstrap=bootstrap)
    except ValueError as e:
        out["recurrence"] = empty(["parameter", "estimate", "ci_low", "ci_high", "transitions"], str(e))
    return note_empty_tables(out, log)


#: How each D_t estimate is named on an axis: the Monte-Carlo estimate and the top-k lower bound are different
#: quantities (scenarios/drift/kl.py), never to be read as one.
ESTIMATORS = {"d_mc": "D_t, Monte-Carlo estimate", "d_topk": "D_t, top-k lower bound"}


def reminder_turns(turns: pd.DataFrame) -> dict[str, list[int]]:
    """Per arm, the turns at which any of its conversations got a reminder (sorted)."""
    r = turns[turns["reminder"].astype(bool)]
    return {str(a): sorted(int(t) for t in g["turn"].unique()) for a, g in r.groupby("arm")}


def recurrence_path(fit: pd.DataFrame, start: float, turns: list[int], reminders: list[int]) -> pd.DataFrame:
    """The fitted recurrence's deterministic path (noise 0) from D = `start` at turns[0]: D_{t+1} = D_t +
    kappa (D* - D_t) - delta r_t, r_t = 1 when a reminder comes before reply t+1 (`reminders`: those turns).
    `fit` is fit_recurrence's table. Columns: turn, d."""
    est = fit.set_index("parameter")["estimate"]
    kappa, d_star, delta = (float(est.get(k, np.nan)) for k in ("kappa", "d_star", "delta"))
    delta = 0.0 if np.isnan(delta) else delta
    d, out = start, [{"turn": turns[0], "d": start}]
    for t in turns[1:]:
        d = d + kappa * (d_star - d) - delta * (t in reminders)
        out.append({"turn": t, "d": d})
    return pd.DataFrame(out)


def reminder_effect(turns: pd.DataFrame, value: str = "d_mc", confidence: float = 0.95) -> pd.DataFrame:
    """Per arm: the mean of `value` over the turns from the earliest first reminder of any arm on (one window for
    all arms, so the bars compare), first per conversation, then over conversations with a t-interval (n:
    conversations with a measurement in the window). Columns: arm, from_turn, n, mean, ci_low, ci_high."""
    cols = ["arm", "from_turn", "n", "mean", "ci_low", "ci_high"]
    rem = turns[turns["reminder"].astype(bool)]
    if rem.empty or turns[value].notna().sum() == 0:
        return empty(cols, "no reminder was given in this run" if rem.empty else f"no {value} was measured")
    start = int(rem["turn"].min())
    rows, why = [], []
    for arm, g in turns[turns["turn"] >= start].groupby("arm"):
        per_conv = g.groupby("conversation")[value].mean().dropna().to_numpy(float)
        m, ci = mean_t_interval(per_conv, confidence)
        why.append((str(arm), ci.note))
        rows.append({"arm": arm, "from_turn": start, "n": len(per_conv), "mean": m, "ci_low": ci.low, "ci_high": ci.high})
    return note(pd.DataFrame(rows, columns=cols), *interval_notes(f"{value} CI", why))


def drift_plots(tables: dict[str, pd.DataFrame], logs: list, out: Path) -> list[Path]:
    """The PNGs of `agentsim analyze RUN drift --out DIR`: D_t per arm, Monte-Carlo (drift_d_mc.png, with the
    fitted D* and recurrence when the recurrence table has them) and top-k (drift_d_topk.png, when measured, with q's mass inside its top k beside it), each
    with the arms' reminder turns marked; each conversation's D_t per arm (drift_traces.png); the reminder effect
    per arm (drift_reminder_effect.png); constraint satisfaction per arm and turn (drift_satisfaction.png) and per
    constraint (drift_constraints.png); LLM usage per step (drift_llm_usage.png). An arm has one colour
    in all of them. A figure with nothing to show is not drawn (a note on its table says why)."""
    from agentsim.analysis.llm_usage import add_llm_usage
    from agentsim.analysis.plots import styles

    paths: list[Path] = []
    who = f" ({run_label(logs[0])})" if logs else ""
    title = runs_title("Drift D_t per arm", logs) + who if logs else "Drift D_t per arm"
    turns = turns_table(logs[0].events) if logs and (logs[0].events["action"] == "turn").any() else None
    reminders = reminder_turns(turns) if turns is not None else {}
    arms = sorted(set(turns["arm"])) if turns is not None else sorted(set(tables["satisfaction"].get("arm", [])))
    colors = styles(arms)
    if "curves_mc" in tables:
        rec = tables.get("recurrence")
        draw(lambda: plot_curves(tables["curves_mc"], out / "drift_d_mc.png", title=title.replace("D_t", "D_t (Monte-Carlo)"),
                                 reminders=reminders, recurrence=rec, colors=colors),
             out / "drift_d_mc.png", tables["curves_mc"], paths)
        draw(lambda: plot_curves(tables["curves_topk"], out / "drift_d_topk.png", value="d_topk", title=title.replace("D_t", "D_t (top-k)"),
                                 reminders=reminders, colors=colors),
             out / "drift_d_topk.png", tables["curves_topk"], paths)
        draw(lambda: plot_traces(turns, out / "drift_traces.png", reminders=reminders, colors=colors,
                                 title=title.replace("D_t per arm", "D_t per conversation (Monte-Carlo)")),
             out / "drift_traces.png", tables["curves_mc"], paths)
        effect = reminder_effect(turns) if turns is not None else empty(["arm"], "no turns")
        draw(lambda: plot_reminder_effect(effect, out / "drift_reminder_effect.png", colors=colors,
                                          title=(runs_title("Reminder effect", logs) + who) if logs else "Reminder effect"),
             out / "drift_reminder_effect.png", tables.get("arms"), paths)
    else:  # no D_t (a scripted run, measure_kl off): its four figures are not drawn, and the notes say why
        behind = tables.get("kl", tables["satisfaction"])
        why = "; ".join(notes_of(behind)[:1]) or "D_t was not measured"

        def nothing() -> None:
            raise NothingToShow(why)

        for png in ("drift_d_mc.png", "drift_d_topk.png", "drift_traces.png", "drift_reminder_effect.png"):
            draw(nothing, out / png, behind, paths)
    sat_title = (runs_title("Constraint satisfaction per arm", logs) + who) if logs else ""
    draw(lambda: plot_satisfaction(tables["satisfaction"], out / "drift_satisfaction.png", title=sat_title, colors=colors),
         out / "drift_satisfaction.png", tables["satisfaction"], paths)
    cons = tables.get("constraints", empty(CONSTRAINT_COLUMNS, "no constraint checks in these tables"))
    draw(lambda: plot_constraints(cons, out / "drift_constraints.png", colors=colors,
                                  title=(runs_title("Satisfaction per constraint", logs) + who) if logs else "Satisfaction per constraint"),
         out / "drift_constraints.png", cons, paths)
    add_llm_usage("drift", tables, logs, out, paths)
    return paths


def plot_curves(curve: pd.DataFrame, path: str | Path | None = None, value: str = "d_mc", title: str = "Drift D_t per arm",
                ax: Any = None, reminders: dict[str, list[int]] | None = None, recurrence: pd.DataFrame | None = None,
                colors: dict | None = None) -> Any:
    """Mean D_t per arm and turn (`curves`: n, <value>_mean, ci_low, ci_high) with its t-interval over the
    conversations of each point, on an integer turn axis in nats/token, the estimator named on the axis
    (`ESTIMATORS`). `reminders` ({arm: turns}, `reminder_turns`): each arm's reminder turns marked by a dotted
    vertical line and a triangle on its curve, in the arm's colour. `recurrence` (fit_recurrence's table, for
    d_mc): the fitted D* as a dashed horizontal line with its CI as a shaded strip, and each arm's deterministic
    recurrence path from its first mean (`recurrence_path`) as a thin dashed line. The top-k curve (`value`
    d_topk) of a table with q_mass_mean (`with_q_mass`) gets a second panel beside it: q's mass inside its top k
    per arm and turn, with its t-interval (drawn on a new figure only, not on a caller's `ax`). Returns the
    Figure; raises NothingToShow without a measured turn."""
    from agentsim.analysis.plots import new_figure, styles

    colors = colors or (styles(curve["arm"]) if "arm" in curve else {})
    q_panel = None
    if ax is None and value == "d_topk" and "q_mass_mean" in curve and curve["q_mass_mean"].notna().any():
        _, (ax, q_panel) = new_figure((13, 4.2), 1, 2)  # the bound beside how much of q it sees
    elif ax is None:
        _, ax = new_figure((9.5, 4.2))  # room for the legend beside the axes
    fig = band_plot(curve, "turn", f"{value}_mean", "arm", path=None, n="n", interval="95% t-interval over conversations",
                    xlabel="turn", ylabel=f"{ESTIMATORS.get(value, value)} (nats/token, mean)", title=title, ax=ax, colors=colors)
    ax = ax or fig.axes[0]
    means = curve.set_index(["arm", "turn"])[f"{value}_mean"]
    for arm, ts in (reminders or {}).items():
        c = colors.get(arm, {}).get("color", "grey")
        for t in ts:
            ax.axvline(t - 0.5, color=c, ls=":", lw=0.8, alpha=0.7)  # the reminder comes before reply t
        ys = [means.get((arm, t), np.nan) for t in ts]
        ax.plot(ts, ys, "v", color=c, ms=7, mfc="none", label=f"{arm}: reminder before turn {', '.join(map(str, ts))}")
    if recurrence is not None and len(recurrence) and "parameter" in recurrence:
        est = recurrence.set_index("parameter")
        if "d_star" in est.index and np.isfinite(est.loc["d_star", "estimate"]):
            d_star = float(est.loc["d_star", "estimate"])
            ax.axhline(d_star, color="black", ls="--", lw=1, label=f"fitted D* = {d_star:.3g}")
            lo, hi = est.loc["d_star", "ci_low"], est.loc["d_star", "ci_high"]
            if np.isfinite(lo) and np.isfinite(hi):
                ax.axhspan(lo, hi, color="black", alpha=0.08, lw=0)
            for arm, g in curve.groupby("arm", sort=True):
                g = g.dropna(subset=[f"{value}_mean"]).sort_values("turn")
                if len(g) < 2:
                    continue
                path_ = recurrence_path(recurrence, float(g[f"{value}_mean"].iloc[0]), [int(t) for t in range(int(g["turn"].min()), int(g["turn"].max()) + 1)],
                                        (reminders or {}).get(str(arm), []))
                ax.plot(path_["turn"], path_["d"], ls=(0, (4, 2)), lw=0.9, color=colors.get(arm, {}).get("color", "grey"),
                        label=f"{arm}: fitted recurrence")
    # arms, reminders, D* and the fitted curves make a long legend: beside the axes, not over the data
    ax.legend(fontsize=7, title=ax.get_legend().get_title().get_text() if ax.get_legend() else None, title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if q_panel is not None:
        q = curve.drop(columns=["ci_low", "ci_high", "n"]).rename(columns={"q_mass_low": "ci_low", "q_mass_high": "ci_high", "q_mass_n": "n"})
        band_plot(q, "turn", "q_mass_mean", "arm", n="n", interval="95% t-interval over conversations", xlabel="turn",
                  ylabel="q's probability mass inside its top k (mean)", title="How much of q the top-k bound sees (1: exact)",
                  ylim=(0, 1.02), ax=q_panel, colors=colors)
    from agentsim.analysis.plots import save

    return save(fig, path)  # titles fitted to the figure also where it is only shown (a notebook)


def plot_reminder_effect(effect: pd.DataFrame, path: str | Path | None = None, title: str = "Reminder effect", ax: Any = None,
                         colors: dict | None = None) -> Any:
    """Bars of mean D_t per arm over the turns from the first reminder on (`reminder_effect`), with the 95%
    t-interval over conversations as error bars (none where an arm has one conversation: `n=1, no CI`). Returns
    the Figure; raises NothingToShow without a reminder or a measurement."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles
    from agentsim.analysis.tables import notes_of

    if effect.empty:
        raise NothingToShow("; ".join(notes_of(effect)[:1]) or "no reminder effect to show")
    colors = colors or styles(effect["arm"])
    ax, own = own_axes(ax)
    x = np.arange(len(effect))
    lo = (effect["mean"] - effect["ci_low"]).to_numpy(float)
    hi = (effect["ci_high"] - effect["mean"]).to_numpy(float)
    ax.bar(x, effect["mean"], color=[colors.get(a, {}).get("color") for a in effect["arm"]], alpha=0.85)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.errorbar(x[ok], effect["mean"].to_numpy(float)[ok], yerr=np.vstack([lo[ok], hi[ok]]), fmt="none", ecolor="black", capsize=4)
    ax.set_xticks(x, [f"{a}\n(n={n}{', no CI' if n < 2 else ''})" for a, n in zip(effect["arm"], effect["n"], strict=True)])
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel(f"mean D_t from turn {int(effect['from_turn'].iloc[0])} on (nats/token)")
    ax.set_title(title, fontsize=10)
    ax.text(0.99, 0.98, "bars: 95% t-interval over conversations", transform=ax.transAxes, ha="right", va="top", fontsize=7)
    return save_own(ax, own, path)


def constraint_label(key: str) -> str:
    """A constraint as the checks name it (scenarios/drift/checks.py describe: its JSON) in a few words:
    `{"kind":"words","min":100,"max":200}` -> `words (min 100, max 200)`; empty options are left out."""
    try:
        spec = json.loads(key)
    except ValueError:
        return key
    if not isinstance(spec, dict):
        return key
    options = ", ".join(f"{k} {v}" for k, v in spec.items() if k != "kind" and v not in (None, [], {}, ""))
    return f"{spec.get('kind', '?')}" + (f" ({options})" if options else "")


def plot_constraints(cons: pd.DataFrame, path: str | Path | None = None, title: str = "Satisfaction per constraint",
                     ax: Any = None, colors: dict | None = None) -> Any:
    """Grouped bars: the pass rate of each constraint (x) per arm (one colour each), with its Wilson interval; n
    (replies) under each constraint. Returns the Figure; raises NothingToShow without checks."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles
    from agentsim.analysis.tables import notes_of

    if cons.empty:
        raise NothingToShow("; ".join(notes_of(cons)[:1]) or "no constraint checks")
    arms = sorted(set(cons["arm"]))
    names = list(dict.fromkeys(cons["constraint"]))
    colors = colors or styles(arms)
    ax, own = own_axes(ax, (max(6.0, 1.6 * len(names) + 2), 4))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        g = cons[cons["arm"] == arm].set_index("constraint").reindex(names)
        x = np.arange(len(names)) + (i - (len(arms) - 1) / 2) * width
        rate = g["rate"].to_numpy(float)
        err = np.clip(np.vstack([rate - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - rate]), 0, None)
        ax.bar(x, rate, width, color=colors.get(arm, {}).get("color"), label=arm, yerr=np.nan_to_num(err), capsize=3)
    replies = cons.groupby("constraint")["replies"].agg(["min", "max"]).reindex(names)
    ax.set_xticks(np.arange(len(names)), [f"{constraint_label(c)}\n(n={lo}{'' if lo == hi else f'-{hi}'} per arm)" for c, lo, hi
                                          in zip(names, replies["min"], replies["max"], strict=True)], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of replies that pass")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, title="bars: 95% Wilson interval over replies", title_fontsize=8)
    return save_own(ax, own, path)


def plot_traces(turns: pd.DataFrame, path: str | Path | None = None, value: str = "d_mc", title: str = "D_t per conversation",
                reminders: dict[str, list[int]] | None = None, colors: dict | None = None) -> Any:
    """One panel per arm: each conversation's D_t over turns (thin lines; gaps where a turn has no measurement),
    the arm's mean bold, its reminder turns dotted; integer turns, nats/token. Returns the Figure; raises
    NothingToShow without a measured turn."""
    from matplotlib.ticker import MaxNLocator

    from agentsim.analysis.plots import NothingToShow, new_figure, save, styles

    if value not in turns or not turns[value].notna().any():
        raise NothingToShow("no D_t was measured in this run")
    arms = sorted(set(turns["arm"]))
    colors = colors or styles(arms)
    fig, axes = new_figure((max(4.2 * len(arms), 6.0), 3.8), 1, len(arms), sharey=True, squeeze=False)
    for ax, arm in zip(axes[0], arms, strict=True):
        g = turns[turns["arm"] == arm]
        color = colors.get(arm, {}).get("color")
        for _, c in g.groupby("conversation", sort=True):
            ax.plot(c["turn"], c[value], color=color, alpha=0.35, lw=0.9)
        mean = g.groupby("turn")[value].mean()
        ax.plot(mean.index, mean.to_numpy(), color=color, lw=2.4, marker="o", ms=3,
                label=f"mean of {g['conversation'].nunique()} conversations")
        for t in (reminders or {}).get(arm, []):
            ax.axvline(t - 0.5, color=color, ls=":", lw=1)
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("turn")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, title="thin: one conversation each" + ("; dotted: reminders" if (reminders or {}).get(arm) else ""),
                  title_fontsize=7)
    axes[0][0].set_ylabel(f"{ESTIMATORS.get(value, value)} (nats/token)")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def plot_satisfaction(sat: pd.DataFrame, path: str | Path | None = None, title: str = "", ax: Any = None,
                      colors: dict | None = None) -> Any:
    """Constraint-satisfaction rate per arm and turn (no interval). Returns the Figure; raises NothingToShow
    without a rated turn."""
    return band_plot(sat, "turn", "rate", "arm", path, low=None, high=None, n="n" if "n" in sat else None,
                     xlabel="turn", ylabel="constraint satisfaction rate", title=title, ylim=(-0.05, 1.05), marker="s", ax=ax,
                     colors=colors)
