"""What the LLMs of a run did, per step: invalid-answer rate, tokens and latency (issue 18 §2, "every run").

Read from the run's `llm_calls` table only (one row per attempt: a retried request has attempts 0, 1, ...; its
`request_id` ends in `-a<attempt>`). An *answer* is a request's last attempt: it is invalid when that attempt is
(`valid` false), i.e. after the retries the runtime allowed. Calls answered by a backend with no LLM behind it
(scripted, replay: agentsim/spec/models.py NON_LLM_BACKENDS) are not LLM usage: a run of only those has nothing to
show, and its table says so.

Every family's `--out` plots add the table `llm_usage` and the figure `<analysis>_llm_usage.png`
(`add_llm_usage`). Over a folder of runs the answers of every run are pooled per step and answerer (`runs` says how
many runs answered there) and the token lines show the mean per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentsim.analysis.tables import empty, not_applicable, note
from agentsim.llm.types import ATTEMPT_SUFFIX

COLUMNS = ["step", "answerer", "runs", "answers", "invalid", "invalid_rate", "invalid_low", "invalid_high", "calls",
           "prompt_tokens", "completion_tokens", "latency_median_s", "latency_p10_s", "latency_p90_s"]
#: Backends whose calls are no LLM's (agentsim/spec/models.py: NON_LLM_BACKENDS; not imported: analysis reads logs only).
NON_LLM = frozenset({"scripted", "replay"})


def _answers(calls: pd.DataFrame, models: dict[str, Any] | None, run: int) -> pd.DataFrame:
    """The LLM rows of one run's llm_calls, with `run`, `answer` (the request id without its attempt) and
    `answerer` (backend and model, agentsim.analysis.labels.backend_model_label)."""
    from agentsim.analysis.labels import backend_model_label

    llm = calls[~calls["backend"].isin(NON_LLM)]
    models = models or {}
    return llm.assign(
        run=run,
        answer=llm["request_id"].astype(str).str.replace(ATTEMPT_SUFFIX, "", regex=True),
        answerer=[backend_model_label({**(models.get(a) or {}), "backend": b, "model": m})
                  for a, b, m in zip(llm["alias"], llm["backend"], llm["model"], strict=True)])


def llm_usage_table(calls: pd.DataFrame, models: dict[str, Any] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Per step and answerer (backend and model, agentsim.analysis.labels.backend_model_label): answers, invalid
    answers and their rate with a Wilson interval (statsmodels' proportion_confint), calls (attempts), prompt and
    completion tokens summed over the calls, and the median and 10th/90th percentile latency of one call (s).
    `calls` is a run's llm_calls table; `models` run.json's `models` (for the answerer's name). Empty, with a note,
    when no LLM answered (a scripted run). `llm_usage_of_runs` does the same over several runs."""
    return _usage([(calls, models)], confidence)


def llm_usage_of_runs(logs: list[Any], confidence: float = 0.95) -> pd.DataFrame:
    """`llm_usage_table` over several runs (RunLogs): per step and answerer the answers of every run pooled (the
    rate and its Wilson interval over all of them, latency quantiles over all calls), tokens summed over the runs,
    and `runs`, how many runs answered there."""
    return _usage([(log.llm_calls, log.meta.get("models")) for log in logs], confidence)


def _usage(runs: list[tuple[pd.DataFrame, dict[str, Any] | None]], confidence: float) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    if all(calls.empty for calls, _ in runs):
        return not_applicable(empty(COLUMNS), "no LLM calls in this run" if len(runs) == 1 else "no LLM calls in these runs")
    llm = pd.concat([_answers(calls, models, i) for i, (calls, models) in enumerate(runs) if not calls.empty], ignore_index=True)
    if llm.empty:
        backends = ", ".join(sorted(set().union(*(set(calls["backend"]) for calls, _ in runs if not calls.empty))))
        where = "this run" if len(runs) == 1 else "these runs"
        return not_applicable(empty(COLUMNS), f"no LLM answered in {where} (backend {backends}): no tokens or latency to show")
    last = llm.sort_values("attempt").groupby(["run", "step", "answer"], sort=False).tail(1)
    rows = []
    for (step, who), g in llm.groupby(["step", "answerer"], sort=True):
        final = last[(last["step"] == step) & (last["answerer"] == who)]
        n, bad = len(final), int((~final["valid"].astype(bool)).sum())
        lo, hi = proportion_confint(bad, n, alpha=1 - confidence, method="wilson") if n else (np.nan, np.nan)
        # Wilson's bounds at 0 or n invalid answers land a rounding error past 0 or 1 (6.9e-18): a rate is in [0, 1]
        lo, hi = (float(np.clip(lo, 0, 1)) if bad else 0.0), (float(np.clip(hi, 0, 1)) if bad < n else 1.0)
        lat = g["latency_s"].to_numpy(float)
        rows.append({"step": int(step), "answerer": who, "runs": int(g["run"].nunique()), "answers": n, "invalid": bad,
                     "invalid_rate": bad / n if n else np.nan, "invalid_low": lo, "invalid_high": hi, "calls": len(g),
                     "prompt_tokens": int(g["prompt_tokens"].sum()), "completion_tokens": int(g["completion_tokens"].sum()),
                     "latency_median_s": float(np.median(lat)), "latency_p10_s": float(np.quantile(lat, 0.1)),
                     "latency_p90_s": float(np.quantile(lat, 0.9))})
    out = note(pd.DataFrame(rows, columns=COLUMNS),
               f"invalid_low/invalid_high: {confidence:.0%} Wilson interval over the step's answers")
    if len(runs) > 1:
        note(out, f"answers of {len(runs)} runs pooled per step; tokens summed over the runs that answered there (`runs`)")
    return out


