"""The end-of-run summary: the family's tables, action counts, tokens, wall time and where the logs are."""

from __future__ import annotations

import pandas as pd
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentsim.analysis.display import column_formatter, header
from agentsim.analysis.tables import why_not_applicable
from agentsim.llm.types import ATTEMPT_SUFFIX
from agentsim.logs.reader import RunLog
from agentsim.runtime.local import RunResult
from agentsim.spec.loader import Scenario
from agentsim.spec.models import NON_LLM_BACKENDS


def more_rows(shown: int, total: int) -> str:
    """The line under a cut table: "12 more rows (40 of 52 shown)"; "" when nothing was cut."""
    extra = total - shown
    return f"{extra} more row{'s' if extra != 1 else ''} ({shown} of {total} shown)" if extra > 0 else ""


def df_table(df: pd.DataFrame, title: str, max_rows: int = 40, more_hint: str = "") -> Table | Group:
    """A DataFrame as a rich table, at most `max_rows` rows; a cut table says under it how many more rows there are
    (`more_rows`, then `more_hint`). Numbers are formatted per column and headers carry units where known
    (agentsim/analysis/display.py: integers as integers, 4 significant figures, no -0, NaN as "–"). Cells and
    headers are data (agent names, answers), never rich markup: a name like "[/b]x" is shown as written."""
    shown = min(len(df), max(max_rows, 0))
    more = more_rows(shown, len(df))
    t = Table(title=escape(title), title_justify="left")
    fmts = [column_formatter(df.iloc[:, i]) for i in range(df.shape[1])]
    for i, c in enumerate(df.columns):
        t.add_column(escape(header(c)), justify="right" if pd.api.types.is_numeric_dtype(df.iloc[:, i]) else "left")
    for row in df.head(shown).itertuples(index=False):
        t.add_row(*[Text(f(v)) for f, v in zip(fmts, row, strict=True)])
    # Under the table as its own line (a caption would wrap at the table's width).
    return Group(t, Text(f"  {more}{more_hint}", style="dim")) if more else t


#: Backends that run no language model: their "tokens" are not LLM tokens (scripted: whitespace words, see
#: agentsim/llm/scripted.py ScriptedBackend; replay: the recorded run's counts, answered from a file without generating).
NO_LLM = {"scripted": "scripted backend: no LLM (its counts are words, not tokens)",
          "replay": "replay backend: recorded answers, no LLM ran (token counts are the recorded run's)",
          "human": "human seats: no LLM (their counts are words, not tokens)"}
# Keyed by spec.models.NON_LLM_BACKENDS, the one list of such backends: a backend added there needs its sentence
# here (tests/test_runs.py checks).


def backends_of(scenario: Scenario) -> dict[str, str]:
    """Model alias -> backend name, from the scenario's models."""
    return {alias: str(m.backend) for alias, m in scenario.spec.models.items()}


def token_line(totals: dict, tokens_by_model: dict[str, dict], backends: dict[str, str], wall_s: float) -> str:
    """The tokens part of the end-of-run line. Tokens/s only over the aliases an LLM served (vllm, openai): a
    scripted or replayed answer has no generation speed. A run without any LLM says so instead."""
    llm = [a for a, b in backends.items() if b not in NON_LLM_BACKENDS]
    prompt, tok = totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0)
    if not llm:
        kinds = sorted(set(backends.values()) & NON_LLM_BACKENDS) or ["scripted"]
        return "; ".join(NO_LLM[k] for k in kinds) + f" | prompt {prompt}, completion {tok}, no tokens/s"
    if len(llm) == len(backends):
        return f"tokens: prompt {prompt}, completion {tok} ({tok / max(wall_s, 1e-9):.1f} tokens/s)"
    llm_tok = sum(int(tokens_by_model.get(a, {}).get("completion_tokens", 0)) for a in llm)
    others = ", ".join(f"{a} ({backends[a]})" for a in backends if a not in llm)
    return (f"tokens: prompt {prompt}, completion {tok}; LLM completion tokens {llm_tok} ({llm_tok / max(wall_s, 1e-9):.1f} tokens/s, "
            f"models {', '.join(llm)}; no LLM behind {others})")


