"""Social-platform analyses over a run log: activity, cascades, adoption under exposure (Cox), herd effect,
polarization and network roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentsim.analysis.cascades import cascade_metrics, cascade_nodes, fit_power_law
from agentsim.analysis.stance import LexiconStance
from agentsim.analysis.stats import (
    diff_of_means,
    few_events_note,
    interval_notes,
    mean_bootstrap,
    mean_t_interval,
)
from agentsim.analysis.tables import (
    TableError,
    captured_warnings,
    check_table,
    empty,
    not_applicable,
    note,
    note_empty_tables,
    note_incomplete_runs,
    notes_of,
)

VOTE_DELTA = {"like_post": 1, "unlike_post": -1, "dislike_post": -1, "undo_dislike_post": 1}


def activity_table(log: Any) -> pd.DataFrame:
    m = log.metrics
    m = m[m["metric"].str.startswith("actions/") | (m["metric"] == "active_users")]
    if m.empty:
        return empty(["step", "active_users"], "no activity metrics in this run")
    wide = m.pivot_table(index="step", columns="metric", values="value", aggfunc="sum", fill_value=0).reset_index()
    wide.columns = [str(c).removeprefix("actions/") for c in wide.columns]
    return wide


def cascade_table(log: Any) -> pd.DataFrame:
    ev = log.df("events", ["event_id", "step", "agent_id", "action", "parent_event_id"])
    nodes = cascade_nodes(ev)
    return note(cascade_metrics(nodes), *notes_of(nodes))


POWER_LAW_COLUMNS = ["alpha", "sigma", "xmin", "ks_distance", "n", "n_tail", "R_vs_lognormal", "p_vs_lognormal",
                     "R_vs_exponential", "p_vs_exponential"]


#: Fewest observations in the tail for a power-law fit not flagged as unstable (see power_law_table).
POWER_LAW_MIN_TAIL = 50


def power_law_table(cascades: pd.DataFrame) -> pd.DataFrame:
    """The power-law fit of the cascade sizes as one row; empty, with a note, when there is nothing to fit.
    powerlaw's warnings become notes."""
    try:
        res, _ = fit_power_law(cascades["size"].to_numpy())
    except ValueError as e:
        return empty(POWER_LAW_COLUMNS, f"no power-law fit: {e}")
    notes = res.pop("notes")
    if res["n_tail"] < POWER_LAW_MIN_TAIL:
        # Clauset, Shalizi & Newman 2009, "Power-law distributions in empirical data", SIAM Review 51(4):661-703,
        # section 3: the maximum-likelihood alpha is biased on small samples; about 50 observations in the tail
        # are needed for it to be trusted, and the goodness-of-fit and likelihood-ratio tests have little power below.
        notes.append(f"unstable fit: the power law rests on {res['n_tail']} cascade size(s) at or above xmin, fewer than the "
                     f"~{POWER_LAW_MIN_TAIL} Clauset et al. (2009) need for a trustworthy alpha and likelihood-ratio tests")
    return note(pd.DataFrame([res]), *notes)


# -- adoption under exposure ---------------------------------------------------------------------------------
def follow_graph(log: Any, initial_only: bool = True) -> pd.DataFrame:
    """(follower, followee) edges: the initial network from the agents table, plus follow/unfollow events
    unless `initial_only`."""
    agents = log.agents
    rows = []
    for aid, persona in zip(agents["agent_id"], agents["persona"], strict=True):
        if persona:
            rows.extend((aid, f) for f in json.loads(persona).get("followees", []))
    edges = pd.DataFrame(rows, columns=["follower", "followee"])
    if not initial_only:
        ev = log.df("events", ["event_id", "agent_id", "action", "target"])
        ev = ev[ev["action"].isin(["follow", "unfollow"])].sort_values("event_id")
        s = set(map(tuple, edges.to_numpy().tolist()))
        for a, act, t in zip(ev["agent_id"], ev["action"], ev["target"], strict=True):
            (s.add if act == "follow" else s.discard)((a, t))
        edges = pd.DataFrame(sorted(s), columns=["follower", "followee"])
    return edges


def exposure_intervals(adoptions: pd.DataFrame, edges: pd.DataFrame, end_step: int, sources: pd.DataFrame | None = None) -> pd.DataFrame:
    """Counting-process rows (id, start, stop, exposure, event) for every (user, cascade) with at least one
    followee who adopted: exposure = number of followees who adopted strictly earlier. The clock starts at the
    first exposure; users who never adopt are censored at `end_step` + 1. Adoptions are (agent_id, cascade, step);
    edges (follower, followee). `sources` (agent_id, cascade, step): the cascades' source posts, whose authors
    expose their followers from that step on without being adoptions themselves (a star-shaped cascade is mostly
    followers of the source). All are checked (TableError naming the column and rows)."""
    check_table(adoptions, "adoptions", {"agent_id": "any", "cascade": "any", "step": "int"})
    check_table(edges, "follow edges", {"follower": "any", "followee": "any"})
    first = adoptions.groupby(["cascade", "agent_id"], as_index=False)["step"].min()
    # Exposure events: each adopter exposes its followers from the step after adopting.
    exposers = first.assign(step=first["step"] + 1)
    if sources is not None and len(sources):
        check_table(sources, "sources", {"agent_id": "any", "cascade": "any", "step": "int"})
        # A source's author who also reposts its own cascade exposes each follower once, from the earlier time.
        exposers = pd.concat([exposers, sources[["cascade", "agent_id", "step"]]], ignore_index=True)
        exposers = exposers.groupby(["cascade", "agent_id"], as_index=False)["step"].min()
    expo = exposers.merge(edges, left_on="agent_id", right_on="followee")[["cascade", "follower", "step"]]
    expo = expo.rename(columns={"follower": "agent_id", "step": "exposed_at"})
    adopt = first.rename(columns={"step": "adopted_at"})
    expo = expo.merge(adopt, on=["cascade", "agent_id"], how="left")
    # Exposures after one's own adoption do not count; neither do users who adopted before any exposure.
    expo = expo[expo["adopted_at"].isna() | (expo["exposed_at"] <= expo["adopted_at"])]
    if expo.empty:
        return pd.DataFrame(columns=["id", "start", "stop", "exposure", "event"])
    counts = expo.groupby(["cascade", "agent_id", "exposed_at"]).size().rename("n").reset_index()
    counts = counts.sort_values(["cascade", "agent_id", "exposed_at"])
    counts["exposure"] = counts.groupby(["cascade", "agent_id"])["n"].cumsum()
    counts = counts.merge(adopt, on=["cascade", "agent_id"], how="left")
    t0 = counts.groupby(["cascade", "agent_id"])["exposed_at"].transform("min")
    nxt = counts.groupby(["cascade", "agent_id"])["exposed_at"].shift(-1)
    end = counts["adopted_at"].fillna(end_step + 1)
    counts["start"] = counts["exposed_at"] - t0
    counts["stop"] = np.minimum(nxt.fillna(np.inf), end + (counts["adopted_at"].notna())) - t0
    counts = counts[counts["stop"] > counts["start"]]
    last = counts.groupby(["cascade", "agent_id"])["start"].transform("max") == counts["start"]
    counts["event"] = (last & counts["adopted_at"].notna()).astype(int)
    counts["id"] = pd.factorize(counts["cascade"].astype(str) + "|" + counts["agent_id"].astype(str))[0]
    return counts[["id", "start", "stop", "exposure", "event"]].reset_index(drop=True)


