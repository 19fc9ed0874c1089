"""The end-of-run summary: the family's tables, action counts, tokens, wall time and where the logs are."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentsim.logs.reader import RunLog
from agentsim.runtime.local import RunResult
from agentsim.spec.loader import Scenario


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if 0 < abs(v) < 0.1 else f"{v:.2f}"
    return str(v)


def df_table(df: pd.DataFrame, title: str, max_rows: int = 40) -> Table:
    """A DataFrame as a rich table. Cells and headers are data (agent names, answers), never rich markup: a name
    like "[/b]x" is shown as written."""
    t = Table(title=escape(title), title_justify="left")
    for c in df.columns:
        t.add_column(escape(str(c)), justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left")
    for row in df.head(max_rows).itertuples(index=False):
        t.add_row(*[Text(_fmt(v)) for v in row])
    return t


def print_summary(console: Console, scenario: Scenario, result: RunResult) -> None:
    log = RunLog(result.run_dir)
    meta = log.meta
    if scenario.family.summary is not None and result.steps_completed:
        for title, df in scenario.family.summary(log).items():
            console.print(df_table(df, title))
    events = log.events
    if len(events):
        counts = events.groupby("action").size().sort_values(ascending=False).rename("count").reset_index()
        console.print(df_table(counts, "Action counts", max_rows=30))
    tokens = meta.get("tokens_by_model", {})
    if tokens:
        tdf = pd.DataFrame([{"model alias": k, **v} for k, v in tokens.items()])
        console.print(df_table(tdf, "Tokens by model"))
    totals = meta.get("totals", {})
    lat = meta.get("step_latency_s", {})
    wall = result.wall_s
    tok = totals.get("completion_tokens", 0)
    # `invalid` counts agents' answers only; scoring requests that got no scores are `unscored` (drift's KL).
    answers = f" of {totals['answers']}" if "answers" in totals else ""
    unscored = f", unscored {totals['unscored']}" if totals.get("unscored") else ""
    console.print(
        f"[bold]{result.status}[/bold]: {result.steps_completed}/{scenario.spec.steps} steps in {wall:.1f} s"
        f" | LLM calls {totals.get('llm_calls', 0)}, invalid answers {totals.get('invalid', 0)}{answers}{unscored}"
        f" | tokens: prompt {totals.get('prompt_tokens', 0)}, completion {tok} ({tok / max(wall, 1e-9):.1f} tok/s)"
        + (f" | step latency p50 {lat['p50']:.2f} s, p99 {lat['p99']:.2f} s" if lat else "")
    )
    console.print(f"Logs: [cyan]{result.run_dir}[/cyan]  (agentsim.load_run({str(result.run_dir)!r}))", soft_wrap=True)