def plot_llm_usage(usage: pd.DataFrame, path: str | Path | None = None, title: str = "LLM usage per step") -> Any:
    """Three panels over steps (integer axis), one line per answerer: the invalid-answer rate with its Wilson
    interval, completion and prompt tokens per step (per run: the table's sums over `runs`), and the median latency of a call with its 10-90th percentile
    band (the spread of calls, not a CI). Returns the Figure; raises NothingToShow without LLM calls."""
    from matplotlib.ticker import MaxNLocator

    from agentsim.analysis.plots import NothingToShow, band_plot, new_figure, save, styles
    from agentsim.analysis.tables import notes_of

    if usage.empty:
        raise NothingToShow("; ".join(notes_of(usage)[:1]) or "no LLM calls in this run")
    colors = styles(usage["answerer"])
    fig, axes = new_figure((13, 3.8), 1, 3)
    n = usage.assign(n=usage["answers"])
    band_plot(n, "step", "invalid_rate", "answerer", low="invalid_low", high="invalid_high", n="n",
              interval="95% Wilson interval over answers", xlabel="step", ylabel="invalid answers (share, after retries)",
              ylim=(-0.02, 1.02), ax=axes[0], colors=colors)
    many = bool((usage["runs"] > 1).any())
    for who, g in usage.groupby("answerer", sort=True):
        st = colors[who]
        per_run = g["runs"].to_numpy(float)
        axes[1].plot(g["step"], g["completion_tokens"] / per_run, marker="o", ms=3, color=st["color"], label=f"{who}: completion")
        axes[1].plot(g["step"], g["prompt_tokens"] / per_run, marker="s", ms=3, ls="--", color=st["color"], label=f"{who}: prompt")
        line, = axes[2].plot(g["step"], g["latency_median_s"], marker="o", ms=3, color=st["color"], label=f"{who} (median)")
        axes[2].fill_between(g["step"], g["latency_p10_s"], g["latency_p90_s"], color=st["color"], alpha=0.2, lw=0)
    axes[1].set_ylabel("tokens per step and run (mean over runs)" if many else "tokens per step (sum over calls)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("latency of a call (s)")
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7, title="band: 10th-90th percentile of calls", title_fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def add_llm_usage(name: str, tables: dict[str, pd.DataFrame], logs: list[Any], out: Path, paths: list[Path]) -> None:
    """For an analysis's `--out` plots (`name`: the analysis): the `llm_usage` table of the runs (`llm_usage_of_runs`)
    added to `tables` and written to `<name>_llm_usage.csv`, and `<name>_llm_usage.png` drawn, or a note on the table
    saying why not (a scripted run)."""
    from agentsim.analysis.labels import runs_title
    from agentsim.analysis.plots import draw
    from agentsim.analysis.tables import note_empty_tables, note_incomplete_runs

    if not logs:
        return
    usage = llm_usage_of_runs(logs)
    # an incomplete run says so here too, like the analysis's other tables
    if len(logs) == 1:
        note_empty_tables({"llm_usage": usage}, logs[0])
    else:
        note_incomplete_runs({"llm_usage": usage}, logs)
    tables["llm_usage"] = usage
    usage.to_csv(out / f"{name}_llm_usage.csv", index=False)
    path = out / f"{name}_llm_usage.png"
    title = runs_title("LLM usage per step", logs)
    draw(lambda: plot_llm_usage(usage, path, title=title), path, usage, paths)