def fit_exposure_hazard(intervals: pd.DataFrame) -> dict[str, float]:
    """Cox proportional hazards with time-varying exposure (lifelines CoxTimeVaryingFitter): the hazard ratio
    per additional adopting followee with its 95% CI, and the time-dependent concordance of the fitted risk.
    `intervals` (id, start, stop, exposure, event) is checked first; lifelines' warnings (complete separation,
    convergence) are returned readably under "notes" instead of reaching stderr."""
    from lifelines import CoxTimeVaryingFitter

    check_intervals(intervals)
    with captured_warnings() as warned:
        ctv = CoxTimeVaryingFitter(penalizer=1e-4)
        ctv.fit(intervals, id_col="id", start_col="start", stop_col="stop", event_col="event", show_progress=False)
    s = ctv.summary.loc["exposure"]
    c = time_dependent_concordance(intervals, float(ctv.params_["exposure"]))
    few = few_events_note("the Cox model (1 covariate: exposure)", int(intervals["event"].sum()), 1)
    return {"hazard_ratio": float(s["exp(coef)"]), "hr_low": float(s["exp(coef) lower 95%"]), "hr_high": float(s["exp(coef) upper 95%"]),
            "p": float(s["p"]), "concordance": float(c), "subjects": int(intervals["id"].nunique()), "events": int(intervals["event"].sum()),
            "notes": [f"Cox fit (lifelines): {w}" for w in warned] + ([few] if few else [])}


def check_intervals(intervals: pd.DataFrame) -> pd.DataFrame:
    """Counting-process rows: id, start < stop, exposure >= 0, event 0/1; one row per (id, start)."""
    check_table(intervals, "exposure intervals", {"id": "any", "start": "number", "stop": "number", "exposure": "number", "event": "int"},
                unique=["id", "start"])
    bad = ~((intervals["start"] < intervals["stop"]) & (intervals["exposure"] >= 0) & intervals["event"].isin([0, 1])).to_numpy()
    if bad.any():
        rows = intervals.index[bad][:5].tolist()
        raise TableError(f"exposure intervals: rows {rows} need start < stop, exposure >= 0 and event 0 or 1")
    return intervals


def time_dependent_concordance(intervals: pd.DataFrame, beta: float) -> float:
    """Harrell's C with time-varying covariates: for each adoption at time t, its risk beta*x(t) is compared
    with the risk at t of every other subject still at risk at t (ties count one half). A static C on each
    subject's last interval would be biased here, because exposure only grows while a subject survives."""
    ev = intervals[intervals["event"] == 1]
    start, stop = intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float)
    ids, risk = intervals["id"].to_numpy(), beta * intervals["exposure"].to_numpy(float)
    conc = total = 0.0
    for lo in range(0, len(ev), 512):
        e = ev.iloc[lo : lo + 512]
        t = e["stop"].to_numpy(float)[:, None]
        at_risk = (start[None, :] < t) & (t <= stop[None, :]) & (ids[None, :] != e["id"].to_numpy()[:, None])
        # A subject whose own adoption is exactly at t is not a comparison for another adoption at t.
        at_risk &= ~((stop[None, :] == t) & (intervals["event"].to_numpy()[None, :] == 1))
        diff = (beta * e["exposure"].to_numpy(float))[:, None] - risk[None, :]
        conc += float(((diff > 0) & at_risk).sum() + 0.5 * ((diff == 0) & at_risk).sum())
        total += float(at_risk.sum())
    return conc / total if total else float("nan")


def saturation_test(intervals: pd.DataFrame) -> dict[str, float]:
    """Logistic regression of adoption within an exposure spell on exposure and exposure² (statsmodels): a
    negative, significant exposure² term says that extra exposures add less and less (saturation)."""
    import statsmodels.api as sm

    check_intervals(intervals)
    df = intervals.assign(e2=intervals["exposure"] ** 2)
    X = sm.add_constant(df[["exposure", "e2"]].astype(float))
    with captured_warnings() as warned:
        res = sm.Logit(df["event"].astype(float), X).fit(disp=0)
    return {"coef_exposure": float(res.params["exposure"]), "coef_exposure2": float(res.params["e2"]),
            "p_exposure2": float(res.pvalues["e2"]), "saturating": bool(res.params["e2"] < 0 and res.pvalues["e2"] < 0.05),
            "notes": [f"saturation test (statsmodels): {w}" for w in warned]
            + [n for n in [few_events_note("the saturation test (logistic; 2 covariates: exposure, exposure²; events of the rarer outcome)",
                                              int(min(df["event"].sum(), len(df) - df["event"].sum())), 2)] if n]}


#: Most (follower, source) exposure rows the adoption model builds from source posts; above it, cascades are sampled.
MAX_SOURCE_EXPOSURES = 3_000_000


def exposure_sources(nodes: pd.DataFrame, events: pd.DataFrame, edges: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The cascades' source posts as exposers (agent_id, cascade, step): a post the platform made (seed posts,
    injections: no request) is seen from its own step, a user's post from the next. When all sources would expose
    more than MAX_SOURCE_EXPOSURES followers, a seeded uniform sample of whole cascades is kept (the caller keeps
    only their adoptions) and the note says so."""
    roots = nodes[nodes["parent"] < 0][["event_id", "agent_id", "step"]]
    by_user = events.set_index("event_id")["request_id"].reindex(roots["event_id"]).notna().to_numpy()
    src = pd.DataFrame({"agent_id": roots["agent_id"].to_numpy(), "cascade": roots["event_id"].to_numpy(),
                        "step": roots["step"].to_numpy() + by_user.astype(np.int64)})
    followers = edges.groupby("followee").size()
    weight = src["agent_id"].map(followers).fillna(0).to_numpy()
    if weight.sum() <= MAX_SOURCE_EXPOSURES:
        return src, ""
    # A seeded uniform sample of whole cascades (shared or not, so the sample is not tilted towards adoption).
    order = np.random.default_rng(seed).permutation(len(src))
    keep = np.sort(order[np.cumsum(weight[order]) <= MAX_SOURCE_EXPOSURES])
    return src.iloc[keep], (f"adoption model on a seeded sample of {keep.size} of {len(src)} cascades, to stay under "
                            f"{MAX_SOURCE_EXPOSURES:,} source-exposure rows")


ADOPTION_COLUMNS = ["hazard_ratio", "hr_low", "hr_high", "p", "concordance", "subjects", "events",
                    "coef_exposure", "coef_exposure2", "p_exposure2", "saturating"]


def _adoption_intervals(log: Any) -> tuple[pd.DataFrame | None, pd.DataFrame, str]:
    """The exposure intervals of a run's cascades (exposure_intervals, sources included), its cascade nodes and the
    note on a sample of cascades (""); intervals None when the run has no shares."""
    ev = log.df("events", ["event_id", "step", "agent_id", "action", "parent_event_id", "request_id"])
    nodes = cascade_nodes(ev)
    shares = nodes[nodes["parent"] >= 0]
    if shares.empty:
        return None, nodes, ""
    adoptions = shares.rename(columns={"root": "cascade"})[["agent_id", "cascade", "step"]]
    edges = follow_graph(log)
    sources, cap_note = exposure_sources(nodes, ev, edges)
    if cap_note:
        adoptions = adoptions[adoptions["cascade"].isin(sources["cascade"])]
    return exposure_intervals(adoptions, edges, int(ev["step"].max()), sources), nodes, cap_note


ADOPTION_CURVE_COLUMNS = ["exposed", "users", "adopted", "probability", "ci_low", "ci_high"]


def adoption_curve(intervals: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Adoption probability against the number of exposed neighbours, P(k) of Romero, Meeder & Kleinberg (2011,
    "Differences in the mechanics of information diffusion across topics", WWW, section 4): of the (user, cascade)
    pairs that were at some time exposed to exactly k followees who had adopted (and had not adopted yet), the
    share that adopted before an exposure k+1 (n: those pairs), with a Wilson interval (statsmodels' proportion_confint). Input:
    exposure_intervals' rows (id, start, stop, exposure, event). Columns: exposed (k), users, adopted,
    probability, ci_low, ci_high."""
    from statsmodels.stats.proportion import proportion_confint

    if intervals is None or intervals.empty:
        return empty(ADOPTION_CURVE_COLUMNS, "no user was exposed to a cascade in this run")
    g = intervals.groupby("exposure").agg(users=("id", "nunique"), adopted=("event", "sum")).reset_index()
    lo, hi = proportion_confint(g["adopted"].to_numpy(), g["users"].to_numpy(), alpha=1 - confidence, method="wilson")
    out = pd.DataFrame({"exposed": g["exposure"].astype(int), "users": g["users"].astype(int), "adopted": g["adopted"].astype(int),
                        "probability": g["adopted"] / g["users"], "ci_low": lo, "ci_high": hi})
    return note(out, "ci_low/ci_high: 95% Wilson interval over the users exposed to exactly k")


