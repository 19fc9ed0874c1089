"""One progress display for a whole experiment: runs done / running / failed, steps, tokens/s and ETA."""

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

from agentsim.runtime.progress import RunProgress, rate_text


class ExperimentProgress:
    def __init__(self, runs: int, steps: int, console: Console | None = None, enabled: bool = True):
        self.runs = runs
        self.done = self.running = self.failed = self.interrupted = 0
        self.calls = self.llm_calls = self.tokens = 0
        self.t0 = time.perf_counter()
        self._console = console
        self._progress: Progress | None = None
        self._task: Any = None
        self._steps = steps
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]steps"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("runs {task.fields[done]}/{task.fields[runs]} done, {task.fields[running]} running, "
                           "{task.fields[failed]} failed"),
                TextColumn("{task.fields[calls]} LLM calls"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )

    def __enter__(self) -> ExperimentProgress:
        if self._progress is not None:
            self._progress.__enter__()
            self._task = self._progress.add_task("experiment", total=self._steps, **self._fields())
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.__exit__(*exc)

    def _fields(self) -> dict[str, Any]:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return {"done": self.done, "runs": self.runs, "running": self.running, "failed": self.failed,
                "calls": self.calls, "rate": rate_text(self.calls, self.llm_calls, self.tokens, dt)}

    def _refresh(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, **self._fields())

    def advance_steps(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)
        self._refresh()

    def run_started(self) -> None:
        self.running += 1
        self._refresh()

    def run_ended(self, status: str) -> None:
        self.running -= 1
        if status == "completed":
            self.done += 1
        elif status == "interrupted":
            self.interrupted += 1
        else:
            self.failed += 1
        self._refresh()

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, soft_wrap=True)
        elif self._console is not None:
            self._console.print(message, highlight=False, soft_wrap=True)

    def for_cell(self, label: str) -> RunProgress:
        return _CellProgress(self, label)


class _CellProgress(RunProgress):
    """A run's progress hooks, feeding the experiment's one display instead of a bar of their own."""

    def __init__(self, parent: ExperimentProgress, label: str):
        super().__init__(enabled=False)
        self.parent = parent
        self.label = label

    def advance_calls(self, calls: int, completion_tokens: int, llm_calls: int | None = None) -> None:
        self.parent.calls += calls
        self.parent.llm_calls += calls if llm_calls is None else llm_calls
        self.parent.tokens += completion_tokens
        self.parent._refresh()

    def end_step(self, step: int) -> None:
        self.parent.advance_steps(1)

    def note(self, message: str) -> None:
        self.parent.note(f"[{self.label}] {message}")
