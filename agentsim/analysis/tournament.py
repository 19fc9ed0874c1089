"""Tournament analyses of a run log: CSD expected scores and failure sensitivity, live standings with
Buchholz / Sonneborn-Berger tiebreaks, and ratings (Elo, Bradley-Terry with bootstrap CIs) from the match log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentsim.analysis.ratings import rating_tables, tiebreaks
from agentsim.analysis.tables import TableError, check_table, empty, note, note_empty_tables, notes_of

EVENTS = {"action": "str", "agent_id": "any", "target": "any", "payload": "any"}


def _payloads(rows: pd.DataFrame, what: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON payloads of `rows` ('match' or 'bye' events), each with `keys`; a TableError names the row."""
    out = []
    for i, p in zip(rows.index, rows["payload"], strict=True):
        try:
            d = json.loads(p)
            missing = [k for k in keys if k not in d]
        except (TypeError, ValueError) as e:
            raise TableError(f"events table: '{what}' event at row {i}: payload is not JSON ({type(e).__name__}: {p!r})") from None
        if missing:
            raise TableError(f"events table: '{what}' event at row {i}: payload lacks {missing} (has {sorted(d)})")
        out.append(d)
    return out


def match_log(events: pd.DataFrame) -> pd.DataFrame:
    """Matches in play order as columns round, a, b, score_a (the input of every rating method), from the `match`
    events (agent_id plays target; payload {"round": ..., "score_a": ...}). The table is checked first."""
    check_table(events, "events table", EVENTS, nullable=["target", "payload"])
    m = events[events["action"] == "match"]
    check_table(m, "events table ('match' events)", {"target": "any", "payload": "str"})
    p = _payloads(m, "match", ("round", "score_a"))
    try:
        score = [float(d["score_a"]) for d in p]
    except (TypeError, ValueError):
        i = next(i for i, d in zip(m.index, p, strict=True) if not isinstance(d["score_a"], int | float))
        raise TableError(f"events table: 'match' event at row {i}: score_a must be a number") from None
    return pd.DataFrame({"round": [d["round"] for d in p], "a": m["agent_id"].to_numpy(), "b": m["target"].to_numpy(), "score_a": score})


STANDINGS_COLUMNS = ["place", "player", "points", "buchholz", "sonneborn_berger"]