def adoption_table(log: Any) -> pd.DataFrame:
    """The Cox fit of adoption under exposure and the saturation test as one row; empty with a note when the run
    has too few exposed adoptions; the fits' warnings and a failed saturation test are notes."""
    intervals, nodes, cap_note = _adoption_intervals(log)
    if intervals is None:
        return empty(ADOPTION_COLUMNS, "no hazard model: no reposts or quotes in this run", *notes_of(nodes))
    if intervals.empty or intervals["event"].sum() < 2 or intervals["exposure"].nunique() < 2:
        k = int(intervals["event"].sum()) if len(intervals) else 0
        levels = int(intervals["exposure"].nunique()) if len(intervals) else 0
        return empty(ADOPTION_COLUMNS, f"no hazard model: {k} adoption(s) after exposure, at {levels} exposure level(s); "
                                       "the Cox fit needs at least 2 of each", *notes_of(nodes))
    out = fit_exposure_hazard(intervals)
    notes = out.pop("notes") + notes_of(nodes) + ["a source post's author exposes its followers from the post's step (a post by a "
                                                  "user during a step, from the next); adopters, from the step after adopting"]
    notes += [cap_note] if cap_note else []
    try:
        sat = saturation_test(intervals)
        notes += sat.pop("notes")
        out.update(sat)
    except Exception as e:  # statsmodels raises on perfect separation in some versions: keep the Cox fit
        notes.append(f"saturation test (statsmodels) failed: {type(e).__name__}: {e}")
    return note(pd.DataFrame([out]).reindex(columns=ADOPTION_COLUMNS), *notes)


# -- herd effect ---------------------------------------------------------------------------------------------
HERD_COLUMNS = ["treatment", "posts", "mean_score", "low", "high", "mean_others", "low_others", "high_others"]


def herd_table(log: Any) -> pd.DataFrame:
    """Final score (likes - dislikes) of treated posts by arm, with mean and 95% t-interval; also the score
    from everyone but the controlled voter (the herd effect proper). See `herd_from_events`. A run whose scenario
    has no herd-effect intervention (herd_votes, counterfactual_posts) gets the empty table marked as not applying
    (`not_applicable`: hidden in the terminal, its note in --out)."""
    herd = herd_from_events(log.df("events", ["agent_id", "action", "target", "payload"]))
    kinds = {i.get("kind") for i in ((log.spec.get("world") or {}).get("interventions") or []) if isinstance(i, dict)}
    if herd.empty and not kinds & {"herd_votes", "counterfactual_posts"}:
        return not_applicable(empty(HERD_COLUMNS), "no herd-effect experiment in this run: the scenario has no herd_votes or "
                                                   "counterfactual_posts intervention")
    return herd


def _treatment_of(payload: Any, row: Any) -> str:
    try:
        arm = json.loads(payload)["treatment"]
    except (TypeError, ValueError, KeyError) as e:
        raise TableError(f"events table: 'treatment' event at row {row} needs a JSON payload with a \"treatment\" "
                         f"key; got {payload!r} ({type(e).__name__})") from None
    if not isinstance(arm, str):
        raise TableError(f"events table: 'treatment' event at row {row}: treatment must be a string, got {arm!r}")
    return arm


def herd_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """`herd_table` of an events table (agent_id, action, target, payload): `treatment` events name a post
    (target) and its arm (payload {"treatment": ...}); votes (like/dislike and their undos) on those posts make
    the score. The table is checked first; a post treated twice is an error naming it."""
    check_table(events, "events table", {"agent_id": "any", "action": "str", "target": "any", "payload": "any"},
                nullable=["target", "payload"])
    ev = events
    tr = ev[ev["action"] == "treatment"]
    if tr.empty:
        return empty(HERD_COLUMNS, "no herd-effect experiment in this run (no 'treatment' events)")
    check_table(tr, "events table ('treatment' events)", {"target": "str"}, unique=["target"])
    arms = {t: _treatment_of(p, i) for i, t, p in zip(tr.index, tr["target"], tr["payload"], strict=True)}
    voters = set(tr["agent_id"])
    votes = ev[ev["action"].isin(list(VOTE_DELTA)) & ev["target"].isin(list(arms))]
    delta = votes["action"].map(VOTE_DELTA)
    total = delta.groupby(votes["target"]).sum()
    others = delta[~votes["agent_id"].isin(voters)].groupby(votes["target"][~votes["agent_id"].isin(voters)]).sum()
    df = pd.DataFrame({"post": list(arms), "treatment": list(arms.values())})
    df["score"] = df["post"].map(total).fillna(0)
    df["score_others"] = df["post"].map(others).fillna(0)
    rows, why = [], []
    for t, g in df.groupby("treatment", sort=False):
        m, ci = mean_t_interval(g["score"].to_numpy())
        mo, cio = mean_t_interval(g["score_others"].to_numpy())
        why += [(f"{t}: all votes", ci.note), (f"{t}: others' votes", cio.note)]
        rows.append({"treatment": t, "posts": len(g), "mean_score": m, "low": ci.low, "high": ci.high,
                     "mean_others": mo, "low_others": cio.low, "high_others": cio.high})
    order = {"up": 0, "control": 1, "down": 2}
    out = pd.DataFrame(rows).sort_values("treatment", key=lambda s: s.map(order)).reset_index(drop=True)
    return note(out, *interval_notes("95% t-interval", why))


HERD_TRAJECTORY_COLUMNS = ["treatment", "step", "posts", "mean_score", "low", "high"]


