"""Progress display for a run: step, agents that acted, LLM calls (and those in flight), tokens/s and ETA, with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def rate_text(calls: int, llm_calls: int, tokens: int, seconds: float) -> str:
    """The progress bar's throughput: LLM tokens/s, or "no LLM" when every answer came from the scripted or
    replay backend (their word counts are not tokens, and their speed is not a model's)."""
    if calls and not llm_calls:
        return "no LLM (scripted/replay)"
    return f"{tokens / max(seconds, 1e-9):.1f} tokens/s"


class RunProgress:
    def __init__(self, total_steps: int = 0, console: Console | None = None, enabled: bool = True,
                 redirect_stderr: bool = True):
        """`redirect_stderr`: while the bar shows, print what others write to sys.stderr above it (rich's default);
        False where stderr is sent elsewhere (agentsim/runtime/terminal.py: third_party_output)."""
        self.enabled = enabled
        self.total = total_steps
        self.calls = 0
        self.llm_calls = 0  # calls answered by an LLM (vllm, openai): scripted and replay answers make no tokens/s
        self.tokens = 0
        self.in_flight = 0
        self.acted = 0  # agents that acted in the current step
        self.t0 = time.perf_counter()
        self._progress: Progress | None = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[acted]} agents acted"),
                TextColumn("{task.fields[calls]} calls ({task.fields[in_flight]} in flight)"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                redirect_stderr=redirect_stderr,
            )

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.__enter__()
            self._task = self._progress.add_task("run", total=self.total, calls=0, rate=rate_text(0, 0, 0, 1.0), acted=0, in_flight=0)
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def _refresh(self) -> None:
        if self._progress is not None and self._task is not None:
            dt = max(time.perf_counter() - self.t0, 1e-9)
            self._progress.update(self._task, calls=self.calls, rate=rate_text(self.calls, self.llm_calls, self.tokens, dt),
                                  acted=self.acted, in_flight=self.in_flight)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            import sys

            print(message, file=sys.stderr, flush=True)

    def start_step(self, step: int) -> None:
        self.acted = 0
        self._refresh()

    def sent(self, requests: int) -> None:
        self.in_flight += requests
        self._refresh()

    def answered(self, requests: int, agents: int) -> None:
        self.in_flight = max(0, self.in_flight - requests)
        self.acted += agents
        self._refresh()

    def advance_calls(self, calls: int, completion_tokens: int, llm_calls: int | None = None) -> None:
        """`calls` answered this phase, `llm_calls` of them by an LLM (default: all), with `completion_tokens`."""
        self.calls += calls
        self.llm_calls += calls if llm_calls is None else llm_calls
        self.tokens += completion_tokens
        self._refresh()

    def end_step(self, step: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step + 1)
        self._refresh()