def standings(events: pd.DataFrame) -> pd.DataFrame:
    """Points per player (matches plus byes) with Buchholz and Sonneborn-Berger tiebreaks, in final order."""
    matches = match_log(events)
    byes = events[events["action"] == "bye"]
    pts: dict[str, float] = {}
    for a, b, s in matches[["a", "b", "score_a"]].itertuples(index=False):
        pts[a] = pts.get(a, 0.0) + s
        pts[b] = pts.get(b, 0.0) + 1 - s
    for who, d in zip(byes["agent_id"], _payloads(byes, "bye", ("points",)), strict=True):
        pts[who] = pts.get(who, 0.0) + float(d["points"])
    if not pts:
        return empty(STANDINGS_COLUMNS, "no matches or byes")
    tb = tiebreaks(list(matches[["a", "b", "score_a"]].itertuples(index=False, name=None)), pts)
    rows = [{"player": p, "points": v, **tb[p]} for p, v in pts.items()]
    df = pd.DataFrame(rows).sort_values(["points", "buchholz", "sonneborn_berger", "player"], ascending=[False, False, False, True])
    df.insert(0, "place", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def tournament_tables(log: Any, bootstrap: int = 200) -> dict[str, pd.DataFrame]:
    """CSD runs: expected_scores (and sensitivity); live runs: standings, ratings, rank_agreement. A run with no
    results yet (killed before its first round) gives these tables empty, with a note."""
    events, metrics = log.events, log.metrics
    mode = (log.spec.get("world") or {}).get("mode")
    out: dict[str, pd.DataFrame] = {}
    if (metrics["metric"] == "expected_score").any():
        last = metrics["step"].max()
        final = metrics[metrics["step"] == last]
        es = final[final["metric"] == "expected_score"].set_index("agent_id")["value"].rename("expected_score")
        se = final[final["metric"] == "std_error"].set_index("agent_id")["value"].rename("std_error")
        table = pd.concat([es, se], axis=1).reset_index(names="model")
        table["rank"] = table["expected_score"].rank(ascending=False, method="min").astype(int)
        out["expected_scores"] = table.sort_values(["rank", "model"]).reset_index(drop=True)
        sens = events[events["action"] == "sensitivity"]
        if len(sens):
            rows = [{"model": a, **json.loads(p)} for a, p in zip(sens["agent_id"], sens["payload"], strict=True)]
            out["sensitivity"] = pd.DataFrame(rows)
    elif mode == "csd":
        out["expected_scores"] = empty(["model", "expected_score", "std_error", "rank"], "no expected scores in this run")
    if (events["action"] == "match").any():
        out["standings"] = standings(events)
        matches = match_log(events)
        out.update(rating_tables(matches, bootstrap=bootstrap))
        note(out["ratings"], few_matches_note(matches))
    elif mode != "csd":
        why = "no matches in this run"
        out["standings"] = empty(STANDINGS_COLUMNS, why)
        out["ratings"] = empty(["player", "strength", "ci_low", "ci_high", "elo", "match_points"], why)
        out["rank_agreement"] = empty(["method_a", "method_b", "players", "kendall_tau", "spearman_rho"], why)
    note_empty_tables(out, log)
    return out


# -- figures -------------------------------------------------------------------------------------------------------
#: Matches per player below which a rating fit is called unstable (the rule of thumb of stats.EVENTS_PER_COVARIATE:
#: a Bradley-Terry strength is one parameter per player, Elo's online update has moved little from its start).
MATCHES_PER_PLAYER = 10


def few_matches_note(matches: pd.DataFrame) -> str:
    """The unstable-fit warning for ratings from a match log (columns a, b) where some player has fewer than
    MATCHES_PER_PLAYER matches ("" otherwise)."""
    games = pd.concat([matches["a"], matches["b"]]).value_counts()
    few = games[games < MATCHES_PER_PLAYER].sort_index()
    if few.empty:
        return ""
    shown = ", ".join(f"{p}: {n}" for p, n in list(few.items())[:8]) + (f" and {len(few) - 8} more" if len(few) > 8 else "")
    return (f"unstable fit: Bradley-Terry and Elo rest on fewer than {MATCHES_PER_PLAYER} matches for {len(few)} of "
            f"{len(games)} players ({shown}); with so few games a strength is barely identified (one upset moves it "
            "by a whole rating class) and its bootstrap interval is rough")


def expected_score_spread(log: Any) -> pd.DataFrame:
    """A CSD run's final E[S] per model with the spread that matters for a reader, the standard deviation of S
    over the N tournaments (sd = std_error * sqrt(N)), beside the Monte-Carlo standard error of the mean.
    Columns: model, expected_score, sd, std_error, tournaments, rank (best first). Empty without E[S] metrics."""
    m = log.metrics
    es = m[m["metric"] == "expected_score"]
    cols = ["model", "expected_score", "sd", "std_error", "tournaments", "rank"]
    if es.empty:
        return empty(cols, "no expected scores in this run")
    last = es["step"].max()
    at = m[m["step"] == last]
    e = at[at["metric"] == "expected_score"].set_index("agent_id")["value"]
    se = at[at["metric"] == "std_error"].set_index("agent_id")["value"].reindex(e.index)
    n = at.loc[at["metric"] == "tournaments", "value"]
    n = float(n.iloc[0]) if len(n) else float("nan")
    df = pd.DataFrame({"model": e.index, "expected_score": e.to_numpy(), "sd": (se * np.sqrt(n)).to_numpy(),
                       "std_error": se.to_numpy(), "tournaments": n})
    df["rank"] = df["expected_score"].rank(ascending=False, method="min").astype(int)
    return df.sort_values(["rank", "model"]).reset_index(drop=True)


def placement_table(log: Any) -> pd.DataFrame:
    """P(model finishes in place p) over a CSD run's tournaments (the last step's `placement/<p>` metrics; tied
    models share the places they span). Long table: model, place (1 = best), probability, tournaments."""
    m = log.metrics
    cols = ["model", "place", "probability", "tournaments"]
    p = m[m["metric"].str.startswith("placement/")]
    if p.empty:
        return empty(cols, "no placements in this run (a log written before CSD runs counted places)")
    last = p["step"].max()
    p = p[p["step"] == last]
    n = m.loc[(m["step"] == last) & (m["metric"] == "placement_tournaments"), "value"]
    out = pd.DataFrame({"model": p["agent_id"].to_numpy(), "place": p["metric"].str.removeprefix("placement/").astype(int).to_numpy(),
                        "probability": p["value"].to_numpy(float), "tournaments": int(n.iloc[0]) if len(n) else 0})
    return out.sort_values(["model", "place"]).reset_index(drop=True)[cols]


def convergence_table(log: Any) -> pd.DataFrame:
    """Running E[S] per model after each batch (step) of a CSD run: step, tournaments (so far), model,
    expected_score, std_error (Monte-Carlo SE of the running mean)."""
    m = log.metrics
    cols = ["step", "tournaments", "model", "expected_score", "std_error"]
    es = m[m["metric"] == "expected_score"]
    if es.empty:
        return empty(cols, "no expected scores in this run")
    n = m[m["metric"] == "tournaments"].set_index("step")["value"]
    se = m[m["metric"] == "std_error"].rename(columns={"value": "std_error"})[["step", "agent_id", "std_error"]]
    out = es.rename(columns={"value": "expected_score", "agent_id": "model"})[["step", "model", "expected_score"]]
    out = out.merge(se.rename(columns={"agent_id": "model"}), on=["step", "model"], how="left")
    out.insert(1, "tournaments", out["step"].map(n))
    return out.sort_values(["step", "model"]).reset_index(drop=True)[cols]


def plot_expected_scores(spread: pd.DataFrame, path: Any = None, title: str = "Expected score E[S]", ax: Any = None,
                         colors: dict | None = None) -> Any:
    """E[S] per model (best at the top) with whiskers of +-1 SD of S over the tournaments: how far one tournament's
    score strays from the mean, the uncertainty a reader of one tournament faces. The Monte-Carlo SE of E[S] (the
    precision of the mean, tiny with many tournaments) is in the legend. Returns the Figure; raises NothingToShow
    without E[S]."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles

    if spread.empty:
        raise NothingToShow("; ".join(notes_of(spread)[:1]) or "no expected scores")
    colors = colors or styles(spread["model"])
    d = spread.sort_values(["expected_score", "model"], ascending=[True, False]).reset_index(drop=True)
    ax, own = own_axes(ax, (7, max(3.0, 0.3 * len(d) + 1)))
    y = np.arange(len(d))
    for i, r in d.iterrows():
        c = colors.get(r["model"], {}).get("color")
        ax.errorbar([r["expected_score"]], [i], xerr=[[r["sd"]], [r["sd"]]] if np.isfinite(r["sd"]) else None,
                    fmt="o", color=c, ecolor=c, capsize=3, ms=5)
    ax.set_yticks(y, [f"{m} (#{k})" for m, k in zip(d["model"], d["rank"], strict=True)], fontsize=8)
    n = d["tournaments"].iloc[0]
    ax.set_xlabel("E[S]: expected points per tournament (one per match won)")
    ntext = f"{int(n):,}" if np.isfinite(n) else "?"
    ax.set_title(title, fontsize=10)
    from matplotlib.lines import Line2D

    ax.legend([Line2D([], [], marker="o", color="grey", ls="-")],
              [f"E[S] +- 1 SD of S over {ntext} tournaments (max Monte-Carlo SE of E[S]: {d['std_error'].max():.2g})"],
              fontsize=7, loc="lower right")
    return save_own(ax, own, path)


def plot_placements(places: pd.DataFrame, path: Any = None, title: str = "Placement probabilities", ax: Any = None,
                    order: list[str] | None = None) -> Any:
    """Heatmap of P(place) per model (rows; `order`, default best expected place first) and place (columns, 1 =
    best), values written in the cells when there are at most 12 models. Returns the Figure; raises
    NothingToShow without placements."""
    from matplotlib.ticker import MaxNLocator

    from agentsim.analysis.plots import NothingToShow, own_axes, save_own

    if places.empty:
        raise NothingToShow("; ".join(notes_of(places)[:1]) or "no placements")
    wide = places.pivot(index="model", columns="place", values="probability").fillna(0.0)
    if order is None:
        expected_place = (wide * wide.columns.to_numpy()).sum(1)
        order = expected_place.sort_values(kind="stable").index.tolist()
    wide = wide.loc[order]
    m = len(wide)
    ax, own = own_axes(ax, (max(5.0, 0.35 * wide.shape[1] + 3), max(3.0, 0.3 * m + 1.2)))
    im = ax.imshow(wide.to_numpy(), cmap="cividis", vmin=0, vmax=1, aspect="auto",
                   extent=(0.5, wide.shape[1] + 0.5, m - 0.5, -0.5))
    ax.set_yticks(np.arange(m), wide.index.tolist(), fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if m <= 12:
        for i, row in enumerate(wide.to_numpy()):
            for j, v in enumerate(row):
                ax.text(j + 1, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.5 else "black")
    ax.set_xlabel("final place (1 = highest score; ties share their places)")
    n = int(places["tournaments"].iloc[0])
    ax.set_title(f"{title} ({n:,} tournaments)", fontsize=10)
    ax.figure.colorbar(im, ax=ax, label="P(place)")
    return save_own(ax, own, path)


def plot_rank_bump(sensitivity: pd.DataFrame, path: Any = None, title: str = "Rank against eliminations T", ax: Any = None,
                   colors: dict | None = None) -> Any:
    """Bump chart of each model's rank by E[S] (1 at the top) against the uniform elimination rate T of the
    failure-sensitivity sweep, each line labelled with its model at both ends; integer axes. Returns the Figure;
    raises NothingToShow without a sweep of at least one T."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles

    if sensitivity.empty or not {"T", "rank", "model"} <= set(sensitivity.columns):
        raise NothingToShow("; ".join(notes_of(sensitivity)[:1]) or "no failure-sensitivity sweep in this run")
    colors = colors or styles(sensitivity["model"])
    ts = sorted(sensitivity["T"].unique())
    models = sensitivity["model"].nunique()
    ax, own = own_axes(ax, (max(5.0, 1.4 * len(ts) + 4), max(3.5, 0.3 * models + 1)))
    for who, g in sensitivity.groupby("model", sort=True):
        g = g.sort_values("T")
        st = colors.get(who, {})
        ax.plot(g["T"], g["rank"], marker=st.get("marker", "o"), color=st.get("color"), ls=st.get("linestyle", "-"), label=str(who))
        ax.annotate(str(who), (g["T"].iloc[-1], g["rank"].iloc[-1]), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7,
                    color=st.get("color"))
        ax.annotate(str(who), (g["T"].iloc[0], g["rank"].iloc[0]), xytext=(-6, 0), textcoords="offset points", va="center",
                    ha="right", fontsize=7, color=st.get("color"))
    ax.set_ylim(models + 0.5, 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(FixedLocator(ts))
    pad = max(1.0, (max(ts) - min(ts)) * 0.35) if len(ts) > 1 else 1.0
    ax.set_xlim(min(ts) - pad, max(ts) + pad)
    ax.set_xlabel("T: models eliminated after every round")
    ax.set_ylabel("rank by E[S] (1 = best)")
    ax.set_title(title, fontsize=10)
    return save_own(ax, own, path)


def plot_convergence(conv: pd.DataFrame, path: Any = None, title: str = "E[S] over batches", ax: Any = None,
                     colors: dict | None = None) -> Any:
    """The running E[S] per model against the tournaments simulated so far (one point per batch = step), with its
    95% Monte-Carlo interval (+-1.96 SE): has the estimate settled? Returns the Figure; raises NothingToShow
    without E[S]."""
    from agentsim.analysis.plots import PALETTE, NothingToShow, label_ends, own_axes, save_own, styles

    if conv.empty:
        raise NothingToShow("; ".join(notes_of(conv)[:1]) or "no expected scores")
    colors = colors or styles(conv["model"])
    ax, own = own_axes(ax, (9, 5))
    for who, g in conv.groupby("model", sort=True):
        st = colors.get(who, {})
        line, = ax.plot(g["tournaments"], g["expected_score"], marker=st.get("marker", "o"), ms=3, color=st.get("color"),
                        ls=st.get("linestyle", "-"), label=str(who))
        if g["std_error"].notna().any() and len(g) > 1:
            ax.fill_between(g["tournaments"], g["expected_score"] - 1.96 * g["std_error"], g["expected_score"] + 1.96 * g["std_error"],
                            color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("tournaments simulated (bands: 95% Monte-Carlo interval, 1.96 SE)")
    ax.set_ylabel("running E[S]")
    ax.set_title(title, fontsize=10)
    if conv["model"].nunique() > len(PALETTE):
        label_ends(ax)  # colours repeat past the palette: every line is named at its end instead of in a legend
    else:
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_own(ax, own, path)


def plot_standings(table: pd.DataFrame, path: Any = None, title: str = "Standings", ax: Any = None, colors: dict | None = None) -> Any:
    """Points per player in final order (place 1 at the top), Buchholz and Sonneborn-Berger tiebreaks written
    beside each bar. Returns the Figure; raises NothingToShow without results."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own, styles

    if table.empty:
        raise NothingToShow("; ".join(notes_of(table)[:1]) or "no matches or byes")
    colors = colors or styles(table["player"])
    d = table.sort_values("place", ascending=False).reset_index(drop=True)
    ax, own = own_axes(ax, (7, max(3.0, 0.35 * len(d) + 1)))
    y = np.arange(len(d))
    ax.barh(y, d["points"], color=[colors.get(p, {}).get("color") for p in d["player"]])
    for i, r in d.iterrows():
        ax.text(r["points"], i, f"  BH {r['buchholz']:g}, SB {r['sonneborn_berger']:g}", va="center", fontsize=7)
    ax.set_yticks(y, [f"{int(p)}. {who}" for p, who in zip(d["place"], d["player"], strict=True)], fontsize=8)
    ax.set_xlabel("points (win 1, draw 1/2, bye as set)")
    ax.set_xlim(0, max(1.0, float(d["points"].max())) * 1.5)
    ax.set_title(title, fontsize=10)
    return save_own(ax, own, path)


def plot_ratings(ratings: pd.DataFrame, path: Any = None, title: str = "Ratings", colors: dict | None = None) -> Any:
    """Forest plot: Bradley-Terry strength per player with its bootstrap interval (left; players best first), and
    online Elo (right; one pass over the matches, no interval). Returns the Figure; raises NothingToShow without
    ratings."""
    from agentsim.analysis.plots import NothingToShow, new_figure, save, styles

    if ratings.empty:
        raise NothingToShow("; ".join(notes_of(ratings)[:1]) or "no ratings")
    colors = colors or styles(ratings["player"])
    d = ratings.sort_values(["strength", "player"], ascending=[True, False]).reset_index(drop=True)
    fig, (bt, el) = new_figure((10, max(3.0, 0.35 * len(d) + 1.2)), 1, 2, sharey=True)
    y = np.arange(len(d))
    has_ci = {"ci_low", "ci_high"} <= set(d.columns) and d[["ci_low", "ci_high"]].notna().any().any()
    for i, r in d.iterrows():
        c = colors.get(r["player"], {}).get("color")
        err = [[r["strength"] - r["ci_low"]], [r["ci_high"] - r["strength"]]] if has_ci and np.isfinite(r["ci_low"]) else None
        bt.errorbar([r["strength"]], [i], xerr=err, fmt="o", color=c, ecolor=c, capsize=3)
        if "elo" in d:
            el.plot([r["elo"]], [i], "D", color=c)
    bt.axvline(0, color="grey", lw=0.5)
    bt.set_yticks(y, d["player"].astype(str).tolist(), fontsize=8)
    bt.set_xlabel("Bradley-Terry strength (log-odds, mean 0)")
    bt.set_title("bars: 95% bootstrap CI over matches" if has_ci else "no interval (bootstrap off or undefined)", fontsize=8)
    el.axvline(1500, color="grey", lw=0.5)
    el.set_xlabel("Elo (start 1500, K=32; no interval)")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


#: Rating methods as legends and axes name them (agentsim/analysis/ratings.py: rating_tables).
METHOD_LABELS = {"bradley_terry": "Bradley-Terry", "elo": "Elo", "match_points": "match points"}


def plot_rank_agreement(agree: pd.DataFrame, path: Any = None, title: str = "Rank agreement", ax: Any = None) -> Any:
    """Heatmap of Kendall's tau between every pair of rating methods (1 on the diagonal; a NaN pair is left
    blank and marked), values written in the cells. Returns the Figure; raises NothingToShow without pairs."""
    from agentsim.analysis.plots import NothingToShow, own_axes, save_own

    if agree.empty:
        raise NothingToShow("; ".join(notes_of(agree)[:1]) or "no pairs of rating methods")
    methods = list(dict.fromkeys([*agree["method_a"], *agree["method_b"]]))
    k = len(methods)
    mat = np.eye(k)
    for a, b, tau in zip(agree["method_a"], agree["method_b"], agree["kendall_tau"], strict=True):
        i, j = methods.index(a), methods.index(b)
        mat[i, j] = mat[j, i] = tau
    ax, own = own_axes(ax, (1.3 * k + 2.5, 1.1 * k + 1.5))
    im = ax.imshow(np.ma.masked_invalid(mat), cmap="PuOr", vmin=-1, vmax=1)
    names = [METHOD_LABELS.get(m, m.replace("_", " ")) for m in methods]
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    for i in range(k):
        for j in range(k):
            # white on the dark ends of the diverging map (|tau| near 1), black on its light middle
            ax.text(j, i, "n/a" if np.isnan(mat[i, j]) else f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if np.isfinite(mat[i, j]) and abs(mat[i, j]) > 0.6 else "black")
    players = int(agree["players"].max())
    ax.set_title(f"{title} (Kendall's tau, {players} players)", fontsize=10)
    ax.figure.colorbar(im, ax=ax, label="Kendall's tau")
    return save_own(ax, own, path)


def tournament_plots(tables: dict[str, pd.DataFrame], logs: list[Any], out: Path) -> list[Path]:
    """The PNGs of `agentsim analyze RUN tournament --out DIR`. CSD runs: tournament_expected_scores.png (E[S] with
    the spread over tournaments), tournament_placements.png, tournament_sensitivity.png (rank against T),
    tournament_convergence.png; live runs: tournament_standings.png, tournament_ratings.png (Bradley-Terry forest
    plot and Elo), tournament_rank_agreement.png; every run: tournament_llm_usage.png (agentsim.analysis.llm_usage).
    A model or player has one colour in all of them (plots.styles). A figure with nothing to show is not drawn; a
    note on its table says why."""
    from agentsim.analysis.labels import run_label, runs_title
    from agentsim.analysis.llm_usage import add_llm_usage
    from agentsim.analysis.plots import draw, styles

    log = logs[0]
    paths: list[Path] = []

    who = run_label(log)  # a CSD run asks no model: its agents have none, and no "(unknown)" is shown

    def title(what: str) -> str:
        return runs_title(what, logs[:1]) + (f" ({who})" if who != "unknown" else "")

    if "expected_scores" in tables:
        behind = tables["expected_scores"]
        spread = expected_score_spread(log)
        colors = styles(spread["model"]) if len(spread) else {}
        order = spread.sort_values(["rank", "model"])["model"].tolist()
        draw(lambda: plot_expected_scores(spread, out / "tournament_expected_scores.png", title=title("Expected score E[S]"),
                                          colors=colors), out / "tournament_expected_scores.png", behind, paths)
        draw(lambda: plot_placements(placement_table(log), out / "tournament_placements.png", title=title("Placement probabilities"),
                                     order=order or None), out / "tournament_placements.png", behind, paths)
        sens = tables.get("sensitivity", empty(["model", "T", "rank"], "no failure-sensitivity sweep in this run (world.csd.sensitivity: [])"))
        draw(lambda: plot_rank_bump(sens, out / "tournament_sensitivity.png", title=title("Rank against eliminations T"), colors=colors),
             out / "tournament_sensitivity.png", tables.get("sensitivity", behind), paths)
        draw(lambda: plot_convergence(convergence_table(log), out / "tournament_convergence.png", title=title("E[S] over batches"),
                                      colors=colors), out / "tournament_convergence.png", behind, paths)
    if "standings" in tables:
        colors = styles(tables["standings"]["player"]) if len(tables["standings"]) else {}
        draw(lambda: plot_standings(tables["standings"], out / "tournament_standings.png", title=title("Standings"), colors=colors),
             out / "tournament_standings.png", tables["standings"], paths)
        draw(lambda: plot_ratings(tables["ratings"], out / "tournament_ratings.png", title=title("Ratings"), colors=colors),
             out / "tournament_ratings.png", tables["ratings"], paths)
        draw(lambda: plot_rank_agreement(tables["rank_agreement"], out / "tournament_rank_agreement.png", title=title("Rank agreement")),
             out / "tournament_rank_agreement.png", tables["rank_agreement"], paths)
    add_llm_usage("tournament", tables, logs, out, paths)
    return paths