def herd_trajectory(events: pd.DataFrame) -> pd.DataFrame:
    """The herd effect over time: per arm and step, the mean score (likes - dislikes, everyone's votes, as
    `herd_from_events` counts them: every vote the post ever got) of the arm's treated posts at the end of that
    step, with a 95% t-interval over those posts (`posts`: treated by then). At the last step it is
    `herd_from_events`' mean score of each arm. `events` has step, agent_id, action, target, payload. From the first
    treatment's step to the last step with events."""
    tr = events[events["action"] == "treatment"]
    if tr.empty:
        return empty(HERD_TRAJECTORY_COLUMNS, "no herd-effect experiment in this run (no 'treatment' events)")
    posts = pd.DataFrame({"post": tr["target"].to_numpy(), "treated": tr["step"].to_numpy(int),
                          "treatment": [_treatment_of(p, i) for i, p in zip(tr.index, tr["payload"], strict=True)]})
    votes = events[events["action"].isin(list(VOTE_DELTA)) & events["target"].isin(set(posts["post"]))]
    steps = range(int(posts["treated"].min()), int(events["step"].max()) + 1)
    # score of each post at the end of each step: the running sum of its votes' deltas
    per_step = votes.assign(delta=votes["action"].map(VOTE_DELTA)).pivot_table(
        index="target", columns="step", values="delta", aggfunc="sum", fill_value=0)
    # votes before a post's treatment (a seed post voted on in the step it was made) count too, as in the final score
    every = range(min(int(events["step"].min()), steps.start), steps.stop)
    running = per_step.reindex(columns=list(every), fill_value=0).cumsum(axis=1).reindex(posts["post"], fill_value=0)
    rows, why = [], []
    for arm, g in posts.groupby("treatment", sort=False):
        for s in steps:
            mine = g[g["treated"] <= s]["post"]
            if mine.empty:
                continue
            m, ci = mean_t_interval(running.loc[mine, s].to_numpy(float))
            why.append((f"{arm} step {s}", ci.note))
            rows.append({"treatment": arm, "step": s, "posts": len(mine), "mean_score": m, "low": ci.low, "high": ci.high})
    return note(pd.DataFrame(rows, columns=HERD_TRAJECTORY_COLUMNS), *interval_notes("95% t-interval", why))


def plot_herd_trajectory(traj: pd.DataFrame, path: Any = None, title: str = "Herd effect over time", ax: Any = None) -> Any:
    """`herd_trajectory`: the mean score of each arm's treated posts per step, with its 95% t-interval band over
    the posts (n in the legend). Returns the Figure; raises NothingToShow without treated posts."""
    from agentsim.analysis.plots import band_plot

    return band_plot(traj, "step", "mean_score", "treatment", path, low="low", high="high", n="posts",
                     interval="95% t-interval over posts", xlabel="step", ylabel="score so far (likes - dislikes)",
                     title=title, ax=ax)


# -- polarization --------------------------------------------------------------------------------------------
def post_stances(log: Any) -> pd.DataFrame:
    """Stance (-1..1) of every authored post/quote/comment: the judge's rating (stance / 5) where the run has
    one, else the lexicon scorer configured in the run's world.stance."""
    ev = log.df("events", ["event_id", "step", "agent_id", "action", "payload"])
    authored = ev[ev["action"].isin(["create_post", "quote_post", "create_comment"])]
    authored = authored[~authored["agent_id"].isin(_non_users(log))]
    texts = authored["payload"].map(lambda p: json.loads(p).get("content", "") if p else "")
    judged = ev[ev["action"] == "judge_stance"]
    if not judged.empty:
        ratings = {json.loads(p)["post_id"]: json.loads(p)["stance"] / 5.0 for p in judged["payload"]}
        pid = authored["payload"].map(lambda p: json.loads(p)["post_id"])
        out = authored.assign(stance=pid.map(ratings), source="judge").dropna(subset=["stance"])
    else:
        cfg = log.meta.get("world", {}).get("stance", {})
        lex = LexiconStance(cfg.get("positive", []), cfg.get("negative", []), cfg.get("intensifiers", []))
        out = authored.assign(stance=lex.scores(texts.tolist()), source="lexicon")
    groups = log.agents.set_index("agent_id")["group"]
    out = out.assign(group=out["agent_id"].map(groups), extremity=out["stance"].abs())
    return out[["event_id", "step", "agent_id", "group", "stance", "extremity", "source"]]


POLARIZATION_COLUMNS = ["group", "posts_first", "posts_last", "stance_first", "stance_last", "extremity_first",
                        "extremity_last", "change", "low", "high"]