def human_line(calls: pd.DataFrame) -> str | None:
    """Who answered the human seats' requests (a request's last attempt): `human seats: a person answered 3 of 5
    requests; 2 timed out (answered by the seat's fallback, or invalid without one)`. None without human seats."""
    from agentsim.llm.human import HUMAN_TIMEOUT

    if calls.empty or "backend" not in calls:
        return None
    mine = calls[calls["backend"] == "human"]
    if mine.empty:
        return None
    # a request's attempts share its id up to ATTEMPT_SUFFIX
    answer = mine["request_id"].astype(str).str.replace(ATTEMPT_SUFFIX, "", regex=True)
    last = mine.assign(answer=answer).sort_values("attempt").groupby("answer", sort=False).tail(1)
    timed_out = int((last["finish_reason"] == HUMAN_TIMEOUT).sum())
    n = len(last)
    line = f"human seats: a person answered {n - timed_out} of {n} request{'s' if n != 1 else ''}"
    return line + (f"; {timed_out} timed out (answered by the seat's fallback, or invalid without one)" if timed_out else "")


def print_summary(console: Console, scenario: Scenario, result: RunResult) -> None:
    log = RunLog(result.run_dir)
    meta = log.meta
    if scenario.family.summary is not None and result.steps_completed:
        hidden = []
        for title, df in scenario.family.summary(log).items():
            if why := why_not_applicable(df):  # e.g. drift's D_t table of a scripted run: nothing was scored
                hidden.append(f"{title} ({why})")
                continue
            # A family may ask for fewer rows (attrs "rows_shown"); the table then says how many more there are.
            console.print(df_table(df, title, max_rows=int(df.attrs.get("rows_shown", 40))))
        if hidden:
            console.print(f"[dim]hidden (do not apply to this run): {escape('; '.join(hidden))}[/dim]", highlight=False, soft_wrap=True)
    events = log.events
    if len(events):
        counts = events.groupby("action").size().sort_values(ascending=False).rename("count").reset_index()
        console.print(df_table(counts, "Action counts", max_rows=30))
    tokens = meta.get("tokens_by_model", {})
    backends = backends_of(scenario)
    if tokens:
        tdf = pd.DataFrame([{"model alias": k, "backend": backends.get(k, "?"), **v} for k, v in tokens.items()])
        console.print(df_table(tdf, "Tokens by model"))
    totals = meta.get("totals", {})
    lat = meta.get("step_latency_s", {})
    wall = result.wall_s
    # `invalid` counts agents' answers only; scoring requests that got no scores are `unscored` (drift's KL).
    answers = f" of {totals['answers']}" if "answers" in totals else ""
    calls = "LLM calls" if any(b not in NON_LLM_BACKENDS for b in backends.values()) else "requests (no LLM)"
    unscored = f", unscored {totals['unscored']}" if totals.get("unscored") else ""
    console.print(
        f"[bold]{result.status}[/bold]: {result.steps_completed}/{scenario.spec.steps} steps in {wall:.1f} s"
        f" | {calls} {totals.get('llm_calls', 0)}, invalid answers {totals.get('invalid', 0)}{answers}{unscored}"
        f" | {escape(token_line(totals, tokens, backends, wall))}"
        + (f" | step latency p50 {lat['p50']:.2f} s, p99 {lat['p99']:.2f} s" if lat else "")
    )
    if "human" in backends.values() and (who := human_line(log.llm_calls)):
        console.print(escape(who), highlight=False, soft_wrap=True)
    console.print(f"Logs: [cyan]{result.run_dir}[/cyan]  (agentsim.load_run({str(result.run_dir)!r}))", soft_wrap=True)
