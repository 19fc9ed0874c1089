"""Surveys: one question put to every agent of every run of an experiment (agentsim/interviews.py), as a DataFrame.

>>> df = agentsim.experiments.survey("experiments/escalation-...", "Would you use nuclear weapons? Why?", at=6)
>>> df.groupby("models.default.model")["answer"].apply(list)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from agentsim.experiments.load import CELL_COLUMNS, load_experiment
from agentsim.experiments.manifest import DONE, ManifestError

#: The interview columns a survey keeps, after the cell's columns.
ANSWER_COLUMNS = ("agent_id", "at_step", "question", "answer", "alias", "model", "backend", "prompt_tokens",
                  "completion_tokens", "latency_s", "source", "interview_id")


def survey(experiment_dir: str | Path, question: str, at: int | None = None, agents: list[str] | None = None, *,
           backend: str | None = None, sets: dict[str, Any] | None = None, status: tuple[str, ...] = (DONE,),
           save: bool = True, log: Any = None) -> pd.DataFrame:
    """Ask `question` of `agents` (None: every agent a model plays) of every run of the experiment (completed ones
    by default), as each stood at step `at` (None: its latest). One row per run x agent: the cell's columns (cell,
    base, the varied parameters, seed, run_id; as `Experiment.table`), then ANSWER_COLUMNS.

    Runs whose models are configured alike share one backend (one engine per model, one batch of questions). Each
    run's answers are appended to its own `interviews` table unless `save=False`. Raises ManifestError for a
    directory that is not an experiment, InterviewError (agentsim.interviews) for an agent a run lacks or a run
    whose prompts cannot be rebuilt, BackendError for a model that cannot answer."""
    from agentsim.interviews import InterviewError, ask_many, check_agent, open_run

    exp = load_experiment(experiment_dir)
    pairs = exp.logs(status)
    if not pairs:
        counts = exp.cells["status"].value_counts().to_dict()
        raise ManifestError(f"{exp.exp_dir}: no run with status {' or '.join(status)} to survey (runs: {counts})")
    runs = []
    for _, rl in pairs:
        rl = open_run(rl)
        if agents is None:
            who = sorted(a for a, m in zip(*_agent_models(rl), strict=True) if m)
        else:
            who = list(agents)
            for a in who:
                check_agent(rl, a)
        if not who:
            raise InterviewError(f"{rl.run_dir}: no agent of this run is played by a model")
        runs.append((rl, who))
    answers = ask_many(runs, question, at, backend=backend, sets=sets, save=save, log=log)
    lead = list(CELL_COLUMNS[:2]) + exp.params + list(CELL_COLUMNS[2:])
    cells = {rl.run_id: {c: row[c] for c in lead if c != "run_id"} | {"run_id": rl.run_id} for row, rl in pairs}
    rows = []
    for iv in answers:
        r = iv.row()
        rows.append({**cells[iv.run_id], **{c: r[c] for c in ANSWER_COLUMNS}})
    return pd.DataFrame(rows, columns=lead + list(ANSWER_COLUMNS))


def _agent_models(rl: Any) -> tuple[list[str], list[str]]:
    t = rl.table("agents", ["agent_id", "model"])
    return t.column("agent_id").to_pylist(), t.column("model").to_pylist()