def polarization_table(log: Any, window: int | None = None, n_resamples: int = 2000) -> pd.DataFrame:
    """Per group: mean stance and extremity in the first and last `window` steps (default: a quarter of the
    run), the change in extremity with a bootstrap 95% CI (scipy; the two windows' posts resampled independently,
    each at its own size). Undefined intervals (a window with one post) are NaN with a note."""
    st = post_stances(log)
    if st.empty:
        return empty(POLARIZATION_COLUMNS, "no authored posts by users in this run")
    first, last = int(st["step"].min()), int(st["step"].max())
    w = window or max(1, (last - first + 1) // 4)
    rows, why, skipped = [], [], []
    for g, d in st.groupby("group"):
        a, b = d[d["step"] < first + w], d[d["step"] > last - w]
        if a.empty or b.empty:
            skipped.append(str(g))
            continue
        ci = diff_of_means(a["extremity"].to_numpy(), b["extremity"].to_numpy(), n_resamples=n_resamples)
        why.append((str(g), ci.note))
        rows.append({"group": g, "posts_first": len(a), "posts_last": len(b), "stance_first": a["stance"].mean(), "stance_last": b["stance"].mean(),
                     "extremity_first": a["extremity"].mean(), "extremity_last": b["extremity"].mean(),
                     "change": b["extremity"].mean() - a["extremity"].mean(), "low": ci.low, "high": ci.high})
    out = pd.DataFrame(rows, columns=POLARIZATION_COLUMNS)
    if skipped:
        note(out, f"no change for group(s) {', '.join(skipped)}: no posts in the first or the last {w} step(s)")
    return note(out, *interval_notes("change CI", why))


def stance_windows(log: Any, window: int | None = None) -> tuple[pd.DataFrame, int]:
    """The posts' signed stances (`post_stances`) of the first and the last `window` steps (default: a quarter of
    the run, as `polarization_table`), with `window` "first" or "last"; and the window's length."""
    st = post_stances(log)
    if st.empty:
        return st.assign(window=pd.Series(dtype=str)), window or 1
    first, last = int(st["step"].min()), int(st["step"].max())
    w = window or max(1, (last - first + 1) // 4)
    a, b = st[st["step"] < first + w].assign(window="first"), st[st["step"] > last - w].assign(window="last")
    return pd.concat([a, b], ignore_index=True), w


def plot_stance_distributions(log: Any, path: Any = None, title: str = "Signed stance of posts, first vs last steps",
                              window: int | None = None, bins: int = 20) -> Any:
    """The distribution of the posts' signed stance (-1..1) in the first and the last `window` steps, one panel per
    group: step histograms (share of the window's posts per bin; n in the legend), the windows' means dashed. A
    group with no post in either window is left out. Returns the Figure; raises NothingToShow without posts."""
    from agentsim.analysis.plots import PALETTE, NothingToShow, new_figure, save

    st, w = stance_windows(log, window)
    if st.empty:
        raise NothingToShow("no authored posts by users in this run")
    groups = sorted({str(g) for g in st["group"].dropna()}) or [""]
    fig, axes = new_figure((max(4.0 * len(groups), 6.0), 3.6), 1, len(groups), sharey=True, squeeze=False)
    edges = np.linspace(-1, 1, bins + 1)
    for ax, g in zip(axes[0], groups, strict=True):
        d = st[st["group"].astype(str) == g] if g else st
        for (which, label), color in zip((("first", f"first {w} step(s)"), ("last", f"last {w} step(s)")), PALETTE[:2], strict=True):
            v = d.loc[d["window"] == which, "stance"].to_numpy(float)
            if not len(v):
                continue
            ax.hist(v, bins=edges, weights=np.full(len(v), 1 / len(v)), histtype="step", lw=1.6, color=color,
                    label=f"{label} (n={len(v)}, mean {v.mean():+.2f})")
            ax.axvline(v.mean(), color=color, ls="--", lw=1)
        ax.set_xlim(-1, 1)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1], ["-1", "-0.5", "0", "0.5", "1"])
        # the edge labels lean inwards, so that "1" of one panel and "-1" of the next do not touch
        ticks = ax.get_xticklabels()
        ticks[0].set_horizontalalignment("left")
        ticks[-1].set_horizontalalignment("right")
        ax.set_xlabel("signed stance (-1 against .. 1 for)")
        ax.set_title(g or "all users", fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("share of the window's posts")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


CURVE_COLUMNS = ["group", "step", "stance", "extremity", "low", "high", "posts"]


def polarization_curve(log: Any, n_resamples: int = 1000) -> pd.DataFrame:
    """Per group and step: mean stance and extremity of the posts, with a bootstrap 95% CI of the extremity."""
    st = post_stances(log)
    if st.empty:
        return empty(CURVE_COLUMNS, "no authored posts by users in this run")
    rows, why = [], []
    for (g, s), d in st.groupby(["group", "step"]):
        ci = mean_bootstrap(d["extremity"].to_numpy(), n_resamples=n_resamples)
        why.append((f"{g} step {s}", ci.note))
        rows.append({"group": g, "step": s, "stance": d["stance"].mean(), "extremity": d["extremity"].mean(), "low": ci.low, "high": ci.high, "posts": len(d)})
    return note(pd.DataFrame(rows, columns=CURVE_COLUMNS), *interval_notes("extremity CI", why))


# -- roles ---------------------------------------------------------------------------------------------------
ROLE_FEATURES = ["in_degree", "out_degree", "betweenness", "clustering", "pagerank"]
SILHOUETTE_SAMPLE = 4_000
#: Without python-igraph, networkx computes betweenness, clustering and PageRank on at most this many users (a
#: seeded uniform sample, its induced follow graph); degrees are always exact, for every user.
NETWORKX_MAX_USERS = 20_000


def graph_engine() -> str:
    """'igraph' when python-igraph is installed (`pip install igraph`; C, seconds at a million users), else 'networkx'."""
    try:
        import igraph  # noqa: F401
    except ImportError:
        return "networkx"
    return "igraph"


def role_features(edges: pd.DataFrame, betweenness_k: int = 200, seed: int = 0, users: Any = None, engine: str | None = None,
                  max_users: int = NETWORKX_MAX_USERS) -> pd.DataFrame:
    """Per user: in/out degree, betweenness (directed, normalised as networkx does; estimated from `betweenness_k`
    seeded sources on larger graphs, scaled by n/k), local clustering of the undirected follow graph, and PageRank
    (damping 0.85). `users`: every user to report, those without follow edges included (zeros; PageRank of an
    isolated node). `engine`: 'igraph' or 'networkx' (default: igraph when installed, graph_engine()). With
    networkx and more than `max_users` users, betweenness, clustering and PageRank come from the follow graph
    induced by a seeded sample of `max_users` users (the result's notes say so; the other users get NaN there)."""
    check_table(edges, "follow edges", {"follower": "any", "followee": "any"})
    ids = pd.Index(pd.unique(pd.concat([pd.Series(list(users) if users is not None else [], dtype=object),
                                        edges["follower"].astype(object), edges["followee"].astype(object)], ignore_index=True)))
    n = len(ids)
    a = ids.get_indexer(edges["follower"].astype(object))
    b = ids.get_indexer(edges["followee"].astype(object))
    keep = a != b
    pairs = np.unique(np.column_stack([a[keep], b[keep]]), axis=0) if keep.any() else np.zeros((0, 2), np.int64)
    out = pd.DataFrame({"agent_id": ids, "in_degree": np.bincount(pairs[:, 1], minlength=n), "out_degree": np.bincount(pairs[:, 0], minlength=n)})
    engine = engine or graph_engine()
    notes = []
    if n == 0:
        return out.assign(betweenness=[], clustering=[], pagerank=[])
    if engine == "igraph":
        import igraph as ig

        g = ig.Graph(n=n, edges=pairs, directed=True)
        k = n if n <= betweenness_k else betweenness_k
        sources = None if k == n else np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).tolist()
        bt = np.asarray(g.betweenness(directed=True, sources=sources), float) * (n / k)
        out["betweenness"] = bt / ((n - 1) * (n - 2)) if n > 2 else 0.0
        out["clustering"] = np.nan_to_num(g.as_undirected(mode="collapse").transitivity_local_undirected(mode="zero"))
        out["pagerank"] = g.pagerank(directed=True, damping=0.85)
        return note(out, "network features by python-igraph" + (f"; betweenness from {k} sampled sources" if k < n else ""))
    import networkx as nx

    sub = np.arange(n)
    if n > max_users:
        sub = np.sort(np.random.default_rng(seed).choice(n, size=max_users, replace=False))
        inside = np.zeros(n, bool)
        inside[sub] = True
        pairs = pairs[inside[pairs[:, 0]] & inside[pairs[:, 1]]]
        notes.append(f"betweenness, clustering and PageRank of a seeded sample of {max_users:,} of {n:,} users (their induced follow "
                     "graph; networkx, as python-igraph is not installed: `pip install igraph` computes them for every user); "
                     "degrees are exact for every user; users outside the sample have NaN there and no role")
    g = nx.DiGraph()
    g.add_nodes_from(sub.tolist())
    g.add_edges_from(pairs.tolist())
    k = None if g.number_of_nodes() <= betweenness_k else betweenness_k
    bt = nx.betweenness_centrality(g, k=k, seed=seed)
    cl = nx.clustering(g.to_undirected())
    pr = nx.pagerank(g)
    for col, values in (("betweenness", bt), ("clustering", cl), ("pagerank", pr)):
        full = np.full(n, np.nan)
        full[sub] = [values[i] for i in sub.tolist()]
        out[col] = full
    return note(out, *notes)


def roles_table(log: Any, ks: range = range(2, 7), seed: int = 0, engine: str | None = None,
                max_users: int = NETWORKX_MAX_USERS) -> dict[str, pd.DataFrame]:
    """KMeans over standardised network features for each k; the silhouette of each k, and the role profile
    (mean features) of the k with the best silhouette. Every user is in `features`, those without follow edges
    too (degree 0); see role_features for the engines and the sample networkx takes on large graphs."""
    edges = follow_graph(log, initial_only=False)
    agents = log.agents
    users = agents.loc[agents["kind"] == "user", "agent_id"].tolist()
    return roles_from_edges(edges, users, ks, seed, engine, max_users)


def roles_from_edges(edges: pd.DataFrame, users: Any, ks: range = range(2, 7), seed: int = 0, engine: str | None = None,
                     max_users: int = NETWORKX_MAX_USERS) -> dict[str, pd.DataFrame]:
    """`roles_table` of a follow edge list (follower, followee) and the users to report."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    feats = role_features(edges, seed=seed, users=users, engine=engine, max_users=max_users)
    notes = notes_of(feats)
    isolated = int(((feats["in_degree"] == 0) & (feats["out_degree"] == 0)).sum())
    if isolated:
        notes.append(f"{isolated} user(s) without follow edges are included (degree 0)")
    fit = feats.dropna(subset=ROLE_FEATURES)
    if len(fit) < 3:
        return {"silhouette": empty(["k", "silhouette"], f"no roles: {len(fit)} users; roles need at least 3", *notes)}
    X = StandardScaler().fit_transform(np.log1p(fit[ROLE_FEATURES].to_numpy(float) * [1, 1, 1e3, 1, 1e3]))
    big = len(fit) > 100_000
    # k-means cannot make more clusters than there are distinct feature profiles, and a silhouette needs 2 to n-1
    # clusters (sklearn's silhouette_score raises otherwise): users of a regular network (everyone follows the same
    # number of others) often share one profile.
    profiles = len(np.unique(X, axis=0))
    if profiles < 2:
        return {"silhouette": empty(["k", "silhouette"], f"no roles: all {len(fit)} users have the same network features "
                                    f"(degrees, betweenness, clustering, PageRank)", *notes)}
    scores, labels = [], {}
    for k in ks:
        if k >= len(fit):
            break
        if k > profiles:
            notes.append(f"k = {k} and above not tried: the users have only {profiles} distinct network-feature profiles")
            break
        km = (MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed) if big
              else KMeans(n_clusters=k, n_init=10, random_state=seed)).fit(X)
        sample = min(len(fit), SILHOUETTE_SAMPLE)
        found = len(np.unique(km.labels_))
        if not 2 <= found < sample:
            notes.append(f"k = {k}: k-means found {found} cluster(s) among {sample} users; no silhouette")
            continue
        labels[k] = km.labels_
        scores.append({"k": k, "silhouette": float(silhouette_score(X, km.labels_, sample_size=sample, random_state=seed))})
    if big:
        notes.append(f"{len(fit):,} users: k-means by MiniBatchKMeans (3 starts)")
    if len(fit) > SILHOUETTE_SAMPLE:
        notes.append(f"silhouettes on a seeded sample of {SILHOUETTE_SAMPLE:,} of {len(fit):,} users (the score is quadratic in users)")
    sil = note(pd.DataFrame(scores, columns=["k", "silhouette"]), *notes)
    if sil.empty:
        return {"silhouette": note(sil, f"no roles: {len(fit)} users are too few for k = {min(ks)} clusters")}
    best = int(sil.loc[sil["silhouette"].idxmax(), "k"])
    feats["role"] = pd.Series(labels[best], index=fit.index).reindex(feats.index).astype("Int64")
    profile = fit.assign(role=labels[best]).groupby("role")[ROLE_FEATURES].mean()
    profile = profile.assign(users=fit.assign(role=labels[best]).groupby("role").size()).reset_index()
    return {"silhouette": sil, "roles": note(profile, *notes), "features": note(feats, *notes)}


def _non_users(log: Any) -> set[str]:
    a = log.agents
    return set(a.loc[a["kind"] != "user", "agent_id"])


REFUSAL_COLUMNS = ["wanted", "reason", "refused", "users"]


def refusals_table(log: Any) -> pd.DataFrame:
    """Actions the platform refused under OASIS's rules (scenarios/social/rules.py), by wanted action and reason."""
    ev = log.df("events", ["agent_id", "action", "payload"])
    ref = ev[ev["action"] == "refused"]
    if ref.empty:
        return empty(REFUSAL_COLUMNS, "no action was refused in this run")
    body = ref["payload"].map(lambda p: json.loads(p) if p else {})
    df = pd.DataFrame({"wanted": body.map(lambda b: b.get("wanted")), "reason": body.map(lambda b: b.get("reason")), "agent_id": ref["agent_id"].to_numpy()})
    out = df.groupby(["wanted", "reason"]).agg(refused=("agent_id", "size"), users=("agent_id", "nunique")).reset_index()
    return out.sort_values(["refused", "wanted"], ascending=[False, True]).reset_index(drop=True)


def _alignment(logs: list[Any], params: dict[str, Any] | None) -> dict[str, pd.DataFrame]:
    """The OASIS alignment tables (analysis/alignment.py) when the command line or the run's world.alignment
    names a reference, or the command line gives alignment parameters; {} otherwise."""
    from agentsim.analysis.alignment import alignment_tables, params_from

    p = params_from(logs[0], params)
    world = (logs[0].meta.get("world") or {}).get("alignment")
    if p.reference is None and not params and not world:
        return {}
    return alignment_tables(logs, p)


def social_tables(log: Any, roles: bool = True, params: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """activity, refusals, cascades (every cascade, largest first; the terminal shows the first rows), power_law, adoption, herd, polarization and (with `roles`)
    roles_silhouette, roles (the profile of each role) and roles_users (every user's features and role); with a reference (`params` {"reference": ...}, or the run's world.alignment), growth,
    alignment and alignment_runs (analysis/alignment.py). Empty tables carry a note saying why (`notes_of`)."""
    cascades = cascade_table(log)
    ranked = cascades.sort_values(["size", "root"], ascending=[False, True]).reset_index(drop=True)
    if cascades.empty:
        note(ranked, "no posts or shares in this run")
    out = {"activity": activity_table(log), "refusals": refusals_table(log), "cascades": ranked,
           "power_law": power_law_table(cascades), "adoption": adoption_table(log), "herd": herd_table(log),
           "polarization": polarization_table(log)}
    if roles:
        r = roles_table(log)
        out["roles_silhouette"] = r["silhouette"]
        if "roles" in r:
            out["roles"] = r["roles"]
            out["roles_users"] = r["features"]  # each user's network features and role: who is a hub, a bridge
    out.update(_alignment([log], params))
    note_empty_tables(out, log)
    return out


def social_compare(logs: list[Any], params: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """A folder of runs (seeds of one scenario): per run, its largest cascade and refusals; over runs, the OASIS
    growth curves with t-intervals and, with a reference, the NRMSE per run and its mean with a t-interval."""
    from agentsim.analysis.alignment import alignment_tables, params_from

    rows = []
    for log in logs:
        c = cascade_table(log)
        top = c.nlargest(1, "size")
        ev = log.df("events", ["action"])
        rows.append({"run": log.run_dir.name, "seed": log.meta.get("seed"), "cascades": len(c),
                     "largest_size": int(top["size"].iloc[0]) if len(top) else 0,
                     "largest_depth": int(top["depth"].iloc[0]) if len(top) else 0,
                     "reposts": int((ev["action"] == "repost").sum()), "refused": int((ev["action"] == "refused").sum())})
    out = {"runs": pd.DataFrame(rows)}
    out.update(alignment_tables(logs, params_from(logs[0], params)))
    note_incomplete_runs(out, logs)
    return out


def social_plots(tables: dict[str, pd.DataFrame], logs: list[Any], out: Path) -> list[Path]:
    """The PNGs of `agentsim analyze RUN social --out DIR`: cascade-size CCDF (social_cascade_ccdf.png), the growth
    of the largest cascades with the injected post's highlighted (social_cascade_growth.png), adoption
    probability against exposed neighbours (social_adoption.png), the follow network coloured by group or role
    (social_network.png), herd effect (social_herd.png) and its trajectory by arm (social_herd_trajectory.png), the
    polarization curve (social_polarization.png) and the signed-stance distributions of the first and last steps
    (social_stance.png) (one run), the growth curves (with a reference, or over a
    folder of runs) and LLM usage per step (social_llm_usage.png). A figure with nothing to show (a run without
    reposts has no CCDF) is not drawn; a note on its table says why."""
    from agentsim.analysis.cascades import plot_ccdf
    from agentsim.analysis.labels import run_label, runs_title
    from agentsim.analysis.llm_usage import add_llm_usage
    from agentsim.analysis.plots import draw

    log = logs[0]
    who = f" ({run_label(log)})"
    paths: list[Path] = []
    if "herd" in tables:  # one run's tables (a folder of runs has the comparison tables only)
        sizes = cascade_table(log)["size"].to_numpy()
        behind = tables.get("cascades", tables.get("power_law"))
        draw(lambda: plot_ccdf(sizes, out / "social_cascade_ccdf.png", title=runs_title("Cascade sizes", logs) + who),
             out / "social_cascade_ccdf.png", behind, paths)
        curve = adoption_curve(_adoption_intervals(log)[0])
        draw(lambda: plot_adoption(curve, out / "social_adoption.png", title=runs_title("Adoption against exposure", logs) + who),
             out / "social_adoption.png", tables.get("adoption"), paths)
        draw(lambda: plot_network(log, out / "social_network.png", title=runs_title("Follow network", logs) + who),
             out / "social_network.png", tables.get("roles_silhouette", tables.get("activity")), paths)
        draw(lambda: plot_herd(tables["herd"], out / "social_herd.png", title=runs_title("Herd effect", logs) + who),
             out / "social_herd.png", tables["herd"], paths)
        draw(lambda: plot_polarization(log, out / "social_polarization.png", title=runs_title("Opinion extremity of posts per group", logs) + who),
             out / "social_polarization.png", tables.get("polarization"), paths)
        traj = herd_trajectory(log.df("events", ["step", "agent_id", "action", "target", "payload"]))
        draw(lambda: plot_herd_trajectory(traj, out / "social_herd_trajectory.png", title=runs_title("Herd effect over time", logs) + who),
             out / "social_herd_trajectory.png", tables["herd"], paths)
        draw(lambda: plot_stance_distributions(log, out / "social_stance.png",
                                               title=runs_title("Signed stance of posts, first vs last steps", logs) + who),
             out / "social_stance.png", tables.get("polarization"), paths)
        growth, inj = injected_growth(log)
        draw(lambda: plot_cascade_growth(growth, inj, out / "social_cascade_growth.png",
                                         title=runs_title("Cascade growth, the injected post highlighted", logs) + who),
             out / "social_cascade_growth.png", behind, paths)
    if "growth" in tables:
        draw(lambda: plot_growth(tables["growth"], out / "social_growth.png", title=runs_title("Cascade growth", logs) + who),
             out / "social_growth.png", tables["growth"], paths)
    add_llm_usage("social", tables, logs, out, paths)
    return paths


def plot_adoption(curve: pd.DataFrame, path: Any = None, title: str = "Adoption against exposure", ax: Any = None) -> Any:
    """P(k), the adoption probability against the number k of exposed neighbours (`adoption_curve`), with its
    Wilson interval; n (users exposed to exactly k) written at each point; integer k axis. Returns the Figure;
    raises NothingToShow without exposures."""
    from matplotlib.ticker import MaxNLocator

    from agentsim.analysis.plots import PALETTE, NothingToShow, own_axes, save_own

    if curve.empty:
        raise NothingToShow("; ".join(notes_of(curve)[:1]) or "no exposures")
    ax, own = own_axes(ax, (7, 4.5))
    x = curve["exposed"].to_numpy(int)
    y = curve["probability"].to_numpy(float)
    # clipped at 0: Wilson's bound at 0 or n successes lands a rounding error past the point
    err = np.clip(np.vstack([y - curve["ci_low"].to_numpy(float), curve["ci_high"].to_numpy(float) - y]), 0, None)
    ax.errorbar(x, y, yerr=err, fmt="o-", color=PALETTE[0], capsize=3, ms=4, label="P(k)")
    # n at each point while that stays legible (up to 12 points), else at about 10 points spread over k; rotated so
    # that neighbours do not run into each other, and never past the frame
    every = max(1, int(np.ceil(len(x) / 10))) if len(x) > 12 else 1
    for i, (xi, yi, n) in enumerate(zip(x, y, curve["users"], strict=True)):
        if i % every == 0 or i == len(x) - 1:
            ax.annotate(f"n={int(n)}", (xi, yi), textcoords="offset points", xytext=(3, 6), ha="left", fontsize=6,
                        rotation=45, annotation_clip=True, clip_on=True)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k: followees who had shared the cascade")
    ax.set_ylabel("P(adopt while exposed to exactly k)")
    ax.set_ylim(-0.02, min(1.02, max(0.1, float(np.nanmax(curve["ci_high"])) * 1.15)))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, title="bars: 95% Wilson interval over (user, cascade) pairs", title_fontsize=7)
    return save_own(ax, own, path)


#: Most users drawn in the network picture; a larger run is drawn on a seeded uniform sample (the title says so).
NETWORK_MAX_NODES = 2_000


def plot_network(log: Any, path: Any = None, title: str = "Follow network", max_nodes: int = NETWORK_MAX_NODES, seed: int = 0,
                 ax: Any = None) -> Any:
    """The follow network (final: initial edges plus follows and unfollows) drawn with networkx's spring layout
    (seeded), users coloured by group, or by network role (roles_table's k-means) when the run has one group;
    on more than `max_nodes` users, a seeded uniform sample of users and the edges among them, the sample size in
    the title. Returns the Figure; raises NothingToShow without users or edges."""
    import networkx as nx

    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles

    agents = log.agents
    users = agents[agents["kind"] == "user"] if "kind" in agents else agents
    edges = follow_graph(log, initial_only=False)
    if users.empty or edges.empty:
        raise NothingToShow("no users" if users.empty else "no follow edges in this run")
    ids = users["agent_id"].astype(str).to_numpy()
    total = len(ids)
    if total > max_nodes:
        ids = np.sort(np.random.default_rng(seed).choice(ids, max_nodes, replace=False))
    keep = set(ids)
    sub = edges[edges["follower"].astype(str).isin(keep) & edges["followee"].astype(str).isin(keep)]
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    g.add_edges_from(zip(sub["follower"].astype(str), sub["followee"].astype(str), strict=True))
    groups = dict(zip(users["agent_id"].astype(str), users["group"].astype(str), strict=True)) if "group" in users else {}
    by = "group"
    if len({groups.get(i, "") for i in ids} - {""}) < 2:
        by = "role"
        feats = roles_table(log).get("features")
        groups = ({str(a): (f"role {int(r)}" if pd.notna(r) else "no role") for a, r in zip(feats["agent_id"], feats["role"], strict=True)}
                  if feats is not None and "role" in feats else {})
        if not groups:
            by, groups = "none", dict.fromkeys(ids, "users")
    kinds = [groups.get(i, "unknown") for i in ids]
    colors = styles(kinds)
    ax, own = own_axes(ax, (7, 7))
    pos = nx.spring_layout(g, seed=seed, k=1.5 / np.sqrt(max(len(ids), 1)))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.15, width=0.4, arrows=False)
    size = max(4.0, 300.0 / np.sqrt(len(ids)))
    for kind in sorted(set(kinds)):
        nodes = [i for i, k in zip(ids, kinds, strict=True) if k == kind]
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_size=size, node_color=colors[kind]["color"], ax=ax,
                               label=f"{kind} ({len(nodes)})")
    ax.set_axis_off()
    sampled = f"; seeded sample of {len(ids):,} of {total:,} users" if len(ids) < total else f"; {total:,} users"
    ax.set_title(f"{title}{sampled}, {g.number_of_edges():,} follow edges", fontsize=10)
    ax.legend(fontsize=7, title=f"colour: {by}", title_fontsize=7, loc="best")
    return save_own(ax, own, path)


def plot_growth(growth: pd.DataFrame, path: Any = None, title: str = "") -> Any:
    """Scale, depth and max breadth per minute: the simulated mean with its t-interval over runs (where a minute
    rests on 2 or more runs; legend entries give n), and the reference. With a `condition` column (an
    experiment's conditions), one line and band per condition. Returns the Figure; raises NothingToShow when
    the table is empty."""
    from agentsim.analysis.plots import NothingToShow, _n_label, new_figure, save, styles
    from agentsim.analysis.tables import notes_of

    if growth.empty or not {"minute", "scale"} <= set(growth.columns):
        raise NothingToShow("; ".join(notes_of(growth)[:2]) or "no growth curve")
    groups = list(growth.groupby("condition", sort=False)) if "condition" in growth else [("simulated", growth)]
    colors = styles(label for label, _ in groups)
    fig, axes = new_figure((13, 3.8), 1, 3)
    banded = False
    for ax, m in zip(axes, ("scale", "depth", "max_breadth"), strict=True):
        for label, g in groups:
            n = g["runs"].to_numpy(float) if "runs" in g else np.full(len(g), np.nan)
            text = f"{label} ({_n_label(n)})" if _n_label(n) else str(label)
            line, = ax.plot(g["minute"], g[m], label=text, color=colors[label]["color"], linestyle=colors[label]["linestyle"])
            ok = g[f"{m}_low"].notna().to_numpy() & (np.nan_to_num(n, nan=2) >= 2)
            if ok.any():
                ax.fill_between(g["minute"], g[f"{m}_low"], g[f"{m}_high"], where=ok, alpha=0.2, color=line.get_color())
                banded = True
        if f"{m}_reference" in growth:
            ref = groups[0][1]
            ax.plot(ref["minute"], ref[f"{m}_reference"], "--", color="black", label="reference")
        ax.set_xlabel("minutes since the source post")
        ax.set_ylabel(m.replace("_", " "))
        ax.legend(fontsize=8, title="bands: 95% t-interval over runs" if banded else "no interval bands", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def injected_posts(log: Any) -> pd.DataFrame:
    """The posts the scenario injected (world.interventions of kind inject_post, in run.json's spec) as the log has
    them: the platform-phase create_post of the intervention's author at its step, without a parent. Columns:
    event_id, author, step, content. Empty (with a note) when the scenario injects none."""
    cols = ["event_id", "author", "step", "content"]
    wanted = [iv for iv in ((log.spec or {}).get("world") or {}).get("interventions") or [] if iv.get("kind") == "inject_post"]
    if not wanted:
        return empty(cols, "the scenario injects no post (world.interventions has no inject_post)")
    ev = log.df("events", ["event_id", "step", "phase", "agent_id", "action", "parent_event_id"])
    posts = ev[(ev["action"] == "create_post") & ev["parent_event_id"].isna() & (ev["phase"] == "platform")]
    rows = []
    for iv in wanted:
        hit = posts[(posts["agent_id"] == iv["author"]) & (posts["step"] == iv["step"])]
        rows += [{"event_id": int(e), "author": iv["author"], "step": int(iv["step"]), "content": iv.get("content", "")}
                 for e in hit["event_id"]]
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        note(out, "the scenario's injected post(s) are not in the log (the run ended before their step?)")
    return out


def injected_growth(log: Any, top: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The growth over steps since its root (agentsim.analysis.cascades.cascade_growth: size, scale, depth,
    max_breadth) of the `top` largest cascades of a run and of every injected post's cascade (`injected_posts`),
    with a column `injected`; and the injected posts."""
    from agentsim.analysis.cascades import cascade_growth

    inj = injected_posts(log)
    nodes = cascade_nodes(log.df("events", ["event_id", "step", "agent_id", "action", "parent_event_id"]))
    roots = nodes.groupby("root").size().nlargest(top).index.tolist()
    roots += [r for r in inj["event_id"] if r not in roots and r in set(nodes["root"])]
    growth = cascade_growth(nodes, roots=roots) if roots else pd.DataFrame(columns=["root", "t", "size", "scale", "depth", "max_breadth"])
    return growth.assign(injected=growth["root"].isin(set(inj["event_id"]))), inj


def plot_cascade_growth(growth: pd.DataFrame, injected: pd.DataFrame | None = None, path: Any = None, title: str = "") -> Any:
    """Scale (users), depth and max breadth of each cascade over steps since its root (`injected_growth`), one
    panel each: the other cascades as thin grey lines, the injected post's cascade (rows with `injected`) in
    vermillion, named with its author, step and final size. Returns the Figure; raises NothingToShow without a
    cascade, or when no cascade grew past its root."""
    from matplotlib.ticker import MaxNLocator

    from agentsim.analysis.plots import PALETTE, NothingToShow, new_figure, save

    if growth.empty:
        raise NothingToShow("; ".join(notes_of(growth)[:1]) or "no cascades in this run")
    if (growth.groupby("root")["size"].max() <= 1).all():
        raise NothingToShow("no post was shared: every cascade is its root post alone, nothing grows")
    flagged = growth["injected"].astype(bool) if "injected" in growth else pd.Series(False, index=growth.index)
    others = growth[~flagged]
    about = injected.set_index("event_id") if injected is not None and len(injected) else None
    fig, axes = new_figure((13, 3.8), 1, 3)
    for ax, m in zip(axes, ("scale", "depth", "max_breadth"), strict=True):
        for i, (_, g) in enumerate(others.groupby("root", sort=True)):
            ax.plot(g["t"], g[m], color="#999999", lw=0.8, alpha=0.7,
                    label=f"the {others['root'].nunique()} largest other cascades" if i == 0 else "_other")
        for root, g in growth[flagged].groupby("root", sort=True):
            who = f"{about.loc[root, 'author']}, step {int(about.loc[root, 'step'])}" if about is not None and root in about.index else f"event {root}"
            ax.plot(g["t"], g[m], color=PALETTE[3], lw=2.2, marker="o", ms=3, zorder=3,
                    label=f"injected post ({who}): size {int(g['size'].max())}")
        ax.set_xlabel("steps since the cascade's root post")
        ax.set_ylabel({"scale": "users in the cascade", "depth": "depth", "max_breadth": "max breadth"}[m])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    if not flagged.any():
        axes[0].set_title("no injected post in this run", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def plot_herd(herd: pd.DataFrame, path: Any = None, ax: Any = None, title: str = "") -> Any:
    """Mean final score by arm with 95% t-intervals over the arm's treated posts (everyone's votes, and
    everyone's but the controlled voter's); tick labels give n (posts). An arm of one post has no interval.
    Returns the Figure; raises NothingToShow without treated posts."""
    from agentsim.analysis.plots import PALETTE, NothingToShow, own_axes, save_own
    from agentsim.analysis.tables import notes_of

    if herd.empty:
        raise NothingToShow("; ".join(notes_of(herd)[:1]) or "no treated posts in this run")
    ax, own = own_axes(ax)
    x = np.arange(len(herd))
    for off, color, (m, lo, hi, label) in zip((-0.15, 0.15), PALETTE[:2], (("mean_score", "low", "high", "all votes"), ("mean_others", "low_others", "high_others", "others' votes")), strict=True):
        err = np.vstack([herd[m] - herd[lo], herd[hi] - herd[m]]).astype(float)
        ax.errorbar(x + off, herd[m], yerr=np.nan_to_num(err), fmt="o", capsize=4, label=label, color=color)
    ax.axhline(0, color="grey", lw=0.5)
    posts = herd["posts"].astype(int) if "posts" in herd else None
    ticks = [f"{t}\n(n={p}{', no CI' if p < 2 else ''})" for t, p in zip(herd["treatment"], posts, strict=True)] if posts is not None else list(herd["treatment"])
    ax.set_xticks(x, ticks)
    ax.set_ylabel("final score (likes - dislikes)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(title="bars: 95% t-interval over posts", title_fontsize=8, fontsize=8)
    return save_own(ax, own, path)


def plot_polarization(log: Any, path: Any = None, title: str = "Opinion extremity of posts per group", ax: Any = None) -> Any:
    """Mean |stance| of posts per group and step with its bootstrap CI over the step's posts (n: posts). Returns
    the Figure; raises NothingToShow without authored posts."""
    from agentsim.analysis.plots import band_plot

    curve = polarization_curve(log)
    return band_plot(curve, x="step", y="extremity", low="low", high="high", group="group", path=path, n="posts",
                     interval="95% bootstrap CI (BCa) over posts", title=title, xlabel="step", ylabel="|stance|", ax=ax)
